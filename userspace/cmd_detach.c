// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack detach DEV
 */
#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	const char *path;
	dev_t dev;
	int c, err;

	while ((c = cli_getopt(&cmd_detach, argc, argv, NULL, NULL)) != -1)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cli_usage(&cmd_detach);
	path = argv[optind];

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	err = blktrack_detach(ctx, dev);
	if (err < 0)
		return cli_fail(ctx, path, err);
	return EXIT_OK;
}

const struct cmd cmd_detach = {
	.name = "detach",
	.args = "DEV",
	.help = "Stop tracking DEV. Its maps, and a pending checkpoint, are dropped.",
	.run = run,
};
