// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the context, logging and error messages. Reaching the
 * kernel is kernel/ctl.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* ---- logging ------------------------------------------------------------ */

static void log_stderr(void *data, int priority, const char *file, int line,
		       const char *fn, const char *format, va_list args)
{
	fprintf(stderr, "libblktrack: %s: ", fn);
	vfprintf(stderr, format, args);
}

void blktrack_log(const struct blktrack_ctx *ctx, int priority,
		  const char *file, int line, const char *fn,
		  const char *format, ...)
{
	va_list args;

	if (!ctx->log_fn)
		return;
	va_start(args, format);
	ctx->log_fn(ctx->log_data, priority, file, line, fn, format, args);
	va_end(args);
}

BLKTRACK_EXPORT void blktrack_set_log_fn(struct blktrack_ctx *ctx,
					 blktrack_log_fn fn, void *data)
{
	ctx->log_fn = fn;
	ctx->log_data = data;
}

BLKTRACK_EXPORT int blktrack_get_log_priority(const struct blktrack_ctx *ctx)
{
	return ctx->log_priority;
}

BLKTRACK_EXPORT void blktrack_set_log_priority(struct blktrack_ctx *ctx,
					       int priority)
{
	ctx->log_priority = priority;
}

int blktrack_set_error(struct blktrack_ctx *ctx, int err, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), format, args);
	va_end(args);
	dbg(ctx, "error %d: %s\n", err, ctx->errmsg);
	return err;
}

BLKTRACK_EXPORT const char *blktrack_get_error(const struct blktrack_ctx *ctx)
{
	return ctx->errmsg;
}

/* ---- context ------------------------------------------------------------ */

BLKTRACK_EXPORT struct blktrack_ctx *blktrack_new(void)
{
	struct blktrack_ctx *ctx;
	const char *env;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->refcount = 1;
	ctx->fd = -1;
	ctx->log_fn = log_stderr;
	ctx->log_priority = LOG_ERR - 1;	/* silent */
	env = getenv("LIBBLKTRACK_DEBUG");
	if (env && *env && strcmp(env, "0"))
		ctx->log_priority = LOG_DEBUG;
	dbg(ctx, "ctx %p created\n", (void *)ctx);
	return ctx;
}

BLKTRACK_EXPORT struct blktrack_ctx *blktrack_ref(struct blktrack_ctx *ctx)
{
	if (!ctx)
		return NULL;
	ctx->refcount++;
	return ctx;
}

BLKTRACK_EXPORT struct blktrack_ctx *blktrack_unref(struct blktrack_ctx *ctx)
{
	if (!ctx)
		return NULL;
	if (--ctx->refcount > 0)
		return ctx;
	dbg(ctx, "ctx %p released\n", (void *)ctx);
	if (ctx->fd >= 0)
		close(ctx->fd);
	free(ctx);
	return NULL;
}

BLKTRACK_EXPORT int blktrack_get_fd(const struct blktrack_ctx *ctx)
{
	return ctx->fd;
}
