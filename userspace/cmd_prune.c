// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack prune --repo DIR --keep-last N|--keep-daily N|--keep-weekly N|
 *                 --keep-monthly N [--dry-run] [--wait[=SECONDS]] [--json]
 * and the plan printer blktrack delete shares.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "blktrack.h"

static const char *const action_names[] = { "keep", "merge", "delete" };
static const char *const why_names[] = { "last", "daily", "weekly", "monthly", "newest",
					 "asked" };

static void why_text(unsigned int why, char *buf, size_t len)
{
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < 6; i++)
		if (why & (1U << i))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", why_names[i]);
}

static void print_item(const struct blktrack_prune_item *it)
{
	char when[32], why[64];
	struct tm tm;
	time_t t = it->time;
	size_t k;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	why_text(it->why, why, sizeof(why));
	printf("%-6s %6llu  %-12s %s  %s", action_names[it->action],
	       (unsigned long long)it->id, it->type, when, it->volume_id);
	if (it->why)
		printf("  (%s)", why);
	if (it->action == BLKTRACK_PRUNE_MERGE) {
		printf("\n         becomes: %s", it->new_type);
		if (it->new_parent)
			printf(" on %llu", (unsigned long long)it->new_parent);
		printf(", with");
		for (k = 0; k < it->nfolded; k++)
			printf(" %llu", (unsigned long long)it->folded[k]);
		printf(" folded in");
	}
	printf("\n");
}

static struct json_object *item_json(const struct blktrack_prune_item *it)
{
	struct json_object *o = json_object_new_object(), *why = json_object_new_array(),
			   *folded = json_object_new_array();
	size_t i;

	for (i = 0; i < 6; i++)
		if (it->why & (1U << i))
			json_object_array_add(why, json_object_new_string(why_names[i]));
	for (i = 0; i < it->nfolded; i++)
		json_object_array_add(folded, json_object_new_uint64(it->folded[i]));
	json_object_object_add(o, "id", json_object_new_uint64(it->id));
	json_object_object_add(o, "volume_id", json_object_new_string(it->volume_id));
	json_object_object_add(o, "time", json_object_new_int64(it->time));
	json_object_object_add(o, "type", json_object_new_string(it->type));
	json_object_object_add(o, "action", json_object_new_string(action_names[it->action]));
	json_object_object_add(o, "why", why);
	if (it->action == BLKTRACK_PRUNE_MERGE) {
		json_object_object_add(o, "new_type", json_object_new_string(it->new_type));
		json_object_object_add(o, "new_parent", json_object_new_uint64(it->new_parent));
	}
	json_object_object_add(o, "folded", folded);
	return o;
}

static int print_json(const struct blktrack_prune_opts *o,
		      const struct blktrack_prune_result *r)
{
	struct json_object *top = json_object_new_object(), *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr && i < r->n; i++)
		json_object_array_add(arr, item_json(&r->items[i]));
	json_object_object_add(top, "path", json_object_new_string(o->repo));
	json_object_object_add(top, "dry_run", json_object_new_boolean(o->dry_run));
	json_object_object_add(top, "backups", arr);
	json_object_object_add(top, "kept", json_object_new_int64(r->kept));
	json_object_object_add(top, "merged", json_object_new_int64(r->merged));
	json_object_object_add(top, "deleted", json_object_new_int64(r->deleted));
	json_object_object_add(top, "read_bytes", json_object_new_uint64(r->read_bytes));
	json_object_object_add(top, "written_bytes", json_object_new_uint64(r->written_bytes));
	json_object_object_add(top, "replaced_bytes", json_object_new_uint64(r->replaced_bytes));
	json_object_object_add(top, "freed_bytes", json_object_new_uint64(r->freed_bytes));
	json_object_object_add(top, "seconds", json_object_new_double(r->seconds));
	return cli_print_json(stdout, top, top && arr, NULL);
}

static int cli_prune(struct blktrack_ctx *ctx, const struct blktrack_prune_opts *o, bool json)
{
	struct blktrack_prune_result r;
	char a[32], b[32], c[32];
	int err = blktrack_repo_prune(ctx, o, &r), ret;
	size_t i;

	if (err < 0) {
		blktrack_prune_result_free(&r);
		cli_fail(ctx, o->delete_id ? "delete" : "prune", err);
		return r.refused ? EXIT_REFUSED : EXIT_ERROR;
	}
	if (json) {
		ret = print_json(o, &r);
		blktrack_prune_result_free(&r);
		return ret;
	}
	for (i = 0; i < r.n; i++)
		print_item(&r.items[i]);
	cli_human(o->dry_run ? r.replaced_bytes : r.read_bytes, a, sizeof(a));
	cli_human(r.written_bytes, b, sizeof(b));
	cli_human(r.replaced_bytes, c, sizeof(c));
	printf("%s: %s%u kept, %u merged, %u deleted", o->repo, o->dry_run ? "dry run, would be: " :
	       "", r.kept, r.merged, r.deleted);
	if (r.merged && o->dry_run)
		printf("; the merges would read %s", a);
	else if (r.merged)
		printf("; the merges read %s and wrote %s in place of %s", a, b, c);
	printf("\n");
	blktrack_prune_result_free(&r);
	return EXIT_OK;
}

static int parse_count(const char *s, unsigned int *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || !*s || *s == '-' || n > UINT_MAX) {
		cli_err(NULL, "%s: not a count", s);
		return -EINVAL;
	}
	*v = n;
	return 0;
}

/*
 * prune --volume NAME: the repository and keep rules of [volume NAME] where
 * the command line gives none. 0, -1 (no rules: nothing to do), or the exit code.
 */
static int from_config(const char *path, const char *name, struct blktrack_prune_opts *o)
{
	const struct config_volume *v;
	struct config cfg;
	int ret = 0;

	if (cli_config_load(path, &cfg))
		return EXIT_ERROR;
	v = config_find(&cfg, name);
	if (!v) {
		cli_err(name, "no [volume %s] in %s", name, cfg.path);
		ret = EXIT_ERROR;
	} else if (!o->repo && !v->repository) {
		cli_err(name, "[volume %s] has no repository: give --repo", name);
		ret = EXIT_USAGE;
	} else if (!o->keep_last && !o->keep_daily && !o->keep_weekly && !o->keep_monthly) {
		o->keep_last = v->keep_last;
		o->keep_daily = v->keep_daily;
		o->keep_weekly = v->keep_weekly;
		o->keep_monthly = v->keep_monthly;
		if (!o->keep_last && !o->keep_daily && !o->keep_weekly && !o->keep_monthly) {
			if (cli_verbosity >= 0)
				printf("%s: no keep rule configured: nothing pruned\n", name);
			ret = -1;
		}
	}
	/* The repository path outlives @cfg: the CLI exits after the prune. */
	if (!ret && !o->repo && !(o->repo = strdup(v->repository)))
		ret = EXIT_ERROR;
	config_free(&cfg);
	return ret;
}

/* prune, or delete (@cmd): one parser, the keep rules only for prune. */
int cli_prune_main(const struct cmd *cmd, struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "keep-last", required_argument, NULL, 'l' },
		{ "keep-daily", required_argument, NULL, 'd' },
		{ "keep-weekly", required_argument, NULL, 'w' },
		{ "keep-monthly", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "wait", optional_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'j' },
		{ "volume", required_argument, NULL, 'N' },
		{ "config", required_argument, NULL, 'G' },
		{ 0 }
	};
	const char *volume = NULL, *config = NULL;
	bool deleting = cmd == &cmd_delete, json = false;
	struct blktrack_prune_opts o = { 0 };
	unsigned int *count;
	int c;

	while ((c = cli_getopt(cmd, argc, argv, deleting ? "r:nj" : "r:l:d:w:m:nj",
			       opts)) != -1) {
		count = c == 'l' ? &o.keep_last : c == 'd' ? &o.keep_daily :
			c == 'w' ? &o.keep_weekly : c == 'm' ? &o.keep_monthly : NULL;
		if (count && deleting)
			return cli_usage(cmd);
		if (count) {
			if (parse_count(optarg, count))
				return EXIT_USAGE;
		} else if (c == 'r') {
			o.repo = optarg;
		} else if (c == 'n') {
			o.dry_run = true;
		} else if (c == 'W') {
			o.lock_wait = UINT_MAX;
			if (optarg && parse_count(optarg, &o.lock_wait))
				return EXIT_USAGE;
		} else if (c == 'j') {
			json = true;
		} else if (c == 'N' && !deleting) {
			volume = optarg;
		} else if (c == 'G' && !deleting) {
			config = optarg;
		} else {
			return EXIT_USAGE;
		}
	}
	if (volume) {
		c = from_config(config, volume, &o);
		if (c)
			return c < 0 ? EXIT_OK : c;
	}
	if (optind != argc - deleting || !o.repo || (config && !volume))
		return cli_usage(cmd);
	if (deleting && cli_parse_id(argv[optind], &o.delete_id))
		return EXIT_USAGE;
	if (!deleting && !o.keep_last && !o.keep_daily && !o.keep_weekly && !o.keep_monthly) {
		cli_err("prune", "give at least one keep rule (--keep-last, --keep-daily, "
			"--keep-weekly, --keep-monthly)");
		return EXIT_USAGE;
	}
	return cli_prune(ctx, &o, json);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	return cli_prune_main(&cmd_prune, ctx, argc, argv);
}

const struct cmd cmd_prune = {
	.name = "prune",
	.args = "--repo DIR [--keep-last N] [--keep-daily N] [--keep-weekly N]\n"
		"       [--keep-monthly N] [--dry-run] [--wait[=SECONDS]] [--json]\n"
		"       --volume NAME [--config FILE] [any option above]",
	.help = "Keep the backups the rules keep, per volume, and remove the others. A backup\n"
		"not kept that a kept one needs is merged into it (a synthetic full, or an\n"
		"incremental on the nearest kept backup of its chain), never lost. The\n"
		"newest full, incremental or resync of each volume and the backups after it\n"
		"are always kept. One crash-safe commit; exit 0, 1 on an error.\n"
		"  -r, --repo DIR        the repository\n"
		"  -l, --keep-last N     the N newest backups\n"
		"  -d, --keep-daily N    the newest backup of each of the N newest days with one\n"
		"  -w, --keep-weekly N   the same by ISO week\n"
		"  -m, --keep-monthly N  the same by calendar month (local time, TZ)\n"
		"  -n, --dry-run         print the plan (kept and why, merged, deleted), change\n"
		"                        nothing\n"
		"      --wait[=SECONDS]  wait for the repository's lock\n"
		"  -j, --json            the plan and the bytes the merges read and wrote\n"
		"      --volume NAME     the repository and keep rules of [volume NAME] in the\n"
		"                        configuration (none configured: nothing to do, exit 0)\n"
		"      --config FILE     default " CONFIG_FILE_DEFAULT " ($BLKTRACK_CONFIG)",
	.run = run,
};
