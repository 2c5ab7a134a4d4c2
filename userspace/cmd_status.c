// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack status [DEV] [--json]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "blktrack.h"

static int status_one(struct blktrack_ctx *ctx, const char *path, bool json)
{
	struct blktrack_status st;
	struct json_object *o;
	dev_t dev;
	int err;

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		return cli_fail(ctx, path, err);
	if (!json) {
		blktrack_status_print(stdout, path, &st);
		return EXIT_OK;
	}
	err = blktrack_status_json(path, &st, &o);
	if (err < 0)
		return cli_fail(ctx, path, err);
	blktrack_json_print(stdout, o, true);
	json_object_put(o);
	return EXIT_OK;
}

static int status_all(struct blktrack_ctx *ctx, bool json)
{
	struct json_object *top = NULL, *vols = NULL, *o;
	struct blktrack_status st;
	char name[256];
	dev_t *devs;
	size_t n, i, shown = 0;
	int err, ret = EXIT_OK;

	if (cli_open(ctx))
		return EXIT_ERROR;
	err = blktrack_list(ctx, &devs, &n);
	if (err < 0)
		return cli_fail(ctx, NULL, err);
	if (json) {
		top = json_object_new_object();
		vols = json_object_new_array();
		if (!top || !vols || json_object_object_add(top, "volumes", vols)) {
			cli_err(NULL, "%s", strerror(ENOMEM));
			free(devs);
			json_object_put(top);
			return EXIT_ERROR;
		}
	}
	for (i = 0; i < n; i++) {
		blktrack_dev_name(devs[i], name, sizeof(name));
		err = blktrack_status(ctx, devs[i], &st);
		if (err == -ENOENT)	/* detached since LIST */
			continue;
		if (err < 0) {
			ret = cli_fail(ctx, name, err);
			continue;
		}
		if (!json) {
			if (shown++)
				putchar('\n');
			blktrack_status_print(stdout, name, &st);
			continue;
		}
		if (blktrack_status_json(name, &st, &o) < 0 ||
		    json_object_array_add(vols, o)) {
			cli_err(NULL, "%s", strerror(ENOMEM));
			ret = EXIT_ERROR;
		}
	}
	free(devs);
	if (json) {
		blktrack_json_print(stdout, top, true);
		json_object_put(top);
	}
	return ret;
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	bool json = false;
	int c;

	while ((c = cli_getopt(&cmd_status, argc, argv, "j", opts)) != -1) {
		if (c != 'j')
			return EXIT_USAGE;
		json = true;
	}
	if (optind == argc)
		return status_all(ctx, json);
	if (optind != argc - 1)
		return cli_usage(&cmd_status);
	return status_one(ctx, argv[optind], json);
}

const struct cmd cmd_status = {
	.name = "status",
	.args = "[DEV] [--json]",
	.help = "Show the tracking state of DEV, or of every attached volume, as\n"
		"\"key: value\" lines (a blank line between volumes):\n"
		"device, size, block_size, state, reason, generation, epoch, pending,\n"
		"snapshot (none, held, or lost: its store filled up), active_dirty,\n"
		"pending_dirty, map_bytes, mem_limit.\n"
		"  -j, --json   the same keys as JSON; without DEV: {\"volumes\": [...]}",
	.run = run,
};
