// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack init --repo DIR [--encrypt] [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "encrypt", no_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct json_object *o;
	const char *repo = NULL;
	unsigned int flags = 0;
	bool json = false;
	int c, err;

	while ((c = cli_getopt(&cmd_init, argc, argv, "r:j", opts)) != -1) {
		switch (c) {
		case 'r':
			repo = optarg;
			break;
		case 'E':
			flags |= BLKTRACK_REPO_ENCRYPTED;
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
	err = blktrack_repo_create(ctx, repo, flags);
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
	.args = "--repo DIR [--encrypt] [--json]",
	.help = "Create a backup repository in DIR, a missing or empty directory, or\n"
		"rados://POOL/NAME. backup, restore, verify and list refuse a directory that\n"
		"is not one.\n"
		"  -r, --repo DIR  the repository to create\n"
		"      --encrypt   every file encrypted and authenticated with the key in the\n"
		"                  file $BLKTRACK_KEY_FILE names (32 bytes, or 64 hex digits),\n"
		"                  or derived from the passphrase in $BLKTRACK_PASSPHRASE_FILE;\n"
		"                  every later command on DIR needs the same\n"
		"  -j, --json      {\"path\"}",
	.run = run,
};
