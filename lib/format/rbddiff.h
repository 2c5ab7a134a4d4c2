/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rbddiff: a writer of Ceph's RBD diff stream, as doc/dev/rbd-diff.rst in
 * Ceph's source describes it: a banner, then records of a one-byte tag:
 * 'f' from-snap and 't' to-snap (le32 length, the name), 's' the image
 * size (le64), data records 'w' (le64 offset, le64 length, the bytes) and
 * 'z' (le64 offset, le64 length: zeros), and 'e', the end. Version 2 puts
 * a le64 length of what follows after every tag but 'e'. Version 1 is what
 * `rbd export-diff` writes and `rbd import-diff` reads (blktrack export
 * --format rbd-diff, doc/FILES.md); version 2 is read only inside the image
 * stream of `rbd export --export-format 2`. Internal to libblktrack.
 *
 * Typical use:
 *
 *	rbddiff_begin(fd, RBDDIFF_V1, "blktrack-4", "blktrack-7", size, &w);
 *	                                        from NULL: no 'f' (a first image)
 *	rbddiff_write(w, offset, len, data);    'w': @len bytes at @offset
 *	rbddiff_zero(w, offset, len);           'z': @len bytes of zeros
 *	rbddiff_end(w);                         'e'; frees w
 *
 * Each record goes to @fd as it is given, the caller's bytes straight
 * from its buffer: nothing is held back, so the memory used is a record
 * header whatever the image's size, and the fd may be a pipe (only write()).
 * Data records come in ascending offset order without overlap, each within
 * the size, of at least one byte: otherwise -ERANGE (-EINVAL for a zero
 * length). A name is 1 to RBDDIFF_NAME_MAX bytes (what `rbd import-diff`
 * reads): -EINVAL, -ENAMETOOLONG. Every function that can fail returns 0
 * or a negative errno. A refused call writes nothing and changes nothing;
 * a write error sticks: every later call returns it. Until rbddiff_end()
 * returned 0 the stream has no 'e', and `rbd import-diff` refuses it.
 */
#ifndef BLKTRACK_RBDDIFF_H
#define BLKTRACK_RBDDIFF_H

#include <stdint.h>

#define RBDDIFF_V1		1U	/* "rbd diff v1\n": rbd import-diff */
#define RBDDIFF_V2		2U	/* "rbd diff v2\n": a length after each tag */
#define RBDDIFF_NAME_MAX	4096U

struct rbddiff_writer;

/* The banner and the metadata records ('f', 't', 's'); *@out: NULL on failure. */
int rbddiff_begin(int fd, unsigned int version, const char *from, const char *to,
		  uint64_t size, struct rbddiff_writer **out);
int rbddiff_write(struct rbddiff_writer *w, uint64_t offset, uint64_t len, const void *data);
int rbddiff_zero(struct rbddiff_writer *w, uint64_t offset, uint64_t len);
/* 'e', and free @w whatever the result. The fd stays the caller's. */
int rbddiff_end(struct rbddiff_writer *w);
/* Free @w without 'e' (NULL: nothing). */
void rbddiff_abort(struct rbddiff_writer *w);

#endif /* BLKTRACK_RBDDIFF_H */
