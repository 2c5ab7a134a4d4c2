/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fdio: file descriptor I/O every libblktrack file writer shares.
 */
#ifndef BLKTRACK_FDIO_H
#define BLKTRACK_FDIO_H

#include <stddef.h>

/* write() all @len bytes of @buf to @fd, again after EINTR: 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);

#endif /* BLKTRACK_FDIO_H */
