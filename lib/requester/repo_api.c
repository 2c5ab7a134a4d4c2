// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: the repository's public calls: init, check
 * (and rebuild), and the repository as JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <json-c/json.h>

#include "requester/requester.h"

static void jadd(struct json_object *o, const char *key, struct json_object *v, int *fails)
{
	if (!v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		(*fails)++;
	}
}

static struct json_object *jstamp(const struct repo_stamp *s, int *fails)
{
	struct json_object *o = json_object_new_object();
	char g[BLKTRACK_UUID_STR_LEN];

	if (!o) {
		(*fails)++;
		return NULL;
	}
	blktrack_uuid_unparse(s->generation, g);
	jadd(o, "volume_id", json_object_new_string(s->volume_id), fails);
	jadd(o, "generation", json_object_new_string(g), fails);
	jadd(o, "epoch", json_object_new_uint64(s->epoch), fails);
	jadd(o, "size", json_object_new_uint64(s->size), fails);
	jadd(o, "block_size", json_object_new_uint64(s->block_size), fails);
	return o;
}

/* The byte ranges a backup file's records cover, merged. */
static void jfile_detail(struct json_object *o, struct repo *r, const char *name, int *fails)
{
	struct json_object *cov = json_object_new_array();
	struct bfile_reader *rd = NULL;
	struct bfile_header h;
	struct bfile_record rec;
	struct bfile_stats st;
	uint64_t start = 0, end = 0;
	bool have = false;
	struct repo_file *file = NULL;
	int err;

	err = repo_file_open(r, name, &file);
	if (!err)
		err = bfile_reader_open_fn(repo_file_read, file, &h, &rd);
	while (!err && (err = bfile_read_record(rd, &rec)) > 0) {
		err = 0;
		if (have && rec.offset == end) {
			end += rec.length;
			continue;
		}
		if (have) {
			struct json_object *p = json_object_new_array();

			json_object_array_add(p, json_object_new_uint64(start));
			json_object_array_add(p, json_object_new_uint64(end - start));
			json_object_array_add(cov, p);
		}
		start = rec.offset;
		end = rec.offset + rec.length;
		have = true;
	}
	if (have) {
		struct json_object *p = json_object_new_array();

		json_object_array_add(p, json_object_new_uint64(start));
		json_object_array_add(p, json_object_new_uint64(end - start));
		json_object_array_add(cov, p);
	}
	jadd(o, "file_ok", json_object_new_boolean(!err), fails);
	if (err)
		jadd(o, "file_error", json_object_new_string(rd ? bfile_reader_error(rd) :
							     strerror(-err)), fails);
	if (rd) {
		bfile_reader_stats(rd, &st);
		jadd(o, "records", json_object_new_uint64(st.records), fails);
		jadd(o, "data_bytes", json_object_new_uint64(st.data_bytes), fails);
		jadd(o, "zero_bytes", json_object_new_uint64(st.zero_bytes), fails);
	}
	jadd(o, "covers", cov, fails);
	bfile_reader_free(rd);
	repo_file_close(file);
}

BLKTRACK_EXPORT int blktrack_repo_init(struct blktrack_ctx *ctx, const char *dir)
{
	return blktrack_repo_create(ctx, dir, 0);
}

BLKTRACK_EXPORT int blktrack_repo_create(struct blktrack_ctx *ctx, const char *dir,
					 unsigned int flags)
{
	struct repo *r;
	int err = repo_open(dir, REPO_CREATE | (flags & BLKTRACK_REPO_ENCRYPTED ? REPO_ENCRYPT : 0),
			    &r);

	if (err)
		blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
	repo_close(r);
	return err;
}

BLKTRACK_EXPORT int blktrack_repo_check(struct blktrack_ctx *ctx, const char *dir,
					bool rebuild, blktrack_report_fn report,
					void *data, struct blktrack_check_result *res)
{
	struct repo_check_result rr;
	int err;

	err = rebuild ? repo_rebuild(dir, report, data, &rr) :
			repo_check(dir, report, data, &rr);
	if (err)
		blktrack_set_error(ctx, err, "%s", rr.error);
	memset(res, 0, sizeof(*res));
	res->problems = rr.problems;
	res->entries = rr.entries;
	res->left_out = rr.left_out;
	res->rebuilt = rr.rebuilt;
	snprintf(res->aside, sizeof(res->aside), "%s", rr.aside);
	return err;
}

BLKTRACK_EXPORT int blktrack_repo_json(struct blktrack_ctx *ctx, const char *dir,
				       bool detail, struct json_object **out)
{
	struct json_object *top, *arr;
	struct repo *r;
	size_t i, k, n;
	int err, fails = 0;

	err = repo_open(dir, REPO_RDONLY, &r);
	if (err) {
		blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
		repo_close(r);
		return err;
	}
	top = json_object_new_object();
	arr = json_object_new_array();
	jadd(top, "path", json_object_new_string(repo_path(r)), &fails);
	for (i = 0; top && arr && i < repo_count(r); i++) {
		const struct repo_entry *e = repo_entry_at(r, i);
		struct json_object *o = json_object_new_object(), *ch;
		char path[4096];
		uint64_t *ids;
		struct repo_file *hf;

		if (!o) {
			fails++;
			break;
		}
		jadd(o, "id", json_object_new_uint64(e->id), &fails);
		jadd(o, "type", json_object_new_string(repo_type_name(e->type)), &fails);
		jadd(o, "state", json_object_new_string(repo_state_name(e->state)), &fails);
		jadd(o, "volume_id", json_object_new_string(e->to.volume_id), &fails);
		jadd(o, "file", json_object_new_string(e->file), &fails);
		if (e->path[0])		/* a per-file backup (doc/FILES.md) */
			jadd(o, "source_file", json_object_new_string(e->path), &fails);
		if (e->writer_stamps[0])	/* doc/WRITERS.md, "Backup stamps" */
			jadd(o, "writer_stamps", repo_stamps_json(e->writer_stamps), &fails);
		if (e->set)			/* doc/REPOSITORY.md, "Backup sets" */
			jadd(o, "set", json_object_new_uint64(e->set), &fails);
		jadd(o, "parent", json_object_new_uint64(e->parent), &fails);
		jadd(o, "time", json_object_new_int64(e->time), &fails);
		jadd(o, "changed_bytes", json_object_new_uint64(e->changed_bytes), &fails);
		jadd(o, "stored_bytes", json_object_new_uint64(e->stored_bytes), &fails);
		if (e->has_from)
			jadd(o, "from", jstamp(&e->from, &fails), &fails);
		else
			json_object_object_add(o, "from", NULL);
		jadd(o, "to", jstamp(&e->to, &fails), &fails);
		/* Block hashes for a resync: only the newest base of a volume has them. */
		if (!repo_hashes_open(r, e->id, &hf)) {
			repo_file_close(hf);
			repo_hashes_name(e->id, path);
			jadd(o, "hashes", json_object_new_string(path), &fails);
		} else {
			json_object_object_add(o, "hashes", NULL);
		}
		if (!repo_chain(r, e->id, &ids, &n)) {
			ch = json_object_new_array();
			for (k = 0; ch && k < n; k++)
				json_object_array_add(ch, json_object_new_uint64(ids[k]));
			jadd(o, "chain", ch, &fails);
			free(ids);
		} else {
			jadd(o, "chain_error", json_object_new_string(repo_error(r)), &fails);
		}
		if (detail)
			jfile_detail(o, r, e->file, &fails);
		json_object_array_add(arr, o);
	}
	jadd(top, "backups", arr, &fails);
	repo_close(r);
	if (!top || fails) {
		json_object_put(top);
		return blktrack_set_error(ctx, -ENOMEM, "%s", strerror(ENOMEM));
	}
	*out = top;
	return 0;
}
