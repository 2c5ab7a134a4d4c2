// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the control device. Opening it (loading the module with
 * libkmod when it is not there, checking its ABI version) and the one
 * function every ioctl goes through. The only code that opens
 * /dev/blktrack-ctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <libkmod.h>

#include "kernel/kernel.h"

#define CTL_PATH	"/dev/" BLKTRACK_CTL_NAME
#define CTL_SYSFS_DEV	"/sys/class/misc/" BLKTRACK_CTL_NAME "/dev"
#define MODULE_NAME	"blktrack"

int blktrack_ioctl(struct blktrack_ctx *ctx, unsigned long cmd, void *arg,
		   const char *name)
{
	int err = 0;

	if (ctx->kernel) {
		err = ctx->kernel->ioctl ? ctx->kernel->ioctl(ctx, cmd, arg) :
		      -EOPNOTSUPP;
	} else {
		if (ctx->fd < 0) {
			err = blktrack_open(ctx);
			if (err < 0)
				return err;
		}
		if (ioctl(ctx->fd, cmd, arg) < 0)
			err = -errno;
	}
	if (err) {
		dbg(ctx, "%s: %s\n", name, strerror(-err));
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s",
			 blktrack_ioctl_strerror(err));
		return err;
	}
	dbg(ctx, "%s: ok\n", name);
	return 0;
}

/* ---- loading the module ------------------------------------------------- */

static int load_module_path(struct blktrack_ctx *ctx, struct kmod_ctx *kctx,
			    const char *path)
{
	struct kmod_module *mod;
	int err;

	err = kmod_module_new_from_path(kctx, path, &mod);
	if (err < 0)
		return blktrack_set_error(ctx, err,
			"cannot use module file %s (BLKTRACK_MODULE): %s",
			path, strerror(-err));
	err = kmod_module_insert_module(mod, 0, NULL);
	kmod_module_unref(mod);
	if (err == -EEXIST)
		return 0;
	if (err < 0)
		return blktrack_set_error(ctx, err,
			"cannot load module %s (BLKTRACK_MODULE): %s",
			path, strerror(-err));
	dbg(ctx, "loaded %s\n", path);
	return 0;
}

static int load_module_name(struct blktrack_ctx *ctx, struct kmod_ctx *kctx)
{
	struct kmod_module *mod;
	struct utsname uts;
	int err;

	uname(&uts);
	err = kmod_module_new_from_name(kctx, MODULE_NAME, &mod);
	if (err < 0)
		return blktrack_set_error(ctx, err, "libkmod: %s", strerror(-err));
	err = kmod_module_probe_insert_module(mod, 0, NULL, NULL, NULL, NULL);
	kmod_module_unref(mod);
	if (err == -ENOENT)
		return blktrack_set_error(ctx, -ENOENT,
			"module %s is not installed for kernel %s "
			"(install it, or set BLKTRACK_MODULE=/path/to/blktrack.ko)",
			MODULE_NAME, uts.release);
	if (err < 0)
		return blktrack_set_error(ctx, err, "cannot load module %s: %s",
					  MODULE_NAME, strerror(-err));
	dbg(ctx, "loaded module %s\n", MODULE_NAME);
	return 0;
}

/* libkmod's messages join ours, at our priority. */
static void kmod_log(void *data, int priority, const char *file, int line,
		     const char *fn, const char *format, va_list args)
{
	struct blktrack_ctx *ctx = data;

	if (ctx->log_fn && ctx->log_priority >= LOG_DEBUG)
		ctx->log_fn(ctx->log_data, LOG_DEBUG, file, line, fn, format, args);
}

static int load_module(struct blktrack_ctx *ctx)
{
	struct kmod_ctx *kctx;
	const char *path;
	int err;

	/* Loads code into the kernel: never from a setuid or setcap caller's environment. */
	path = secure_getenv("BLKTRACK_MODULE");
	if (path && !strcmp(path, "none"))
		return blktrack_set_error(ctx, -ENOENT,
			"%s is missing and BLKTRACK_MODULE=none forbids loading "
			"the module", CTL_PATH);
	kctx = kmod_new(NULL, NULL);
	if (!kctx)
		return blktrack_set_error(ctx, -ENOMEM, "libkmod: cannot create a context");
	kmod_set_log_fn(kctx, kmod_log, ctx);
	kmod_set_log_priority(kctx, ctx->log_priority >= LOG_DEBUG ? LOG_DEBUG : LOG_ERR);
	if (path && *path)
		err = load_module_path(ctx, kctx, path);
	else
		err = load_module_name(ctx, kctx);
	kmod_unref(kctx);
	return err;
}

/*
 * The module is loaded but the node is missing (a /dev without devtmpfs
 * or udev): make it from sysfs, root only as the kernel would.
 */
static int make_node(struct blktrack_ctx *ctx)
{
	unsigned int ma, mi;
	FILE *f;
	int n;

	f = fopen(CTL_SYSFS_DEV, "re");
	if (!f)
		return -ENOENT;
	n = fscanf(f, "%u:%u", &ma, &mi);
	fclose(f);
	if (n != 2)
		return -ENOENT;
	dbg(ctx, "creating %s as %u:%u\n", CTL_PATH, ma, mi);
	if (mknod(CTL_PATH, S_IFCHR | 0600, makedev(ma, mi)) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_node(struct blktrack_ctx *ctx)
{
	int fd;

	fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ctx->fd = fd;
	return 0;
}

static int check_version(struct blktrack_ctx *ctx)
{
	struct blktrack_version v = { .size = sizeof(v) };
	int err;

	if (ioctl(ctx->fd, BLKTRACK_IOC_VERSION, &v) < 0) {
		err = -errno;
		if (err == -EMSGSIZE || err == -ENOTTY)
			return blktrack_set_error(ctx, -EPROTO,
				"%s speaks another ABI (VERSION: %s); "
				"this library speaks ABI version %u",
				CTL_PATH, strerror(-err), BLKTRACK_ABI_VERSION);
		return blktrack_set_error(ctx, err, "%s: VERSION: %s", CTL_PATH,
					  strerror(-err));
	}
	dbg(ctx, "module ABI version %u, features %#llx\n", v.abi_version,
	    (unsigned long long)v.features);
	if (v.abi_version != BLKTRACK_ABI_VERSION)
		return blktrack_set_error(ctx, -EPROTO,
			"module blktrack has ABI version %u, this library needs %u "
			"(load the matching module)",
			v.abi_version, BLKTRACK_ABI_VERSION);
	return 0;
}

BLKTRACK_EXPORT int blktrack_open(struct blktrack_ctx *ctx)
{
	int err;

	/* Open already, or the context's kernel is not the control device. */
	if (ctx->fd >= 0 || ctx->kernel)
		return 0;
	ctx->errmsg[0] = '\0';
	err = open_node(ctx);
	if (err == -ENOENT || err == -ENXIO || err == -ENODEV) {
		dbg(ctx, "%s: %s, loading the module\n", CTL_PATH, strerror(-err));
		err = load_module(ctx);
		if (err < 0)
			return err;
		err = open_node(ctx);
		if (err == -ENOENT && make_node(ctx) == 0)
			err = open_node(ctx);
		if (err == -ENOENT || err == -ENXIO || err == -ENODEV)
			return blktrack_set_error(ctx, err,
				"module blktrack is loaded but %s is missing: %s",
				CTL_PATH, strerror(-err));
	}
	if (err == -EACCES || err == -EPERM)
		return blktrack_set_error(ctx, err,
			"%s: permission denied (root or CAP_SYS_ADMIN needed)", CTL_PATH);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: %s", CTL_PATH, strerror(-err));

	err = check_version(ctx);
	if (err < 0) {
		close(ctx->fd);
		ctx->fd = -1;
		return err;
	}
	return 0;
}
