/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snapshot.h - copy-before-write snapshots of a volume at a checkpoint.
 *
 * Typical use (volume.c, under bt_ctl_mutex, inside CHECKPOINT_SNAP):
 *
 *	bt_snap_hook();                         intercept submit_bio_noacct
 *	                                        (until no volume is left)
 *	sf = bt_store_file_open(fd, vols, n);   BLKTRACK_SNAP_STORE_FD only
 *	vol->snap = bt_snap_create(vol, limit, flags, sf);  may sleep
 *	bt_store_file_put(sf);                   each snapshot has its own ref
 *	bt_snap_arm();                           from here every write to the
 *	                                         volume's disk is held
 *	... the checkpoint's instant: the pending map is quiescent ...
 *	bt_snap_fill(vol->snap, vol);            protect the pending map's blocks
 *	                                         (every block: BLKTRACK_SNAP_ALL)
 *	bt_snap_activate(vol->snap);             copy, then release held writes
 *	...
 *	bt_snap_read(vol->snap, &rd);            SNAP_READ, also RELEASE (under
 *	                                         bt_ctl_mutex)
 *	bt_snap_end(vol);                        COMMIT/ABORT/DETACH/unload
 *
 * Locking:
 *  - bt_ctl_mutex (volume.c) serializes create, arm, fill, activate, read,
 *    status and end, and guards the list of snapshots and the table the
 *    interceptor reads.
 *  - the interceptor (an ftrace callback in the submitter's context,
 *    preemption off) reads bt_snap_table under RCU-sched, tests "need"
 *    bits and queues a bio on snap->held under snap->held_lock.
 *  - snap->store_mutex guards the store, every change of the need set
 *    (bits and leaf pointers) and the order "copy stored, then need bit
 *    cleared" that SNAP_READ relies on. The worker takes it, never
 *    bt_ctl_mutex; a release takes it per region of 32768 blocks.
 */
#ifndef BLKTRACK_SNAPSHOT_H
#define BLKTRACK_SNAPSHOT_H

#include <linux/types.h>
#include <linux/blktrack.h>

struct bt_volume;
struct bt_snap;
struct bt_store_file;

int bt_snap_init(void);		/* module load */
void bt_snap_exit(void);	/* module unload, after every snapshot ended */
bool bt_snap_supported(void);

int bt_snap_hook(void);
struct bt_store_file *bt_store_file_open(int fd, struct bt_volume **vols, u32 n);
void bt_store_file_put(struct bt_store_file *sf);
struct bt_snap *bt_snap_create(struct bt_volume *vol, u64 store_limit, u32 flags,
			       struct bt_store_file *store);
void bt_snap_arm(void);
int bt_snap_fill(struct bt_snap *snap, struct bt_volume *vol);
void bt_snap_activate(struct bt_snap *snap);
void bt_snap_end(struct bt_volume *vol);
void bt_snap_unhook(void);	/* no volume left */

int bt_snap_read(struct bt_snap *snap, const struct blktrack_snap_read *rd);
void bt_snap_status(struct bt_snap *snap, struct blktrack_snap_status *st);
u32 bt_snap_flags(struct bt_snap *snap);	/* BLKTRACK_STATUS_SNAP* */

#endif /* BLKTRACK_SNAPSHOT_H */
