// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack abort DEV
 */
#include "blktrack.h"

/* The pending map's stamp is the one STATUS reports. */
static int abort_pending(struct blktrack_ctx *ctx, dev_t dev)
{
	struct blktrack_status st;
	int err = blktrack_status(ctx, dev, &st);

	return err < 0 ? err : blktrack_abort(ctx, dev, &st.stamp);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	return cli_run_on_dev(&cmd_abort, ctx, argc, argv, abort_pending);
}

const struct cmd cmd_abort = {
	.name = "abort",
	.args = "DEV",
	.help = "Give up the pending checkpoint of DEV: its changes are merged back into\nthe active map, so the next checkpoint returns them again.",
	.run = run,
};
