// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack detach DEV
 */
#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	return cli_run_on_dev(&cmd_detach, ctx, argc, argv, blktrack_detach);
}

const struct cmd cmd_detach = {
	.name = "detach",
	.args = "DEV",
	.help = "Stop tracking DEV. Its maps, and a pending checkpoint, are dropped.",
	.run = run,
};
