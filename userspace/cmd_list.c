// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack list --repo DIR [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "blktrack.h"

static uint64_t jget_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static const char *jget_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

void cli_print_backups(struct json_object *top)
{
	struct json_object *arr, *e, *ch;
	char when[32], c[32], s[32];
	size_t i, k;

	printf("%4s  %-12s %-9s %6s  %-19s %10s %10s  %s\n", "ID", "TYPE", "STATE",
	       "PARENT", "TIME", "CHANGED", "STORED", "CHAIN");
	if (!json_object_object_get_ex(top, "backups", &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		time_t t;

		e = json_object_array_get_idx(arr, i);
		t = jget_u64(e, "time");
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		cli_human(jget_u64(e, "changed_bytes"), c, sizeof(c));
		cli_human(jget_u64(e, "stored_bytes"), s, sizeof(s));
		printf("%4" PRIu64 "  %-12s %-9s %6" PRIu64 "  %-19s %10s %10s  ",
		       jget_u64(e, "id"), jget_str(e, "type"), jget_str(e, "state"),
		       jget_u64(e, "parent"), when, c, s);
		if (json_object_object_get_ex(e, "chain", &ch)) {
			for (k = 0; k < json_object_array_length(ch); k++)
				printf("%s%" PRIu64, k ? "," : "",
				       json_object_get_uint64(json_object_array_get_idx(ch, k)));
			if (*jget_str(e, "source_file"))
				printf("  file %s", jget_str(e, "source_file"));
			if (jget_u64(e, "set"))
				printf("  set %" PRIu64, jget_u64(e, "set"));
			printf("\n");
		} else {
			printf("broken: %s\n", jget_str(e, "chain_error"));
		}
	}
}

/* The points blktrack mount mounted: one line each, or their records as JSON. */
static int list_mounts(struct blktrack_ctx *ctx, bool json)
{
	struct json_object *arr, *e;
	size_t i;
	int err = blktrack_mounts_json(ctx, NULL, &arr);

	if (err < 0)
		return cli_fail(ctx, NULL, err);
	if (json) {
		blktrack_json_print(stdout, arr, true);
	} else {
		for (i = 0; i < json_object_array_length(arr); i++) {
			e = json_object_array_get_idx(arr, i);
			printf("%s  backup %" PRIu64 " of %s  (%s on %s)\n",
			       jget_str(e, "mount_point"), jget_u64(e, "backup"),
			       jget_str(e, "repo"), jget_str(e, "fstype"), jget_str(e, "loop"));
		}
	}
	json_object_put(arr);
	return EXIT_OK;
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "mounts", no_argument, NULL, 'M' },
		{ 0 }
	};
	struct json_object *top;
	const char *repo = NULL;
	bool json = false, mounts = false;
	int c, err;

	while ((c = cli_getopt(&cmd_list, argc, argv, "r:j", opts)) != -1) {
		switch (c) {
		case 'r':
			repo = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'M':
			mounts = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !repo == !mounts)
		return cli_usage(&cmd_list);
	if (mounts)
		return list_mounts(ctx, json);
	err = blktrack_repo_json(ctx, repo, false, &top);
	if (err < 0)
		return cli_fail(ctx, NULL, err);
	if (json)
		blktrack_json_print(stdout, top, true);
	else
		cli_print_backups(top);
	json_object_put(top);
	return EXIT_OK;
}

const struct cmd cmd_list = {
	.name = "list",
	.args = "--repo DIR [--json] | --mounts [--json]",
	.help = "List the backups of repository DIR, oldest first, with the chain each\n"
		"restores from (or why it is broken).\n"
		"  -r, --repo DIR  the repository\n"
		"      --mounts    the points blktrack mount mounted instead: mount point,\n"
		"                  backup, repository, filesystem and loop device\n"
		"  -j, --json      the catalog: {\"path\", \"backups\": [{\"id\", \"type\", \"state\",\n"
		"                  \"parent\", \"from\", \"to\", \"chain\"...}]}",
	.run = run,
};
