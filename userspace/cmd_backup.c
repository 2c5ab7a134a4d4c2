// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack backup DEV... [--file PATH...] --repo DIR [--type TYPE] [--on-invalid full|fail]
 *	[--output -] [--writers-dir DIR] [--writer-timeout SECONDS]
 *	[--no-fs-freeze] [--no-verify] [--thaw-early] [--strict] [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "blktrack.h"

static void summary(FILE *f, const char *dev, const struct blktrack_backup_result *r)
{
	char c[32], v[32], s[32];

	cli_human(r->changed_bytes, c, sizeof(c));
	cli_human(r->covered_bytes, v, sizeof(v));
	cli_human(r->stored_bytes, s, sizeof(s));
	fprintf(f, "backup: %" PRIu64 "\n", r->id);
	fprintf(f, "type: %s%s\n", config_type_names[r->type],
		r->fell_back ? " (tracking was invalid)" : "");
	fprintf(f, "device: %s\n", dev);
	fprintf(f, "volume_id: %s\n", r->volume_id);
	if (r->whole_file_why[0])
		fprintf(f, "whole_file: %s\n", r->whole_file_why);
	fprintf(f, "parent: %" PRIu64 "\n", r->parent);
	fprintf(f, "file: %s\n", r->file);
	fprintf(f, "recovery: %s\n", r->recovery);
	fprintf(f, "changed_bytes: %" PRIu64 " (%s)\n", r->changed_bytes, c);
	fprintf(f, "covered_bytes: %" PRIu64 " (%s)\n", r->covered_bytes, v);
	fprintf(f, "stored_bytes: %" PRIu64 " (%s)\n", r->stored_bytes, s);
	fprintf(f, "ratio: %.3f\n", r->covered_bytes ?
		(double)r->stored_bytes / r->covered_bytes : 0.0);
	fprintf(f, "freeze: %s%s%s (%.3f s)\n", r->freeze, r->mount_point[0] ? " " : "",
		r->mount_point, r->freeze_seconds);
	fprintf(f, "snapshot: %s", r->snapshot);
	if (!strcmp(r->snapshot, "cow"))
		fprintf(f, " (%" PRIu64 " blocks copied aside to %s, %" PRIu64 " writes held)",
			r->snapshot_copied, r->snapshot_store, r->snapshot_held);
	fprintf(f, "\n");
	fprintf(f, "writers: %u\n", r->writers);
	fprintf(f, "verified: %s\n", r->verified ? "yes" : "no");
	fprintf(f, "hashes: %s\n", r->hashes ? "yes" : "no");
	cli_human(r->rewritten_bytes, c, sizeof(c));
	fprintf(f, "rewritten_during_read_bytes: %" PRIu64 " (%s)\n", r->rewritten_bytes, c);
	for (const char *p = r->writer_stamps, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		fprintf(f, "writer_stamp: %.*s\n", (int)(nl - p), p);
	}
	if (r->writer_ranges[0]) {
		fprintf(f, "added_bytes: %" PRIu64 "\n", r->added_bytes);
		fprintf(f, "excluded_bytes: %" PRIu64 "\n", r->excluded_bytes);
	}
	for (const char *p = r->writer_ranges; *p; p = strchr(p, '\n') + 1) {
		char name[256];
		uint64_t a, e;

		if (sscanf(p, "%255[^\t]\t%" SCNu64 "\t%" SCNu64, name, &a, &e) == 3)
			fprintf(f, "writer_ranges: %s added %" PRIu64 " excluded %" PRIu64 "\n",
				name, a, e);
	}
	fprintf(f, "seconds: %.2f\n", r->seconds);
}

/* "NAME\tADDED\tEXCLUDED\n" lines as {NAME: {"added": A, "excluded": E}}. */
static struct json_object *ranges_json(const char *lines)
{
	struct json_object *o = json_object_new_object(), *w;
	uint64_t a, e;
	char name[256];

	for (const char *p = lines; o && *p; p = strchr(p, '\n') + 1) {
		if (sscanf(p, "%255[^\t]\t%" SCNu64 "\t%" SCNu64, name, &a, &e) != 3)
			continue;
		w = json_object_new_object();
		json_object_object_add(w, "added", json_object_new_uint64(a));
		json_object_object_add(w, "excluded", json_object_new_uint64(e));
		json_object_object_add(o, name, w);
	}
	return o;
}

/* "NAME\tSTAMP\n" lines as {NAME: STAMP}. */
static struct json_object *stamps_json(const char *stamps)
{
	struct json_object *o = json_object_new_object();
	const char *p, *tab, *nl;
	char name[256];

	for (p = stamps; o && *p; p = nl + 1) {
		tab = strchr(p, '\t');
		nl = strchr(p, '\n');
		snprintf(name, sizeof(name), "%.*s", (int)(tab - p), p);
		json_object_object_add(o, name, json_object_new_string_len(tab + 1,
									   (int)(nl - tab - 1)));
	}
	return o;
}

static struct json_object *result_json(const char *dev, const struct blktrack_backup_result *r)
{
	struct json_object *o = json_object_new_object();
	bool failed;

	failed = !o ||
	    json_object_object_add(o, "backup", json_object_new_uint64(r->id)) ||
	    json_object_object_add(o, "type", json_object_new_string(config_type_names[r->type])) ||
	    json_object_object_add(o, "fell_back", json_object_new_boolean(r->fell_back)) ||
	    json_object_object_add(o, "hashes", json_object_new_boolean(r->hashes)) ||
	    json_object_object_add(o, "device", json_object_new_string(dev)) ||
	    json_object_object_add(o, "volume_id", json_object_new_string(r->volume_id)) ||
	    json_object_object_add(o, "whole_file", r->whole_file_why[0] ?
				   json_object_new_string(r->whole_file_why) : NULL) ||
	    json_object_object_add(o, "parent", json_object_new_uint64(r->parent)) ||
	    json_object_object_add(o, "file", json_object_new_string(r->file)) ||
	    json_object_object_add(o, "recovery", json_object_new_string(r->recovery)) ||
	    json_object_object_add(o, "volume_size", json_object_new_uint64(r->volume_size)) ||
	    json_object_object_add(o, "changed_bytes", json_object_new_uint64(r->changed_bytes)) ||
	    json_object_object_add(o, "covered_bytes", json_object_new_uint64(r->covered_bytes)) ||
	    json_object_object_add(o, "ratio", json_object_new_double(r->covered_bytes ?
			(double)r->stored_bytes / r->covered_bytes : 0.0)) ||
	    json_object_object_add(o, "data_bytes", json_object_new_uint64(r->data_bytes)) ||
	    json_object_object_add(o, "stored_bytes", json_object_new_uint64(r->stored_bytes)) ||
	    json_object_object_add(o, "freeze", json_object_new_string(r->freeze)) ||
	    json_object_object_add(o, "mount_point", json_object_new_string(r->mount_point)) ||
	    json_object_object_add(o, "freeze_seconds", json_object_new_double(r->freeze_seconds)) ||
	    json_object_object_add(o, "snapshot", json_object_new_string(r->snapshot)) ||
	    json_object_object_add(o, "snapshot_copied_blocks",
				   json_object_new_uint64(r->snapshot_copied)) ||
	    json_object_object_add(o, "snapshot_held_writes",
				   json_object_new_uint64(r->snapshot_held)) ||
	    json_object_object_add(o, "snapshot_store", r->snapshot_store ?
				   json_object_new_string(r->snapshot_store) : NULL) ||
	    json_object_object_add(o, "writers", json_object_new_uint64(r->writers)) ||
	    json_object_object_add(o, "verified", json_object_new_boolean(r->verified)) ||
	    json_object_object_add(o, "rewritten_during_read_bytes",
				   json_object_new_uint64(r->rewritten_bytes)) ||
	    json_object_object_add(o, "writer_stamps", stamps_json(r->writer_stamps)) ||
	    json_object_object_add(o, "added_bytes", json_object_new_uint64(r->added_bytes)) ||
	    json_object_object_add(o, "excluded_bytes", json_object_new_uint64(r->excluded_bytes)) ||
	    json_object_object_add(o, "writer_ranges", ranges_json(r->writer_ranges)) ||
	    json_object_object_add(o, "seconds", json_object_new_double(r->seconds));
	if (failed && o)
		json_object_put(o);
	return failed ? NULL : o;
}

/* One backup: its object; a set: {"set": ID, "members": [...]}. */
static int summary_json(FILE *f, const struct blktrack_backup_opts *o,
			const struct blktrack_backup_result *r, size_t n)
{
	struct json_object *top, *arr;
	bool ok = true;
	size_t i;

	if (n == 1) {
		top = result_json(o[0].device, &r[0]);
		return cli_print_json(f, top, top != NULL, NULL);
	}
	top = json_object_new_object();
	arr = json_object_new_array();
	for (i = 0; top && arr && ok && i < n; i++) {
		struct json_object *m = result_json(o[i].device, &r[i]);

		ok = m && !json_object_array_add(arr, m);
	}
	ok = ok && top && arr &&
	     !json_object_object_add(top, "set", json_object_new_uint64(r[0].set)) &&
	     !json_object_object_add(top, "members", arr);
	if (!ok)
		json_object_put(arr);
	return cli_print_json(f, top, ok, NULL);
}

/*
 * --volume NAME: the device, repository, type (its policy) and snapshot of
 * [volume NAME] in blktrack.conf, where the command line does not say.
 */
static int from_config(struct blktrack_ctx *ctx, const char *path, const char *name,
		       char dev[4096], struct blktrack_backup_opts *o, bool typed, bool snapped)
{
	const struct config_volume *v;
	struct config cfg;
	int ret;

	if (cli_config_load(path, &cfg))
		return EXIT_ERROR;
	ret = cli_config_volume(&cfg, name, &v, dev, 4096);
	if (!ret && !o->repo && !o->output_fd && !v->repository) {
		cli_err(name, "[volume %s] has no repository: give --repo", name);
		ret = EXIT_USAGE;
	}
	if (!ret && !o->repo && !o->output_fd) {
		/* The catalog keeps the path; the configuration goes away with @cfg. */
		o->repo = strdup(v->repository);
		ret = o->repo ? 0 : cli_fail(ctx, name, -ENOMEM);
	}
	if (!ret && !typed && o->repo)
		ret = cli_config_backup_type(ctx, v, dev, &o->type);
	if (!snapped)
		o->snapshot = v->snapshot;
	o->device = dev;
	config_free(&cfg);
	return ret;
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "type", required_argument, NULL, 't' },
		{ "on-invalid", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "writers-dir", required_argument, NULL, 'W' },
		{ "writer-timeout", required_argument, NULL, 'T' },
		{ "no-fs-freeze", no_argument, NULL, 'F' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "verify-source", no_argument, NULL, 'Y' },
		{ "thaw-early", no_argument, NULL, 'E' },
		{ "strict", no_argument, NULL, 'S' },
		{ "no-compress", no_argument, NULL, 'C' },
		{ "snapshot", required_argument, NULL, 'P' },
		{ "snapshot-store", required_argument, NULL, 'Z' },
		{ "force", no_argument, NULL, 'f' },
		{ "wait", optional_argument, NULL, 'w' },
		{ "lock-dir", required_argument, NULL, 'L' },
		{ "volume", required_argument, NULL, 'N' },
		{ "config", required_argument, NULL, 'G' },
		{ "file", required_argument, NULL, 'I' },
		{ 0 }
	};
	struct blktrack_backup_opts o = { .progress = cli_progress,
					  .snapshot = BLKTRACK_SNAPSHOT_AUTO };
	struct blktrack_backup_opts set[BLKTRACK_SET_MAX];
	struct blktrack_backup_result res[BLKTRACK_SET_MAX];
	const char *volume = NULL, *config = NULL, *files[BLKTRACK_SET_MAX];
	size_t nfiles = 0, n = 0, i;
	bool json = false, typed = false, snapped = false;
	char dev[4096];
	FILE *out = stdout;
	unsigned long secs;
	char *end;
	int c, k, err;

	while ((c = cli_getopt(&cmd_backup, argc, argv, "r:t:i:o:j", opts)) != -1) {
		switch (c) {
		case 'r':
			o.repo = optarg;
			break;
		case 't':
			/* "auto" is no --type. */
			k = config_pick(config_type_names, optarg);
			if (k <= BLKTRACK_BACKUP_AUTO) {
				cli_err(NULL, "--type: full, incremental, differential, copy or "
					"resync");
				return cli_usage(&cmd_backup);
			}
			o.type = k;
			typed = true;
			break;
		case 'i':
			if (!strcmp(optarg, "full")) {
				o.on_invalid = BLKTRACK_ON_INVALID_FULL;
			} else if (!strcmp(optarg, "fail")) {
				o.on_invalid = BLKTRACK_ON_INVALID_FAIL;
			} else if (!strcmp(optarg, "resync")) {
				o.on_invalid = BLKTRACK_ON_INVALID_RESYNC;
			} else {
				cli_err(NULL, "--on-invalid: resync, full or fail");
				return cli_usage(&cmd_backup);
			}
			break;
		case 'o':
			if (strcmp(optarg, "-")) {
				cli_err(NULL, "--output: only '-' (standard output) for now");
				return cli_usage(&cmd_backup);
			}
			o.output_fd = STDOUT_FILENO;
			out = stderr;
			break;
		case 'j':
			json = true;
			break;
		case 'W':
			o.writers_dir = optarg;
			break;
		case 'T':
			if (cli_parse_seconds(optarg, &o.writer_timeout))
				return cli_usage(&cmd_backup);
			break;
		case 'F':
			o.no_fs_freeze = true;
			break;
		case 'V':
			o.no_verify = true;
			break;
		case 'Y':
			o.verify_source = true;
			break;
		case 'E':
			o.thaw_early = true;
			break;
		case 'C':
			o.no_compress = true;
			break;
		case 'P':
			k = config_pick(config_snapshot_names, optarg);
			if (k < 0) {
				cli_err(NULL, "--snapshot: auto, cow, freeze or none");
				return cli_usage(&cmd_backup);
			}
			o.snapshot = k;
			snapped = true;
			break;
		case 'Z':
			/* Digits: a size in memory; anything else: a path. */
			if (*optarg < '0' || *optarg > '9') {
				o.snapshot_store_path = optarg;
				break;
			}
			errno = 0;
			o.snapshot_store = strtoull(optarg, &end, 10);
			if (errno || *end || !o.snapshot_store) {
				cli_err(NULL, "--snapshot-store: bytes (at least 1) or a path");
				return cli_usage(&cmd_backup);
			}
			break;
		case 'S':
			o.strict = true;
			break;
		case 'f':
			o.force = true;
			break;
		case 'w':
			if (!optarg) {
				o.lock_wait = -1;
				break;
			}
			errno = 0;
			secs = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || secs > 86400 * 7) {
				cli_err(NULL, "--wait: seconds, 0 to 604800 (none: as long as it "
					"takes)");
				return cli_usage(&cmd_backup);
			}
			o.lock_wait = secs;
			break;
		case 'L':
			o.lock_dir = optarg;
			break;
		case 'N':
			volume = optarg;
			break;
		case 'G':
			config = optarg;
			break;
		case 'I':
			if (nfiles == BLKTRACK_SET_MAX) {
				cli_err(NULL, "--file: %d at most", BLKTRACK_SET_MAX);
				return cli_usage(&cmd_backup);
			}
			files[nfiles++] = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (volume) {
		if (optind != argc || nfiles)
			return cli_usage(&cmd_backup);
		err = from_config(ctx, config, volume, dev, &o, typed, snapped);
		if (err)
			return err;
		set[n++] = o;
	} else if (optind == argc && !nfiles) {
		return cli_usage(&cmd_backup);
	} else if ((!o.repo && !o.output_fd) || config) {
		return cli_usage(&cmd_backup);
	}
	/* A set: the devices, then the files (in messages, a file is its device). */
	for (; !volume && optind < argc && n < BLKTRACK_SET_MAX; optind++) {
		set[n] = o;
		set[n++].device = argv[optind];
	}
	for (i = 0; i < nfiles && n < BLKTRACK_SET_MAX; i++) {
		set[n] = o;
		set[n].file = set[n].device = files[i];
		n++;
	}
	if (optind != argc || i != nfiles || (n > 1 && o.output_fd)) {
		cli_err(NULL, n > 1 && o.output_fd ? "a set goes to a repository, not --output" :
			"a set has %d members at most", BLKTRACK_SET_MAX);
		return EXIT_USAGE;
	}
	if (o.output_fd && isatty(STDOUT_FILENO)) {
		cli_err(NULL, "--output -: standard output is a terminal");
		return EXIT_USAGE;
	}

	err = blktrack_backup_set(ctx, set, n, res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		/* Committed in the catalog, only the kernel COMMIT failed: it is stored. */
		if (res[0].id)
			cli_err(set[0].device, "backup %" PRIu64 "%s is stored and restorable; only "
				"the kernel checkpoint is not committed yet", res[0].id,
				n > 1 ? " (the set)" : "");
		else
			cli_err(set[0].device, "nothing was backed up; the changes stay tracked");
		return res[0].failure == BLKTRACK_FAIL_NONE ? EXIT_ERROR :
		       cli_failure_code(res[0].failure);
	}
	for (i = 0; i < n; i++)
		if (res[i].fell_back)	/* a warning (issue 13, point 9): -q silences it */
			cli_warn(set[i].device, "%s: took a %s", res[i].fell_back_why,
				 config_type_names[res[i].type]);
	/* The library's notice is a debug line: say it here, on stderr. */
	if (o.snapshot == BLKTRACK_SNAPSHOT_AUTO && !strcmp(res[0].snapshot, "freeze"))
		cli_warn(set[0].device, "--snapshot=auto: no copy-before-write snapshot (the "
			 "module has none, or the kernel refused its interception of writes: see "
			 "the kernel log); fell back to holding the freeze through the read");
	if (json)
		return summary_json(out, set, res, n);
	if (n > 1)
		fprintf(out, "set: %" PRIu64 " (%zu members)\n", res[0].set, n);
	for (i = 0; i < n; i++) {
		if (n > 1)
			fprintf(out, "\n");
		summary(out, set[i].device, &res[i]);
	}
	return EXIT_OK;
}

const struct cmd cmd_backup = {
	.name = "backup",
	.args = "DEV... [--file PATH...] --repo DIR [--type TYPE] [--on-invalid resync|full|fail]\n"
		"       [--output -] [--writers-dir DIR] [--writer-timeout SECONDS] [--no-fs-freeze]\n"
		"       [--no-verify | --verify-source] [--thaw-early] [--strict] [--no-compress]\n"
		"       [--snapshot auto|cow|freeze|none] [--snapshot-store BYTES|PATH [--force]]\n"
		"       [--wait[=SECONDS]] [--lock-dir DIR] [--json] [-q | -v]\n"
		"       --volume NAME [--config FILE] [any option above]",
	.help = "Checkpoint DEV and store what changed in the repository DIR (made by\n"
		"blktrack init); a crash of an earlier run is repaired first. Several DEVs\n"
		"and files are a backup set: one checkpoint of all at one instant, the\n"
		"writers frozen once, committed all or none (doc/REPOSITORY.md, \"Backup\n"
		"sets\"; restore --set).\n"
		"      --file PATH       back up this file of a tracked volume (a VM image...):\n"
		"                        the volume's changed blocks mapped onto it through\n"
		"                        its extents (FIEMAP), and every range that moved\n"
		"                        since its last backup (doc/FILES.md); a chain of\n"
		"                        its own in DIR. Again for more files\n"
		"  -r, --repo DIR        the repository (doc/REPOSITORY.md)\n"
		"  -t, --type TYPE       full, incremental, differential, copy or resync; default:\n"
		"                        incremental if DIR holds a base for the volume, else full\n"
		"  -i, --on-invalid WHAT when tracking cannot be trusted (module reloaded,\n"
		"                        volume re-attached, stamps do not follow): resync (the\n"
		"                        default) reads the whole volume and stores the blocks\n"
		"                        whose hash differs from the last base's, full takes a\n"
		"                        full backup, fail gives exit 6\n"
		"  -o, --output -        stream the backup file to standard output: no catalog\n"
		"                        entry, and the checkpoint is aborted at the end, so the\n"
		"                        stream moves no base (default type copy without --repo)\n"
		"      --writers-dir DIR external writers (doc/WRITERS.md); default\n"
		"                        /etc/blktrack/writers.d (none if it does not exist);\n"
		"                        files named [A-Za-z0-9_-]+, owned by root, not group-\n"
		"                        or world-writable, no symlinks (others: skipped, said)\n"
		"      --writer-timeout SECONDS  per writer and event (60); then SIGTERM,\n"
		"                        SIGKILL 5 s later, a failure\n"
		"      --no-fs-freeze    no built-in filesystem writer (FIFREEZE/FITHAW)\n"
		"      --no-verify       no built-in verify writer (read the file back, check it\n"
		"                        holds what was read: a hash per piece, taken at the read)\n"
		"      --verify-source   the verify writer compares with the volume, read again\n"
		"      --thaw-early      thaw right after the checkpoint, not after the read\n"
		"      --strict          reject the backup (exit 7) when blocks it read were\n"
		"                        rewritten during the read\n"
		"      --no-compress     store records without zstd (compression none)\n"
		"      --snapshot MODE   how the read sees the checkpoint's instant: cow\n"
		"                        thaws at once and reads a copy-before-write snapshot;\n"
		"                        freeze holds the filesystem frozen through the read;\n"
		"                        auto (the default) is cow where the module can, else\n"
		"                        freeze; none thaws at once and reads the live volume\n"
		"      --snapshot-store BYTES|PATH  cow: most bytes copied aside in memory\n"
		"                        (the module's snap_limit_mib by default), or where\n"
		"                        to copy them instead: a directory (an unnamed file\n"
		"                        in it), a block device (overwritten) or a file, not\n"
		"                        on the volume; when it fills up, the backup fails.\n"
		"                        One that holds a filesystem or partition table\n"
		"                        (libblkid) is refused\n"
		"      --force           use such a --snapshot-store all the same\n"
		"      --wait[=SECONDS]  when another blktrack backs up this volume or writes\n"
		"                        the repository (it holds their lock), wait for it:\n"
		"                        SECONDS at most, or as long as it takes; without\n"
		"                        --wait, fail at once\n"
		"      --lock-dir DIR    where the volumes' locks are (/run/blktrack)\n"
		"  -j, --json            the summary as JSON\n"
		"      --volume NAME     [volume NAME] of the configuration: its device,\n"
		"                        repository, snapshot mode and type (its type, or a\n"
		"                        full when its newest full is older than full-every,\n"
		"                        or its first); options given override them\n"
		"      --config FILE     default " CONFIG_FILE_DEFAULT " ($BLKTRACK_CONFIG)\n"
		"Prints a summary (type, changed and stored bytes, ratio, freeze, bytes\n"
		"rewritten during the read, time); a progress line on standard error when it\n"
		"is a terminal. A writer's veto or rejection: exit 8, nothing backed up.",
	.run = run,
};
