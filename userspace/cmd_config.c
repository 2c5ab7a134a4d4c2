// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack config [--config FILE] [--json]
 * blktrack config --systemd DIR	(the systemd generator)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "blktrack.h"

#ifndef UNITDIR
#define UNITDIR "/usr/lib/systemd/system"
#endif

static struct json_object *jstr_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *volume_json(const struct config_volume *v, bool *built)
{
	struct json_object *o = json_object_new_object();
	char path[4096];
	int err = config_resolve(v, path, sizeof(path));

#define ADD(key, val) \
	do { \
		struct json_object *x_ = (val); \
		if (!o || json_object_object_add(o, key, x_)) \
			*built = false; \
	} while (0)
	ADD("name", json_object_new_string(v->name));
	ADD("device", json_object_new_string(v->device));
	/* Where it is now; null and why when it cannot be found. */
	ADD("path", err ? NULL : json_object_new_string(path));
	if (err)
		ADD("path_error", json_object_new_string(err == -ENOENT ? "not present" :
							 strerror(-err)));
	ADD("block_size", json_object_new_uint64(v->block_size));
	ADD("mem_limit", json_object_new_uint64(v->mem_limit));
	ADD("repository", jstr_or_null(v->repository));
	ADD("schedule", jstr_or_null(v->schedule));
	ADD("type", json_object_new_string(config_type_names[v->type]));
	ADD("full_every", json_object_new_uint64(v->full_every));
	ADD("snapshot", json_object_new_string(config_snapshot_names[v->snapshot]));
	ADD("keep_last", json_object_new_uint64(v->keep_last));
	ADD("keep_daily", json_object_new_uint64(v->keep_daily));
	ADD("keep_weekly", json_object_new_uint64(v->keep_weekly));
	ADD("keep_monthly", json_object_new_uint64(v->keep_monthly));
	ADD("line", json_object_new_uint64(v->line));
#undef ADD
	return o;
}

/* "key: value" lines, one block per volume, from the JSON (one source). */
static void print_text(struct json_object *top)
{
	struct json_object *vols, *v;
	size_t i;

	printf("config: %s\n", json_object_get_string(json_object_object_get(top, "path")));
	json_object_object_get_ex(top, "volumes", &vols);
	for (i = 0; i < json_object_array_length(vols); i++) {
		v = json_object_array_get_idx(vols, i);
		printf("\n");
		json_object_object_foreach(v, key, val) {
			if (!strcmp(key, "line"))
				continue;
			printf("%s: %s\n", key, val ? json_object_get_string(val) : "-");
		}
	}
}

/* A file @dir/@name holding @text; 0 or -errno. */
static int write_file(const char *dir, const char *name, const char *text)
{
	char path[8192];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

/*
 * The systemd generator's work: for each volume with a schedule, its
 * timer's OnCalendar= as a drop-in, the timer wanted by timers.target, and
 * its service's RequiresMountsFor= its repository.
 */
static int generate(const struct config *cfg, const char *dir)
{
	char sub[4096], text[8192], link[4096];
	size_t i;

	for (i = 0; i < cfg->n_volumes; i++) {
		const struct config_volume *v = &cfg->volumes[i];

		if (!v->schedule)
			continue;
		snprintf(sub, sizeof(sub), "%s/blktrack-backup@%s.timer.d", dir, v->name);
		snprintf(text, sizeof(text),
			 "# From %s, [volume %s] (blktrack config --systemd)\n"
			 "[Timer]\nOnCalendar=\nOnCalendar=%s\n", cfg->path, v->name, v->schedule);
		snprintf(link, sizeof(link), "%s/timers.target.wants", dir);
		if ((mkdir(sub, 0755) && errno != EEXIST) ||
		    write_file(sub, "schedule.conf", text) ||
		    (mkdir(link, 0755) && errno != EEXIST))
			goto fail;
		/*
		 * The service waits for the repository's filesystem: with a
		 * nofail or late mount it would otherwise find an empty mount
		 * point (no repository: the backup fails, every time).
		 */
		snprintf(sub, sizeof(sub), "%s/blktrack-backup@%s.service.d", dir, v->name);
		snprintf(text, sizeof(text),
			 "# From %s, [volume %s] (blktrack config --systemd)\n"
			 "[Unit]\nRequiresMountsFor=%s\n", cfg->path, v->name, v->repository);
		if ((mkdir(sub, 0755) && errno != EEXIST) ||
		    write_file(sub, "repository.conf", text))
			goto fail;
		snprintf(link, sizeof(link), "%s/timers.target.wants/blktrack-backup@%s.timer",
			 dir, v->name);
		if (symlink(UNITDIR "/blktrack-backup@.timer", link) && errno != EEXIST)
			goto fail;
	}
	return EXIT_OK;
fail:
	cli_err(dir, "%s", strerror(errno));
	return EXIT_ERROR;
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "systemd", required_argument, NULL, 'S' },
		{ 0 }
	};
	const char *path = NULL, *gen = NULL;
	struct json_object *top, *vols;
	struct config cfg;
	bool json = false, built = true;
	size_t i;
	int c, ret;

	(void)ctx;
	while ((c = cli_getopt(&cmd_config, argc, argv, "j", opts)) != -1) {
		if (c == 'C')
			path = optarg;
		else if (c == 'j')
			json = true;
		else if (c == 'S')
			gen = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind != argc || (gen && json))
		return cli_usage(&cmd_config);
	if (cli_config_load(path, &cfg))
		return EXIT_ERROR;
	if (gen) {
		ret = generate(&cfg, gen);
		config_free(&cfg);
		return ret;
	}
	top = json_object_new_object();
	vols = json_object_new_array();
	if (!top || !vols || json_object_object_add(top, "path", json_object_new_string(cfg.path)))
		built = false;
	for (i = 0; vols && i < cfg.n_volumes; i++)
		if (json_object_array_add(vols, volume_json(&cfg.volumes[i], &built)))
			built = false;
	if (top && json_object_object_add(top, "volumes", vols))
		built = false;
	config_free(&cfg);
	if (json || !built)
		return cli_print_json(stdout, top, built, "config");
	print_text(top);
	json_object_put(top);
	return EXIT_OK;
}

const struct cmd cmd_config = {
	.name = "config",
	.args = "[--config FILE] [--json]\n"
		"       --systemd DIR",
	.help = "Check the configuration file (blktrack.conf(5)) and print each volume with\n"
		"its settings and the device it names now. Exit 0, or 1 with FILE:LINE and\n"
		"what is wrong.\n"
		"      --config FILE  default " CONFIG_FILE_DEFAULT " ($BLKTRACK_CONFIG)\n"
		"  -j, --json         the same as JSON\n"
		"      --systemd DIR  write the backup timers of the volumes with a schedule\n"
		"                     into DIR (what the systemd generator runs)",
	.run = run,
};
