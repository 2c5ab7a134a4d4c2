// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack-dump - show what blktrack knows, for storage admins.
 *
 *	blktrack-dump [kernel] [--pending] [--columns N] [--extents] [--json] [DEV...]
 *
 * "kernel" (the default) shows every attached volume (or the DEVs given):
 * its status and a density picture of its active map (or, with --pending,
 * of its pending map). "backup FILE" shows a backup file (lib/format/bfile.h,
 * linked in from lib/bfile.o). "repo DIR" shows a repository: its backups,
 * the chain each restores from, and what each backup file covers
 * (blktrack_repo_json()). Later subcommands plug in the table below.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <sys/sysmacros.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "libblktrack.h"
#include "format/bfile.h"
#include "format/filemap.h"

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
		"       %s backup [--json] FILE\n"
		"       %s repo [--json] DIR\n"
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
		"  -V, --version      the version and the ABI it speaks\n"
		"\n"
		"backup FILE (- for standard input): the header, the records and the\n"
		"trailer of a backup file, each verified; --json: one object.\n"
		"\n"
		"repo DIR: every backup of the repository, its stamps, the chain it\n"
		"restores from (or why it is broken), and the byte ranges its file covers\n"
		"(each file read and verified); --json: {\"path\", \"backups\": [...]}.\n"
		"\n"
		"Exit status: 0 ok, 1 error (or a corrupt backup), 2 usage.\n",
		progname, progname, progname, DEFAULT_COLUMNS);
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

/* ---- backup FILE ------------------------------------------------------ */

static void hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void time_str(uint64_t ns, char *buf, size_t len)
{
	time_t sec = ns / UINT64_C(1000000000);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&sec, &tm) || !(n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf + n, len - n, ".%09" PRIu64 "Z", ns % UINT64_C(1000000000));
}

static bool stamp_is_zero(const struct bfile_stamp *s)
{
	static const uint8_t zero[16];

	return !s->epoch && !s->size && !s->block_size &&
	       !memcmp(s->generation, zero, sizeof(zero));
}

static void print_stamp(const char *name, const struct bfile_stamp *s)
{
	char gen[BLKTRACK_UUID_STR_LEN];

	if (stamp_is_zero(s)) {
		printf("%s: none\n", name);
		return;
	}
	blktrack_uuid_unparse(s->generation, gen);
	printf("%s: generation %s epoch %" PRIu64 " size %" PRIu64 " block_size %u\n",
	       name, gen, s->epoch, s->size, s->block_size);
}

static void print_bheader(const char *file, const struct bfile_header *h)
{
	char a[32], t[64], id[BLKTRACK_UUID_STR_LEN];

	human(h->volume_size, a, sizeof(a));
	time_str(h->ctime_ns, t, sizeof(t));
	printf("backup: %s\n", file);
	printf("format: BLKTRKB version %u\n", h->version);
	printf("type: %s\n", bfile_type_name(h->type));
	printf("volume_id: %s\n", h->volume_id);
	printf("volume_size: %" PRIu64 " (%s)\n", h->volume_size, a);
	printf("block_size: %u\n", h->block_size);
	printf("record_max: %u\n", h->record_max);
	printf("compression: %s\n", bfile_compression_name(h->compression));
	print_stamp("from", &h->from);
	print_stamp("to", &h->to);
	printf("created: %s\n", t);
	blktrack_uuid_unparse(h->id, id);
	printf("id: %s\n", id);
	if (bfile_id_is_zero(h->parent_id)) {
		printf("parent: none\n");
	} else {
		blktrack_uuid_unparse(h->parent_id, id);
		printf("parent: %s\n", id);
	}
}

/* The v1 tags, and the extensions this version knows (doc/FORMAT.md). */
static const char *tag_name(uint32_t tag)
{
	return tag == BFILE_TAG_FMAP ? "FMAP" : bfile_tag_name(tag);
}

/* A per-file backup's extent map (doc/FILES.md), decoded from its FMAP records. */
static void print_fmap(const struct filemap *m)
{
	printf("extent map: %zu extents, file size %" PRIu64 ", inode %" PRIu64
	       ", generation %" PRIu64 "%s\n", m->n, m->size, m->ino, m->generation,
	       m->trusted ? "" : ", untrusted (the next backup holds the whole file)");
}

static void print_brecord(const struct bfile_record *rec)
{
	printf("  %8" PRIu64 " %12" PRIu64 "  %-4s %14" PRIu64 " %12" PRIu64 " %10u  %-4s  %016"
	       PRIx64 " ok\n", rec->index, rec->file_offset, tag_name(rec->tag),
	       rec->offset, rec->length, rec->stored_len,
	       rec->flags & BFILE_REC_COMPRESSED ? "zstd" : "-", rec->checksum);
}

static void print_bend(const struct bfile_stats *st)
{
	char d[32], z[32], s[32], dig[2 * BFILE_DIGEST_LEN + 1];

	human(st->data_bytes, d, sizeof(d));
	human(st->zero_bytes, z, sizeof(z));
	human(st->stored_bytes, s, sizeof(s));
	hex(st->digest, BFILE_DIGEST_LEN, dig);
	printf("end: %" PRIu64 " records (%" PRIu64 " data, %" PRIu64 " zero, %" PRIu64
	       " skipped)\n", st->records, st->data_records, st->zero_records, st->skipped);
	printf("data_bytes: %" PRIu64 " (%s)\nzero_bytes: %" PRIu64 " (%s)\n"
	       "stored_bytes: %" PRIu64 " (%s)\nstream_bytes: %" PRIu64 "\n",
	       st->data_bytes, d, st->zero_bytes, z, st->stored_bytes, s, st->stream_bytes);
	printf("digest: xxh3-128 %s ok\n", dig);
}

/* json-c helpers: a failed add is counted, not checked at each call. */
static void jadd(struct json_object *o, const char *key, struct json_object *v, int *fails)
{
	if (json_object_object_add(o, key, v))
		(*fails)++;
}

static struct json_object *jhex(const uint8_t *p, size_t n)
{
	char buf[2 * 16 + 1];

	hex(p, n, buf);
	return json_object_new_string(buf);
}

static struct json_object *juuid(const uint8_t u[16])
{
	char buf[BLKTRACK_UUID_STR_LEN];

	blktrack_uuid_unparse(u, buf);
	return json_object_new_string(buf);
}

static struct json_object *jstamp(const struct bfile_stamp *s, int *fails)
{
	struct json_object *o;

	if (stamp_is_zero(s))
		return NULL;
	o = json_object_new_object();
	if (!o) {
		(*fails)++;
		return NULL;
	}
	jadd(o, "generation", juuid(s->generation), fails);
	jadd(o, "epoch", json_object_new_uint64(s->epoch), fails);
	jadd(o, "size", json_object_new_uint64(s->size), fails);
	jadd(o, "block_size", json_object_new_uint64(s->block_size), fails);
	return o;
}

static struct json_object *jbheader(const struct bfile_header *h, int *fails)
{
	struct json_object *o = json_object_new_object();
	char t[64];

	if (!o) {
		(*fails)++;
		return NULL;
	}
	time_str(h->ctime_ns, t, sizeof(t));
	jadd(o, "magic", json_object_new_string("BLKTRKB"), fails);
	jadd(o, "version", json_object_new_uint64(h->version), fails);
	jadd(o, "type", json_object_new_string(bfile_type_name(h->type)), fails);
	jadd(o, "volume_id", json_object_new_string(h->volume_id), fails);
	jadd(o, "volume_size", json_object_new_uint64(h->volume_size), fails);
	jadd(o, "block_size", json_object_new_uint64(h->block_size), fails);
	jadd(o, "record_max", json_object_new_uint64(h->record_max), fails);
	jadd(o, "compression", json_object_new_string(bfile_compression_name(h->compression)),
	     fails);
	jadd(o, "from", jstamp(&h->from, fails), fails);
	jadd(o, "to", jstamp(&h->to, fails), fails);
	jadd(o, "ctime_ns", json_object_new_uint64(h->ctime_ns), fails);
	jadd(o, "created", json_object_new_string(t), fails);
	jadd(o, "id", juuid(h->id), fails);
	jadd(o, "parent_id", bfile_id_is_zero(h->parent_id) ? NULL : juuid(h->parent_id),
	     fails);
	return o;
}

static struct json_object *jfmap(const struct filemap *m, int *fails)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();

	jadd(o, "size", json_object_new_uint64(m->size), fails);
	jadd(o, "ino", json_object_new_uint64(m->ino), fails);
	jadd(o, "generation", json_object_new_uint64(m->generation), fails);
	jadd(o, "trusted", json_object_new_boolean(m->trusted), fails);
	for (size_t i = 0; a && i < m->n; i++) {
		struct json_object *e = json_object_new_object();

		jadd(e, "logical", json_object_new_uint64(m->ext[i].logical), fails);
		jadd(e, "physical", json_object_new_uint64(m->ext[i].physical), fails);
		jadd(e, "length", json_object_new_uint64(m->ext[i].length), fails);
		jadd(e, "unwritten", json_object_new_boolean(m->ext[i].flags &
							     FILEMAP_UNWRITTEN), fails);
		if (!e || json_object_array_add(a, e))
			(*fails)++;
	}
	jadd(o, "extents", a, fails);
	return o;
}

static struct json_object *jbrecord(const struct bfile_record *rec, int *fails)
{
	struct json_object *o = json_object_new_object();
	char sum[17];

	if (!o) {
		(*fails)++;
		return NULL;
	}
	snprintf(sum, sizeof(sum), "%016" PRIx64, rec->checksum);
	jadd(o, "index", json_object_new_uint64(rec->index), fails);
	jadd(o, "file_offset", json_object_new_uint64(rec->file_offset), fails);
	jadd(o, "tag", json_object_new_string(tag_name(rec->tag)), fails);
	jadd(o, "offset", json_object_new_uint64(rec->offset), fails);
	jadd(o, "length", json_object_new_uint64(rec->length), fails);
	jadd(o, "stored_bytes", json_object_new_uint64(rec->stored_len), fails);
	jadd(o, "compressed", json_object_new_boolean(rec->flags & BFILE_REC_COMPRESSED),
	     fails);
	jadd(o, "checksum", json_object_new_string(sum), fails);
	jadd(o, "checksum_ok", json_object_new_boolean(true), fails);
	return o;
}

static struct json_object *jbend(const struct bfile_stats *st, int *fails)
{
	struct json_object *o = json_object_new_object();

	if (!o) {
		(*fails)++;
		return NULL;
	}
	jadd(o, "records", json_object_new_uint64(st->records), fails);
	jadd(o, "data_records", json_object_new_uint64(st->data_records), fails);
	jadd(o, "zero_records", json_object_new_uint64(st->zero_records), fails);
	jadd(o, "skipped_records", json_object_new_uint64(st->skipped), fails);
	jadd(o, "data_bytes", json_object_new_uint64(st->data_bytes), fails);
	jadd(o, "zero_bytes", json_object_new_uint64(st->zero_bytes), fails);
	jadd(o, "stored_bytes", json_object_new_uint64(st->stored_bytes), fails);
	jadd(o, "stream_bytes", json_object_new_uint64(st->stream_bytes), fails);
	jadd(o, "digest", jhex(st->digest, BFILE_DIGEST_LEN), fails);
	jadd(o, "digest_ok", json_object_new_boolean(true), fails);
	return o;
}

static int dump_backup(int argc, char *argv[], const struct dump_opts *o)
{
	struct json_object *top = NULL, *recs = NULL;
	struct bfile_reader *r = NULL;
	struct bfile_header h;
	struct bfile_record rec;
	struct bfile_stats st;
	struct filemap map;
	const char *file;
	int fd, err, fails = 0, ret = EXIT_OK, map_err = 0;

	filemap_init(&map);
	if (argc != 1) {
		err_msg("backup", "one FILE expected (- for standard input)");
		return EXIT_USAGE;
	}
	file = argv[0];
	fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		err_msg(file, "%s", strerror(errno));
		return EXIT_ERROR;
	}
	if (o->json) {
		top = json_object_new_object();
		recs = json_object_new_array();
		if (!top || !recs) {
			json_object_put(recs);
			err_msg(NULL, "%s", strerror(ENOMEM));
			ret = EXIT_ERROR;
			goto out;
		}
		jadd(top, "file", json_object_new_string(file), &fails);
	}

	err = bfile_reader_open(fd, &h, &r);
	if (!err) {
		if (o->json)
			jadd(top, "header", jbheader(&h, &fails), &fails);
		else
			print_bheader(file, &h);
		if (!o->json)
			printf("records:\n  %8s %12s  %-4s %14s %12s %10s  %-4s  %-16s\n",
			       "#", "at", "tag", "offset", "length", "stored", "comp",
			       "checksum");
		bfile_reader_deliver(r, BFILE_TAG_FMAP);
		while ((err = bfile_read_record(r, &rec)) > 0) {
			if (rec.tag == BFILE_TAG_FMAP && !map_err)
				map_err = filemap_decode(&map, rec.offset, rec.data, rec.stored_len);
			if (!o->json)
				print_brecord(&rec);
			else if (json_object_array_add(recs, jbrecord(&rec, &fails)))
				fails++;
		}
		if (!map_err && map.declared != UINT64_MAX)
			map_err = filemap_decoded(&map);
		if (map_err)
			err_msg(file, "its extent map (FMAP records) is damaged");
	} else if (o->json) {
		jadd(top, "header", NULL, &fails);
	}
	bfile_reader_stats(r, &st);
	if (o->json) {
		jadd(top, "records", recs, &fails);
		jadd(top, "extent_map", map.declared == UINT64_MAX || map_err ? NULL :
		     jfmap(&map, &fails), &fails);
		jadd(top, "end", err ? NULL : jbend(&st, &fails), &fails);
		jadd(top, "ok", json_object_new_boolean(!err), &fails);
		jadd(top, "error", err ? json_object_new_string(bfile_reader_error(r)) : NULL,
		     &fails);
		if (fails) {
			err_msg(NULL, "%s", strerror(ENOMEM));
			ret = EXIT_ERROR;
			goto out;
		}
		blktrack_json_print(stdout, top, true);
	} else if (!err) {
		print_bend(&st);
		if (map.declared != UINT64_MAX && !map_err)
			print_fmap(&map);
	}
	if (map_err && !err)
		ret = EXIT_ERROR;
	if (err) {
		err_msg(file, "%s", bfile_reader_error(r));
		ret = EXIT_ERROR;
	}
out:
	filemap_free(&map);
	json_object_put(top);
	bfile_reader_free(r);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}

/* ---- repo ------------------------------------------------------------ */

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static uint64_t ju64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static void print_rstamp(const char *name, struct json_object *e)
{
	struct json_object *s;

	if (!json_object_object_get_ex(e, name, &s) || !s) {
		printf("  %-9s -\n", name);
		return;
	}
	printf("  %-9s %s:%" PRIu64 " (size %" PRIu64 ", block %" PRIu64 ")\n", name,
	       jstr(s, "generation"), ju64(s, "epoch"), ju64(s, "size"),
	       ju64(s, "block_size"));
}

static int dump_repo(int argc, char *argv[], const struct dump_opts *o)
{
	struct json_object *top, *arr, *e, *v;
	struct blktrack_ctx *ctx;
	char c[32], s[32];
	size_t i, k, bad = 0;
	int err;

	if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	ctx = blktrack_new();
	if (!ctx) {
		err_msg(NULL, "%s", strerror(ENOMEM));
		return EXIT_ERROR;
	}
	err = blktrack_repo_json(ctx, argv[0], true, &top);
	if (err < 0) {
		err_msg(NULL, "%s", blktrack_get_error(ctx));
		blktrack_unref(ctx);
		return EXIT_ERROR;
	}
	blktrack_unref(ctx);
	json_object_object_get_ex(top, "backups", &arr);
	for (i = 0; arr && i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		bad += json_object_object_get_ex(e, "file_ok", &v) && !json_object_get_boolean(v);
		bad += json_object_object_get_ex(e, "chain_error", &v);
	}
	if (o->json) {
		blktrack_json_print(stdout, top, true);
		json_object_put(top);
		return bad ? EXIT_ERROR : EXIT_OK;
	}
	printf("repository %s: %zu backup(s)\n", jstr(top, "path"),
	       arr ? json_object_array_length(arr) : (size_t)0);
	for (i = 0; arr && i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		human(ju64(e, "changed_bytes"), c, sizeof(c));
		human(ju64(e, "stored_bytes"), s, sizeof(s));
		printf("\nbackup %" PRIu64 ": %s, %s, volume %s\n", ju64(e, "id"),
		       jstr(e, "type"), jstr(e, "state"), jstr(e, "volume_id"));
		printf("  file      %s (%s stored, %s changed)\n", jstr(e, "file"), s, c);
		print_rstamp("from", e);
		print_rstamp("to", e);
		if (json_object_object_get_ex(e, "hashes", &v) && v)
			printf("  hashes    %s\n", json_object_get_string(v));
		printf("  chain     ");
		if (json_object_object_get_ex(e, "chain", &v)) {
			for (k = 0; k < json_object_array_length(v); k++)
				printf("%s%" PRIu64, k ? " -> " : "",
				       json_object_get_uint64(json_object_array_get_idx(v, k)));
			printf("\n");
		} else {
			printf("BROKEN: %s\n", jstr(e, "chain_error"));
		}
		if (json_object_object_get_ex(e, "file_ok", &v) && !json_object_get_boolean(v))
			printf("  file      BAD: %s\n", jstr(e, "file_error"));
		printf("  records   %" PRIu64 " (data %" PRIu64 " bytes, zero %" PRIu64
		       " bytes)\n", ju64(e, "records"), ju64(e, "data_bytes"),
		       ju64(e, "zero_bytes"));
		if (json_object_object_get_ex(e, "covers", &v)) {
			size_t n = json_object_array_length(v);

			printf("  covers    %zu extent(s):", n);
			for (k = 0; k < n && k < 8; k++) {
				struct json_object *p = json_object_array_get_idx(v, k);

				printf(" %" PRIu64 "+%" PRIu64,
				       json_object_get_uint64(json_object_array_get_idx(p, 0)),
				       json_object_get_uint64(json_object_array_get_idx(p, 1)));
			}
			printf("%s\n", n > 8 ? " ..." : "");
		}
	}
	json_object_put(top);
	return bad ? EXIT_ERROR : EXIT_OK;
}

/* ---- subcommands ------------------------------------------------------ */

struct subcmd {
	const char *name;
	int (*run)(int argc, char *argv[], const struct dump_opts *o);
};

static const struct subcmd subcmds[] = {
	{ "kernel", dump_kernel },
	{ "backup", dump_backup },
	{ "repo", dump_repo },
};

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pending", no_argument, NULL, 'p' },
		{ "columns", required_argument, NULL, 'c' },
		{ "extents", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct dump_opts o = { .columns = DEFAULT_COLUMNS };
	const struct subcmd *sub = &subcmds[0];
	char *end;
	unsigned long v;
	size_t i;
	int c, ret;

	while ((c = getopt_long(argc, argv, "jpc:ehV", opts, NULL)) != -1) {
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
		case 'V':
			printf("blktrack-dump %s (ABI %u)\n", BLKTRACK_VERSION, BLKTRACK_ABI_VERSION);
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
	ret = sub->run(argc, argv, &o);
	if (fflush(stdout) || ferror(stdout)) {
		err_msg(NULL, "write error on standard output");
		return EXIT_ERROR;
	}
	return ret;
}
