// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack restore --repo DIR [--backup ID] [--file PATH] [--force] [--json] TARGET
 * blktrack restore --repo DIR --set ID [--force] [--json] TARGET...
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "blktrack.h"

int cli_parse_id(const char *s, uint64_t *id)
{
	char *end;

	errno = 0;
	*id = strtoull(s, &end, 10);
	if (errno || *end || !*id || *s == '-') {
		cli_err(NULL, "--backup: a backup id (1, 2, ...), not '%s'", s);
		return -EINVAL;
	}
	return 0;
}

int cli_restore_json(const char *what, const struct blktrack_restore_opts *o,
		     const struct blktrack_restore_result *r)
{
	struct json_object *j = json_object_new_object();
	bool failed;

	failed = !j ||
	    json_object_object_add(j, what, json_object_new_string("ok")) ||
	    json_object_object_add(j, "backup", json_object_new_uint64(r->backup_id)) ||
	    json_object_object_add(j, "members", json_object_new_uint64(r->members)) ||
	    json_object_object_add(j, "volume_size", json_object_new_uint64(r->volume_size)) ||
	    json_object_object_add(j, "bytes", json_object_new_uint64(r->bytes)) ||
	    json_object_object_add(j, "excluded_bytes", json_object_new_uint64(r->excluded_bytes)) ||
	    json_object_object_add(j, "seconds", json_object_new_double(r->seconds));
	return cli_print_json(stdout, j, !failed, NULL);
}

/* restore --set: every member onto its target (blktrack_restore_set()). */
static int restore_set(struct blktrack_ctx *ctx, const struct blktrack_restore_opts *o,
		       uint64_t set, char *const *targets, size_t n, bool json)
{
	struct blktrack_restore_result res[BLKTRACK_SET_MAX];
	struct json_object *top, *arr, *m;
	bool ok;
	size_t i;
	char h[32];
	int err;

	if (n > BLKTRACK_SET_MAX) {
		cli_err(NULL, "a set has %d members at most", BLKTRACK_SET_MAX);
		return EXIT_USAGE;
	}
	err = blktrack_restore_set(ctx, o, set, (const char *const *)targets, n, res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		for (i = 0; i < n && res[i].failure == BLKTRACK_FAIL_NONE; i++)
			;
		if (i < n && res[i].partial)
			cli_err(targets[i], "PARTLY WRITTEN: it holds part of the chain; do not "
				"use it");
		return cli_failure_code(i < n ? res[i].failure : BLKTRACK_FAIL_ERROR);
	}
	if (!json) {
		for (i = 0; i < n; i++) {
			cli_human(res[i].bytes, h, sizeof(h));
			printf("restored backup %" PRIu64 " of set %" PRIu64 " onto %s: %s in "
			       "%.2f s\n", res[i].backup_id, set, targets[i], h, res[i].seconds);
			cli_warn_excluded(targets[i], res[i].excluded_bytes);
		}
		return EXIT_OK;
	}
	top = json_object_new_object();
	arr = json_object_new_array();
	ok = top && arr && !json_object_object_add(top, "restore", json_object_new_string("ok")) &&
	     !json_object_object_add(top, "set", json_object_new_uint64(set));
	for (i = 0; ok && i < n; i++) {
		m = json_object_new_object();
		ok = m && !json_object_array_add(arr, m) &&
		     !json_object_object_add(m, "backup", json_object_new_uint64(res[i].backup_id)) &&
		     !json_object_object_add(m, "target", json_object_new_string(targets[i])) &&
		     !json_object_object_add(m, "members", json_object_new_uint64(res[i].members)) &&
		     !json_object_object_add(m, "bytes", json_object_new_uint64(res[i].bytes)) &&
		     !json_object_object_add(m, "excluded_bytes",
					     json_object_new_uint64(res[i].excluded_bytes));
	}
	ok = ok && !json_object_object_add(top, "members", arr);
	if (!ok)
		json_object_put(arr);
	return cli_print_json(stdout, top, ok, NULL);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "backup", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' },
		{ "file", required_argument, NULL, 'I' },
		{ "writers-dir", required_argument, NULL, 'W' },
		{ "writer-timeout", required_argument, NULL, 'T' },
		{ "more-restores", no_argument, NULL, 'M' },
		{ "onto", no_argument, NULL, 'O' },
		{ "set", required_argument, NULL, 'S' },
		{ 0 }
	};
	struct blktrack_restore_opts o = { .progress = cli_progress };
	struct blktrack_restore_result res;
	uint64_t set = 0;
	bool json = false;
	char h[32];
	int c, err;

	while ((c = cli_getopt(&cmd_restore, argc, argv, "r:b:jf", opts)) != -1) {
		switch (c) {
		case 'r':
			o.repo = optarg;
			break;
		case 'b':
			if (cli_parse_id(optarg, &o.backup_id))
				return cli_usage(&cmd_restore);
			break;
		case 'j':
			json = true;
			break;
		case 'f':
			o.force = true;
			break;
		case 'I':
			o.file = optarg;
			break;
		case 'W':
			o.writers_dir = optarg;
			break;
		case 'T':
			if (cli_parse_seconds(optarg, &o.writer_timeout))
				return cli_usage(&cmd_restore);
			break;
		case 'M':
			o.more_restores = true;
			break;
		case 'O':
			o.onto = true;
			break;
		case 'S':
			if (cli_parse_id(optarg, &set))
				return cli_usage(&cmd_restore);
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (set && (o.backup_id || o.file || o.onto || optind == argc || !o.repo))
		return cli_usage(&cmd_restore);
	if (set)
		return restore_set(ctx, &o, set, argv + optind, argc - optind, json);
	if (optind != argc - 1 || !o.repo)
		return cli_usage(&cmd_restore);
	o.target = argv[optind];

	err = blktrack_restore(ctx, &o, &res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		if (res.partial)
			cli_err(o.target, "PARTLY WRITTEN: it holds part of the chain; "
				"do not use it");
		else
			cli_err(o.target, "not written");
		return cli_failure_code(res.failure);
	}
	cli_warn_excluded(o.target, res.excluded_bytes);
	if (json)
		return cli_restore_json("restore", &o, &res);
	cli_human(res.bytes, h, sizeof(h));
	printf("restored backup %" PRIu64 " (%zu backup%s in the chain) onto %s: "
	       "%s in %.2f s\n", res.backup_id, res.members, res.members > 1 ? "s" : "",
	       o.target, h, res.seconds);
	return EXIT_OK;
}

const struct cmd cmd_restore = {
	.name = "restore",
	.args = "--repo DIR [--backup ID] [--file PATH] [--force | --onto] [--writers-dir DIR]\n"
		"       [--writer-timeout SECONDS] [--more-restores] [--json] TARGET\n"
		"       --repo DIR --set ID [--force] [any option above] TARGET...",
	.help = "Restore backup ID of repository DIR onto TARGET, a file or a block device:\n"
		"the full, then the incrementals or the differential of its chain. Every\n"
		"member is read and checked before TARGET is opened; exit 3 for a broken\n"
		"chain, 4 for a corrupt, truncated or foreign backup file (named).\n"
		"A file is written beside TARGET under a temporary name and renamed over it\n"
		"at the end, with exactly the volume's size: until then TARGET is untouched.\n"
		"A device is refused when it is mounted or held by another program (EBUSY,\n"
		"as mkfs) or smaller than the volume; its first MiB is zeroed first and\n"
		"written last.\n"
		"  -r, --repo DIR    the repository\n"
		"  -b, --backup ID   the backup to restore; default: the newest, when the\n"
		"                    repository holds one volume (with several: refused)\n"
		"      --file PATH   a per-file backup of PATH (backup --file): its newest,\n"
		"                    or with --backup, that one, checked to be of PATH\n"
		"  -f, --force       write over a device even when it is in use\n"
		"      --writers-dir DIR  the writers told pre-restore (a veto: exit 8,\n"
		"                    nothing written) and post-restore (doc/WRITERS.md);\n"
		"                    default /etc/blktrack/writers.d, may be missing\n"
		"      --writer-timeout SECONDS  per writer and event (60)\n"
		"      --more-restores  more restores of this chain follow: writers see\n"
		"                    BLKTRACK_MORE_RESTORES=1 and keep their recovery\n"
		"      --onto        TARGET, a file restored before, holds the point backup\n"
		"                    ID applies onto (its parent: the user.blktrack.point\n"
		"                    attribute every file restore leaves): only what ID adds\n"
		"                    is written, in place (a standby copy kept current);\n"
		"                    another point there: exit 3, nothing written\n"
		"      --set ID      every member of backup set ID (backup DEV DEV...) onto\n"
		"                    its TARGET, in the set's order (list shows it): the same\n"
		"                    instant on each; every chain is checked first\n"
		"  -j, --json        {\"restore\", \"backup\", \"members\", \"bytes\", ...}",
	.run = run,
};
