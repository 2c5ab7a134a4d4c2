/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File extent maps: where each byte of a file lies on its volume, as FIEMAP
 * gave it at a checkpoint (lib/requester/fs.c reads it), and what a
 * per-file backup derives from two of them. Internal to libblktrack;
 * doc/FILES.md explains the model, doc/FORMAT.md the FMAP records a per-file
 * backup file carries.
 *
 * Typical use (one per-file backup, blocks of the volume's tracking size):
 *
 *	fs_file_map(fd, &now, why, len);                at the checkpoint
 *	filemap_decode(&prev, rec.offset, rec.data, n); the parent's FMAP records
 *	filemap_changed(&now, &prev, vol_delta, bs, &file_delta);
 *	filemap_volume_blocks(&now, want, bs, &vol_want);  the snapshot keeps these
 *	filemap_piece(&now, off, len, &phys, &n);        read: where off lies
 *	filemap_encode(&now, i, buf, cap, &used);        FMAP records of the new file
 *	filemap_free(&now);
 *
 * A file's blocks are its bytes [k * bs, (k + 1) * bs), of the volume's
 * tracking block size bs, numbered from its start; the last may be partial.
 * Every function that can fail returns 0 or a negative errno.
 */
#ifndef FILEMAP_H
#define FILEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blockset;

#define FILEMAP_UNWRITTEN	0x1	/* allocated, reads as zeros */

struct fext {
	uint64_t logical;		/* file byte offset */
	uint64_t physical;		/* volume byte offset */
	uint64_t length;		/* bytes, > 0 */
	uint32_t flags;			/* FILEMAP_UNWRITTEN */
};

struct filemap {
	uint64_t size;			/* file bytes */
	uint64_t ino, generation;	/* the file's identity (FS_IOC_GETVERSION) */
	bool trusted;			/* false: an extent FIEMAP could not place */
	bool shared;			/* an extent is shared with another file (not encoded) */
	struct fext *ext;		/* sorted by logical, without overlap */
	size_t n, cap;
	uint64_t declared;		/* decoding: the extents the first record announces */
};

void filemap_init(struct filemap *m);
void filemap_free(struct filemap *m);
/* Append an extent after the last one (-EINVAL: out of order, empty, wraps). */
int filemap_add(struct filemap *m, uint64_t logical, uint64_t physical, uint64_t length,
		uint32_t flags);

/*
 * The file blocks that may differ between the points @prev and @now were
 * taken at, given @vol_delta, the volume blocks written between them: every
 * file block whose bytes lie on a written volume block (through @now's
 * extents), every range whose placement changed (an extent that moved,
 * appeared, vanished or changed between written and unwritten), and the
 * blocks past the smaller of the two sizes. With no @prev, an untrusted map,
 * or another file (inode or generation): every block of @now.
 */
int filemap_changed(const struct filemap *now, const struct filemap *prev,
		    const struct blockset *vol_delta, uint32_t bs, struct blockset **out);

/* The volume blocks holding the written bytes of @want's file blocks. */
int filemap_volume_blocks(const struct filemap *m, const struct blockset *want,
			  uint32_t bs, struct blockset **out);

/*
 * Where file byte @off lies: *@phys its volume offset, or UINT64_MAX when it
 * reads as zeros (a hole, an unwritten extent); *@len how many bytes from
 * @off on lie the same way (at most @max).
 */
void filemap_piece(const struct filemap *m, uint64_t off, uint64_t max, uint64_t *phys,
		   uint64_t *len);

/*
 * The FMAP records (doc/FORMAT.md): record @index starts with extent
 * *@first and holds what fits in @cap bytes (record 0 also the header).
 * filemap_encode() writes it into @buf and says how many bytes and the next
 * record's first extent; it returns 1 while records remain, 0 after the
 * last. filemap_decode() takes the records in order (@first: the record's
 * offset field) into @m (filemap_init()ed); filemap_decoded() then checks
 * that none is missing (-EBADMSG).
 */
#define FILEMAP_HEADER_LEN	40
#define FILEMAP_EXTENT_LEN	32
int filemap_encode(const struct filemap *m, uint64_t *first, void *buf, size_t cap,
		   size_t *used);
int filemap_decode(struct filemap *m, uint64_t first, const void *buf, size_t len);
int filemap_decoded(const struct filemap *m);

/*
 * The same records in a backup file: written by @w (right after the header:
 * readers stop at the first block), each of at most @cap bytes (the
 * stream's record_max); read back from a backup file through @fn (a
 * bfile_read_fn, from its start): 0, -ENOENT when it holds no map (with a
 * sentence in @msg), or the reader's -errno.
 */
struct bfile_writer;
int filemap_write_records(struct bfile_writer *w, const struct filemap *m, size_t cap);
int filemap_read_records(ssize_t (*fn)(void *data, void *buf, size_t len), void *data,
			 struct filemap *m, char *msg, size_t len);

#endif /* FILEMAP_H */
