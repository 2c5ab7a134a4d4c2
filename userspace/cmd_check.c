// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack check --repo DIR [--rebuild] [--json]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "blktrack.h"

struct lines {
	bool json;
	struct json_object *arr;
};

static void print_problem(void *data, const char *problem)
{
	struct lines *l = data;

	if (l->json)
		json_object_array_add(l->arr, json_object_new_string(problem));
	else
		printf("%s\n", problem);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "rebuild", no_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct blktrack_check_result res;
	struct lines l = { false, NULL };
	struct json_object *o;
	const char *repo = NULL;
	bool rebuild = false;
	int c, err, ret;

	while ((c = cli_getopt(&cmd_check, argc, argv, "r:Rj", opts)) != -1) {
		switch (c) {
		case 'r':
			repo = optarg;
			break;
		case 'R':
			rebuild = true;
			break;
		case 'j':
			l.json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !repo)
		return cli_usage(&cmd_check);
	if (l.json && !(l.arr = json_object_new_array()))
		return EXIT_ERROR;
	err = blktrack_repo_check(ctx, repo, rebuild, print_problem, &l, &res);
	if (err == -EALREADY) {
		json_object_put(l.arr);
		cli_err(NULL, "%s", blktrack_get_error(ctx));
		return EXIT_OK;
	}
	if (err < 0) {
		json_object_put(l.arr);
		return cli_fail(ctx, NULL, err);
	}
	/* After a rebuild, what it left out is reported but the catalog is sound. */
	ret = !rebuild && res.problems ? EXIT_CORRUPT : EXIT_OK;
	if (!l.json) {
		if (rebuild)
			printf("%s: catalog rebuilt with %u backup%s%s%s; %u damaged backup "
			       "file%s left out\n", repo, res.entries, res.entries == 1 ? "" : "s",
			       res.aside[0] ? ", the old one kept as " : "", res.aside,
			       res.left_out, res.left_out == 1 ? "" : "s");
		else if (!res.problems)
			printf("%s: %u backup%s, the catalog, every file and chain sound\n",
			       repo, res.entries, res.entries == 1 ? "" : "s");
		return ret;
	}
	o = json_object_new_object();
	return cli_print_json(stdout, o, o &&
			      !json_object_object_add(o, "path", json_object_new_string(repo)) &&
			      !json_object_object_add(o, "sound", json_object_new_boolean(!res.problems)) &&
			      !json_object_object_add(o, "backups", json_object_new_int64(res.entries)) &&
			      !json_object_object_add(o, "rebuilt", json_object_new_boolean(res.rebuilt)) &&
			      !json_object_object_add(o, "aside", json_object_new_string(res.aside)) &&
			      !json_object_object_add(o, "left_out", json_object_new_int64(res.left_out)) &&
			      !json_object_object_add(o, "problems", l.arr), NULL) ?: ret;
}

const struct cmd cmd_check = {
	.name = "check",
	.args = "--repo DIR [--rebuild] [--json]",
	.help = "Read the whole repository DIR: the catalog (checksum), every backup file in\n"
		"full, every delta map and hash file, every chain. One line per problem;\n"
		"exit 0 when all is sound, 4 when something is damaged.\n"
		"  -r, --repo DIR  the repository\n"
		"  -R, --rebuild   rebuild a missing or damaged catalog from the intact\n"
		"                  backup files (the old one is kept as\n"
		"                  catalog.damaged-TIMESTAMP; damaged files are listed and\n"
		"                  left out); refused over a sound catalog with nothing to fix\n"
		"  -j, --json      {\"path\", \"sound\", \"backups\", \"rebuilt\", \"aside\",\n"
		"                  \"left_out\", \"problems\": [lines]}",
	.run = run,
};
