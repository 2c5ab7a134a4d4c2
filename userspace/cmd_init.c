// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack init --repo DIR [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct json_object *o;
	const char *repo = NULL;
	bool json = false;
	int c, err;

	while ((c = cli_getopt(&cmd_init, argc, argv, "r:j", opts)) != -1) {
		switch (c) {
		case 'r':
			repo = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !repo)
		return cli_usage(&cmd_init);
	err = blktrack_repo_init(ctx, repo);
	if (err < 0)
		return cli_fail(ctx, NULL, err);
	if (!json) {
		printf("created repository %s\n", repo);
		return EXIT_OK;
	}
	o = json_object_new_object();
	return cli_print_json(stdout, o, o && !json_object_object_add(o, "path",
				json_object_new_string(repo)), NULL);
}

const struct cmd cmd_init = {
	.name = "init",
	.args = "--repo DIR [--json]",
	.help = "Create a backup repository in DIR, a missing or empty directory. backup,\n"
		"restore, verify and list refuse a directory that is not one.\n"
		"  -r, --repo DIR  the repository to create\n"
		"  -j, --json      {\"path\"}",
	.run = run,
};
