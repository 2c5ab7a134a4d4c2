// SPDX-License-Identifier: GPL-2.0
/*
 * volume.c - tracked volumes and the control operations on them.
 *
 * Every operation runs under bt_ctl_mutex (control calls are rare), checks
 * everything that can fail before it changes anything, and leaves the
 * volume as it was when it returns an error.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>

#include "volume.h"

/* Extents built in the kernel per map_lock hold, then copied out. */
#define BT_READ_BATCH	1024U

DEFINE_MUTEX(bt_ctl_mutex);
static LIST_HEAD(bt_volumes);
static unsigned int bt_nr_volumes;

/* ==== Helpers =========================================================== */

static struct bt_volume *bt_find(dev_t dev)
{
	struct bt_volume *vol;

	lockdep_assert_held(&bt_ctl_mutex);
	list_for_each_entry(vol, &bt_volumes, node)
		if (vol->dev == dev)
			return vol;
	return NULL;
}

static u64 bt_dev_bytes(const struct bt_volume *vol)
{
	return (u64)vol->nr_sects << SECTOR_SHIFT;
}

static u64 bt_blocks_of(const struct bt_volume *vol, sector_t sects)
{
	return DIV_ROUND_UP_ULL((u64)sects << SECTOR_SHIFT, 1ULL << vol->block_shift);
}

static u64 bt_nr_blocks(const struct bt_volume *vol)
{
	return bt_blocks_of(vol, vol->nr_sects);
}

/*
 * Notice a removed disk or new media; the reason stays once seen. A size
 * change is no reason: the next CHECKPOINT takes the new size
 * (bt_resize_pending()).
 *
 * The disk's sequence number moves when its content may have changed
 * without a write: a media change, LOOP_CHANGE_FD, a loop device given
 * another file. The maps then describe other content: the history is lost,
 * and a new one can start at the next checkpoint (a resync reads all), so
 * its COMMIT clears the reason unless the media changed again since.
 */
static void bt_lose_history(struct bt_volume *vol, u32 reason)
{
	if (vol->reason == BLKTRACK_REASON_NONE || vol->history_lost) {
		vol->reason = reason;
		vol->history_lost = true;
	}
	vol->losses++;
}

static void bt_check_state(struct bt_volume *vol)
{
	u64 seq = READ_ONCE(vol->disk->diskseq);

	if (vol->reason == BLKTRACK_REASON_NONE && !disk_live(vol->disk))
		vol->reason = BLKTRACK_REASON_DEVICE_REMOVED;
	if (seq != vol->diskseq) {
		pr_info("%u:%u: the disk's media changed (sequence %llu -> %llu)\n",
			MAJOR(vol->dev), MINOR(vol->dev), vol->diskseq, seq);
		vol->diskseq = seq;
		bt_lose_history(vol, BLKTRACK_REASON_MEDIA_CHANGED);
	}
	/* A page write through ->rw_page found no kretprobe instance. */
	if (bt_rw_page_missed() && bt_disk_has_rw_page(vol->disk) && !vol->rw_page_missed) {
		pr_warn("%u:%u: a page write went untracked (kretprobe missed)\n",
			MAJOR(vol->dev), MINOR(vol->dev));
		vol->rw_page_missed = true;
		bt_lose_history(vol, BLKTRACK_REASON_UNTRACKED_WRITE);
	}
}

static bool bt_stamp_matches(const struct bt_volume *vol,
			     const struct blktrack_stamp *s)
{
	return !memcmp(s->generation, vol->generation, sizeof(vol->generation)) &&
	       s->epoch == vol->epoch;
}

/* ==== The probe table =================================================== */

static void bt_table_free(struct bt_table *tbl)
{
	if (!tbl)
		return;
	kfree(tbl);
	atomic_long_dec(&blktrack_allocations);
}

/*
 * Build a probe table naming every volume but @skip, each with its staged
 * map when a checkpoint is under way, else its active map. NULL when no
 * volume is left. Sleeps.
 */
static struct bt_table *bt_table_build(const struct bt_volume *skip)
{
	struct bt_volume *vol;
	struct bt_table *tbl;
	unsigned int n = bt_nr_volumes - (skip ? 1 : 0);
	unsigned int i = 0;

	lockdep_assert_held(&bt_ctl_mutex);
	if (!n)
		return NULL;
	tbl = kzalloc(struct_size(tbl, t, n), GFP_KERNEL);
	if (!tbl)
		return ERR_PTR(-ENOMEM);
	atomic_long_inc(&blktrack_allocations);

	list_for_each_entry(vol, &bt_volumes, node) {
		struct bt_track *t = &tbl->t[i];

		if (vol == skip)
			continue;
		t->disk = vol->disk;
		t->devt = disk_devt(vol->disk);
		t->start_sect = vol->start_sect;
		t->nr_sects = vol->staged ? vol->staged_sects : vol->nr_sects;
		t->sect_shift = vol->block_shift - SECTOR_SHIFT;
		t->whole_disk = vol->whole_disk;
		t->map = vol->staged ? vol->staged : vol->active;
		t->vol = vol;
		i++;
	}
	tbl->nr = i;
	return tbl;
}

/* Hand @tbl to the probe; returns once no probe can use the old table. */
static void bt_table_publish(struct bt_table *tbl)
{
	struct bt_table *old;

	old = rcu_dereference_protected(bt_table, lockdep_is_held(&bt_ctl_mutex));
	rcu_assign_pointer(bt_table, tbl);
	/*
	 * Probes that started before the assignment may still read the old
	 * table and mark the maps it names; wait for every one of them. After
	 * this, the maps and volumes only the old table named are quiescent.
	 */
	synchronize_rcu();
	bt_table_free(old);
	if (!tbl) {
		/* No volume left to track, so none with a snapshot either. */
		bt_tracker_unhook();
		bt_snap_unhook();
	}
}

/* ==== Volume life =========================================================== */

/* Keep the densest regions' memory under the limit (map.h: btmap_coarsen). */
static void bt_coarsen_work(struct work_struct *work)
{
	struct bt_volume *vol = container_of(work, struct bt_volume, coarsen_work);
	/*
	 * A checkpoint takes map_lock while a snapshot holds writes: what we
	 * allocate under it must not wait for writeback (memalloc_noio).
	 */
	unsigned int noio = memalloc_noio_save();

	mutex_lock(&vol->map_lock);
	btmap_coarsen(vol->active, vol->mem_limit / 4 * 3);
	mutex_unlock(&vol->map_lock);
	memalloc_noio_restore(noio);
}

/* Free a volume no probe table names any more (after a grace period). */
static void bt_volume_free(struct bt_volume *vol)
{
	lockdep_assert_held(&bt_ctl_mutex);
	cancel_work_sync(&vol->coarsen_work);
	bt_kept_forget(vol);
	bt_snap_end(vol);
	if (vol->pending)
		btmap_destroy(vol->pending);
	btmap_destroy(vol->active);
	bt_bdev_close(&vol->bdev);
	kfree(vol);
	atomic_long_dec(&blktrack_allocations);
}

int bt_attach(const struct blktrack_attach *a, dev_t dev)
{
	u32 bs = a->block_size ? a->block_size : BLKTRACK_BLOCK_SIZE_DEFAULT;
	struct block_device *bdev;
	struct bt_volume *vol;
	struct bt_table *tbl;
	int ret;

	vol = kzalloc(sizeof(*vol), GFP_KERNEL);
	if (!vol)
		return -ENOMEM;
	atomic_long_inc(&blktrack_allocations);
	vol->dev = dev;
	vol->block_shift = ilog2(bs);
	vol->mem_limit = a->mem_limit ? a->mem_limit :
			 (u64)bt_mem_limit_mib << 20;
	if (!vol->mem_limit)
		vol->mem_limit = U64_MAX;	/* module parameter 0: no limit */
	mutex_init(&vol->map_lock);
	raw_spin_lock_init(&vol->alias_lock);
	INIT_WORK(&vol->coarsen_work, bt_coarsen_work);

	mutex_lock(&bt_ctl_mutex);
	if (bt_find(dev)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	ret = bt_bdev_open(dev, &vol->bdev);
	if (ret) {
		/* No disk or partition has this number. */
		if (ret == -ENXIO)
			ret = -ENODEV;
		goto out_unlock;
	}
	bdev = vol->bdev.bdev;
	vol->disk = bdev->bd_disk;
	vol->diskseq = READ_ONCE(vol->disk->diskseq);
	vol->start_sect = get_start_sect(bdev);
	vol->nr_sects = bdev_nr_sectors(bdev);
	vol->whole_disk = !bdev_is_partition(bdev);
	if (!vol->nr_sects) {
		ret = -ENODEV;		/* no media: nothing to track */
		goto out_close;
	}
	/*
	 * A filesystem mounted with -o dax (fs_dax_get_by_bdev() wants a DAX
	 * queue) stores to the disk's memory with the CPU: no bio, no probe.
	 * A sector-mode (btt) namespace of the same pmem has no DAX.
	 */
	if (blk_queue_dax(bdev_get_queue(bdev))) {
		pr_warn("%u:%u: %s is DAX-capable: writes through a dax mount bypass the block layer; not tracked (use a sector-mode namespace)\n",
			MAJOR(dev), MINOR(dev), vol->disk->disk_name);
		ret = -EOPNOTSUPP;
		goto out_close;
	}

	vol->ends_unseen = bt_disk_ends_unseen(vol->disk);
	if (vol->ends_unseen)
		pr_info("%u:%u: %s ends writes on the disk below, out of sight: completions partial (only a checkpoint with writers quiesced is exact)\n",
			MAJOR(dev), MINOR(dev), vol->disk->disk_name);

	vol->active = btmap_create(bt_nr_blocks(vol),
				   vol->mem_limit == U64_MAX ? 0 : vol->mem_limit);
	if (!vol->active) {
		ret = -ENOMEM;
		goto out_close;
	}
	generate_random_uuid(vol->generation);

	list_add_tail(&vol->node, &bt_volumes);
	bt_nr_volumes++;
	tbl = bt_table_build(NULL);
	if (IS_ERR(tbl)) {
		ret = PTR_ERR(tbl);
		goto out_unlist;
	}
	/* Probes see the old table until the new one is published. */
	ret = bt_tracker_hook_disk(vol->disk);
	if (!ret)
		ret = bt_tracker_hook();
	if (ret) {
		bt_table_free(tbl);
		goto out_unlist;
	}
	bt_table_publish(tbl);
	mutex_unlock(&bt_ctl_mutex);

	pr_info("tracking %u:%u: %llu bytes, %u-byte blocks\n", MAJOR(dev),
		MINOR(dev), bt_dev_bytes(vol), bs);
	return 0;

out_unlist:
	list_del(&vol->node);
	bt_nr_volumes--;
	btmap_destroy(vol->active);
out_close:
	bt_bdev_close(&vol->bdev);
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	kfree(vol);
	atomic_long_dec(&blktrack_allocations);
	return ret;
}

int bt_detach(dev_t dev)
{
	struct bt_volume *vol;
	struct bt_table *tbl;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find(dev);
	if (!vol) {
		ret = -ENOENT;
		goto out_unlock;
	}
	tbl = bt_table_build(vol);
	if (IS_ERR(tbl)) {
		ret = PTR_ERR(tbl);
		goto out_unlock;
	}
	list_del(&vol->node);
	bt_nr_volumes--;
	/* Once published, no probe can mark vol's maps or queue its work. */
	bt_table_publish(tbl);
	bt_volume_free(vol);
	pr_info("stopped tracking %u:%u\n", MAJOR(dev), MINOR(dev));
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}

/* Module exit: no ioctl can run any more. */
void bt_detach_all(void)
{
	struct bt_volume *vol, *tmp;

	mutex_lock(&bt_ctl_mutex);
	bt_table_publish(NULL);
	list_for_each_entry_safe(vol, tmp, &bt_volumes, node) {
		list_del(&vol->node);
		bt_nr_volumes--;
		bt_volume_free(vol);
	}
	mutex_unlock(&bt_ctl_mutex);
}

/* ==== Queries =========================================================== */

int bt_list(struct blktrack_list *l)
{
	struct blktrack_devno *devs = NULL;
	struct bt_volume *vol;
	u32 n, i = 0;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	n = min(l->capacity, bt_nr_volumes);
	if (n) {
		devs = kcalloc(n, sizeof(*devs), GFP_KERNEL);
		if (!devs) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		list_for_each_entry(vol, &bt_volumes, node) {
			if (i == n)
				break;
			devs[i].major = MAJOR(vol->dev);
			devs[i].minor = MINOR(vol->dev);
			i++;
		}
		if (copy_to_user(u64_to_user_ptr(l->devs_ptr), devs,
				 n * sizeof(*devs)))
			ret = -EFAULT;
	}
	l->count = bt_nr_volumes;
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	kfree(devs);
	return ret;
}

int bt_status(struct blktrack_status *st, dev_t dev)
{
	struct bt_volume *vol;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find(dev);
	if (!vol) {
		ret = -ENOENT;
		goto out_unlock;
	}
	bt_check_state(vol);
	st->flags = (vol->pending ? BLKTRACK_STATUS_PENDING : 0) | bt_snap_flags(vol->snap) |
		    (vol->ends_unseen || READ_ONCE(vol->aliases_full) ||
		     READ_ONCE(vol->kept_full) ?
		     BLKTRACK_STATUS_UNCOVERED : 0);
	st->state = vol->reason == BLKTRACK_REASON_NONE ?
		    BLKTRACK_STATE_TRACKING : BLKTRACK_STATE_INVALID;
	st->reason = vol->reason;
	st->block_size = 1U << vol->block_shift;
	st->dev_size = bt_dev_bytes(vol);
	memcpy(st->stamp.generation, vol->generation, sizeof(vol->generation));
	/*
	 * Checkpoints committed so far: while one is pending this is also
	 * the stamp CHECKPOINT returned, which COMMIT and ABORT expect.
	 */
	st->stamp.epoch = vol->epoch;
	st->mem_limit = vol->mem_limit == U64_MAX ? 0 : vol->mem_limit;
	st->start_sect = vol->start_sect;
	st->diskseq = vol->diskseq;

	mutex_lock(&vol->map_lock);
	st->active_dirty = btmap_dirty(vol->active);
	st->map_bytes = btmap_bytes(vol->active);
	st->pending_dirty = 0;
	if (vol->pending) {
		st->pending_dirty = btmap_dirty(vol->pending);
		st->map_bytes += btmap_bytes(vol->pending);
	}
	mutex_unlock(&vol->map_lock);
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}

/* ==== Checkpoint ========================================================= */

/* Mark [@first, +@n) from process context (btmap_mark() wants a probe's). */
static bool bt_mark_blocks(struct btmap *map, u64 first, u64 n)
{
	bool want;

	preempt_disable();
	want = btmap_mark(map, first, n);
	preempt_enable();
	return want;
}

/*
 * The volume changed size since the last checkpoint: its pending map is
 * rebuilt at the new size, so that the backup of this checkpoint covers the
 * volume as it is now. A grown tail is dirty as a whole: writes to it before
 * this instant fell outside the old map. A shrink drops what lies past the
 * new end. The old pending map is quiescent (the table was published).
 */
static void bt_resize_pending(struct bt_volume *vol)
{
	u64 old_bytes = bt_dev_bytes(vol), pos = 0, start, len;
	u64 new_blocks = bt_blocks_of(vol, vol->staged_sects);
	u64 tail = old_bytes >> vol->block_shift;	/* a partial block too */

	/* Part of the checkpoint's swap of the maps. */
	lockdep_assert_held(&bt_ctl_mutex);
	lockdep_assert_held(&vol->map_lock);
	while (btmap_next_extent(vol->pending, &pos, &start, &len))
		bt_mark_blocks(vol->resized, start, len);
	if (tail < new_blocks)
		bt_mark_blocks(vol->resized, tail, new_blocks - tail);
	btmap_destroy(vol->pending);
	vol->pending = vol->resized;
	vol->resized = NULL;
	pr_info("%u:%u: size %llu -> %llu bytes\n", MAJOR(vol->dev), MINOR(vol->dev),
		old_bytes, (u64)vol->staged_sects << SECTOR_SHIFT);
	vol->nr_sects = vol->staged_sects;
}

/* Put @n volumes' pending maps back into their active maps. */
static void bt_unpend(struct bt_volume **vols, u32 n)
{
	u32 i;

	lockdep_assert_held(&bt_ctl_mutex);
	for (i = 0; i < n; i++) {
		struct bt_volume *vol = vols[i];

		bt_snap_end(vol);
		mutex_lock(&vol->map_lock);
		btmap_merge(vol->active, vol->pending);
		mutex_unlock(&vol->map_lock);
		btmap_destroy(vol->pending);
		vol->pending = NULL;
	}
}

/*
 * @cv: the user's array, already copied in and checked (no duplicates);
 * @devs: its device numbers; @ucv: where it came from, for the results;
 * @snap: NULL, or CHECKPOINT_SNAP's checked arguments (its store limit and
 * flags): then a snapshot of every volume starts at the checkpoint's instant.
 */
int bt_checkpoint(struct blktrack_checkpoint_vol *cv, const dev_t *devs, u32 n,
		  struct blktrack_checkpoint_vol __user *ucv,
		  const struct blktrack_checkpoint_snap *snap)
{
	size_t bytes = n * sizeof(*cv);
	struct bt_volume **vols;
	struct bt_table *tbl;
	unsigned int noio;
	u32 i;
	int ret = 0;

	vols = kcalloc(n, sizeof(*vols), GFP_KERNEL);
	if (!vols)
		return -ENOMEM;

	mutex_lock(&bt_ctl_mutex);
	/* Check every volume before touching any: all or nothing. */
	for (i = 0; i < n; i++) {
		vols[i] = bt_find(devs[i]);
		if (!vols[i]) {
			ret = -ENOENT;
			goto out_unlock;
		}
	}
	for (i = 0; i < n; i++) {
		if (vols[i]->pending) {
			ret = -EBUSY;
			goto out_unlock;
		}
	}
	/* STATUS after the checkpoint says whether the pending map is exact. */
	for (i = 0; i < n; i++) {
		bt_check_state(vols[i]);
		vols[i]->ckpt_losses = vols[i]->losses;
	}
	if (snap) {
		struct bt_store_file *store = NULL;

		/*
		 * A zone reset or append cannot be held for a copy of what it
		 * changes: no snapshot of a zoned volume (the requester holds
		 * the freeze instead).
		 */
		for (i = 0; i < n; i++) {
			if (bdev_is_zoned(vols[i]->bdev.bdev)) {
				ret = -EOPNOTSUPP;
				goto out_unlock;
			}
		}
		/* Refused interception changes nothing: tracking goes on. */
		ret = bt_snap_hook();
		if (ret)
			goto out_unlock;
		if (snap->flags & BLKTRACK_SNAP_STORE_FD) {
			store = bt_store_file_open(snap->store_fd, vols, n);
			if (IS_ERR(store)) {
				ret = PTR_ERR(store);
				goto out_unlock;
			}
		}
		for (i = 0; i < n && !ret; i++) {
			vols[i]->snap = bt_snap_create(vols[i], snap->store_limit, snap->flags,
						       store);
			if (!vols[i]->snap)
				ret = -ENOMEM;
		}
		bt_store_file_put(store);
		if (ret)
			goto out_unstage;
	}
	/* Every allocation (may sleep) before the instant. */
	for (i = 0; i < n; i++) {
		struct bt_volume *vol = vols[i];
		u64 limit = vol->mem_limit == U64_MAX ? 0 : vol->mem_limit;
		sector_t now = bdev_nr_sectors(vol->bdev.bdev);

		/* The volume takes its new size here (0: removed, keep the old). */
		vol->staged_sects = now ? now : vol->nr_sects;
		vol->staged = btmap_create(bt_blocks_of(vol, vol->staged_sects), limit);
		if (vol->staged && vol->staged_sects != vol->nr_sects)
			vol->resized = btmap_create(bt_blocks_of(vol, vol->staged_sects), limit);
		if (!vol->staged || (vol->staged_sects != vol->nr_sects && !vol->resized)) {
			ret = -ENOMEM;
			goto out_unstage;
		}
	}
	tbl = bt_table_build(NULL);
	if (IS_ERR(tbl)) {
		ret = PTR_ERR(tbl);
		goto out_unstage;
	}
	/* Prove the results can be written back: rewrite what we read. */
	if (copy_to_user(ucv, cv, bytes)) {
		bt_table_free(tbl);
		ret = -EFAULT;
		goto out_unstage;
	}

	/*
	 * Snapshots: from here every write to the volumes' disks is held, so
	 * none reaches a block after the instant without its copy. Until they
	 * are activated, an allocation must not start writeback that would
	 * wait for those writes (memalloc_noio: GFP_NOIO throughout).
	 */
	noio = memalloc_noio_save();
	if (snap)
		bt_snap_arm();
	/*
	 * The instant: one table switches every listed volume to its fresh
	 * map at once; publishing waits until no probe can still mark the
	 * maps that now become pending.
	 */
	bt_table_publish(tbl);
	for (i = 0; i < n; i++) {
		struct bt_volume *vol = vols[i];

		mutex_lock(&vol->map_lock);
		vol->pending = vol->active;
		vol->active = vol->staged;
		vol->staged = NULL;
		vol->checkpointed = true;
		if (vol->resized)
			bt_resize_pending(vol);
		mutex_unlock(&vol->map_lock);
	}
	if (snap) {
		/* The pending maps are quiescent: protect their blocks. */
		for (i = 0; i < n && !ret; i++)
			ret = bt_snap_fill(vols[i]->snap, vols[i]);
		if (ret) {
			bt_unpend(vols, n);	/* ends the snapshots too */
			memalloc_noio_restore(noio);
			goto out_unlock;
		}
		for (i = 0; i < n; i++)
			bt_snap_activate(vols[i]->snap);
	}
	memalloc_noio_restore(noio);

	/*
	 * Writes marked in the pending maps may still be in flight: no wait
	 * for them. The completion probe (tracker.c) marks each again, in the
	 * active map it finds when it completes, so a block the backup reads
	 * before its write lands is in the next backup too. No write waits
	 * for a checkpoint.
	 */
	for (i = 0; i < n; i++) {
		struct bt_volume *vol = vols[i];

		memcpy(cv[i].stamp.generation, vol->generation,
		       sizeof(vol->generation));
		cv[i].stamp.epoch = vol->epoch;
		cv[i].dirty = btmap_dirty(vol->pending);
	}
	if (copy_to_user(ucv, cv, bytes)) {
		/* The caller cannot learn the stamps: take it all back. */
		bt_unpend(vols, n);
		ret = -EFAULT;
	}
	goto out_unlock;

out_unstage:
	for (i = 0; i < n; i++) {
		bt_snap_end(vols[i]);
		if (vols[i]->staged) {
			btmap_destroy(vols[i]->staged);
			vols[i]->staged = NULL;
		}
		if (vols[i]->resized) {
			btmap_destroy(vols[i]->resized);
			vols[i]->resized = NULL;
		}
	}
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	kfree(vols);
	return ret;
}

/* ==== Reading a map ====================================================== */

int bt_read_extents(struct blktrack_read_extents *rd, dev_t dev)
{
	struct blktrack_extent __user *uext = u64_to_user_ptr(rd->extents_ptr);
	bool active = rd->flags & BLKTRACK_READ_ACTIVE;
	struct blktrack_extent *buf = NULL;
	struct bt_volume *vol;
	u64 size, pos, start, len;
	unsigned int shift;
	bool done;
	u32 n = 0;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find(dev);
	if (!vol) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (!active) {
		if (!vol->pending) {
			ret = -ENODATA;
			goto out_unlock;
		}
		if (!bt_stamp_matches(vol, &rd->stamp)) {
			ret = -ESTALE;
			goto out_unlock;
		}
	}
	size = bt_dev_bytes(vol);
	shift = vol->block_shift;
	if (rd->cursor > size ||
	    (rd->cursor != size && rd->cursor & ((1ULL << shift) - 1))) {
		ret = -EINVAL;
		goto out_unlock;
	}
	done = rd->cursor == size;
	pos = rd->cursor >> shift;
	if (!done) {
		buf = kvmalloc_array(min(rd->capacity, BT_READ_BATCH),
				     sizeof(*buf), GFP_KERNEL);
		if (!buf) {
			ret = -ENOMEM;
			goto out_unlock;
		}
	}

	while (!done && n < rd->capacity) {
		u32 batch = min(rd->capacity - n, BT_READ_BATCH);
		struct btmap *map;
		u32 got = 0;

		mutex_lock(&vol->map_lock);
		map = active ? vol->active : vol->pending;
		while (got < batch) {
			if (!btmap_next_extent(map, &pos, &start, &len)) {
				done = true;
				break;
			}
			buf[got].offset = start << shift;
			buf[got].length = min((start + len) << shift, size) -
					  buf[got].offset;
			got++;
		}
		if (!done && n + got == rd->capacity) {
			u64 peek = pos;

			/* Full array: say "done" now rather than on an empty call. */
			done = !btmap_next_extent(map, &peek, &start, &len);
		}
		mutex_unlock(&vol->map_lock);

		/* Only bt_ctl_mutex is held here: faulting is fine. */
		if (copy_to_user(uext + n, buf, got * sizeof(*buf))) {
			ret = -EFAULT;
			goto out_unlock;
		}
		n += got;
	}
	rd->count = n;
	rd->cursor = done ? size : min(pos << shift, size);
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	kvfree(buf);
	return ret;
}

/* ==== Ending a checkpoint ================================================ */

static struct bt_volume *bt_find_pending(const struct blktrack_stamp_arg *a,
					 dev_t dev, int *ret)
{
	struct bt_volume *vol = bt_find(dev);

	if (!vol)
		*ret = -ENOENT;
	else if (!vol->pending)
		*ret = -ENODATA;
	else if (!bt_stamp_matches(vol, &a->stamp))
		*ret = -ESTALE;
	else
		return vol;
	return NULL;
}

int bt_commit(const struct blktrack_stamp_arg *a, dev_t dev)
{
	struct bt_volume *vol;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find_pending(a, dev, &ret);
	if (vol) {
		bt_snap_end(vol);
		/* Quiescent since the checkpoint; only we use it, under the mutex. */
		btmap_destroy(vol->pending);
		vol->pending = NULL;
		vol->epoch++;
		/*
		 * A new history starts at this generation: stamps guard the
		 * rest. Not if the media changed after the checkpoint: what
		 * the backup read is not what the disk holds now.
		 */
		bt_check_state(vol);
		if (vol->history_lost && vol->losses == vol->ckpt_losses) {
			vol->history_lost = false;
			vol->reason = BLKTRACK_REASON_NONE;
		}
	}
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}

int bt_abort(const struct blktrack_stamp_arg *a, dev_t dev)
{
	struct bt_volume *vol;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find_pending(a, dev, &ret);
	if (vol) {
		bt_unpend(&vol, 1);
		/*
		 * The aborted stamp never comes back: whoever still holds it
		 * gets -ESTALE, even when the next checkpoint has the same
		 * generation and commit count. The low 32 bits (the COMMITs)
		 * stay, so the chain of committed backups goes on.
		 */
		vol->epoch += BLKTRACK_EPOCH_ABORT;
	}
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}

/* ==== Snapshots ========================================================= */

/* As bt_find_pending(), for SNAP_READ and SNAP_STATUS: @dev with a snapshot. */
static struct bt_volume *bt_find_snap(dev_t dev, int *ret)
{
	struct bt_volume *vol = bt_find(dev);

	if (!vol)
		*ret = -ENOENT;
	else if (!vol->snap)
		*ret = -ENODATA;
	else
		return vol;
	return NULL;
}

int bt_snap_read_dev(const struct blktrack_snap_read *rd, dev_t dev)
{
	struct bt_volume *vol;
	int ret;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find_snap(dev, &ret);
	if (vol)
		ret = bt_stamp_matches(vol, &rd->stamp) ?
		      bt_snap_read(vol->snap, rd) : -ESTALE;
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}

int bt_snap_status_dev(struct blktrack_snap_status *st, dev_t dev)
{
	struct bt_volume *vol;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find_snap(dev, &ret);
	if (vol)
		bt_snap_status(vol->snap, st);
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}

/* ==== Restore (a saved history) ========================================== */

/* The extent covers whole blocks inside the volume (the last may be clipped). */
static bool bt_extent_ok(const struct bt_volume *vol, const struct blktrack_extent *e)
{
	u64 size = bt_dev_bytes(vol), mask = (1ULL << vol->block_shift) - 1;

	return e->length && e->offset < size && e->length <= size - e->offset &&
	       !(e->offset & mask) &&
	       (!(e->length & mask) || e->offset + e->length == size);
}

int bt_restore(const struct blktrack_restore *r, const struct blktrack_extent *ext,
	       dev_t dev)
{
	struct bt_volume *vol;
	bool want = false;
	u32 i;
	int ret = 0;

	mutex_lock(&bt_ctl_mutex);
	vol = bt_find(dev);
	if (!vol) {
		ret = -ENOENT;
		goto out_unlock;
	}
	/* Once checkpointed, the volume's own history has started. */
	if (vol->pending || vol->checkpointed) {
		ret = -EBUSY;
		goto out_unlock;
	}
	if (r->flags & BLKTRACK_RESTORE_INVALID) {
		vol->reason = r->reason;
		vol->history_lost = true;
		pr_info("%u:%u: saved history not trusted (reason %u)\n", MAJOR(dev),
			MINOR(dev), r->reason);
		goto out_unlock;
	}
	if (r->block_size != 1U << vol->block_shift) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (r->dev_size != bt_dev_bytes(vol)) {
		ret = -ERANGE;
		goto out_unlock;
	}
	for (i = 0; i < r->count; i++) {
		if (!bt_extent_ok(vol, &ext[i])) {
			ret = -ERANGE;
			goto out_unlock;
		}
	}
	for (i = 0; i < r->count; i++) {
		u64 first = ext[i].offset >> vol->block_shift;
		u64 n = DIV_ROUND_UP_ULL(ext[i].length, 1ULL << vol->block_shift);

		want |= bt_mark_blocks(vol->active, first, n);
		cond_resched();
	}
	if (want)
		queue_work(system_unbound_wq, &vol->coarsen_work);
	memcpy(vol->generation, r->stamp.generation, sizeof(vol->generation));
	vol->epoch = r->stamp.epoch;
out_unlock:
	mutex_unlock(&bt_ctl_mutex);
	return ret;
}
