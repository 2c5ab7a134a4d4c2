// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: the snapshot read path: reading the volume as
 * it was at the checkpoint through the kernel's copy-before-write snapshot
 * (--snapshot, doc/WRITERS.md), releasing what is read.
 */
#include <errno.h>
#include <string.h>
#include <linux/fs.h>

#include "requester/requester.h"

/* The message for a snapshot the kernel lost (-EOVERFLOW from SNAP_READ). */
void snap_lost(struct backup *b)
{
	snprintf(b->msg, sizeof(b->msg), "%s: the snapshot was lost (its store filled up, or "
		 "a copy failed: the kernel log says which); give a bigger --snapshot-store "
		 "or use --snapshot=freeze", b->o->device);
}

/* Release the snapshot's blocks from b->released up to byte @end. */
static int snap_release_to(struct backup *b, uint64_t end)
{
	uint64_t at = b->released;
	int err = 0;

	if (end > b->st.dev_size)
		end = b->st.dev_size;
	if (end > at)
		err = blktrack_snap_read(b->ctx, b->dev, &b->stamp, at, end - at, NULL,
					 BLKTRACK_SNAP_READ_RELEASE);
	return err;
}

/* blockset_extent_fn: release the gap before an extent the backup reads. */
static int snap_release_gap(void *data, uint64_t first, uint64_t count)
{
	struct backup *b = data;
	int err = snap_release_to(b, first * b->block_size);

	b->released = (first + count) * b->block_size;
	return err;
}

/* cow: release the blocks the backup will not read (all but @want). */
int snap_release_rest(struct backup *b, const struct blockset *want)
{
	int err;

	b->released = 0;
	err = blockset_for_each_extent(want, snap_release_gap, b);
	if (!err)
		err = snap_release_to(b, b->st.dev_size);
	if (err == -EOVERFLOW)
		snap_lost(b);
	else if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: releasing the snapshot's unread blocks: "
			 "%s", b->o->device, strerror(-err));
	return err;
}

/* readq_read_fn: a piece of the volume as it was at the checkpoint. */
int snap_read(void *rdata, void *buf, size_t len, uint64_t off)
{
	struct backup *b = rdata;

	return blktrack_snap_read(b->ctx, b->dev, &b->stamp, off, len, buf, 0);
}

/* cow: what the snapshot cost, for the summary. */
void snap_figures(struct backup *b, struct blktrack_backup_result *res)
{
	struct blktrack_snap_status st;

	if (b->cow && !blktrack_snap_status(b->ctx, b->dev, &st)) {
		res->snapshot_copied = st.copied_blocks;
		res->snapshot_held = st.held_writes;
	}
}
