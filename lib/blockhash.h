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
 *	bhash_writer_open(fd, size, block_size, &w);
 *	bhash_reader_open(parent_fd, &p);        optional
 *	for each block b in order:
 *		bhash_get(p, &old)              the parent's, or -ENODATA past it
 *		bhash_put(w, changed ? bhash_block(data, len) : old)
 *	bhash_writer_finish(w);                  trailer; the caller fsyncs
 *	bhash_reader_finish(p);                  -EBADMSG: the parent was corrupt
 *
 * A reader's hashes are trusted only once bhash_reader_finish() returned
 * 0: a consumer that acts on them (a resync deciding what to store) either
 * checks the file first with bhash_check() or fails when finish fails.
 *
 * Errors: -EBADMSG a corrupt or truncated file (bad magic, header, digest,
 * length); -EPROTONOSUPPORT an unknown version or flag; -ENODATA read past
 * the last block; others from read()/write(), -ENOMEM.
 */
#ifndef BLKTRACK_BLOCKHASH_H
#define BLKTRACK_BLOCKHASH_H

#include <stddef.h>
#include <stdint.h>

#define BHASH_VERSION	1U

struct bhash_writer;
struct bhash_reader;

/* The hash of one block's bytes (@len < block size for a partial tail). */
uint64_t bhash_block(const void *data, size_t len);

int bhash_writer_open(int fd, uint64_t volume_size, uint32_t block_size,
		      struct bhash_writer **out);
int bhash_put(struct bhash_writer *w, uint64_t hash);
/* Exactly nr_blocks hashes must have been put. Writes the trailer, frees @w. */
int bhash_writer_finish(struct bhash_writer *w);
void bhash_writer_abort(struct bhash_writer *w);

int bhash_reader_open(int fd, struct bhash_reader **out);
uint64_t bhash_reader_volume_size(const struct bhash_reader *r);
uint32_t bhash_reader_block_size(const struct bhash_reader *r);
uint64_t bhash_reader_blocks(const struct bhash_reader *r);
int bhash_get(struct bhash_reader *r, uint64_t *hash);
/* Skip the hashes not read yet, check the digest and the end; frees @r. */
int bhash_reader_finish(struct bhash_reader *r);
void bhash_reader_free(struct bhash_reader *r);

/* Read the whole file at @fd and check it; *@size, *@block_size on success. */
int bhash_check(int fd, uint64_t *size, uint32_t *block_size);

#endif /* BLKTRACK_BLOCKHASH_H */
