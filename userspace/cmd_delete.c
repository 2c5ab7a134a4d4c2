// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack delete --repo DIR [--dry-run] [--wait[=SECONDS]] [--json] ID
 */
#include <limits.h>
#include <stdlib.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "wait", optional_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct blktrack_prune_opts o = { 0 };
	bool json = false;
	char *end;
	int c;

	while ((c = cli_getopt(&cmd_delete, argc, argv, "r:nj", opts)) != -1) {
		switch (c) {
		case 'r':
			o.repo = optarg;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'W':
			o.lock_wait = optarg ? strtoul(optarg, &end, 10) : UINT_MAX;
			if (optarg && (*end || !*optarg))
				return cli_usage(&cmd_delete);
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !o.repo)
		return cli_usage(&cmd_delete);
	if (cli_parse_id(argv[optind], &o.delete_id))
		return EXIT_USAGE;
	return cli_prune(ctx, &o, json);
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
