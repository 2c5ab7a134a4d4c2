/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Block sets: sets of block numbers (delta maps, what a backup stores), a
 * thin wrapper over CRoaring compressed bitmaps. Internal to libblktrack.
 *
 * Typical use:
 *
 *	blockset_from_extents(ext, n, block_size, &delta);   READ_EXTENTS
 *	blockset_new(&want);
 *	blockset_or(want, delta);                            compose
 *	blockset_andnot(want, excluded);
 *	blockset_for_each_extent(want, copy_extent, &ctx);   read blocks
 *	blockset_serialize(want, &buf, &len);                store
 *	blockset_free(want);
 *
 * Block numbers are 64-bit in the API, but the CRoaring of Debian 12
 * (0.2.66) has only 32-bit bitmaps: a set holds blocks below
 * BLOCKSET_MAX_BLOCKS (2^32, 16 TiB at 4 KiB blocks); adding a block at or
 * above it fails with -EFBIG. The serialized form has a version so that a
 * 64-bit container can be added later.
 *
 * Serialized form (all little-endian), doc/REPOSITORY.md has the table:
 *	0  magic "BTBS"   4  version u16 (1)   6  flags u16 (0)
 *	8  payload bytes u64   16  cardinality u64
 *	24 payload: CRoaring portable serialization
 *	24 + payload bytes: XXH3-64 of every byte before it
 *
 * Every function that can fail returns 0 or a negative errno.
 */
#ifndef BLOCKSET_H
#define BLOCKSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blockset;
struct blktrack_extent;

#define BLOCKSET_MAX_BLOCKS	(UINT64_C(1) << 32)
#define BLOCKSET_MAGIC		"BTBS"
#define BLOCKSET_VERSION	1
#define BLOCKSET_HEADER_SIZE	24
#define BLOCKSET_TRAILER_SIZE	8

int blockset_new(struct blockset **out);
void blockset_free(struct blockset *s);
int blockset_copy(const struct blockset *s, struct blockset **out);

/* Add blocks [first, first + count); count 0 does nothing. -EFBIG past the limit. */
int blockset_add_range(struct blockset *s, uint64_t first, uint64_t count);
/* Remove blocks [first, first + count) (none past the limit). */
void blockset_remove_range(struct blockset *s, uint64_t first, uint64_t count);
/* @dst |= @src; @dst &= ~@src. */
int blockset_or(struct blockset *dst, const struct blockset *src);
int blockset_andnot(struct blockset *dst, const struct blockset *src);

uint64_t blockset_cardinality(const struct blockset *s);
bool blockset_contains(const struct blockset *s, uint64_t block);
bool blockset_equal(const struct blockset *a, const struct blockset *b);

/*
 * Call @fn once per maximal run of consecutive blocks, in increasing order.
 * A non-zero return of @fn stops the walk and is returned.
 */
typedef int (*blockset_extent_fn)(void *data, uint64_t first, uint64_t count);
int blockset_for_each_extent(const struct blockset *s, blockset_extent_fn fn,
			     void *data);
/* The same runs as an array: *@first and *@count malloc()ed (NULL when *@n is 0). */
int blockset_extents(const struct blockset *s, uint64_t **first,
		     uint64_t **count, size_t *n);

/*
 * The blocks a list of byte extents touches (READ_EXTENTS output): a block
 * is in the set when any byte of it is. -EINVAL for a zero block size or
 * an extent that wraps around.
 */
int blockset_from_extents(const struct blktrack_extent *ext, size_t n,
			  uint32_t block_size, struct blockset **out);

/* *@buf is malloc()ed. */
int blockset_serialize(const struct blockset *s, void **buf, size_t *len);
/*
 * -EBADMSG: wrong magic, length, checksum or payload (a corrupt file);
 * -EPROTONOSUPPORT: a version or flag this code does not know.
 */
int blockset_deserialize(const void *buf, size_t len, struct blockset **out);

#endif /* BLOCKSET_H */
