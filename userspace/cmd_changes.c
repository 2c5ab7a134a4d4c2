// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack changes DEV [--pending|--active] [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "blktrack.h"

static int print_plain(struct blktrack_ctx *ctx, const char *path, dev_t dev,
		       uint32_t flags)
{
	struct blktrack_extent_iter *it;
	struct blktrack_extent e;
	int err;

	err = blktrack_extent_iter_new(ctx, dev, flags, NULL, &it);
	if (err < 0)
		return cli_fail(ctx, path, err);
	while (!(err = blktrack_extent_iter_next(it, &e)) && e.length)
		printf("%" PRIu64 " %" PRIu64 "\n", (uint64_t)e.offset,
		       (uint64_t)e.length);
	blktrack_extent_iter_free(it);
	if (err < 0)
		return cli_fail(ctx, path, err);
	return EXIT_OK;
}

static int print_json(struct blktrack_ctx *ctx, const char *path, dev_t dev,
		      uint32_t flags)
{
	struct json_object *o, *a;
	struct blktrack_extent *ext;
	struct blktrack_status st;
	size_t n;
	bool failed;
	int err;

	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		return cli_fail(ctx, path, err);
	err = blktrack_read_extents(ctx, dev, flags, NULL, &ext, &n);
	if (err < 0)
		return cli_fail(ctx, path, err);
	err = blktrack_extents_json(ext, n, &a);
	free(ext);
	if (err < 0)
		return cli_fail(ctx, path, err);
	o = json_object_new_object();
	failed = !o ||
	    json_object_object_add(o, "device", json_object_new_string(path)) ||
	    json_object_object_add(o, "map", json_object_new_string(
			flags & BLKTRACK_READ_ACTIVE ? "active" : "pending")) ||
	    json_object_object_add(o, "block_size", json_object_new_uint64(st.block_size)) ||
	    json_object_object_add(o, "extents", a);
	return cli_print_json(stdout, o, !failed, path);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "pending", no_argument, NULL, 'p' },
		{ "active", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	uint32_t flags = 0;
	bool json = false;
	const char *path;
	dev_t dev;
	int c;

	while ((c = cli_getopt(&cmd_changes, argc, argv, "paj", opts)) != -1) {
		switch (c) {
		case 'p':
			flags = 0;
			break;
		case 'a':
			flags = BLKTRACK_READ_ACTIVE;
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_changes);
	path = argv[optind];

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	return json ? print_json(ctx, path, dev, flags)
		    : print_plain(ctx, path, dev, flags);
}

const struct cmd cmd_changes = {
	.name = "changes",
	.args = "DEV [--pending|--active] [--json]",
	.help = "List the changed extents of DEV, merged and sorted, one\n"
		"\"OFFSET LENGTH\" line each, in bytes.\n"
		"  -p, --pending  the pending checkpoint's map (the default)\n"
		"  -a, --active   the active map: changes since the last checkpoint\n"
		"                 (a moving snapshot, for inspection only)\n"
		"  -j, --json     {\"device\", \"map\", \"block_size\", \"extents\": [[off, len]...]}",
	.run = run,
};
