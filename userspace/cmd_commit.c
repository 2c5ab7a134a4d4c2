// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack commit DEV
 */
#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	struct blktrack_status st;
	const char *path;
	dev_t dev;
	int c, err;

	while ((c = cli_getopt(&cmd_commit, argc, argv, NULL, NULL)) != -1)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cli_usage(&cmd_commit);
	path = argv[optind];

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	/* The pending map's stamp is the one STATUS reports. */
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		return cli_fail(ctx, path, err);
	err = blktrack_commit(ctx, dev, &st.stamp);
	if (err < 0)
		return cli_fail(ctx, path, err);
	return EXIT_OK;
}

const struct cmd cmd_commit = {
	.name = "commit",
	.args = "DEV",
	.help = "Drop the pending checkpoint of DEV: its changes are safely in a backup.\nThe epoch advances.",
	.run = run,
};
