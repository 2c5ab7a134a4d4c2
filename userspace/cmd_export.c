// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack export --repo DIR [--backup ID] [--file PATH] --format raw|qcow2|rbd-diff
 *                 [--json] OUT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "blktrack.h"

static const char *const format_names[] = {
	[BLKTRACK_EXPORT_RAW] = "raw",
	[BLKTRACK_EXPORT_QCOW2] = "qcow2",
	[BLKTRACK_EXPORT_RBD_DIFF] = "rbd-diff",
};

static int parse_format(const char *s, enum blktrack_export_format *f)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (!strcmp(s, format_names[i])) {
			*f = (enum blktrack_export_format)i;
			return 0;
		}
	}
	cli_err(NULL, "--format: raw, qcow2 or rbd-diff, not '%s'", s);
	return -EINVAL;
}

/* The snapshot names of an rbd-diff stream: "blktrack-ID" (doc/FILES.md). */
static void snap_names(const struct blktrack_export_result *res, char *from, char *to,
		       size_t len)
{
	snprintf(from, len, "blktrack-%" PRIu64, res->parent_id);
	snprintf(to, len, "blktrack-%" PRIu64, res->backup_id);
}

static void summary(FILE *out, const struct blktrack_export_opts *o,
		    const struct blktrack_export_result *res)
{
	char from[32], to[32];

	fprintf(out, "exported backup %" PRIu64 " (%zu backup%s in the chain) to %s: ",
		res->backup_id, res->members, res->members > 1 ? "s" : "", o->output);
	snap_names(res, from, to, sizeof(from));
	if (o->format != BLKTRACK_EXPORT_RBD_DIFF)
		fprintf(out, "%zu image%s", res->images, res->images > 1 ? "s" : "");
	else if (res->parent_id)
		fprintf(out, "rbd diff from snapshot %s to %s", from, to);
	else
		fprintf(out, "rbd diff of a whole image to snapshot %s", to);
	fprintf(out, " in %.2f s\n", res->seconds);
}

static int summary_json(FILE *out, const struct blktrack_export_opts *o,
			const struct blktrack_export_result *res)
{
	struct json_object *j = json_object_new_object();
	char from[32], to[32];

	json_object_object_add(j, "backup", json_object_new_uint64(res->backup_id));
	json_object_object_add(j, "members", json_object_new_uint64(res->members));
	json_object_object_add(j, "volume_size", json_object_new_uint64(res->volume_size));
	json_object_object_add(j, "images", json_object_new_uint64(res->images));
	json_object_object_add(j, "excluded_bytes", json_object_new_uint64(res->excluded_bytes));
	json_object_object_add(j, "output", json_object_new_string(o->output));
	json_object_object_add(j, "seconds", json_object_new_double(res->seconds));
	json_object_object_add(j, "format", json_object_new_string(format_names[o->format]));
	if (o->format == BLKTRACK_EXPORT_RBD_DIFF) {
		snap_names(res, from, to, sizeof(from));
		json_object_object_add(j, "from_snap", res->parent_id ?
				       json_object_new_string(from) : NULL);
		json_object_object_add(j, "to_snap", json_object_new_string(to));
	}
	return cli_print_json(out, j, true, NULL);
}

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
	bool json = false, format = false, to_stdout;
	FILE *out = stdout;
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
			if (parse_format(optarg, &o.format))
				return cli_usage(&cmd_export);
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
	/* "-": the stream on stdout, what this command says on stderr (backup --output -). */
	to_stdout = !strcmp(o.output, "-");
	if (to_stdout && o.format != BLKTRACK_EXPORT_RBD_DIFF) {
		cli_err(NULL, "OUT '-' (standard output): only with --format rbd-diff");
		return cli_usage(&cmd_export);
	}
	if (to_stdout && isatty(STDOUT_FILENO)) {
		cli_err(NULL, "OUT '-': standard output is a terminal");
		return EXIT_USAGE;
	}
	if (to_stdout)
		out = stderr;
	err = blktrack_export(ctx, &o, &res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		return res.failure ? cli_failure_code(res.failure) : EXIT_ERROR;
	}
	cli_warn_excluded(o.output, res.excluded_bytes);
	if (json)
		return summary_json(out, &o, &res);
	summary(out, &o, &res);
	return EXIT_OK;
}

const struct cmd cmd_export = {
	.name = "export",
	.args = "--repo DIR [--backup ID] [--file PATH] --format raw|qcow2|rbd-diff [--json] OUT",
	.help = "Write backup ID (chosen as restore chooses it) as an image QEMU reads,\n"
		"or as the diff Ceph's rbd import-diff applies.\n"
		"raw: the restore of the point into the file OUT. qcow2: one image per backup\n"
		"of the point's chain, each an overlay whose backing file is the one before\n"
		"(qemu-img info --backing-chain OUT), the last OUT and the others beside it\n"
		"as NAME.ID.qcow2 for OUT = NAME.qcow2: an overlay holds the 64 KiB clusters\n"
		"its backup changed. Every backup of the chain is read and checked first;\n"
		"each image is written as NAME.tmp and renamed.\n"
		"rbd-diff: backup ID's own records as an RBD diff stream (rbd diff v1) from\n"
		"snapshot blktrack-PARENT (none for a full) to blktrack-ID, with ID's size:\n"
		"apply the backups of the point's chain (blktrack list) in order, each once,\n"
		"onto a new image (rbd create --size 1M POOL/IMAGE: the stream sets the size):\n"
		"  blktrack export --repo DIR --backup ID --format rbd-diff - |\n"
		"      rbd import-diff - POOL/IMAGE\n"
		"A differential's parent is the full. OUT '-' is standard output (the report\n"
		"goes to stderr); a file OUT is written as OUT.tmp and renamed.\n"
		"  -r, --repo DIR    the repository\n"
		"  -b, --backup ID   the point; default: the newest, as restore\n"
		"      --file PATH   a per-file backup of PATH\n"
		"      --format FMT  raw, qcow2 or rbd-diff\n"
		"  -j, --json        {\"backup\", \"members\", \"volume_size\", \"images\", \"format\",\n"
		"                    ...; rbd-diff: \"from_snap\", \"to_snap\"}\n"
		"Exit 3 for a broken chain, 4 for a bad backup file, 1 otherwise.",
	.run = run,
};
