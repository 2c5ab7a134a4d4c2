// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack-dump - show what blktrack knows, for storage admins.
 *
 *	blktrack-dump [kernel] [--pending] [--columns N] [--extents] [--json] [DEV...]
 *
 * "kernel" (the default) shows every attached volume (or the DEVs given):
 * its status and a density picture of its active map (or, with --pending,
 * of its pending map). Later subcommands (backup FILE, repo DIR) plug in
 * the subcommand table below.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <sys/sysmacros.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "libblktrack.h"

#define EXIT_OK		0
#define EXIT_ERROR	1
#define EXIT_USAGE	2

#define DEFAULT_COLUMNS	64U
#define MAX_COLUMNS	1024U

static const char *progname = "blktrack-dump";

struct dump_opts {
	bool json;
	bool pending;
	bool extents;
	unsigned int columns;
};

static void err_msg(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void err_msg(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (what)
		fprintf(stderr, "%s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [kernel] [options] [DEV...]\n"
		"\n"
		"Show every attached volume (or each DEV): its tracking state and a\n"
		"density picture of its map, one cell per slice of the volume:\n"
		"' ' clean, '.' < 25%% dirty, ':' < 50%%, '*' < 100%%, '#' all dirty.\n"
		"\n"
		"  -p, --pending      picture the pending map instead of the active map\n"
		"  -c, --columns N    cells in the picture (default %u)\n"
		"  -e, --extents      list the extents too\n"
		"  -j, --json         JSON: {\"volumes\": [...]}\n"
		"  -h, --help         this text\n"
		"\n"
		"Exit status: 0 ok, 1 error, 2 usage.\n",
		progname, DEFAULT_COLUMNS);
}

/* ---- kernel ---------------------------------------------------------- */

static void human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = v;
	unsigned int u = 0;

	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
}

struct vol_map {
	struct blktrack_extent *ext;
	size_t n;
	uint64_t dirty_bytes;
	char *density;
	bool present;		/* false: no pending map to show */
};

static int read_map(struct blktrack_ctx *ctx, dev_t dev,
		    const struct blktrack_status *st, const struct dump_opts *o,
		    struct vol_map *m)
{
	size_t i;
	int err;

	memset(m, 0, sizeof(*m));
	m->density = calloc(1, o->columns + 1);
	if (!m->density)
		return -ENOMEM;
	if (o->pending && !(st->flags & BLKTRACK_STATUS_PENDING))
		return 0;
	err = blktrack_read_extents(ctx, dev, o->pending ? 0 : BLKTRACK_READ_ACTIVE,
				    NULL, &m->ext, &m->n);
	if (err < 0)
		return err;
	m->present = true;
	for (i = 0; i < m->n; i++)
		m->dirty_bytes += m->ext[i].length;
	return blktrack_density(m->ext, m->n, st->dev_size, o->columns, m->density);
}

static void print_volume(const char *name, dev_t dev, const struct blktrack_status *st,
			 const struct vol_map *m, const struct dump_opts *o)
{
	const char *which = o->pending ? "pending" : "active";
	char a[32], b[32];
	size_t i;

	struct blktrack_volume_id vid;

	printf("%s (%u:%u)\n", name, major(dev), minor(dev));
	blktrack_status_print(stdout, name, st);
	if (blktrack_volume_identify(name, &vid) == 0)
		printf("volume_id: %s (%s)\nfstype: %s\n", vid.id, vid.id_type,
		       vid.fstype[0] ? vid.fstype : "none");
	if (!m->present) {
		printf("map: %s: none\n", which);
		return;
	}
	human(m->dirty_bytes, a, sizeof(a));
	human(st->dev_size, b, sizeof(b));
	printf("map: %s: %zu extents, %" PRIu64 " dirty bytes (%s of %s)\n",
	       which, m->n, m->dirty_bytes, a, b);
	printf("|%s|\n", m->density);
	printf("0%*s\n", (int)o->columns + 1, b);
	if (!o->extents)
		return;
	for (i = 0; i < m->n; i++)
		printf("  %" PRIu64 " %" PRIu64 "\n", (uint64_t)m->ext[i].offset,
		       (uint64_t)m->ext[i].length);
}

static int volume_json(const char *name, dev_t dev, const struct blktrack_status *st,
		       const struct vol_map *m, const struct dump_opts *o,
		       struct json_object **objp)
{
	struct blktrack_volume_id vid;
	struct json_object *v, *map, *ext;
	char devno[32];
	int err;

	err = blktrack_status_json(name, st, &v);
	if (err < 0)
		return err;
	snprintf(devno, sizeof(devno), "%u:%u", major(dev), minor(dev));
	if (blktrack_volume_identify(name, &vid) == 0 &&
	    (json_object_object_add(v, "volume_id", json_object_new_string(vid.id)) ||
	     json_object_object_add(v, "volume_id_type", json_object_new_string(vid.id_type)) ||
	     json_object_object_add(v, "fstype", vid.fstype[0] ?
				    json_object_new_string(vid.fstype) : NULL)))
		goto nomem_v;
	map = json_object_new_object();
	if (!map)
		goto nomem_v;
	if (json_object_object_add(map, "name", json_object_new_string(
				o->pending ? "pending" : "active")) ||
	    json_object_object_add(map, "present", json_object_new_boolean(m->present)))
		goto nomem;
	if (m->present) {
		if (json_object_object_add(map, "extent_count", json_object_new_uint64(m->n)) ||
		    json_object_object_add(map, "dirty_bytes",
					   json_object_new_uint64(m->dirty_bytes)) ||
		    json_object_object_add(map, "columns", json_object_new_uint64(o->columns)) ||
		    json_object_object_add(map, "density", json_object_new_string(m->density)))
			goto nomem;
		if (o->extents) {
			if (blktrack_extents_json(m->ext, m->n, &ext) < 0)
				goto nomem;
			if (json_object_object_add(map, "extents", ext)) {
				json_object_put(ext);
				goto nomem;
			}
		}
	}
	/* v owns map from here */
	if (json_object_object_add(v, "devno", json_object_new_string(devno)) ||
	    json_object_object_add(v, "map", map))
		goto nomem;
	*objp = v;
	return 0;
nomem:
	json_object_put(map);
nomem_v:
	json_object_put(v);
	return -ENOMEM;
}

static int dump_kernel(int argc, char *argv[], const struct dump_opts *o)
{
	struct json_object *top = NULL, *vols = NULL, *v;
	struct blktrack_ctx *ctx;
	struct blktrack_status st;
	struct vol_map m;
	dev_t *devs = NULL;
	char name[256];
	size_t n, i, shown = 0;
	int err, ret = EXIT_OK;

	ctx = blktrack_new();
	if (!ctx) {
		err_msg(NULL, "%s", strerror(ENOMEM));
		return EXIT_ERROR;
	}
	err = blktrack_open(ctx);
	if (err < 0) {
		err_msg(NULL, "%s", blktrack_get_error(ctx));
		ret = EXIT_ERROR;
		goto out;
	}
	if (argc) {
		n = argc;
		devs = calloc(n, sizeof(*devs));
		if (!devs) {
			err_msg(NULL, "%s", strerror(ENOMEM));
			ret = EXIT_ERROR;
			goto out;
		}
		for (i = 0; i < n; i++) {
			err = blktrack_dev_from_path(argv[i], &devs[i]);
			if (err < 0) {
				err_msg(argv[i], "%s", err == -ENOTBLK ?
					"not a block device" : strerror(-err));
				ret = EXIT_ERROR;
				goto out;
			}
		}
	} else {
		err = blktrack_list(ctx, &devs, &n);
		if (err < 0) {
			err_msg(NULL, "%s", blktrack_get_error(ctx));
			ret = EXIT_ERROR;
			goto out;
		}
	}
	if (o->json) {
		top = json_object_new_object();
		vols = json_object_new_array();
		if (!top || !vols || json_object_object_add(top, "volumes", vols)) {
			json_object_put(vols);
			err_msg(NULL, "%s", strerror(ENOMEM));
			ret = EXIT_ERROR;
			goto out;
		}
	}

	for (i = 0; i < n; i++) {
		if (argc)
			snprintf(name, sizeof(name), "%s", argv[i]);
		else
			blktrack_dev_name(devs[i], name, sizeof(name));
		err = blktrack_status(ctx, devs[i], &st);
		if (err == -ENOENT && !argc)	/* detached since LIST */
			continue;
		if (err < 0) {
			err_msg(name, "%s", blktrack_get_error(ctx));
			ret = EXIT_ERROR;
			continue;
		}
		err = read_map(ctx, devs[i], &st, o, &m);
		if (err < 0) {
			err_msg(name, "reading the map: %s", blktrack_get_error(ctx));
			ret = EXIT_ERROR;
		} else if (o->json) {
			if (volume_json(name, devs[i], &st, &m, o, &v) < 0 ||
			    json_object_array_add(vols, v)) {
				err_msg(name, "%s", strerror(ENOMEM));
				ret = EXIT_ERROR;
			}
		} else {
			if (shown++)
				putchar('\n');
			print_volume(name, devs[i], &st, &m, o);
		}
		free(m.ext);
		free(m.density);
	}
	if (o->json)
		blktrack_json_print(stdout, top, true);
	else if (!shown && !argc)
		printf("no volume attached\n");
out:
	json_object_put(top);
	free(devs);
	blktrack_unref(ctx);
	return ret;
}

/* ---- subcommands ------------------------------------------------------ */

struct subcmd {
	const char *name;
	int (*run)(int argc, char *argv[], const struct dump_opts *o);
};

static const struct subcmd subcmds[] = {
	{ "kernel", dump_kernel },
	/* "backup" FILE and "repo" DIR come with the requester (issue 3) */
};

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pending", no_argument, NULL, 'p' },
		{ "columns", required_argument, NULL, 'c' },
		{ "extents", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct dump_opts o = { .columns = DEFAULT_COLUMNS };
	const struct subcmd *sub = &subcmds[0];
	char *end;
	unsigned long v;
	size_t i;
	int c, ret;

	while ((c = getopt_long(argc, argv, "jpc:eh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'p':
			o.pending = true;
			break;
		case 'e':
			o.extents = true;
			break;
		case 'c':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v == 0 || v > MAX_COLUMNS) {
				err_msg(NULL, "--columns wants 1..%u", MAX_COLUMNS);
				return EXIT_USAGE;
			}
			o.columns = v;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	for (i = 0; argc && i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		if (!strcmp(argv[0], subcmds[i].name)) {
			sub = &subcmds[i];
			argc--;
			argv++;
			break;
		}
	}
	if (argc && (!strcmp(argv[0], "backup") || !strcmp(argv[0], "repo"))) {
		err_msg(NULL, "'%s' is not implemented yet", argv[0]);
		return EXIT_USAGE;
	}
	ret = sub->run(argc, argv, &o);
	if (fflush(stdout) || ferror(stdout)) {
		err_msg(NULL, "write error on standard output");
		return EXIT_ERROR;
	}
	return ret;
}
