// SPDX-License-Identifier: GPL-2.0
/*
 * tracker.c - the write hooks: probes on three block tracepoints.
 *
 * block_bio_queue fires in submit_bio_noacct() for each bio, in the task
 * that submits it, after a partition's sectors were remapped to the whole
 * disk and before the bio reaches the driver: a write is in the map before
 * its data can be on the media. Writes through a partition, the whole disk
 * or a device stacked above (dm sends its own bio down) all pass here.
 *
 * block_rq_complete fires when a blk-mq request (or part of it) completes,
 * before the bios' owners hear of it. Marking there again closes the
 * checkpoint race: a write queued before CHECKPOINT is in the pending map,
 * but its data may land after the backup read that block; its completion
 * then marks the new active map, so the next backup takes it. A rewrite of
 * a block already marked costs a read of its word, no atomic.
 *
 * block_bio_complete does the same for bio-based disks (dm, brd), which
 * have no request: bio_endio() traces the bios block_bio_queue traced,
 * except those blk-mq ended in a request (it clears BIO_TRACE_COMPLETION).
 *
 * block_bio_remap fires when a driver moves a bio to a disk below. A clone
 * (dm) is queued there as a bio of its own; but nvme multipath and md
 * (linear, raid0) move the bio block_bio_queue traced on the tracked disk in
 * place, and it completes on the disk below, never on the tracked one. The
 * remap probe records that disk as an alias of the volume and keeps the
 * bio's range ("Ranges kept by bio"); its end on the alias marks that range.
 *
 * The tracepoint symbols are not exported; the tracepoints are found by
 * name with for_each_kernel_tracepoint().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/rcupdate.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/workqueue.h>

#include "volume.h"

struct bt_table __rcu *bt_table;

/*
 * The blocks [*@first, *@last] of the volume @t that disk sectors [@start,
 * @end) touch; false when they do not overlap it.
 */
static __always_inline bool bt_blocks(const struct bt_track *t, sector_t start,
				      sector_t end, u64 *first, u64 *last)
{
	sector_t vend = t->start_sect + t->nr_sects;

	/*
	 * A write past the end means the volume grew: the next CHECKPOINT
	 * takes the new size and marks the whole new tail (volume.c).
	 */
	if (start < t->start_sect)
		start = t->start_sect;
	if (end > vend)
		end = vend;
	if (start >= end)
		return false;

	/* Round the start down and the end up to whole blocks. */
	*first = (start - t->start_sect) >> t->sect_shift;
	*last = (end - 1 - t->start_sect) >> t->sect_shift;
	return true;
}

/*
 * Mark disk sectors [@start, @end) on the volume @t, if they overlap it.
 * @done: a completion, whose blocks were most likely marked at submission.
 */
static __always_inline void bt_mark(const struct bt_track *t, sector_t start, sector_t end,
				    bool done)
{
	struct bt_volume *vol = t->vol;
	u64 first, last;
	bool want;

	if (!bt_blocks(t, start, end, &first, &last))
		return;
	if (first == last)	/* most writes: one block */
		want = btmap_mark_one(t->map, first, done);
	else if (done && btmap_hinted_in_last_run(t->map, first, last - first + 1))
		return;		/* a piece of a write marked whole at submission */
	else
		want = btmap_mark(t->map, first, last - first + 1);
	if (want && !work_pending(&vol->coarsen_work))
		queue_work(system_unbound_wq, &vol->coarsen_work);
}

/* ==== Aliases: disks that complete a volume's bios moved in place ======== */

/* Does @vol have @disk as an alias? (Any offset: completions check them all.) */
static __always_inline bool bt_has_alias(const struct bt_volume *vol, struct gendisk *disk)
{
	unsigned int i, n = smp_load_acquire(&vol->nr_aliases);

	for (i = 0; i < n; i++)
		if (vol->aliases[i].disk == disk)
			return true;
	return false;
}

/*
 * Mark on @t's volume the completion of sectors [@start, +@nr) of @disk,
 * through each alias @disk is of it: an offset that does not apply (the
 * same disk below at other offsets) only marks more, never less.
 */
static noinline void bt_mark_aliases(const struct bt_track *t, struct gendisk *disk,
				     sector_t start, sector_t nr)
{
	const struct bt_volume *vol = t->vol;
	unsigned int i, n = smp_load_acquire(&vol->nr_aliases);

	for (i = 0; i < n; i++) {
		s64 s = (s64)start - vol->aliases[i].delta;

		if (vol->aliases[i].disk != disk || s + (s64)nr <= 0)
			continue;
		if (s < 0)
			bt_mark(t, 0, s + nr, true);
		else
			bt_mark(t, s, s + nr, true);
	}
}

/* What bt_alias_add() found room for. */
enum bt_alias_known {
	BT_ALIAS_OFFSET,	/* @disk at this offset: its completions map back */
	BT_ALIAS_DISK,		/* @disk, but no room for this offset */
	BT_ALIAS_NONE,		/* no room for @disk: its completions go unseen */
};

/* Record @disk, at sector offset @delta, as an alias of @vol. */
static enum bt_alias_known bt_alias_add(struct bt_volume *vol, struct gendisk *disk, s64 delta)
{
	enum bt_alias_known known = BT_ALIAS_NONE;
	unsigned int i, n = smp_load_acquire(&vol->nr_aliases);
	unsigned long flags;

	for (i = 0; i < n; i++)
		if (vol->aliases[i].disk == disk && vol->aliases[i].delta == delta)
			return BT_ALIAS_OFFSET;	/* known: every bio but the first */
	raw_spin_lock_irqsave(&vol->alias_lock, flags);
	n = vol->nr_aliases;
	for (i = 0; i < n; i++) {
		if (vol->aliases[i].disk != disk)
			continue;
		known = BT_ALIAS_DISK;
		if (vol->aliases[i].delta == delta) {
			known = BT_ALIAS_OFFSET;
			goto out_unlock;
		}
	}
	if (n < BT_MAX_ALIASES) {
		vol->aliases[n].disk = disk;
		vol->aliases[n].delta = delta;
		smp_store_release(&vol->nr_aliases, n + 1);
		known = BT_ALIAS_OFFSET;
	}
out_unlock:
	raw_spin_unlock_irqrestore(&vol->alias_lock, flags);
	return known;
}

/* ==== Ranges kept by bio ================================================= */

/*
 * Two kinds of bio end with a range the completion probes cannot use:
 * - a discard, write-zeroes or secure erase that dm splits (a target
 *   boundary, a target's discard limit) ends with only its last part in
 *   bi_iter, and has no data vector to count back in (bt_bio_advanced());
 *   kept from its queue on a bio-based disk;
 * - a bio a driver moves in place to a disk below (md raid0 and linear,
 *   NVMe multipath) ends there, at that disk's sectors, which only an
 *   offset per stripe maps back; kept from its remap.
 * The range is the tracked disk's sectors the bio was queued with, per
 * volume and by bio; the bio's end marks it and frees the slot (a request
 * completed in parts marks at each and frees at the last). Without a slot,
 * a discard leaves the volume's completions partial (STATUS UNCOVERED) and
 * a moved bio falls back to its disk's offsets (the aliases above).
 */
static atomic_t bt_kept_total = ATOMIC_INIT(0);	/* slots in use, all volumes */

static bool bt_is_zap(enum req_op op)
{
	return op == REQ_OP_DISCARD || op == REQ_OP_WRITE_ZEROES || op == REQ_OP_SECURE_ERASE;
}

/* Keep [@start, +@nr) for @bio; false when every slot is taken. */
static bool bt_keep(struct bt_volume *vol, struct bio *bio, sector_t start, sector_t nr)
{
	unsigned int i;

	for (i = 0; i < BT_MAX_KEPT; i++) {
		struct bt_kept *k = &vol->kept[i];

		if (READ_ONCE(k->bio) != bio)
			continue;
		/* Kept already (a discard at its queue, now moved): keep the whole. */
		if (start < k->start || start + nr > k->start + k->nr) {
			k->start = start;	/* a stale entry: replace it */
			k->nr = nr;
		}
		return true;
	}
	for (i = 0; i < BT_MAX_KEPT; i++) {
		struct bt_kept *k = &vol->kept[i];

		if (!READ_ONCE(k->bio) && !cmpxchg(&k->bio, NULL, bio)) {
			/* Read at the bio's end only, which comes after this. */
			k->start = start;
			k->nr = nr;
			atomic_inc(&bt_kept_total);
			return true;
		}
	}
	return false;
}

/* @bio, queued on bio-based @disk at disk sectors [@start, +@nr). */
static noinline void bt_keep_queued(struct gendisk *disk, struct bio *bio, sector_t start,
				    sector_t nr)
{
	const struct bt_table *tbl = rcu_dereference_sched(bt_table);
	unsigned int i;

	for (i = 0; tbl && i < tbl->nr; i++)
		if (tbl->t[i].disk == disk && !bt_keep(tbl->t[i].vol, bio, start, nr))
			WRITE_ONCE(tbl->t[i].vol->kept_full, true);
}

/*
 * @bio (all of it, or with @last only part) ended on @disk: mark the range
 * kept for it on each volume of @disk or with @disk as an alias.
 */
static noinline void bt_kept_done(struct gendisk *disk, struct bio *bio, bool last)
{
	const struct bt_table *tbl = rcu_dereference_sched(bt_table);
	unsigned int i, j;

	for (i = 0; tbl && i < tbl->nr; i++) {
		const struct bt_track *t = &tbl->t[i];

		if (t->disk != disk && !bt_has_alias(t->vol, disk))
			continue;
		for (j = 0; j < BT_MAX_KEPT; j++) {
			struct bt_kept *k = &t->vol->kept[j];

			if (READ_ONCE(k->bio) != bio)
				continue;
			bt_mark(t, k->start, k->start + k->nr, true);
			if (last) {
				smp_store_release(&k->bio, NULL);
				atomic_dec(&bt_kept_total);
			}
			break;
		}
	}
}

/*
 * @vol is going: its slots still in use (bios whose end was never seen
 * where we look, such as one moved in place twice) leave the count, so
 * that the completion probes' fast path comes back.
 */
void bt_kept_forget(struct bt_volume *vol)
{
	unsigned int i;

	for (i = 0; i < BT_MAX_KEPT; i++)
		if (vol->kept[i].bio)
			atomic_dec(&bt_kept_total);
}

/* The bios of @rq ended (@last: the whole request): their kept ranges. */
static noinline void bt_kept_rq_done(struct gendisk *disk, struct request *rq, bool last)
{
	struct bio *bio;

	__rq_for_each_bio(bio, rq)
		bt_kept_done(disk, bio, last);
}

/* ==== Marking ============================================================ */

/*
 * Mark disk sectors [@start, +@nr) of @disk on every volume they overlap;
 * for a completion (@done), also on the volumes @disk is an alias of.
 */
static __always_inline void bt_mark_disk(struct gendisk *disk, sector_t start, sector_t nr,
					 bool done)
{
	const struct bt_table *tbl;
	unsigned int i;

	/*
	 * Probes run with preemption (or interrupts) off: that is a read-side
	 * critical section for synchronize_rcu(), which bt_table_publish()
	 * waits for. No rcu_read_lock() needed, and on PREEMPT_RCU kernels it
	 * would cost two calls per bio.
	 */
	tbl = rcu_dereference_sched(bt_table);
	if (tbl) {
		for (i = 0; i < tbl->nr; i++) {
			if (tbl->t[i].disk == disk)
				bt_mark(&tbl->t[i], start, start + nr, done);
			else if (done && READ_ONCE(tbl->t[i].vol->alias_offsets) &&
				 bt_has_alias(tbl->t[i].vol, disk))
				bt_mark_aliases(&tbl->t[i], disk, start, nr);
		}
	}
}

/*
 * The submission's marks, out of line: bt_probe_bio_queue() calls them
 * last, so that it saves no register itself. One tracked volume is the
 * usual case: bt_mark_one_volume() then has no loop state to keep.
 */
static noinline void bt_mark_one_volume(const struct bt_track *t, sector_t start,
					sector_t end)
{
	bt_mark(t, start, end, false);
}

static noinline void bt_mark_disk_queued(struct gendisk *disk, sector_t start,
					sector_t nr)
{
	bt_mark_disk(disk, start, nr, false);
}

/* bt_mark_disk() for a completion, out of line: see bt_probe_rq_complete(). */
static noinline void bt_mark_disk_done(struct gendisk *disk, sector_t start, sector_t nr)
{
	bt_mark_disk(disk, start, nr, true);
}

/*
 * Is every block of disk sectors [@start, +@nr) of @disk, on every volume,
 * proven dirty by its hint (btmap_hinted(): the run its submission marked)?
 * Not for a disk that is a volume's alias. Calls nothing, so the completion
 * probe saves no register when it is so (nearly always).
 */
static __always_inline bool bt_disk_hinted(struct gendisk *disk, sector_t start,
					   sector_t nr)
{
	const struct bt_table *tbl = rcu_dereference_sched(bt_table);
	unsigned int i;

	if (!tbl)
		return true;
	for (i = 0; i < tbl->nr; i++) {
		const struct bt_track *t = &tbl->t[i];
		u64 first, last;

		if (t->disk != disk) {
			if (bt_has_alias(t->vol, disk))
				return false;
			continue;
		}
		if (!bt_blocks(t, start, start + nr, &first, &last))
			continue;
		/* One block, the usual case, costs what it did before runs had hints. */
		if (first == last ? !btmap_hinted(t->map, first, 1) :
				    !btmap_hinted(t->map, first, last - first + 1))
			return false;
	}
	return true;
}

/*
 * The disk sectors an op of @bdev at [*@start, +*@nr) may change: false for
 * ops that change none (reads, flushes, zone open/close, driver commands).
 * Zone operations carry no data yet change data: a reset or finish a whole
 * zone, a reset-all the whole disk. @queued: the op is being submitted; a
 * zone append then lands where the device picks in its zone (at completion
 * its sectors are known).
 */
static __always_inline bool bt_op_sectors(enum req_op op, struct block_device *bdev,
					  bool queued, sector_t *start, sector_t *nr)
{
	sector_t zone;

	switch (op) {
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		return *nr;
	case REQ_OP_ZONE_APPEND:
		if (!queued)
			return *nr;
		fallthrough;
	case REQ_OP_ZONE_RESET:
	case REQ_OP_ZONE_FINISH:
		zone = bdev_zone_sectors(bdev);
		if (!zone)
			return *nr;
		*start = round_down(*start, zone);	/* zone sizes are powers of 2 */
		*nr = zone;
		return true;
	case REQ_OP_ZONE_RESET_ALL:
		*start = 0;
		*nr = get_capacity(bdev->bd_disk);
		return *nr;
	default:
		return false;
	}
}

/* Mark disk sectors [@start, +@nr) of @disk at submission, as a last call. */
static __always_inline void bt_mark_queued(struct gendisk *disk, sector_t start,
					   sector_t nr)
{
	/* As in bt_mark_disk(): the probe's disabled preemption is the section. */
	const struct bt_table *tbl = rcu_dereference_sched(bt_table);

	if (!tbl)
		return;
	if (tbl->nr != 1) {
		/* It reads the table again: it marks the maps active then. */
		bt_mark_disk_queued(disk, start, nr);
		return;
	}
	if (tbl->t[0].disk == disk)
		bt_mark_one_volume(&tbl->t[0], start, start + nr);
}

/* Both probes run with preemption off: no sleeping, no lock. */
static void bt_probe_bio_queue(void *data, struct bio *bio)
{
	sector_t start = bio->bi_iter.bi_sector;
	sector_t nr = bio_sectors(bio);

	if (!bt_op_sectors(bio_op(bio), bio->bi_bdev, true, &start, &nr))
		return;		/* reads; an empty flush carries no data */
	if (unlikely(bt_is_zap(bio_op(bio))) && !queue_is_mq(bdev_get_queue(bio->bi_bdev)))
		bt_keep_queued(bio->bi_bdev->bd_disk, bio, start, nr);
	bt_mark_queued(bio->bi_bdev->bd_disk, start, nr);
}

/* A completion's sectors, unless their submission's hint proves them marked. */
static __always_inline void bt_mark_done(struct gendisk *disk, sector_t start, sector_t nr)
{
	if (!bt_disk_hinted(disk, start, nr))
		bt_mark_disk_done(disk, start, nr);
}

static void bt_probe_rq_complete(void *data, struct request *rq,
				 blk_status_t error, unsigned int nr_bytes)
{
	struct gendisk *disk = rq->q->disk;
	sector_t start = blk_rq_pos(rq);
	sector_t nr = nr_bytes >> SECTOR_SHIFT;
	struct bio *bio;

	/* Passthrough requests (REQ_OP_DRV_*) were not marked at queue either. */
	if (!disk || !bt_op_sectors(req_op(rq), disk->part0, false, &start, &nr))
		return;
	/* Bios moved here in place from a tracked disk (rare: md, multipath). */
	if (unlikely(atomic_read(&bt_kept_total)))
		bt_kept_rq_done(disk, rq, nr_bytes >= blk_rq_bytes(rq));
	/*
	 * Discards merged into one request (NVMe takes up to 256 ranges) are
	 * not contiguous: each bio is a range of its own. The bios are still
	 * on the request: this tracepoint fires before any of them is ended.
	 */
	if (req_op(rq) == REQ_OP_DISCARD && rq->bio && rq->bio->bi_next) {
		__rq_for_each_bio(bio, rq)
			if (bio_sectors(bio))
				bt_mark_done(disk, bio->bi_iter.bi_sector, bio_sectors(bio));
		return;
	}
	/*
	 * A zone append's sector is known only now; its queue mark took the
	 * zone. The table is read twice when a hint misses: the second walk
	 * marks whatever maps are active then, as a single walk started at
	 * that point would.
	 */
	bt_mark_done(disk, start, nr);
}

/*
 * Sectors of @bio's own data vector before its iterator: how far the bio can
 * have been advanced since it was built, so at least how far since it was
 * queued. dm trims the bio it splits (bio_trim() of the part it sent, in
 * dm_split_and_process_bio()) and ends it with only the rest in bi_iter; the
 * bytes it advanced past are still before bi_idx/bi_bvec_done. For a clone
 * sharing a bigger vector it is more than the advance: more marks, none
 * missing. Not for ops that do not advance the vector (discards).
 */
static sector_t bt_bio_advanced(const struct bio *bio)
{
	u64 bytes = bio->bi_iter.bi_bvec_done;
	unsigned int i;

	for (i = 0; i < bio->bi_iter.bi_idx; i++)
		bytes += bio->bi_io_vec[i].bv_len;
	return bytes >> SECTOR_SHIFT;
}

/*
 * bio_endio() of a bio that block_bio_queue traced (BIO_TRACE_COMPLETION),
 * when it was not completed as part of a request (blk-mq clears the flag
 * first): in practice the bios of bio-based disks (dm, md, brd). Their
 * completion is the mark block_rq_complete gives request-based disks.
 */
static void bt_probe_bio_complete(void *data, struct request_queue *q, struct bio *bio)
{
	struct gendisk *disk = bio->bi_bdev->bd_disk;
	sector_t start = bio->bi_iter.bi_sector;
	sector_t nr = bio_sectors(bio);

	/* Request-based: block_rq_complete marks (only error paths get here). */
	if (queue_is_mq(q))
		return;
	if (op_is_write(bio_op(bio)) && !bio_no_advance_iter(bio) && bio->bi_io_vec) {
		sector_t back = min(bt_bio_advanced(bio), start);

		start -= back;
		nr += back;
	}
	if (!bt_op_sectors(bio_op(bio), bio->bi_bdev, false, &start, &nr))
		return;
	if (unlikely(atomic_read(&bt_kept_total)))
		bt_kept_done(disk, bio, true);
	bt_mark_done(disk, start, nr);
}

/*
 * A driver moved @bio, of disk @dev sector @from, to the disk below
 * (bio->bi_bdev). Only a bio traced on the disk above and moved in place
 * matters: its completion will be traced below. A clone (dm) is queued
 * below as a bio of its own and marked as such.
 */
static void bt_probe_bio_remap(void *data, struct bio *bio, dev_t dev, sector_t from)
{
	struct gendisk *lower = bio->bi_bdev->bd_disk;
	sector_t start = bio->bi_iter.bi_sector;
	sector_t nr = bio_sectors(bio);
	const struct bt_table *tbl;
	unsigned int i;

	if (!bio_flagged(bio, BIO_TRACE_COMPLETION) ||
	    !bt_op_sectors(bio_op(bio), bio->bi_bdev, false, &start, &nr))
		return;
	/* Sectors of the disk below: its partition remap is still to come. */
	if (!bio_flagged(bio, BIO_REMAPPED))
		start += bio->bi_bdev->bd_start_sect;
	tbl = rcu_dereference_sched(bt_table);
	if (!tbl)
		return;
	for (i = 0; i < tbl->nr; i++) {
		struct bt_volume *vol = tbl->t[i].vol;
		enum bt_alias_known known;

		if (tbl->t[i].devt != dev)
			continue;
		/*
		 * Its end below finds the range kept for it, or maps back by
		 * its disk's offset; with neither, STATUS says completions
		 * may be unseen.
		 */
		known = bt_alias_add(vol, lower, (s64)start - (s64)from);
		if (known == BT_ALIAS_NONE)
			WRITE_ONCE(vol->aliases_full, true);
		else if (!bt_keep(vol, bio, from, nr)) {
			/* From now on completions below map back by offset too. */
			WRITE_ONCE(vol->alias_offsets, true);
			if (known != BT_ALIAS_OFFSET)
				WRITE_ONCE(vol->aliases_full, true);
		}
	}
	/* A tracked disk below sees no block_bio_queue for this bio. */
	bt_mark_disk(lower, start, nr, false);
}

/*
 * Drivers that move a bio in place to a disk below without tracing
 * block_bio_remap, and end it there: neither a completion of the volume nor
 * an alias ever sees it. bcache's cached_dev_submit_bio() does bio_set_dev()
 * to the backing device and shifts the sector by the superblock's data
 * offset (6.1, 6.12); in writethrough and bypass modes the bio ends after
 * the backing device's write. Their volumes report completions partial.
 */
static const char *const bt_unseen_drivers[] = { "bcache" };

bool bt_disk_ends_unseen(struct gendisk *disk)
{
	struct module *owner = disk->fops->owner;
	unsigned int i;

	for (i = 0; owner && i < ARRAY_SIZE(bt_unseen_drivers); i++)
		if (!strcmp(module_name(owner), bt_unseen_drivers[i]))
			return true;
	return false;
}

/* ==== Writes without a bio: bdev_write_page() (compat.h) ================ */

struct bt_rw_page_call {
	struct gendisk *disk;
	sector_t start;
	sector_t nr;
};

/* bdev_write_page(bdev, sector, page, wbc) begins: mark as a submission does. */
static int bt_rw_page_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct block_device *bdev = (void *)regs_get_kernel_argument(regs, 0);
	struct page *page = (void *)regs_get_kernel_argument(regs, 2);
	struct bt_rw_page_call *c = (void *)ri->data;

	c->disk = bdev->bd_disk;
	c->start = regs_get_kernel_argument(regs, 1) + get_start_sect(bdev);
	c->nr = page_size(page) >> SECTOR_SHIFT;	/* pmem takes huge pages */
	bt_mark_disk(c->disk, c->start, c->nr, false);
	return 0;
}

/* It returns: ->rw_page is synchronous, the data is there. Mark as a completion. */
static int bt_rw_page_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const struct bt_rw_page_call *c = (void *)ri->data;

	bt_mark_done(c->disk, c->start, c->nr);
	return 0;
}

/*
 * Kprobe handlers run with preemption off: the probes' read-side section.
 * A call finding no free instance runs neither handler: nmissed counts it
 * and the volumes of such disks turn INVALID (bt_rw_page_missed()).
 */
static struct kretprobe bt_rw_page_probe = {
	.kp.symbol_name	= BT_RW_PAGE_FN,
	.entry_handler	= bt_rw_page_entry,
	.handler	= bt_rw_page_return,
	.data_size	= sizeof(struct bt_rw_page_call),
	.maxactive	= 1024,
};

static bool bt_rw_page_hooked;		/* under bt_ctl_mutex */

/*
 * Before attaching a volume of @disk: a disk whose driver writes pages
 * without bios needs the probe on bdev_write_page(), or it is not attached.
 */
int bt_tracker_hook_disk(struct gendisk *disk)
{
	int ret;

	lockdep_assert_held(&bt_ctl_mutex);
	if (!bt_disk_has_rw_page(disk) || bt_rw_page_hooked)
		return 0;
	ret = register_kretprobe(&bt_rw_page_probe);
	if (ret) {
		pr_warn("%s writes pages without bios (->rw_page) and %s cannot be probed (%d): not tracked\n",
			disk->disk_name, BT_RW_PAGE_FN, ret);
		return -EOPNOTSUPP;
	}
	bt_rw_page_hooked = true;
	return 0;
}

/* Has a bdev_write_page() call gone unmarked (no kretprobe instance)? */
bool bt_rw_page_missed(void)
{
	return READ_ONCE(bt_rw_page_probe.nmissed);
}

static void bt_rw_page_unhook(void)
{
	if (!bt_rw_page_hooked)
		return;
	/* Calls still inside return without our handler. */
	unregister_kretprobe(&bt_rw_page_probe);
	/*
	 * Registrable again: register_kretprobe() refuses a probe that has both
	 * the symbol and the address it resolved last time (EINVAL). No volume
	 * is left, so the misses counted for the ones before go too.
	 */
	bt_rw_page_probe.kp.addr = NULL;
	bt_rw_page_probe.kp.flags = 0;
	bt_rw_page_probe.kp.nmissed = 0;
	bt_rw_page_probe.nmissed = 0;
	bt_rw_page_hooked = false;
}

/* ==== Registration ======================================================= */

struct bt_hook {
	const char *name;
	void *probe;
	struct tracepoint *tp;
};

static struct bt_hook bt_hooks[] = {
	{ "block_bio_queue", bt_probe_bio_queue },
	{ "block_rq_complete", bt_probe_rq_complete },
	{ "block_bio_complete", bt_probe_bio_complete },
	{ "block_bio_remap", bt_probe_bio_remap },
};

static void bt_find_tracepoint(struct tracepoint *tp, void *priv)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bt_hooks); i++)
		if (!strcmp(tp->name, bt_hooks[i].name))
			bt_hooks[i].tp = tp;
}

static bool bt_hooked;		/* under bt_ctl_mutex */

static void bt_unregister(unsigned int nr)
{
	while (nr--)
		tracepoint_probe_unregister(bt_hooks[nr].tp, bt_hooks[nr].probe, NULL);
	/* After this no probe runs, nor can one start: tables and maps may go. */
	tracepoint_synchronize_unregister();
}

/* Module load: the tracepoints must exist, or nothing can be tracked. */
int bt_tracker_init(void)
{
	unsigned int i;

	for_each_kernel_tracepoint(bt_find_tracepoint, NULL);
	for (i = 0; i < ARRAY_SIZE(bt_hooks); i++) {
		if (!bt_hooks[i].tp) {
			pr_err("tracepoint %s not found\n", bt_hooks[i].name);
			return -ENOENT;
		}
	}
	return 0;
}

/*
 * The probes are registered only while a volume is attached: a loaded,
 * idle module costs the block layer nothing.
 */
int bt_tracker_hook(void)
{
	unsigned int i;
	int ret;

	lockdep_assert_held(&bt_ctl_mutex);
	if (bt_hooked)
		return 0;
	for (i = 0; i < ARRAY_SIZE(bt_hooks); i++) {
		ret = tracepoint_probe_register(bt_hooks[i].tp, bt_hooks[i].probe, NULL);
		if (ret) {
			pr_err("cannot register on %s: %d\n", bt_hooks[i].name, ret);
			bt_unregister(i);
			return ret;
		}
	}
	bt_hooked = true;
	return 0;
}

void bt_tracker_unhook(void)
{
	lockdep_assert_held(&bt_ctl_mutex);
	bt_rw_page_unhook();
	if (!bt_hooked)
		return;
	bt_unregister(ARRAY_SIZE(bt_hooks));
	bt_hooked = false;
}
