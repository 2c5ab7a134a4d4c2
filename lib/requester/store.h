/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internal: the snapshot's store (lib/requester/store.c).
 * Returns 0 or a negative errno, with a sentence in @msg that names the path.
 */
#ifndef BLKTRACK_STORE_H
#define BLKTRACK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * --snapshot-store @path, open for the kernel to write the copies to: a
 * directory (an unnamed file in it, gone when the snapshot ends), a block
 * device (exclusively: nothing mounts it meanwhile) or a regular file. A
 * device or file that holds a filesystem or a partition table (libblkid)
 * is refused with -EEXIST unless @force: it would be overwritten. A loop
 * device over a file on one of the @n @volumes (its disk or a partition of
 * it) is refused with -EDEADLK: its writes would wait behind the
 * snapshot's held writes.
 */
int store_open(const char *path, const dev_t *volumes, size_t n, bool force, int *fd,
	       char *msg, size_t len);

/* Do block devices @a and @b share sectors (one is the other or its disk)? */
/* The disk a partition @dev is part of; @dev itself for a whole disk. */
dev_t whole_disk(dev_t dev);
bool devs_overlap(dev_t a, dev_t b);

#endif /* BLKTRACK_STORE_H */
