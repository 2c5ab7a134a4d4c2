// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: block hashes, for a later resync
 * (doc/REPOSITORY.md): the parent's hashes carried, this backup's written;
 * a resync stores only the blocks whose hash differs.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>

#include "requester/requester.h"

/*
 * The parent's hash of the next block *@have is false past the parent's
 * end (a grown volume).
 */
static int hash_next(struct backup *b, uint64_t *old, bool *have)
{
	int err = b->hp ? blockhash_get(b->hp, old) : -ENODATA;

	*have = !err;
	return err == -ENODATA ? 0 : err;
}

/* Carry the parent's hashes of the blocks before @blk, which were not read. */
static int hash_carry(struct backup *b, uint64_t blk)
{
	uint64_t h;
	bool have;
	int err;

	for (; b->hnext < blk; b->hnext++) {
		err = hash_next(b, &h, &have);
		if (!err && !have)
			err = -EBADMSG;		/* unread and unknown: no hashes */
		if (!err)
			err = blockhash_put(b->hw, h);
		if (err)
			return err;
	}
	return 0;
}

/* Stop keeping hashes for this backup: a later resync takes a full. */
static void hash_drop(struct backup *b, const char *why, int err)
{
	warning(b->ctx, "no block hashes for this backup (%s: %s): a resync based on it "
		"will be a full backup", why, strerror(-err));
	blockhash_writer_abort(b->hw);
	b->hw = NULL;
	repo_file_close(b->hw_file);
	b->hw_file = NULL;
}

/* Record the hashes of the blocks read at @off (block-aligned), @len bytes. */
void hash_read(struct backup *b, uint64_t off, const char *buf, size_t len)
{
	uint64_t blk = off / b->block_size, h;
	size_t p;
	bool have;
	int err;

	if (!b->hw)
		return;
	err = hash_carry(b, blk);
	for (p = 0; !err && p < len; p += b->block_size, blk++, b->hnext++) {
		size_t n = len - p < b->block_size ? len - p : b->block_size;

		err = hash_next(b, &h, &have);
		if (!err)
			err = blockhash_put(b->hw, blockhash_block(buf + p, n));
	}
	if (err)
		hash_drop(b, "hashing", err);
}

/*
 * Complete and install this backup's hashes (*@kept) after checking the
 * parent's digest, which a resync cannot do without: it acted on them.
 */
int hash_finish(struct backup *b, struct repo *r, uint64_t id, bool *kept)
{
	int err;

	*kept = false;
	if (!b->hw)
		return 0;
	err = hash_carry(b, (b->size + b->block_size - 1) / b->block_size);
	if (!err && b->hp) {
		err = blockhash_reader_finish(b->hp);
		b->hp = NULL;
	}
	if (err && b->stored) {
		snprintf(b->msg, sizeof(b->msg), "the block hashes of the resync's parent "
			 "changed during the read (%s): rejected", strerror(-err));
		return err;
	}
	if (err) {
		hash_drop(b, "the parent's hashes", err);
		return 0;
	}
	err = blockhash_writer_finish(b->hw);
	b->hw = NULL;
	if (!err)
		err = repo_hashes_install(r, id, b->hw_file);
	else
		repo_file_close(b->hw_file);
	b->hw_file = NULL;
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s", repo_error(r));
	*kept = !err;
	return err;
}

/*
 * Open the hashes of @base (the parent) for reading, checked whole first
 * when a resync is going to act on them. -ENOENT: it has none; -EBADMSG:
 * corrupt; -ESTALE: another block size.
 */
int hash_open_parent(struct backup *b, struct repo *r, uint64_t base, bool check)
{
	uint64_t size;
	uint32_t bs;
	int err;

	err = repo_hashes_open(r, base, &b->hp_file);
	if (!err && check) {
		/* Read whole first, then again from its start by a new handle. */
		err = blockhash_check_fn(repo_file_read, b->hp_file, &size, &bs);
		repo_file_close(b->hp_file);
		b->hp_file = NULL;
		if (!err)
			err = repo_hashes_open(r, base, &b->hp_file);
	}
	if (!err)
		err = blockhash_reader_open_fn(repo_file_read, b->hp_file, &b->hp);
	/* Another size is fine: a grown tail is read, a shrunk one skipped. */
	if (!err && blockhash_reader_block_size(b->hp) != b->block_size) {
		blockhash_reader_free(b->hp);
		b->hp = NULL;
		err = -ESTALE;
	}
	return err;
}

/*
 * Start this backup's hashes when it can be a resync's base: a full reads
 * every block; an incremental carries its parent's hashes over the blocks
 * it does not read (none if the parent has none); a resync's parent hashes
 * are open already.
 */
int hash_start(struct backup *b, struct repo *r, enum blktrack_backup_type type,
	       uint64_t base, uint64_t id)
{
	int err;

	if (type != BLKTRACK_BACKUP_FULL && type != BLKTRACK_BACKUP_INCREMENTAL &&
	    type != BLKTRACK_BACKUP_RESYNC)
		return 0;
	if (type == BLKTRACK_BACKUP_INCREMENTAL && hash_open_parent(b, r, base, false))
		return 0;
	err = repo_hashes_create(r, id, &b->hw_file);
	if (!err)
		err = blockhash_writer_open_fn(repo_file_write, b->hw_file, b->size,
					       b->block_size, &b->hw);
	if (err && type != BLKTRACK_BACKUP_RESYNC) {
		hash_drop(b, "creating the hash file", err);
		return 0;
	}
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s", repo_error(r));
	return err;
}

/* Store the run of differing blocks at @off, @len bytes, from @data. */
static int resync_store(struct backup *b, uint64_t off, const char *data, size_t len)
{
	int err;

	if (!len)
		return 0;
	err = write_piece(b, off, data, len);
	if (err)
		return err;
	return blockset_add_range(b->stored, off / b->block_size,
				  (len + b->block_size - 1) / b->block_size);
}

/*
 * A resync's piece: store the blocks whose hash differs from the parent's
 * (the parent's hashes were checked whole), keep every hash.
 */
int resync_piece(void *data, uint64_t off, const void *piece, size_t len)
{
	struct backup *b = data;
	const char *buf = piece;
	size_t p, n, run = 0, run_len = 0;
	uint64_t old;
	bool have;
	int err;

	for (p = 0; p < len; p += n, b->hnext++) {
		uint64_t h;

		n = len - p < b->block_size ? len - p : b->block_size;
		h = blockhash_block(buf + p, n);
		err = hash_next(b, &old, &have);
		if (!err)
			err = blockhash_put(b->hw, h);
		if (err) {
			snprintf(b->msg, sizeof(b->msg), "block hashes: %s", strerror(-err));
			return err;
		}
		if (!have || old != h) {
			if (!run_len)
				run = p;
			run_len += n;
			continue;
		}
		err = resync_store(b, off + run, buf + run, run_len);
		if (err)
			return err;
		run_len = 0;
	}
	err = resync_store(b, off + run, buf + run, run_len);
	if (err)
		return err;
	piece_done(b, "resync", len);
	return 0;
}
