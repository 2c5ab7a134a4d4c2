/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * blockhash: a volume's per-block hashes, as a repository keeps them for a
 * resync (doc/REPOSITORY.md, "Block hash files").
 *
 * A hash file holds one XXH3-64 per block of the volume as a backup left
 * it, in block order, between a header and a digest of the whole file. It
 * is written and read strictly in sequence, so that a backup can stream it
 * while it streams the volume: memory does not grow with the volume.
 *
 * Typical use, writing the hashes of a new backup from its parent's:
 *
 *	blockhash_writer_open(fd, size, block_size, &w);
 *	blockhash_reader_open(parent_fd, &p);        optional
 *	for each block b in order:
 *		blockhash_get(p, &old)              the parent's, or -ENODATA past it
 *		blockhash_put(w, changed ? blockhash_block(data, len) : old)
 *	blockhash_writer_finish(w);                  trailer; the caller fsyncs
 *	blockhash_reader_finish(p);                  -EBADMSG: the parent was corrupt
 *
 * A reader's hashes are trusted only once blockhash_reader_finish() returned
 * 0: a consumer that acts on them (a resync deciding what to store) either
 * checks the file first with blockhash_check() or fails when finish fails.
 *
 * Errors: -EBADMSG a corrupt or truncated file (bad magic, header, digest,
 * length); -EPROTONOSUPPORT an unknown version or flag; -ENODATA read past
 * the last block; others from read()/write(), -ENOMEM.
 */
#ifndef BLKTRACK_BLOCKHASH_H
#define BLKTRACK_BLOCKHASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BLOCKHASH_VERSION	1U

struct blockhash_writer;
struct blockhash_reader;

/* The hash of one block's bytes (@len < block size for a partial tail). */
uint64_t blockhash_block(const void *data, size_t len);

int blockhash_writer_open(int fd, uint64_t volume_size, uint32_t block_size,
			  struct blockhash_writer **out);
/* The same onto a sink other than an fd: @fn writes all of @len, or -errno. */
typedef int (*blockhash_write_fn)(void *data, const void *buf, size_t len);
int blockhash_writer_open_fn(blockhash_write_fn fn, void *data, uint64_t volume_size,
			     uint32_t block_size, struct blockhash_writer **out);
int blockhash_put(struct blockhash_writer *w, uint64_t hash);
/* Exactly nr_blocks hashes must have been put. Writes the trailer, frees @w. */
int blockhash_writer_finish(struct blockhash_writer *w);
void blockhash_writer_abort(struct blockhash_writer *w);

int blockhash_reader_open(int fd, struct blockhash_reader **out);
/* The same from a source other than an fd: @fn as read(2), but -errno. */
typedef ssize_t (*blockhash_read_fn)(void *data, void *buf, size_t len);
int blockhash_reader_open_fn(blockhash_read_fn fn, void *data, struct blockhash_reader **out);
uint64_t blockhash_reader_volume_size(const struct blockhash_reader *r);
uint32_t blockhash_reader_block_size(const struct blockhash_reader *r);
uint64_t blockhash_reader_blocks(const struct blockhash_reader *r);
int blockhash_get(struct blockhash_reader *r, uint64_t *hash);
/* Skip the hashes not read yet, check the digest and the end; frees @r. */
int blockhash_reader_finish(struct blockhash_reader *r);
void blockhash_reader_free(struct blockhash_reader *r);

/* Read the whole file at @fd and check it; *@size, *@block_size on success. */
int blockhash_check(int fd, uint64_t *size, uint32_t *block_size);
/* The same through @fn, from where it stands to its end. */
int blockhash_check_fn(blockhash_read_fn fn, void *data, uint64_t *size, uint32_t *block_size);

#endif /* BLKTRACK_BLOCKHASH_H */
