// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack verify --repo DIR [--backup ID] [--against DEV] [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "backup", required_argument, NULL, 'b' },
		{ "against", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct blktrack_restore_opts o = { .progress = cli_progress };
	struct blktrack_restore_result res;
	bool json = false;
	int c, err;

	while ((c = cli_getopt(&cmd_verify, argc, argv, "r:b:a:j", opts)) != -1) {
		switch (c) {
		case 'r':
			o.repo = optarg;
			break;
		case 'b':
			if (cli_parse_id(optarg, &o.backup_id))
				return cli_usage(&cmd_verify);
			break;
		case 'a':
			o.against = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !o.repo)
		return cli_usage(&cmd_verify);

	err = blktrack_verify(ctx, &o, &res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		return cli_failure_code(res.failure);
	}
	cli_warn_excluded(NULL, res.excluded_bytes);
	if (json)
		return cli_restore_json("verify", &o, &res);
	printf("backup %" PRIu64 ": %zu backup%s in the chain, every record and digest "
	       "checked", res.backup_id, res.members, res.members > 1 ? "s" : "");
	if (o.against)
		printf("; %s matches (%" PRIu64 " bytes compared)", o.against, res.bytes);
	printf("\n");
	return EXIT_OK;
}

const struct cmd cmd_verify = {
	.name = "verify",
	.args = "--repo DIR [--backup ID] [--against DEV] [--json]",
	.help = "Check the chain of backup ID of repository DIR: read every member in full\n"
		"(record checksums, stream digest, header against the catalog). Exit 3:\n"
		"broken chain; 4: a corrupt, truncated or foreign file (named).\n"
		"  -r, --repo DIR     the repository\n"
		"  -b, --backup ID    the backup to check; default: the newest, when the\n"
		"                     repository holds one volume (with several: refused)\n"
		"  -a, --against DEV  also compare the volume the chain restores with DEV\n"
		"                     (a device or file); exit 5 when they differ\n"
		"  -j, --json         {\"verify\", \"backup\", \"members\", \"bytes\", ...}",
	.run = run,
};
