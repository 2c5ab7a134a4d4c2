/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internals of kernel/: the one way to the control device.
 * Only requester/ (and kernel/ itself) may include it (doc/ARCHITECTURE.md).
 */
#ifndef BLKTRACK_KERNEL_H
#define BLKTRACK_KERNEL_H

#include <sys/sysmacros.h>
#include "core/core.h"

/* An ioctl on the control device (or the context's fake): 0 or -errno, logged. */
int blktrack_ioctl(struct blktrack_ctx *ctx, unsigned long cmd, void *arg,
		   const char *name);

/*
 * What @path names, as the context's kernel sees it (blktrack_dev_from_path()
 * and blktrack_volume_identify() without a fake): 0 or -errno.
 */
int kernel_dev_from_path(struct blktrack_ctx *ctx, const char *path, dev_t *dev);
int kernel_volume_identify(struct blktrack_ctx *ctx, const char *path,
			   struct blktrack_volume_id *vid);

/*
 * CHECKPOINT_SNAP of @n volumes at one instant, one store for them all
 * (blktrack_checkpoint_snap() takes one): out[i] is devs[i]'s.
 */
int kernel_checkpoint_snap(struct blktrack_ctx *ctx, const dev_t *devs, size_t n,
			   uint32_t flags, uint64_t store_limit, int store_fd,
			   struct blktrack_ckpt *out);

/* What an ioctl errno means, in words a user can act on. */
const char *blktrack_ioctl_strerror(int err);

static inline struct blktrack_devno blktrack_devno_of(dev_t dev)
{
	struct blktrack_devno d = { .major = major(dev), .minor = minor(dev) };

	return d;
}

#endif /* BLKTRACK_KERNEL_H */
