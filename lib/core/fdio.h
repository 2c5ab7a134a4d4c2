/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fdio: file descriptor I/O loops libblktrack shares.
 */
#ifndef BLKTRACK_FDIO_H
#define BLKTRACK_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* write() all @len bytes of @buf to @fd, again after EINTR: 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);

/*
 * pread() all @len bytes at @off, again after EINTR and short reads:
 * 0, -errno, or -ENODATA when the file ends first.
 */
int fd_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* pwrite() all @len bytes of @buf at @off, again after EINTR: 0 or -errno. */
int fd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

#endif /* BLKTRACK_FDIO_H */
