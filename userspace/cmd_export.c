// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack export --repo DIR [--backup ID] [--file PATH] --format raw|qcow2 [--json] OUT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "backup", required_argument, NULL, 'b' },
		{ "file", required_argument, NULL, 'I' },
		{ "format", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct blktrack_export_opts o = { .progress = cli_progress };
	struct blktrack_export_result res;
	struct json_object *j;
	bool json = false, format = false;
	int c, err;

	while ((c = cli_getopt(&cmd_export, argc, argv, "r:b:j", opts)) != -1) {
		switch (c) {
		case 'r':
			o.repo = optarg;
			break;
		case 'b':
			if (cli_parse_id(optarg, &o.backup_id))
				return cli_usage(&cmd_export);
			break;
		case 'I':
			o.file = optarg;
			break;
		case 'F':
			format = true;
			if (!strcmp(optarg, "raw")) {
				o.format = BLKTRACK_EXPORT_RAW;
			} else if (!strcmp(optarg, "qcow2")) {
				o.format = BLKTRACK_EXPORT_QCOW2;
			} else {
				cli_err(NULL, "--format: raw or qcow2, not '%s'", optarg);
				return cli_usage(&cmd_export);
			}
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !o.repo || !format)
		return cli_usage(&cmd_export);
	o.output = argv[optind];
	err = blktrack_export(ctx, &o, &res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		return res.failure ? cli_failure_code(res.failure) : EXIT_ERROR;
	}
	cli_warn_excluded(o.output, res.excluded_bytes);
	if (!json) {
		printf("exported backup %" PRIu64 " (%zu backup%s in the chain) to %s: %zu "
		       "image%s in %.2f s\n", res.backup_id, res.members, res.members > 1 ?
		       "s" : "", o.output, res.images, res.images > 1 ? "s" : "", res.seconds);
		return EXIT_OK;
	}
	j = json_object_new_object();
	json_object_object_add(j, "backup", json_object_new_uint64(res.backup_id));
	json_object_object_add(j, "members", json_object_new_uint64(res.members));
	json_object_object_add(j, "volume_size", json_object_new_uint64(res.volume_size));
	json_object_object_add(j, "images", json_object_new_uint64(res.images));
	json_object_object_add(j, "excluded_bytes", json_object_new_uint64(res.excluded_bytes));
	json_object_object_add(j, "output", json_object_new_string(o.output));
	json_object_object_add(j, "seconds", json_object_new_double(res.seconds));
	return cli_print_json(stdout, j, true, NULL);
}

const struct cmd cmd_export = {
	.name = "export",
	.args = "--repo DIR [--backup ID] [--file PATH] --format raw|qcow2 [--json] OUT",
	.help = "Write backup ID (chosen as restore chooses it) as an image QEMU reads.\n"
		"raw: the restore of the point into the file OUT. qcow2: one image per backup\n"
		"of the point's chain, each an overlay whose backing file is the one before\n"
		"(qemu-img info --backing-chain OUT), the last OUT and the others beside it\n"
		"as NAME.ID.qcow2 for OUT = NAME.qcow2: an overlay holds the 64 KiB clusters\n"
		"its backup changed. Every backup of the chain is read and checked first;\n"
		"each image is written as NAME.tmp and renamed.\n"
		"  -r, --repo DIR    the repository\n"
		"  -b, --backup ID   the point; default: the newest, as restore\n"
		"      --file PATH   a per-file backup of PATH\n"
		"      --format FMT  raw or qcow2\n"
		"  -j, --json        {\"backup\", \"members\", \"volume_size\", \"images\", ...}\n"
		"Exit 3 for a broken chain, 4 for a bad backup file, 1 otherwise.",
	.run = run,
};
