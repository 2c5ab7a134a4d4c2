/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * readq: read pieces of a file or device with several reads in flight, and
 * hand them to the caller in the order they were added.
 *
 *	readq_open(fd, piece_max, depth, fn, data, &q);
 *	readq_add(q, off, len);        may first hand earlier pieces to fn
 *	...
 *	readq_finish(q);               hands the rest to fn
 *	readq_free(q);
 *
 * A requester that reads, then formats, then reads again leaves the device
 * idle while it formats and pays each small read's latency in full; with
 * @depth reads queued ahead (one thread each, pread() on the shared fd) the
 * device stays busy and small extents are read in parallel
 * (doc/BENCHMARKS-HISTORY.md, "Backup and restore (issue 3)"). Memory: @depth
 * buffers of @piece_max bytes, aligned for O_DIRECT.
 */
#ifndef BLKTRACK_READQ_H
#define BLKTRACK_READQ_H

#include <stddef.h>
#include <stdint.h>

struct readq;

/* Called in order, on the thread that called readq_add()/readq_finish(). */
typedef int (*readq_fn)(void *data, uint64_t off, const void *buf, size_t len);

/* 0 or -errno. @depth >= 1 reads in flight at most. */
int readq_open(int fd, size_t piece_max, unsigned int depth, readq_fn fn, void *data,
	       struct readq **out);

/*
 * The same with reads made by @read (0 or -errno; called from the reader
 * threads, at once for different pieces) instead of pread() on an fd: a
 * backup reads a snapshot through an ioctl.
 */
typedef int (*readq_read_fn)(void *rdata, void *buf, size_t len, uint64_t off);
int readq_open_fn(readq_read_fn read, void *rdata, size_t piece_max, unsigned int depth,
		  readq_fn fn, void *data, struct readq **out);

/*
 * Queue a read of @len (<= piece_max) bytes at @off. When @depth reads are
 * queued, first wait for the oldest and give it to fn. Returns 0, fn's
 * error, or a read's -errno (readq_failed_at() says where); after an error
 * nothing more is read and only readq_free() is useful.
 */
int readq_add(struct readq *q, uint64_t off, size_t len);

/* Wait for every queued read and give each to fn, in order. */
int readq_finish(struct readq *q);

/* The offset of the read that failed; UINT64_MAX when none did. */
uint64_t readq_failed_at(const struct readq *q);

/* Stop the reads in flight (waits for them) and free everything. */
void readq_free(struct readq *q);

#endif /* BLKTRACK_READQ_H */
