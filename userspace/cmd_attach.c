// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack attach DEV [--block-size BYTES] [--mem-limit BYTES] [--restore-state]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "mem-limit", required_argument, NULL, 'm' },
		{ "restore-state", no_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ 0 }
	};
	uint64_t block_size = 0, mem_limit = 0;
	struct blktrack_load_result lr;
	const char *path, *dir = NULL;
	bool restore = false;
	dev_t dev;
	int c, err;

	while ((c = cli_getopt(&cmd_attach, argc, argv, "b:m:rd:", opts)) != -1) {
		switch (c) {
		case 'r':
			restore = true;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'b':
			if (blktrack_parse_size(optarg, &block_size) < 0 ||
			    block_size > UINT32_MAX) {
				cli_err(NULL, "invalid block size '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			if (blktrack_parse_size(optarg, &mem_limit) < 0) {
				cli_err(NULL, "invalid memory limit '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_attach);
	path = argv[optind];

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	err = blktrack_attach(ctx, dev, block_size, mem_limit);
	if (err < 0)
		return cli_fail(ctx, path, err);
	if (!restore)
		return EXIT_OK;
	err = blktrack_load_state(ctx, path, dir, &lr);
	if (err < 0)
		return cli_fail(ctx, path, err);
	if (lr.loaded)
		printf("%s: saved history loaded from %s: %" PRIu64 " dirty block(s)\n", path,
		       lr.path, lr.dirty_blocks);
	else
		printf("%s: tracking INVALID (%s): %s; the next backup resyncs\n", path,
		       blktrack_reason_name(lr.reason), lr.detail);
	return EXIT_OK;
}

const struct cmd cmd_attach = {
	.name = "attach",
	.args = "DEV [--block-size BYTES] [--mem-limit BYTES] [--restore-state [--state-dir DIR]]",
	.help = "Start tracking the writes to block device DEV.\n"
		"  -b, --block-size BYTES  tracking granularity: a power of two from 4K to 16M\n"
		"                          (default 4K); K, M, G suffixes are binary units\n"
		"  -m, --mem-limit BYTES   map memory allowed before dense regions are coarsened\n"
		"                          (default: the module's mem_limit_mib)\n"
		"  -r, --restore-state     continue the history blktrack save left (a boot: attach\n"
		"                          before the filesystem is mounted read-write); when it\n"
		"                          cannot be trusted, the volume is INVALID with the reason\n"
		"  -d, --state-dir DIR     default " BLKTRACK_STATE_DIR_DEFAULT,
	.run = run,
};
