// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: reading the volume into the backup stream:
 * the blocks of the set with reads in flight, each piece hashed for the
 * follower, then written; and the blocks rewritten during the read.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <xxhash.h>

#include "requester/requester.h"

/* Remember the hash of @len bytes read at @off, in the order written. */
static int note_read(struct backup *b, uint64_t off, const void *data, size_t len)
{
	struct read_hash h = { off, len, XXH3_64bits(data, len) };
	int err = 0;

	/* Test hook (tests/vm/0960): what was read and what is written disagree. */
	if (!b->nrh && test_hook("BLKTRACK_TEST_VERIFY_MISMATCH"))
		h.hash ^= 1;
	pthread_mutex_lock(&b->rh_lock);	/* the verify thread reads rh */
	if (b->nrh == b->caprh) {
		size_t cap = b->caprh ? 2 * b->caprh : 256;
		struct read_hash *n = realloc(b->rh, cap * sizeof(*n));

		if (n) {
			b->rh = n;
			b->caprh = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (!err)
		b->rh[b->nrh++] = h;
	pthread_mutex_unlock(&b->rh_lock);
	return err;
}

/*
 * Write @len bytes read at @off to the stream, with the hash the verify
 * writer checks them against, and tell the verify writer there is more.
 */
int write_piece(struct backup *b, uint64_t off, const void *data, size_t len)
{
	int err = note_read(b, off, data, len);

	if (!err)
		err = bfile_write_data(b->w, off, data, len);
	if (b->follow)
		follow_wake(b->follow, false);
	if (err)
		snprintf(b->msg, sizeof(b->msg), "writing the backup: %s",
			 bfile_writer_error(b->w));
	return err;
}

/* A piece of @len volume bytes is read and handled: progress. */
void piece_done(struct backup *b, const char *what, size_t len)
{
	b->done += len;
	progress(b->o->progress, b->o->progress_data, what, b->done, b->total);
	crash_at("during-write");
}

/* A backup's piece, read at @off: its hashes, then the stream. */
static int store_piece(void *data, uint64_t off, const void *buf, size_t len)
{
	struct backup *b = data;
	int err;

	hash_read(b, off, buf, len);
	err = write_piece(b, off, buf, len);
	if (err)
		return err;
	piece_done(b, "backup", len);
	return 0;
}

/* Queue the reads of blocks [@first, @first + @count), in pieces of buf_len. */
static int queue_extent(void *data, uint64_t first, uint64_t count)
{
	struct backup *b = data;
	uint64_t off = first * b->block_size;
	uint64_t end = (first + count) * b->block_size;
	int err = 0;

	if (end > b->size)
		end = b->size;
	for (; !err && off < end; off += b->buf_len)
		err = readq_add(b->rq, off, end - off < b->buf_len ? end - off : b->buf_len);
	return err;
}

/*
 * Read the blocks of @want (a resync: the whole volume) with READ_DEPTH
 * reads in flight, and store them in order.
 */
int read_volume(struct backup *b, const struct blockset *want, bool resync)
{
	uint64_t at;
	int err;

	if (b->file || b->cow)
		err = readq_open_fn(b->file ? file_read : snap_read, b, b->buf_len, READ_DEPTH,
				    resync ? resync_piece : store_piece, b, &b->rq);
	else
		err = readq_open(b->vol_fd, b->buf_len, READ_DEPTH,
				 resync ? resync_piece : store_piece, b, &b->rq);
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "starting the reads: %s", strerror(-err));
		return err;
	}
	if (resync)
		err = queue_extent(b, 0, (b->size + b->block_size - 1) / b->block_size);
	else
		err = blockset_for_each_extent(want, queue_extent, b);
	if (!err)
		err = readq_finish(b->rq);
	at = readq_failed_at(b->rq);
	if (at != UINT64_MAX && b->cow && err == -EOVERFLOW)
		snap_lost(b);
	else if (at != UINT64_MAX)
		snprintf(b->msg, sizeof(b->msg), "%s: read at %" PRIu64 ": %s",
			 b->o->device, at, strerror(-err));
	readq_free(b->rq);
	b->rq = NULL;
	return err;
}

/* The active map as a block set: what was written since the checkpoint. */
int active_set(struct backup *b, dev_t dev, struct blockset **out)
{
	struct blktrack_extent *ext = NULL;
	size_t n = 0;
	int err;

	err = blktrack_read_extents(b->ctx, dev, BLKTRACK_READ_ACTIVE, NULL, &ext, &n);
	if (err < 0) {
		snprintf(b->msg, sizeof(b->msg), "reading the active map: %s",
			 blktrack_get_error(b->ctx));
		return err;
	}
	err = blockset_from_extents(ext, n, b->block_size, out);
	free(ext);
	return err;
}

/* Bytes of @want the active map shows rewritten (read after the read). */
int rewritten_during_read(struct backup *b, dev_t dev, const struct blockset *want,
			  uint64_t *bytes)
{
	struct blockset *act = NULL, *outside = NULL, *both = NULL;
	int err;

	err = active_set(b, dev, &act);
	if (!err)
		err = blockset_copy(want, &outside);
	if (!err)
		err = blockset_andnot(outside, act);
	if (!err)
		err = blockset_copy(want, &both);
	if (!err)
		err = blockset_andnot(both, outside);
	if (!err) {
		*bytes = blockset_cardinality(both) * b->block_size;
		if (*bytes > b->size)
			*bytes = b->size;
	}
	blockset_free(act);
	blockset_free(outside);
	blockset_free(both);
	return err;
}
