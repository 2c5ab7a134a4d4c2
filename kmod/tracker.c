// SPDX-License-Identifier: GPL-2.0
/*
 * tracker.c - the write hook: a probe on the block_bio_queue tracepoint.
 *
 * block_bio_queue fires in submit_bio_noacct() for each bio, in the task
 * that submits it, after a partition's sectors were remapped to the whole
 * disk and before the bio reaches the driver: a write is in the map before
 * its data can be on the media. Writes through a partition, the whole disk
 * or a device stacked above (dm sends its own bio down) all pass here.
 *
 * The tracepoint symbol is not exported; the tracepoint is found by name
 * with for_each_kernel_tracepoint().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/rcupdate.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/workqueue.h>

#include "volume.h"

struct bt_table __rcu *bt_table;
static struct tracepoint *bt_tp;

static void bt_volume_grew(struct bt_volume *vol)
{
	/* Written once per volume at most: no cache line bouncing per bio. */
	if (!READ_ONCE(vol->resized))
		WRITE_ONCE(vol->resized, true);
}

/* Mark disk sectors [@start, @end) on the volume @t, if they overlap it. */
static void bt_mark(const struct bt_track *t, sector_t start, sector_t end)
{
	sector_t vend = t->start_sect + t->nr_sects;
	struct bt_volume *vol = t->vol;
	u64 first, last;

	/*
	 * The block layer refuses writes past a disk's end before this
	 * tracepoint, so such a write means the disk grew: the map cannot
	 * hold it and the volume is no longer trustworthy.
	 */
	if (end > vend && t->whole_disk)
		bt_volume_grew(vol);
	if (start < t->start_sect)
		start = t->start_sect;
	if (end > vend)
		end = vend;
	if (start >= end)
		return;

	/* Round the start down and the end up to whole blocks. */
	first = (start - t->start_sect) >> t->sect_shift;
	last = (end - 1 - t->start_sect) >> t->sect_shift;
	if (btmap_mark(t->map, first, last - first + 1) &&
	    !work_pending(&vol->coarsen_work))
		queue_work(system_unbound_wq, &vol->coarsen_work);
}

/* Called with preemption off: no sleeping, no lock. */
static void bt_probe_bio_queue(void *data, struct bio *bio)
{
	const struct bt_table *tbl;
	struct gendisk *disk;
	sector_t start = bio->bi_iter.bi_sector;
	sector_t nr;
	unsigned int i;

	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		nr = bio_sectors(bio);
		break;
	case REQ_OP_ZONE_APPEND:
		/* The device picks where in the zone the data lands. */
		nr = bdev_zone_sectors(bio->bi_bdev);
		if (nr)
			start &= ~(nr - 1);
		else
			nr = bio_sectors(bio);
		break;
	default:
		return;
	}
	if (!nr)
		return;		/* an empty flush carries no data */

	disk = bio->bi_bdev->bd_disk;
	rcu_read_lock();
	tbl = rcu_dereference(bt_table);
	if (tbl) {
		for (i = 0; i < tbl->nr; i++)
			if (tbl->t[i].disk == disk)
				bt_mark(&tbl->t[i], start, start + nr);
	}
	rcu_read_unlock();
}

static void bt_find_tracepoint(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "block_bio_queue"))
		*(struct tracepoint **)priv = tp;
}

int bt_tracker_init(void)
{
	int ret;

	for_each_kernel_tracepoint(bt_find_tracepoint, &bt_tp);
	if (!bt_tp) {
		pr_err("tracepoint block_bio_queue not found\n");
		return -ENOENT;
	}
	ret = tracepoint_probe_register(bt_tp, bt_probe_bio_queue, NULL);
	if (ret)
		pr_err("cannot register on block_bio_queue: %d\n", ret);
	return ret;
}

void bt_tracker_exit(void)
{
	tracepoint_probe_unregister(bt_tp, bt_probe_bio_queue, NULL);
	/* After this no probe runs, nor can one start: tables and maps may go. */
	tracepoint_synchronize_unregister();
}
