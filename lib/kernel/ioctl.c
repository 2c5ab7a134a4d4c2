// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: one wrapper per ioctl of <linux/blktrack.h>.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include "kernel/kernel.h"

/*
 * What an errno means for the control ioctls (doc/ABI.md), in words a
 * user can act on.
 */
const char *blktrack_ioctl_strerror(int err)
{
	switch (err) {
	case -ENOENT:
		return "not attached";
	case -EEXIST:
		return "already attached";
	case -ENODEV:
		return "no such block device";
	case -EBUSY:
		return "a checkpoint is already pending (commit or abort it first)";
	case -ENODATA:
		return "no checkpoint is pending";
	case -ESTALE:
		return "stamp does not match the pending checkpoint "
		       "(was it committed, aborted or the volume re-attached?)";
	case -EMSGSIZE:
		return "argument size refused: module and library disagree on the ABI";
	case -EPERM:
		return "permission denied (CAP_SYS_ADMIN needed)";
	case -ENOTTY:
		return "ioctl unknown to the module: module and library disagree on the ABI";
	default:
		return strerror(-err);
	}
}

BLKTRACK_EXPORT int blktrack_version(struct blktrack_ctx *ctx,
				     uint32_t *abi_version, uint64_t *features)
{
	struct blktrack_version v = { .size = sizeof(v) };
	int err;

	err = blktrack_ioctl(ctx, BLKTRACK_IOC_VERSION, &v, "VERSION");
	if (err < 0)
		return err;
	if (abi_version)
		*abi_version = v.abi_version;
	if (features)
		*features = v.features;
	return 0;
}

/* Does the disk of @dev (a partition's parent) support DAX? (sysfs queue/dax) */
static bool dev_is_dax(dev_t dev)
{
	static const char *const fmt[] = { "/sys/dev/block/%u:%u/queue/dax",
					   "/sys/dev/block/%u:%u/../queue/dax" };
	char path[96];
	unsigned int i;
	int c = 0;

	for (i = 0; i < 2 && !c; i++) {
		FILE *f;

		snprintf(path, sizeof(path), fmt[i], major(dev), minor(dev));
		f = fopen(path, "re");
		if (!f)
			continue;
		c = fgetc(f);
		fclose(f);
	}
	return c == '1';
}

BLKTRACK_EXPORT int blktrack_attach(struct blktrack_ctx *ctx, dev_t dev,
				    uint32_t block_size, uint64_t mem_limit)
{
	struct blktrack_attach a = {
		.size = sizeof(a),
		.dev = blktrack_devno_of(dev),
		.block_size = block_size,
		.mem_limit = mem_limit,
	};

	int err;

	dbg(ctx, "attach %u:%u block_size %u mem_limit %llu\n", major(dev),
	    minor(dev), block_size, (unsigned long long)mem_limit);
	err = blktrack_ioctl(ctx, BLKTRACK_IOC_ATTACH, &a, "ATTACH");
	if (err == -EINVAL)
		snprintf(ctx->errmsg, sizeof(ctx->errmsg),
			 "invalid argument (block size must be 0 or a power of two "
			 "from %u to %u)", BLKTRACK_BLOCK_SIZE_MIN,
			 BLKTRACK_BLOCK_SIZE_MAX);
	else if (err == -EOPNOTSUPP && dev_is_dax(dev))
		snprintf(ctx->errmsg, sizeof(ctx->errmsg),
			 "DAX-capable device: a filesystem mounted with -o dax writes it "
			 "without the block layer, where no write can be tracked; use a "
			 "sector-mode namespace (ndctl create-namespace -m sector)");
	else if (err == -EOPNOTSUPP)
		snprintf(ctx->errmsg, sizeof(ctx->errmsg),
			 "this kernel cannot see every write of the device (see the kernel log)");
	return err;
}

BLKTRACK_EXPORT int blktrack_detach(struct blktrack_ctx *ctx, dev_t dev)
{
	struct blktrack_dev_arg a = {
		.size = sizeof(a),
		.dev = blktrack_devno_of(dev),
	};

	dbg(ctx, "detach %u:%u\n", major(dev), minor(dev));
	return blktrack_ioctl(ctx, BLKTRACK_IOC_DETACH, &a, "DETACH");
}

BLKTRACK_EXPORT int blktrack_list(struct blktrack_ctx *ctx, dev_t **devs,
				  size_t *count)
{
	struct blktrack_devno *d = NULL, *nd;
	struct blktrack_list l;
	uint32_t cap = 0, i;
	dev_t *out;
	int err;

	/* Volumes may come and go between calls: retry until it fits. */
	for (;;) {
		memset(&l, 0, sizeof(l));
		l.size = sizeof(l);
		l.devs_ptr = (uintptr_t)d;
		l.capacity = cap;
		err = blktrack_ioctl(ctx, BLKTRACK_IOC_LIST, &l, "LIST");
		if (err < 0) {
			free(d);
			return err;
		}
		if (l.count <= cap)
			break;
		cap = l.count + 4;
		nd = realloc(d, cap * sizeof(*d));
		if (!nd) {
			free(d);
			return -ENOMEM;
		}
		d = nd;
	}

	out = NULL;
	if (l.count) {
		out = calloc(l.count, sizeof(*out));
		if (!out) {
			free(d);
			return -ENOMEM;
		}
	}
	for (i = 0; i < l.count; i++)
		out[i] = makedev(d[i].major, d[i].minor);
	free(d);
	*devs = out;
	*count = l.count;
	return 0;
}

BLKTRACK_EXPORT int blktrack_status(struct blktrack_ctx *ctx, dev_t dev,
				    struct blktrack_status *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->dev = blktrack_devno_of(dev);
	return blktrack_ioctl(ctx, BLKTRACK_IOC_STATUS, st, "STATUS");
}

BLKTRACK_EXPORT int blktrack_checkpoint(struct blktrack_ctx *ctx,
					const dev_t *devs, size_t n,
					struct blktrack_ckpt *out)
{
	struct blktrack_checkpoint_vol *vols;
	struct blktrack_checkpoint c;
	size_t i;
	int err;

	if (n == 0 || n > BLKTRACK_CHECKPOINT_MAX)
		return blktrack_set_error(ctx, -EINVAL,
			"a checkpoint takes 1 to %u volumes", BLKTRACK_CHECKPOINT_MAX);
	vols = calloc(n, sizeof(*vols));
	if (!vols)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		vols[i].dev = blktrack_devno_of(devs[i]);

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.vols_ptr = (uintptr_t)vols;
	c.count = n;
	err = blktrack_ioctl(ctx, BLKTRACK_IOC_CHECKPOINT, &c, "CHECKPOINT");
	if (err == -EINVAL)
		snprintf(ctx->errmsg, sizeof(ctx->errmsg),
			 "invalid checkpoint (a volume listed twice?)");
	if (err < 0)
		goto out;
	for (i = 0; i < n; i++) {
		out[i].dev = devs[i];
		out[i].stamp = vols[i].stamp;
		out[i].dirty = vols[i].dirty;
	}
out:
	free(vols);
	return err;
}

int kernel_checkpoint_snap(struct blktrack_ctx *ctx, const dev_t *devs, size_t n,
			   uint32_t flags, uint64_t store_limit, int store_fd,
			   struct blktrack_ckpt *out)
{
	struct blktrack_checkpoint_vol vols[BLKTRACK_CHECKPOINT_MAX] = { 0 };
	struct blktrack_checkpoint_snap c = {
		.size = sizeof(c),
		.vols_ptr = (uintptr_t)vols,
		.count = n,
		.flags = flags | (store_fd >= 0 ? BLKTRACK_SNAP_STORE_FD : 0),
		.store_limit = store_limit,
		.store_fd = store_fd >= 0 ? store_fd : 0,
	};
	size_t i;
	int err;

	if (n == 0 || n > BLKTRACK_CHECKPOINT_MAX)
		return blktrack_set_error(ctx, -EINVAL,
			"a checkpoint takes 1 to %u volumes", BLKTRACK_CHECKPOINT_MAX);
	for (i = 0; i < n; i++)
		vols[i].dev = blktrack_devno_of(devs[i]);
	err = blktrack_ioctl(ctx, BLKTRACK_IOC_CHECKPOINT_SNAP, &c, "CHECKPOINT_SNAP");
	if (err == -EOPNOTSUPP)
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "this kernel cannot intercept "
			 "writes for a snapshot (see the kernel log)");
	else if (err == -EDEADLK)
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "the snapshot's store lies on the "
			 "volume itself: its writes would wait for their own copies");
	if (err < 0)
		return err;
	for (i = 0; i < n; i++) {
		out[i].dev = devs[i];
		out[i].stamp = vols[i].stamp;
		out[i].dirty = vols[i].dirty;
	}
	return 0;
}

BLKTRACK_EXPORT int blktrack_checkpoint_snap(struct blktrack_ctx *ctx, dev_t dev,
					     uint32_t flags, uint64_t store_limit,
					     int store_fd, struct blktrack_ckpt *out)
{
	return kernel_checkpoint_snap(ctx, &dev, 1, flags, store_limit, store_fd, out);
}

BLKTRACK_EXPORT int blktrack_snap_read(struct blktrack_ctx *ctx, dev_t dev,
				       const struct blktrack_stamp *stamp, uint64_t off,
				       uint64_t len, void *buf, uint32_t flags)
{
	struct blktrack_snap_read rd = {
		.size = sizeof(rd),
		.dev = blktrack_devno_of(dev),
		.flags = flags,
		.stamp = *stamp,
		.offset = off,
		.length = len,
		.buf_ptr = (uintptr_t)buf,
	};

	/*
	 * Not through blktrack_ioctl(): no message to set from several threads.
	 * The control device is open: the snapshot's checkpoint opened it.
	 */
	if (!ctx->kernel)
		return ioctl(ctx->fd, BLKTRACK_IOC_SNAP_READ, &rd) < 0 ? -errno : 0;
	if (!ctx->kernel->ioctl)
		return -EOPNOTSUPP;
	return ctx->kernel->ioctl(ctx, BLKTRACK_IOC_SNAP_READ, &rd);
}

BLKTRACK_EXPORT int blktrack_snap_status(struct blktrack_ctx *ctx, dev_t dev,
					 struct blktrack_snap_status *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->dev = blktrack_devno_of(dev);
	return blktrack_ioctl(ctx, BLKTRACK_IOC_SNAP_STATUS, st, "SNAP_STATUS");
}

static int stamp_ioctl(struct blktrack_ctx *ctx, unsigned long cmd,
		       const char *name, dev_t dev,
		       const struct blktrack_stamp *stamp)
{
	struct blktrack_stamp_arg a = {
		.size = sizeof(a),
		.dev = blktrack_devno_of(dev),
		.stamp = *stamp,
	};

	dbg(ctx, "%s %u:%u epoch %llu\n", name, major(dev), minor(dev),
	    (unsigned long long)stamp->epoch);
	return blktrack_ioctl(ctx, cmd, &a, name);
}

BLKTRACK_EXPORT int blktrack_commit(struct blktrack_ctx *ctx, dev_t dev,
				    const struct blktrack_stamp *stamp)
{
	return stamp_ioctl(ctx, BLKTRACK_IOC_COMMIT, "COMMIT", dev, stamp);
}

BLKTRACK_EXPORT int blktrack_abort(struct blktrack_ctx *ctx, dev_t dev,
				   const struct blktrack_stamp *stamp)
{
	return stamp_ioctl(ctx, BLKTRACK_IOC_ABORT, "ABORT", dev, stamp);
}
