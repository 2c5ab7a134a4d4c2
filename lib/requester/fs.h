/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internal: the built-in filesystem writer's helpers
 * (lib/requester/fs.c, doc/WRITERS.md).
 */
#ifndef BLKTRACK_FS_H
#define BLKTRACK_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The mount point of the filesystem on @dev (/proc/self/mountinfo): 0, or
 * -ENOENT when it is not mounted. */
int fs_mount_point(dev_t dev, char *out, size_t len);
/* The same, and whether the filesystem is mounted read-write (*@rw). */
int fs_mount_state(dev_t dev, char *out, size_t len, bool *rw);
/*
 * FIFREEZE the filesystem mounted at @path. 0 with *@fd open: frozen by us,
 * fs_thaw() it. -EBUSY: it was already frozen by someone else (it stays
 * so). -EOPNOTSUPP: the filesystem cannot freeze.
 */
int fs_freeze(const char *path, int *fd);
/* FITHAW and close @fd. */
int fs_thaw(int fd);

/* "/dev/NAME" of block device @dev (sysfs's name): -ENODEV when there is none. */
int fs_block_device(dev_t dev, char *out, size_t len);
/*
 * The extent map of the regular file on @fd (FIEMAP), its size, inode and
 * generation, into @m. An extent FIEMAP cannot place on the volume (delayed
 * allocation, inline, encoded or encrypted data) makes it untrusted, with
 * the reason in @why. -EOPNOTSUPP: the filesystem has no FIEMAP.
 */
struct filemap;
int fs_file_map(int fd, struct filemap *m, char *why, size_t len);
/*
 * Whether the file's extents, though FIEMAP gives them, do not say where
 * its current data lies on the volume (an XFS realtime file, data
 * journalled by ext4), with the reason in @why.
 */
bool fs_file_unplaceable(int fd, char *why, size_t len);

#endif /* BLKTRACK_FS_H */
