// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: reading a map as extents, a page of READ_EXTENTS at a time.
 *
 * The kernel merges and sorts the extents of one call; an extent may be
 * split between two calls when the array fills up. The iterator holds
 * one extent back until it knows the next one does not touch it, so the
 * caller sees every run of dirty bytes exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

#define PAGE_EXTENTS	1024U

struct blktrack_extent_iter {
	struct blktrack_ctx *ctx;
	struct blktrack_read_extents rd;
	uint64_t dev_size;
	uint32_t block_size;
	bool done;			/* the kernel has nothing more */
	size_t pos;			/* next entry of page[] to look at */
	size_t count;			/* entries in page[] */
	bool have_held;
	struct blktrack_extent held;	/* merged, not yet returned */
	struct blktrack_extent page[PAGE_EXTENTS];
};

BLKTRACK_EXPORT int blktrack_extent_iter_new(struct blktrack_ctx *ctx, dev_t dev,
					     uint32_t flags,
					     const struct blktrack_stamp *stamp,
					     struct blktrack_extent_iter **iter)
{
	struct blktrack_extent_iter *it;
	struct blktrack_status st;
	int err;

	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		return err;
	if (!(flags & BLKTRACK_READ_ACTIVE) && !(st.flags & BLKTRACK_STATUS_PENDING))
		return blktrack_set_error(ctx, -ENODATA, "no checkpoint is pending");

	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->ctx = blktrack_ref(ctx);
	it->dev_size = st.dev_size;
	it->block_size = st.block_size;
	it->rd.size = sizeof(it->rd);
	it->rd.dev = blktrack_devno_of(dev);
	it->rd.flags = flags;
	it->rd.stamp = stamp ? *stamp : st.stamp;
	it->rd.cursor = 0;
	it->rd.extents_ptr = (uintptr_t)it->page;
	*iter = it;
	return 0;
}

BLKTRACK_EXPORT void blktrack_extent_iter_free(struct blktrack_extent_iter *it)
{
	if (!it)
		return;
	blktrack_unref(it->ctx);
	free(it);
}

BLKTRACK_EXPORT uint32_t blktrack_extent_iter_block_size(const struct blktrack_extent_iter *it)
{
	return it->block_size;
}

BLKTRACK_EXPORT uint64_t blktrack_extent_iter_dev_size(const struct blktrack_extent_iter *it)
{
	return it->dev_size;
}

/* Fill page[] from the kernel; it->done when the whole map was read. */
static int fetch(struct blktrack_extent_iter *it)
{
	uint64_t prev = it->rd.cursor;
	int err;

	it->rd.capacity = PAGE_EXTENTS;
	it->rd.count = 0;
	err = blktrack_ioctl(it->ctx, BLKTRACK_IOC_READ_EXTENTS, &it->rd,
			     "READ_EXTENTS");
	if (err < 0)
		return err;
	it->pos = 0;
	it->count = it->rd.count;
	if (it->count > PAGE_EXTENTS)
		return -EIO;
	dbg(it->ctx, "cursor %llu -> %llu, %zu extents\n",
	    (unsigned long long)prev, (unsigned long long)it->rd.cursor, it->count);
	if (it->rd.cursor >= it->dev_size)
		it->done = true;
	/* A cursor that does not move would loop forever. */
	if (!it->done && it->rd.cursor <= prev)
		return blktrack_set_error(it->ctx, -EIO,
			"READ_EXTENTS: cursor did not advance from %llu",
			(unsigned long long)prev);
	return 0;
}

BLKTRACK_EXPORT int blktrack_extent_iter_next(struct blktrack_extent_iter *it,
					      struct blktrack_extent *ext)
{
	struct blktrack_extent e;
	int err;

	for (;;) {
		if (it->pos == it->count) {
			if (it->done)
				break;
			err = fetch(it);
			if (err < 0)
				return err;
			continue;
		}
		e = it->page[it->pos++];
		if (!e.length)
			continue;
		if (!it->have_held) {
			it->held = e;
			it->have_held = true;
			continue;
		}
		if (e.offset <= it->held.offset + it->held.length) {
			uint64_t end = e.offset + e.length;

			if (end > it->held.offset + it->held.length)
				it->held.length = end - it->held.offset;
			continue;
		}
		*ext = it->held;
		it->held = e;
		return 0;
	}
	if (it->have_held) {
		*ext = it->held;
		it->have_held = false;
		return 0;
	}
	ext->offset = it->dev_size;
	ext->length = 0;
	return 0;
}

BLKTRACK_EXPORT int blktrack_read_extents(struct blktrack_ctx *ctx, dev_t dev,
					  uint32_t flags,
					  const struct blktrack_stamp *stamp,
					  struct blktrack_extent **extp, size_t *np)
{
	struct blktrack_extent_iter *it;
	struct blktrack_extent *v = NULL, *nv, e;
	size_t n = 0, cap = 0;
	int err;

	err = blktrack_extent_iter_new(ctx, dev, flags, stamp, &it);
	if (err < 0)
		return err;
	while (!(err = blktrack_extent_iter_next(it, &e)) && e.length) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = e;
	}
	blktrack_extent_iter_free(it);
	if (err < 0) {
		free(v);
		return err;
	}
	*extp = v;
	*np = n;
	return 0;
}
