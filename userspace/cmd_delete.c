// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack delete --repo DIR [--dry-run] [--wait[=SECONDS]] [--json] ID
 */
#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	return cli_prune_main(&cmd_delete, ctx, argc, argv);
}

const struct cmd cmd_delete = {
	.name = "delete",
	.args = "--repo DIR [--dry-run] [--wait[=SECONDS]] [--json] ID",
	.help = "Remove backup ID. The backups that need it to restore are merged first\n"
		"(ID folded into the next backup of each chain). Refused, nothing changed,\n"
		"exit 9, for the newest full, incremental or resync of its volume and the\n"
		"backups after it: the next backup is made from them.\n"
		"  -r, --repo DIR        the repository\n"
		"  -n, --dry-run         print the plan, change nothing\n"
		"      --wait[=SECONDS]  wait for the repository's lock\n"
		"  -j, --json            as prune --json",
	.run = run,
};
