/* SPDX-License-Identifier: GPL-2.0 */
/*
 * volume.h - tracked volumes, the probe table and the control operations.
 *
 * Typical use (main.c, once it has checked the ioctl arguments):
 *
 *	bt_tracker_init();                      find the tracepoints
 *	bt_attach(&attach, dev);                 start tracking a volume
 *	bt_checkpoint(vols, n, uvols, NULL);     active maps -> pending
 *	   (CHECKPOINT_SNAP's arguments instead of NULL also start snapshots:
 *	   snapshot.h)
 *	bt_read_extents(&rd, dev);               page through a map
 *	bt_commit(&stamp, dev) or bt_abort(...)  drop or merge back pending
 *	bt_detach(dev);
 *	bt_detach_all();                         module exit
 *
 * Locking:
 *  - bt_ctl_mutex (volume.c) serializes every control operation. It guards
 *    the volume list, the probe table pointer's updates, and each volume's
 *    pending map, epoch and staged map.
 *  - vol->map_lock serializes everything that touches a volume's maps
 *    except btmap_mark(): the coarsen worker, the checkpoint swap, abort's
 *    merge, extent reads and status. Order: bt_ctl_mutex, then map_lock.
 *    The worker takes map_lock only, so detach may cancel_work_sync() it
 *    under bt_ctl_mutex.
 *  - the probe takes no lock: it reads bt_table under RCU.
 * Functions that need one of these locks held assert it
 * (lockdep_assert_held()).
 */
#ifndef BLKTRACK_VOLUME_H
#define BLKTRACK_VOLUME_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/blktrack.h>

#include "btmap.h"
#include "snapshot.h"

/*
 * A disk below a tracked one that receives the tracked disk's own bios,
 * moved there in place (nvme multipath paths, md-linear members): their
 * completions are traced there, at the tracked disk's sector + @delta.
 */
#define BT_MAX_ALIASES	8

struct bt_alias {
	struct gendisk *disk;		/* compared, never dereferenced */
	s64 delta;			/* its sector - the tracked disk's sector */
};

/*
 * A bio in flight whose end the completion probes cannot map back by
 * itself, with the tracked disk's sectors it was queued with (tracker.c,
 * "Ranges kept by bio").
 */
#define BT_MAX_KEPT	64

struct bt_kept {
	struct bio *bio;		/* compared, never dereferenced; NULL: free */
	sector_t start;
	sector_t nr;
};

struct bt_volume {
	struct list_head node;		/* bt_volumes, under bt_ctl_mutex */
	dev_t dev;
	struct bt_bdev bdev;		/* opened (pinned) at attach */
	struct gendisk *disk;
	sector_t start_sect;		/* first sector on the disk */
	sector_t nr_sects;		/* size at attach or the last checkpoint */
	sector_t staged_sects;		/* size for the staged map */
	unsigned int block_shift;	/* log2(block size in bytes) */
	bool whole_disk;
	u32 reason;			/* enum blktrack_reason, sticky */
	bool history_lost;		/* reason came from RESTORE or a loss
					 * seen since: COMMIT clears it */
	u64 diskseq;			/* the disk's media sequence we track */
	u64 losses;			/* histories lost (bt_lose_history()) */
	u64 ckpt_losses;		/* ... at the last CHECKPOINT: a COMMIT
					 * clears the reason only if no loss since */
	bool rw_page_missed;		/* an untracked page write was seen */
	bool ends_unseen;		/* its driver ends bios out of sight */
	bool checkpointed;		/* RESTORE is refused once set */
	u64 mem_limit;			/* bytes, never 0 */
	u8 generation[16];
	u64 epoch;

	struct mutex map_lock;		/* serializes map users but the probe */
	struct btmap *active;		/* what the probe table names */
	struct btmap *pending;		/* under bt_ctl_mutex */
	struct btmap *staged;		/* CHECKPOINT's next active map */
	struct btmap *resized;		/* CHECKPOINT's pending map at a new size */
	struct work_struct coarsen_work;
	struct bt_snap *snap;		/* with the pending map, under bt_ctl_mutex */

	/*
	 * Added by the remap probe (tracker.c), never removed while attached:
	 * entries are written under alias_lock, then published by
	 * nr_aliases (release); readers load nr_aliases (acquire) only.
	 */
	raw_spinlock_t alias_lock;
	unsigned int nr_aliases;
	bool aliases_full;		/* a moved bio could not be mapped back */
	bool alias_offsets;		/* a moved bio was not kept: map back by offset */
	struct bt_alias aliases[BT_MAX_ALIASES];

	/* Claimed by cmpxchg of ->bio at queue or remap, freed at its end. */
	bool kept_full;			/* a discard found no free slot */
	struct bt_kept kept[BT_MAX_KEPT];
};

/*
 * What the probe needs of one volume, packed in one array so that a bio
 * reads a few cache lines and writes none but the map's. One table names
 * every volume's map: publishing a new table switches several volumes'
 * maps at one instant (multi-volume CHECKPOINT).
 */
struct bt_track {
	struct gendisk *disk;
	dev_t devt;			/* disk_devt(disk) */
	sector_t start_sect;
	sector_t nr_sects;
	unsigned int sect_shift;	/* block_shift - SECTOR_SHIFT */
	bool whole_disk;
	struct btmap *map;
	struct bt_volume *vol;
};

struct bt_table {
	unsigned int nr;
	struct bt_track t[];
};

/*
 * volume.c takes it, around each control operation; the other files only
 * assert it (lockdep_assert_held(), lockdep_is_held()).
 */
extern struct mutex bt_ctl_mutex;

/* tracker.c: published under bt_ctl_mutex, read by the probe under RCU. */
extern struct bt_table __rcu *bt_table;
int bt_tracker_init(void);
int bt_tracker_hook(void);	/* under bt_ctl_mutex */
int bt_tracker_hook_disk(struct gendisk *disk);	/* under bt_ctl_mutex */
void bt_tracker_unhook(void);	/* under bt_ctl_mutex */
bool bt_rw_page_missed(void);
void bt_kept_forget(struct bt_volume *vol);	/* no probe names it any more */
bool bt_disk_ends_unseen(struct gendisk *disk);

/* main.c */
extern unsigned int bt_mem_limit_mib;

/* volume.c: arguments are checked by main.c (size, flags, reserved). */
int bt_attach(const struct blktrack_attach *a, dev_t dev);
int bt_detach(dev_t dev);
int bt_list(struct blktrack_list *l);
int bt_status(struct blktrack_status *st, dev_t dev);
int bt_checkpoint(struct blktrack_checkpoint_vol *cv, const dev_t *devs, u32 n,
		  struct blktrack_checkpoint_vol __user *ucv,
		  const struct blktrack_checkpoint_snap *snap);
int bt_snap_read_dev(const struct blktrack_snap_read *rd, dev_t dev);
int bt_snap_status_dev(struct blktrack_snap_status *st, dev_t dev);
int bt_read_extents(struct blktrack_read_extents *rd, dev_t dev);
int bt_commit(const struct blktrack_stamp_arg *a, dev_t dev);
int bt_abort(const struct blktrack_stamp_arg *a, dev_t dev);
int bt_restore(const struct blktrack_restore *r, const struct blktrack_extent *ext,
	       dev_t dev);
void bt_detach_all(void);

#endif /* BLKTRACK_VOLUME_H */
