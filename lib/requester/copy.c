// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack copy (doc/REPOSITORY.md, "Copies"):
 * the committed backups one repository has and another lacks, copied under
 * their own ids. A unit is one backup, or a backup set's members together:
 * entered pending in the destination (repo_import_begin), its files copied
 * and checked on the way (the backup file through the bfile reader, every
 * record and the END digest; the hash file against its XXH3 trailer), then
 * committed by one catalog write. A crash leaves pending entries, which the
 * next copy (or backup, prune) drops: a backup is in the destination whole
 * or not at all.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "requester/requester.h"

#define COPY_CHUNK	(1U << 20)

struct copy {
	struct blktrack_ctx *ctx;
	const struct blktrack_copy_opts *o;
	struct blktrack_copy_result *res;
	struct repo *src, *dst;
	uint64_t *ids;			/* the source's backups to copy, by id */
	size_t n;
	uint64_t total, done;		/* bytes, for the progress */
	void *buf;
};

static int src_fail(struct copy *c, int err)
{
	return blktrack_set_error(c->ctx, err, "%s", repo_error(c->src));
}

static int dst_fail(struct copy *c, int err)
{
	return blktrack_set_error(c->ctx, err, "%s", repo_error(c->dst));
}

/* A source file that is damaged or not its entry's (lib/format/bfile.h's errors). */
static int corrupt(struct copy *c, int err)
{
	if (err == -EBADMSG || err == -ESTALE || err == -EPROTO || err == -EILSEQ ||
	    err == -ENODATA || err == -ERANGE)
		c->res->failure = BLKTRACK_FAIL_CORRUPT;
	return err;
}

static void copied(struct copy *c, uint64_t bytes)
{
	c->done += bytes;
	progress(c->o->progress, c->o->progress_data, "copy", c->done, c->total);
}

static bool listed(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static int append_id(struct copy *c, uint64_t id)
{
	uint64_t *ng = realloc(c->ids, (c->n + 1) * sizeof(*ng));

	if (!ng)
		return -ENOMEM;
	c->ids = ng;
	c->ids[c->n++] = id;
	return 0;
}

static int add_id(struct copy *c, uint64_t id)
{
	return listed(c->ids, c->n, id) ? 0 : append_id(c, id);
}

/* Set @set's members not listed yet, each with its chain: a set travels whole. */
static int add_chain(struct copy *c, uint64_t id);

static int add_set(struct copy *c, uint64_t set)
{
	uint64_t *members = NULL;
	size_t n = 0, i;
	int err = repo_set_members(c->src, set, &members, &n);

	for (i = 0; i < n && !err; i++)
		if (!listed(c->ids, c->n, members[i]))
			err = add_chain(c, members[i]);
	free(members);
	return err;
}

/* The backups @id is restored from, and the sets they belong to. */
static int add_chain(struct copy *c, uint64_t id)
{
	uint64_t *chain = NULL;
	size_t n = 0, i;
	int err = repo_chain(c->src, id, &chain, &n);

	if (err) {
		c->res->failure = BLKTRACK_FAIL_CHAIN;
		return src_fail(c, err);
	}
	for (i = 0; i < n && !err; i++)
		err = add_id(c, chain[i]);
	for (i = 0; i < n && !err; i++) {
		const struct repo_entry *e = repo_find(c->src, chain[i]);

		if (e->set)
			err = add_set(c, e->set);
	}
	free(chain);
	return err;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The same point of the same volume (or file): a copy, or a merge of it. */
static bool same_point(const struct repo_entry *a, const struct repo_entry *b)
{
	return repo_stamp_equal(&a->to, &b->to) && !strcmp(a->path, b->path);
}

/*
 * The backups to copy: what was asked for, less what the destination has.
 * An id the destination holds for another point means the two have
 * diverged (backups taken into each): refused before anything is copied.
 */
static int plan(struct copy *c)
{
	size_t i, k;
	int err = 0;

	if (c->o->backup_id) {
		if (!repo_find(c->src, c->o->backup_id))
			return blktrack_set_error(c->ctx, -ENOENT, "%s: no backup %" PRIu64,
						  c->o->from, c->o->backup_id);
		err = add_chain(c, c->o->backup_id);
	}
	for (i = 0; !c->o->backup_id && i < repo_count(c->src) && !err; i++)
		if (repo_entry_at(c->src, i)->state == REPO_COMMITTED)
			err = append_id(c, repo_entry_at(c->src, i)->id);	/* distinct */
	if (err)
		return err == -ENOMEM ? blktrack_set_error(c->ctx, err, "copy: out of memory") :
		       err;
	qsort(c->ids, c->n, sizeof(*c->ids), cmp_u64);
	for (i = k = 0; i < c->n; i++) {
		const struct repo_entry *s = repo_find(c->src, c->ids[i]);
		const struct repo_entry *d = repo_find(c->dst, c->ids[i]);

		if (d && !same_point(s, d))
			return blktrack_set_error(c->ctx, -EEXIST, "%s: backup %" PRIu64 " is not "
						  "%s's backup %" PRIu64 " (another volume or "
						  "point): the repositories have diverged (backups "
						  "were taken into both); nothing was copied",
						  c->o->to, s->id, c->o->from, s->id);
		if (d) {
			c->res->present++;
			continue;
		}
		c->ids[k++] = c->ids[i];
		c->total += s->stored_bytes;
	}
	c->n = k;
	return 0;
}

struct tee {
	struct repo_file *in, *out;
	uint64_t bytes;
	int err;			/* of the write side */
};

/* bfile_read_fn: what the reader reads from the source is what the copy gets. */
static ssize_t tee_read(void *data, void *buf, size_t len)
{
	struct tee *t = data;
	ssize_t n = repo_file_read(t->in, buf, len);

	if (n > 0) {
		t->err = repo_file_write(t->out, buf, (size_t)n);
		if (t->err)
			return t->err;
		t->bytes += (uint64_t)n;
	}
	return n;
}

/* Backup @e's file, read whole by the bfile reader on its way to @out. */
static int copy_backup_file(struct copy *c, const struct repo_entry *e, struct repo_file *out,
			    uint64_t *bytes)
{
	struct bfile_reader *rd = NULL;
	struct bfile_header h;
	struct bfile_record rec;
	struct tee t = { .out = out };
	uint64_t last = 0;
	int err = repo_file_open(c->src, e->file, &t.in);

	if (err)
		return src_fail(c, err);
	err = bfile_reader_open_fn(tee_read, &t, &h, &rd);
	while (!err && (err = bfile_read_record(rd, &rec)) > 0) {
		err = 0;
		copied(c, t.bytes - last);
		last = t.bytes;
	}
	if (!err && !repo_header_matches(e, &h))
		err = -ESTALE;
	if (!t.err)
		corrupt(c, err);
	if (t.err)
		blktrack_set_error(c->ctx, t.err, "%s: writing the copy of %s: %s", c->o->to,
				   e->file, strerror(-t.err));
	else if (err)
		blktrack_set_error(c->ctx, err, "%s/%s (backup %" PRIu64 "): %s; nothing of it "
				   "was copied", c->o->from, e->file, e->id, err == -ESTALE ?
				   "not this backup's (its header names another point)" :
				   rd ? bfile_reader_error(rd) : strerror(-err));
	copied(c, t.bytes - last);
	bfile_reader_free(rd);
	repo_file_close(t.in);
	*bytes = t.bytes;
	return err;
}

/*
 * A hash file: its last 8 bytes are the XXH3-64 of all before (the source
 * checked them against its catalog), recomputed on the way; the 8 bytes
 * read last are held back from the digest until the next piece comes.
 */
static int copy_hashes_file(struct copy *c, struct repo_file *in, struct repo_file *out)
{
	XXH3_state_t *st = XXH3_createState();
	uint8_t *p = c->buf, tail[8];
	uint64_t got = 0, sum = 0;
	size_t held = 0;
	ssize_t n;
	int err = st && XXH3_64bits_reset(st) == XXH_OK ? 0 : -ENOMEM;

	while (!err && (n = repo_file_read(in, p + held, COPY_CHUNK - held)) != 0) {
		size_t have;

		if (n < 0) {
			err = (int)n;
			break;
		}
		err = repo_file_write(out, p + held, (size_t)n);
		got += (uint64_t)n;
		have = held + (size_t)n;
		held = have < 8 ? have : 8;
		XXH3_64bits_update(st, p, have - held);
		memmove(p, p + have - held, held);
	}
	if (!err && got < 8)
		err = -EBADMSG;
	memcpy(tail, p, 8);
	for (int i = 7; !err && i >= 0; i--)
		sum = sum << 8 | tail[i];
	if (!err && sum != XXH3_64bits_digest(st))
		err = -EBADMSG;
	XXH3_freeState(st);
	return err;
}

/* Backup @e's hash file, when the source still has one. */
static int copy_hashes(struct copy *c, const struct repo_entry *e)
{
	struct repo_file *in, *out;
	int err = repo_hashes_open(c->src, e->id, &in);

	if (err == -ENOENT)
		return 0;
	if (err)
		return src_fail(c, corrupt(c, err));
	err = repo_hashes_create(c->dst, e->id, &out);
	if (err) {
		repo_file_close(in);
		return dst_fail(c, err);
	}
	err = copy_hashes_file(c, in, out);
	repo_file_close(in);
	if (err) {
		repo_file_close(out);
		return blktrack_set_error(c->ctx, corrupt(c, err), "%s: the block hashes of "
					  "backup %" PRIu64 ": %s", c->o->from, e->id,
					  err == -EBADMSG ? "corrupt" : strerror(-err));
	}
	err = repo_hashes_install(c->dst, e->id, out);
	return err ? dst_fail(c, err) : 0;
}

/* Backup @e entered pending in the destination, with its files. */
static int copy_one(struct copy *c, const struct repo_entry *e, uint64_t *stored)
{
	struct blockset *delta = NULL;
	struct repo_file *out;
	int err = repo_load_delta(c->src, e->id, &delta);

	if (err)
		return src_fail(c, corrupt(c, err));
	err = repo_import_begin(c->dst, e, delta);
	blockset_free(delta);
	if (err)
		return dst_fail(c, err);
	err = repo_backup_create(c->dst, e->id, &out);
	if (err)
		return dst_fail(c, err);
	err = copy_backup_file(c, e, out, stored);
	if (err) {
		repo_file_close(out);
		return err;
	}
	err = repo_backup_install(c->dst, e->id, out);
	if (err)
		return dst_fail(c, err);
	return copy_hashes(c, e);
}

/* The members of one unit: @ids[0], or with its set's other members to copy. */
static size_t unit_of(struct copy *c, size_t i, uint64_t *unit)
{
	const struct repo_entry *e = repo_find(c->src, c->ids[i]);
	size_t n = 0;

	if (!e->set) {
		unit[n++] = e->id;
		return n;
	}
	for (size_t k = i; k < c->n; k++)
		if (repo_find(c->src, c->ids[k])->set == e->set)
			unit[n++] = c->ids[k];
	return n;
}

static int copy_unit(struct copy *c, const uint64_t *unit, size_t n)
{
	uint64_t *stored = calloc(n, sizeof(*stored));
	size_t k;
	int err = stored ? 0 : -ENOMEM;

	for (k = 0; k < n && !err; k++)
		err = copy_one(c, repo_find(c->src, unit[k]), &stored[k]);
	if (!err) {
		err = repo_commit_set(c->dst, unit, stored, n);
		if (err)
			dst_fail(c, err);
	}
	for (k = 0; err && k < n; k++) {	/* what a crash would leave, dropped now */
		const struct repo_entry *e = repo_find(c->dst, unit[k]);

		if (e && e->state == REPO_PENDING)
			repo_abandon(c->dst, unit[k]);
	}
	for (k = 0; k < n && !err; k++) {
		c->res->copied++;
		c->res->copied_bytes += stored[k];
	}
	free(stored);
	return err;
}

static int copy_all(struct copy *c)
{
	uint64_t *unit = calloc(c->n ? c->n : 1, sizeof(*unit));
	bool *done = calloc(c->n ? c->n : 1, sizeof(*done));
	int err = unit && done ? 0 : -ENOMEM;

	for (size_t i = 0; i < c->n && !err; i++) {
		size_t n;

		if (done[i])
			continue;
		n = unit_of(c, i, unit);
		for (size_t k = i; k < c->n; k++)
			done[k] = done[k] || listed(unit, n, c->ids[k]);
		err = copy_unit(c, unit, n);
	}
	free(unit);
	free(done);
	return err;
}

static int copy_open(struct copy *c)
{
	struct repo_recovery rec;
	struct stat a, b;
	int err;

	if (!stat(c->o->from, &a) && !stat(c->o->to, &b) && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return blktrack_set_error(c->ctx, -EINVAL, "copy: %s and %s are the same "
					  "repository", c->o->from, c->o->to);
	err = repo_open(c->o->from, REPO_RDONLY, &c->src);
	if (err)
		return blktrack_set_error(c->ctx, err, "%s", c->src ? repo_error(c->src) :
					  strerror(-err));
	err = repo_open_wait(c->o->to, 0, c->o->lock_wait, &c->dst);
	/* A copy or backup that stopped half-way leaves pending entries: dropped. */
	if (!err)
		err = repo_recover(c->dst, NULL, &rec);
	if (err)
		return blktrack_set_error(c->ctx, err, "%s", c->dst ? repo_error(c->dst) :
					  strerror(-err));
	return 0;
}

BLKTRACK_EXPORT int blktrack_copy(struct blktrack_ctx *ctx, const struct blktrack_copy_opts *o,
				  struct blktrack_copy_result *res)
{
	struct copy c = { .ctx = ctx, .o = o, .res = res };
	double t0 = now();
	int err;

	memset(res, 0, sizeof(*res));
	if (!o->from || !o->to)
		return blktrack_set_error(ctx, -EINVAL, "copy: a source and a destination "
					  "repository are needed");
	c.buf = malloc(COPY_CHUNK);
	err = c.buf ? copy_open(&c) : blktrack_set_error(ctx, -ENOMEM, "copy: out of memory");
	if (!err)
		err = plan(&c);
	if (!err)
		err = copy_all(&c);
	repo_close(c.dst);
	repo_close(c.src);
	free(c.ids);
	free(c.buf);
	res->seconds = now() - t0;
	return err;
}
