/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A qcow2 image writer: version 3 as QEMU's specification describes it
 * (docs/interop/qcow2.txt in QEMU's source), 64 KiB clusters, 16-bit
 * refcounts, no compression, encryption, snapshots or extended L2 entries.
 * It writes a new image: a base, or an overlay whose backing file is
 * another qcow2 image (blktrack export, doc/FILES.md). Internal to
 * libblktrack.
 *
 * Typical use:
 *
 *	qcow2_writer_open(fd, size, "vm.3.qcow2", &w);  NULL: no backing file
 *	qcow2_write_cluster(w, index, data);            64 KiB of guest data
 *	qcow2_write_cluster(w, index, NULL);            reads as zeros
 *	qcow2_writer_finish(w);                         tables, refcounts, header
 *
 * A cluster not written reads from the backing file (or as zeros without
 * one). The virtual size is @size rounded up to 512 bytes (QEMU counts
 * sectors): the bytes past @size read as zeros. Data clusters go to the file as they come; the tables and the
 * header at the finish, so the file is an image only once that returned 0.
 * Every function that can fail returns 0 or a negative errno.
 */
#ifndef QCOW2_H
#define QCOW2_H

#include <stdint.h>

#define QCOW2_CLUSTER_BITS	16
#define QCOW2_CLUSTER_SIZE	(1U << QCOW2_CLUSTER_BITS)
#define QCOW2_BACKING_MAX	1023	/* bytes of a backing file name */

struct qcow2_writer;

int qcow2_writer_open(int fd, uint64_t size, const char *backing,
		      struct qcow2_writer **out);
/* Guest cluster @index (each at most once): @data QCOW2_CLUSTER_SIZE bytes, or NULL for zeros. */
int qcow2_write_cluster(struct qcow2_writer *w, uint64_t index, const void *data);
/* Write the tables and the header and free @w (whatever the result). */
int qcow2_writer_finish(struct qcow2_writer *w);
void qcow2_writer_abort(struct qcow2_writer *w);

#endif /* QCOW2_H */
