// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack commit DEV
 */
#include "blktrack.h"

/* The pending map's stamp is the one STATUS reports. */
static int commit_pending(struct blktrack_ctx *ctx, dev_t dev)
{
	struct blktrack_status st;
	int err = blktrack_status(ctx, dev, &st);

	return err < 0 ? err : blktrack_commit(ctx, dev, &st.stamp);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	return cli_run_on_dev(&cmd_commit, ctx, argc, argv, commit_pending);
}

const struct cmd cmd_commit = {
	.name = "commit",
	.args = "DEV",
	.help = "Drop the pending checkpoint of DEV: its changes are safely in a backup.\nThe epoch advances.",
	.run = run,
};
