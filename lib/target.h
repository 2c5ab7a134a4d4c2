/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internal: the files and devices blktrack writes over, a
 * restore's target and a snapshot's store (lib/target.c).
 *
 * Typical use:
 *
 *	store_open(path, force, &fd, msg, len);        --snapshot-store PATH
 *
 * Every function returns 0 or a negative errno, with a sentence in @msg
 * that names the path.
 */
#ifndef BLKTRACK_TARGET_H
#define BLKTRACK_TARGET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * --snapshot-store @path, open for the kernel to write the copies to: a
 * directory (an unnamed file in it, gone when the snapshot ends), a block
 * device (exclusively: nothing mounts it meanwhile) or a regular file.
 */
int store_open(const char *path, int *fd, char *msg, size_t len);

#endif /* BLKTRACK_TARGET_H */
