/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internals: the context, logging, errors, test hooks. Every
 * layer of lib/ may use it (doc/ARCHITECTURE.md).
 */
#ifndef BLKTRACK_CORE_H
#define BLKTRACK_CORE_H

#include <stdlib.h>
#include <syslog.h>
#include "libblktrack.h"

struct blktrack_ctx;

/*
 * How the context reaches the kernel and sees the volumes it tracks
 * (kernel/): the ioctls of <linux/blktrack.h>, and what a path names. NULL
 * in a context means the real ones: the control device (kernel/ctl.c),
 * stat() and libblkid (kernel/volume.c). A unit test installs an
 * in-process fake (tests/unit/fake_kernel.c: plain files as volumes); a
 * member it leaves NULL fails with -EOPNOTSUPP, it never reaches the real
 * system. Each returns 0 or -errno.
 */
struct blktrack_kernel_ops {
	int (*ioctl)(struct blktrack_ctx *ctx, unsigned long cmd, void *arg);
	/* The volume @path names: its device number; -ENOTBLK when none. */
	int (*dev_from_path)(struct blktrack_ctx *ctx, const char *path, dev_t *dev);
	/* Its identity, as blktrack_volume_identify() gives it. */
	int (*volume_identify)(struct blktrack_ctx *ctx, const char *path,
			       struct blktrack_volume_id *vid);
};

struct blktrack_ctx {
	int refcount;
	int fd;				/* the control device, -1 until opened */
	const struct blktrack_kernel_ops *kernel;
	int log_priority;
	blktrack_log_fn log_fn;
	void *log_data;
	char errmsg[512];
};

void blktrack_log(const struct blktrack_ctx *ctx, int priority,
		  const char *file, int line, const char *fn,
		  const char *format, ...)
	__attribute__((format(printf, 6, 7)));

#define blktrack_log_cond(ctx, prio, ...)					\
	do {									\
		if ((ctx) && (ctx)->log_priority >= (prio))			\
			blktrack_log((ctx), (prio), __FILE__, __LINE__,		\
				     __func__, __VA_ARGS__);			\
	} while (0)

#define dbg(ctx, ...)	blktrack_log_cond(ctx, LOG_DEBUG, __VA_ARGS__)
#define info(ctx, ...)	blktrack_log_cond(ctx, LOG_INFO, __VA_ARGS__)
/*
 * What a user must hear of even when the call succeeds (a fuzzy read, a
 * fall-back, a writer's failure that was ignored): the CLI shows
 * LOG_WARNING by default. crit(): a system left in a bad state (a
 * filesystem left frozen), shown even with -q.
 */
#define warning(ctx, ...) blktrack_log_cond(ctx, LOG_WARNING, __VA_ARGS__)
#define crit(ctx, ...)	blktrack_log_cond(ctx, LOG_CRIT, __VA_ARGS__)

/* Record a message for blktrack_get_error(), log it at debug, return @err. */
int blktrack_set_error(struct blktrack_ctx *ctx, int err, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A test hook's environment variable (BLKTRACK_TEST_*, tests/vm): read only
 * in test builds (the Makefile's TEST_HOOKS=1, the default of build/, which
 * the tests run); `make install` builds without them, so an installed
 * blktrack run as root ignores them.
 */
static inline const char *test_hook(const char *name)
{
#ifdef BLKTRACK_TEST_HOOKS
	return getenv(name);
#else
	(void)name;
	return NULL;
#endif
}

#endif /* BLKTRACK_CORE_H */
