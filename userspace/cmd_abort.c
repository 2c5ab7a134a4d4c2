// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack abort DEV
 */
#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	struct blktrack_status st;
	const char *path;
	dev_t dev;
	int c, err;

	while ((c = cli_getopt(&cmd_abort, argc, argv, NULL, NULL)) != -1)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cli_usage(&cmd_abort);
	path = argv[optind];

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	/* The pending map's stamp is the one STATUS reports. */
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		return cli_fail(ctx, path, err);
	err = blktrack_abort(ctx, dev, &st.stamp);
	if (err < 0)
		return cli_fail(ctx, path, err);
	return EXIT_OK;
}

const struct cmd cmd_abort = {
	.name = "abort",
	.args = "DEV",
	.help = "Give up the pending checkpoint of DEV: its changes are merged back into\nthe active map, so the next checkpoint returns them again.",
	.run = run,
};
