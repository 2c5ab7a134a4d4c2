// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack attach DEV [--block-size BYTES] [--mem-limit BYTES]
 */
#include <stdio.h>
#include <stdlib.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "mem-limit", required_argument, NULL, 'm' },
		{ 0 }
	};
	uint64_t block_size = 0, mem_limit = 0;
	const char *path;
	dev_t dev;
	int c, err;

	while ((c = cli_getopt(&cmd_attach, argc, argv, "b:m:", opts)) != -1) {
		switch (c) {
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
	return EXIT_OK;
}

const struct cmd cmd_attach = {
	.name = "attach",
	.args = "DEV [--block-size BYTES] [--mem-limit BYTES]",
	.help = "Start tracking the writes to block device DEV.\n"
		"  -b, --block-size BYTES  tracking granularity: a power of two from 4K to 16M\n"
		"                          (default 4K); K, M, G suffixes are binary units\n"
		"  -m, --mem-limit BYTES   map memory allowed before dense regions are coarsened\n"
		"                          (default: the module's mem_limit_mib)",
	.run = run,
};
