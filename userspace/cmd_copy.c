// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack copy --from SRC --to DST [--backup ID|--all] [--wait[=SECONDS]] [--json]
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <json-c/json.h>

#include "blktrack.h"

static int print_json(const struct blktrack_copy_opts *o, const struct blktrack_copy_result *r)
{
	struct json_object *top = json_object_new_object();

	return cli_print_json(stdout, top, top &&
			      !json_object_object_add(top, "from", json_object_new_string(o->from)) &&
			      !json_object_object_add(top, "to", json_object_new_string(o->to)) &&
			      !json_object_object_add(top, "copied", json_object_new_uint64(r->copied)) &&
			      !json_object_object_add(top, "present", json_object_new_uint64(r->present)) &&
			      !json_object_object_add(top, "copied_bytes",
						      json_object_new_uint64(r->copied_bytes)) &&
			      !json_object_object_add(top, "seconds", json_object_new_double(r->seconds)),
			      NULL);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "backup", required_argument, NULL, 'b' },
		{ "all", no_argument, NULL, 'a' },
		{ "wait", optional_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct blktrack_copy_opts o = { .progress = cli_progress };
	struct blktrack_copy_result r;
	bool json = false, all = false;
	char human[32];
	int c, err;

	while ((c = cli_getopt(&cmd_copy, argc, argv, "f:t:b:aj", opts)) != -1) {
		if (c == 'f') {
			o.from = optarg;
		} else if (c == 't') {
			o.to = optarg;
		} else if (c == 'b') {
			if (cli_parse_id(optarg, &o.backup_id))
				return EXIT_USAGE;
		} else if (c == 'a') {
			all = true;
		} else if (c == 'W') {
			o.lock_wait = UINT_MAX;
			if (optarg && cli_parse_seconds(optarg, &o.lock_wait))
				return EXIT_USAGE;
		} else if (c == 'j') {
			json = true;
		} else {
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !o.from || !o.to || (all && o.backup_id))
		return cli_usage(&cmd_copy);
	err = blktrack_copy(ctx, &o, &r);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, "copy", err);
		if (r.copied)
			cli_err(NULL, "%zu backup%s copied before it", r.copied,
				r.copied == 1 ? " was" : "s were");
		return err == -EEXIST ? EXIT_REFUSED : r.failure > BLKTRACK_FAIL_ERROR ?
		       cli_failure_code(r.failure) : EXIT_ERROR;
	}
	if (json)
		return print_json(&o, &r);
	cli_human(r.copied_bytes, human, sizeof(human));
	printf("%s: %zu backup%s copied from %s (%s), %zu already there\n", o.to, r.copied,
	       r.copied == 1 ? "" : "s", o.from, human, r.present);
	return EXIT_OK;
}

const struct cmd cmd_copy = {
	.name = "copy",
	.args = "--from SRC --to DST [--backup ID|--all] [--wait[=SECONDS]] [--json]",
	.help = "Copy the backups of repository SRC that repository DST lacks, with their\n"
		"ids, delta maps and block hashes, so that DST restores them and an\n"
		"incremental taken into DST continues its chains. Every file is checked on\n"
		"the way; each backup (or backup set) is committed in DST whole or not at\n"
		"all: an interrupted copy is finished by running it again. DST must be a\n"
		"repository (blktrack init). Exit 3: SRC's chain is broken, 4: a file of SRC\n"
		"is damaged, 9: SRC and DST have diverged (an id of DST is another backup).\n"
		"  -f, --from SRC         the repository to copy from (read, not locked)\n"
		"  -t, --to DST           the repository to copy into (locked)\n"
		"  -b, --backup ID        backup ID's chain (and the sets of its members)\n"
		"  -a, --all              every committed backup (the default)\n"
		"      --wait[=SECONDS]   wait for DST's lock\n"
		"  -j, --json             {\"from\", \"to\", \"copied\", \"present\",\n"
		"                         \"copied_bytes\", \"seconds\"}",
	.run = run,
};
