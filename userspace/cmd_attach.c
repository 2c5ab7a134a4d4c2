// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack attach DEV [--block-size BYTES] [--mem-limit BYTES]
 *	[--restore-state | --defer-restore] [--state-dir DIR]
 * blktrack attach --all | --configured DEV [--config FILE] [...]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "blktrack.h"

enum restore { RESTORE_NONE, RESTORE_NOW, RESTORE_DEFER };

struct attach {
	struct blktrack_ctx *ctx;
	enum restore restore;
	const char *state_dir;
	bool configured;	/* from blktrack.conf: an attached volume is no error */
};

/* Attached before the states can be read: their load comes later. */
static int defer(struct blktrack_ctx *ctx, const char *path)
{
	int err = blktrack_defer_state(ctx, path);

	if (err < 0)
		return cli_fail(ctx, path, err);
	printf("%s: attached; its saved state is loaded by the next attach "
	       "--restore-state\n", path);
	return EXIT_OK;
}

static int load(struct attach *a, const char *path)
{
	struct blktrack_load_result lr;
	int err;

	err = blktrack_load_state(a->ctx, path, a->state_dir, &lr);
	if (err < 0)
		return cli_fail(a->ctx, path, err);
	if (lr.loaded)
		printf("%s: saved history loaded from %s: %" PRIu64 " dirty block(s)\n", path,
		       lr.path, lr.dirty_blocks);
	else
		printf("%s: tracking INVALID (%s): %s; the next backup resyncs\n", path,
		       blktrack_reason_name(lr.reason), lr.detail);
	return EXIT_OK;
}

/*
 * Attach @path. *@due: its state is to be loaded (a fresh attach with
 * --restore-state, or one the initramfs deferred); everything else is
 * done here. The caller loads after attaching every volume: a load may
 * write a state in place on a volume (the root) that must be attached
 * first, so that the write is in its map.
 */
static int attach_step(struct attach *a, const char *path, uint64_t block_size,
		       uint64_t mem_limit, bool *due)
{
	dev_t dev;
	int err;

	*due = false;
	if (cli_dev(path, &dev))
		return EXIT_ERROR;
	err = blktrack_attach(a->ctx, dev, block_size, mem_limit);
	if (err == -EEXIST) {
		*due = a->restore == RESTORE_NOW && blktrack_state_deferred(a->ctx, dev);
		if (*due)
			return EXIT_OK;
		if (!a->configured)
			return cli_fail(a->ctx, path, -EEXIST);
		if (cli_verbosity >= 0)
			printf("%s: already attached\n", path);
		return EXIT_OK;
	}
	if (err < 0)
		return cli_fail(a->ctx, path, err);
	if (a->restore == RESTORE_DEFER)
		return defer(a->ctx, path);
	*due = a->restore == RESTORE_NOW;
	if (!*due && a->configured && cli_verbosity >= 0)
		printf("%s: attached\n", path);
	return EXIT_OK;
}

static int attach_one(struct attach *a, const char *path, uint64_t block_size,
		      uint64_t mem_limit)
{
	bool due;
	int ret = attach_step(a, path, block_size, mem_limit, &due);

	return ret || !due ? ret : load(a, path);
}

/*
 * --all: every configured volume present (an absent one is the udev rule's
 * when it appears); --configured DEV: DEV if the configuration lists it.
 * All attached first, then the states loaded.
 */
static int attach_configured(struct attach *a, const char *config, const char *only)
{
	char path[4096], **due = NULL;
	struct config cfg;
	dev_t want = 0, dev;
	int ret = EXIT_OK, err;
	size_t i, n = 0;
	bool load_it;

	if (only && cli_dev(only, &want))
		return EXIT_ERROR;
	if (cli_config_load(config, &cfg))
		return EXIT_ERROR;
	due = calloc(cfg.n_volumes + 1, sizeof(*due));
	for (i = 0; due && i < cfg.n_volumes; i++) {
		const struct config_volume *v = &cfg.volumes[i];

		err = config_resolve(v, path, sizeof(path));
		if (only && (err || blktrack_dev_from_path(path, &dev) || dev != want))
			continue;
		if (err == -ENOENT) {
			cli_warn(v->name, "device %s not present; attached when it appears",
				 v->device);
			continue;
		}
		if (err) {
			cli_err(v->name, "device %s: %s", v->device, strerror(-err));
			ret = EXIT_ERROR;
			continue;
		}
		if (attach_step(a, path, v->block_size, v->mem_limit, &load_it))
			ret = EXIT_ERROR;
		else if (load_it && !(due[n++] = strdup(path)))
			ret = cli_fail(a->ctx, path, -ENOMEM);
	}
	if (!due)
		ret = cli_fail(a->ctx, NULL, -ENOMEM);
	for (i = 0; i < n; i++) {
		if (due[i] && load(a, due[i]))
			ret = EXIT_ERROR;
		free(due[i]);
	}
	free(due);
	config_free(&cfg);
	return ret;
}

/*
 * Restores are serialized: at boot the udev rule and blktrack-attach.service
 * may both find a volume the initramfs deferred; the second must see it
 * loaded, not load it again (the clean flag is gone by then: INVALID).
 */
static int restore_lock(void)
{
	int fd;

	mkdir("/run/blktrack", 0755);
	fd = open("/run/blktrack/attach.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		cli_err("/run/blktrack/attach.lock", "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;	/* held until exit */
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "mem-limit", required_argument, NULL, 'm' },
		{ "restore-state", no_argument, NULL, 'r' },
		{ "defer-restore", no_argument, NULL, 'D' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ "configured", no_argument, NULL, 'c' },
		{ "config", required_argument, NULL, 'C' },
		{ 0 }
	};
	struct attach a = { .ctx = ctx };
	uint64_t block_size = 0, mem_limit = 0;
	const char *config = NULL;
	bool all = false, sized = false;
	int c;

	while ((c = cli_getopt(&cmd_attach, argc, argv, "b:m:rd:", opts)) != -1) {
		switch (c) {
		case 'r':
		case 'D':
			if (a.restore) {
				cli_err(NULL, "--restore-state or --defer-restore, not both");
				return EXIT_USAGE;
			}
			a.restore = c == 'r' ? RESTORE_NOW : RESTORE_DEFER;
			break;
		case 'd':
			a.state_dir = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'c':
			a.configured = true;
			break;
		case 'C':
			config = optarg;
			break;
		case 'b':
			sized = true;
			if (blktrack_parse_size(optarg, &block_size) < 0 ||
			    block_size > UINT32_MAX) {
				cli_err(NULL, "invalid block size '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			sized = true;
			if (blktrack_parse_size(optarg, &mem_limit) < 0) {
				cli_err(NULL, "invalid memory limit '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if ((all && (a.configured || optind != argc)) || (!all && optind != argc - 1) ||
	    ((all || a.configured) && sized) || (config && !all && !a.configured)) {
		if (sized && (all || a.configured))
			cli_err(NULL, "--block-size and --mem-limit of configured volumes come "
				"from the configuration");
		return cli_usage(&cmd_attach);
	}
	if (cli_open(ctx))
		return EXIT_ERROR;
	if (a.restore != RESTORE_NONE && restore_lock() < 0)
		return EXIT_ERROR;
	if (all || a.configured) {
		a.configured = true;
		return attach_configured(&a, config, all ? NULL : argv[optind]);
	}
	return attach_one(&a, argv[optind], block_size, mem_limit);
}

const struct cmd cmd_attach = {
	.name = "attach",
	.args = "DEV [--block-size BYTES] [--mem-limit BYTES]\n"
		"       [--restore-state | --defer-restore] [--state-dir DIR]\n"
		"       --all | --configured DEV [--config FILE] [--restore-state | --defer-restore]\n"
		"       [--state-dir DIR]",
	.help = "Start tracking the writes to block device DEV.\n"
		"  -b, --block-size BYTES  tracking granularity: a power of two from 4K to 16M\n"
		"                          (default 4K); K, M, G suffixes are binary units\n"
		"  -m, --mem-limit BYTES   map memory allowed before dense regions are coarsened\n"
		"                          (default: the module's mem_limit_mib)\n"
		"  -r, --restore-state     continue the history blktrack save left (a boot: attach\n"
		"                          before the filesystem is mounted read-write); when it\n"
		"                          cannot be trusted, the volume is INVALID with the reason.\n"
		"                          A volume attached with --defer-restore: its restore now\n"
		"      --defer-restore     attach now, restore at the next attach --restore-state\n"
		"                          (the initramfs: the states are on the root filesystem)\n"
		"  -d, --state-dir DIR     default " BLKTRACK_STATE_DIR_DEFAULT "\n"
		"      --all               every volume of the configuration that is present (the\n"
		"                          others are warned about); attached ones are skipped\n"
		"      --configured DEV    DEV if the configuration lists it, else nothing (udev)\n"
		"      --config FILE       default " CONFIG_FILE_DEFAULT " ($BLKTRACK_CONFIG)\n"
		"A bad configuration file is refused whole (FILE:LINE: why): nothing is attached.",
	.run = run,
};
