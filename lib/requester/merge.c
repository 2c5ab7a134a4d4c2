// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: a merge: backups of one chain folded into
 * one new backup file, without the volume (doc/REPOSITORY.md, "Retention").
 * The members' records are read side by side, each in volume order, and
 * every byte comes from the newest member that holds it: the result is
 * what restoring the members in order would write, as one stream in order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "requester/requester.h"

struct source {
	const struct repo_entry *e;
	struct bfile_reader *rd;
	struct bfile_header h;
	struct bfile_record rec;
	bool done;			/* END read and verified */
	struct repo_file *file;
	/* What the writers excluded (its EXCL records), and the blocks its records hold. */
	struct blockset *excl, *held;
};

static int fold_fail(struct fold *f, int err, const struct repo_entry *e,
		     struct bfile_reader *rd)
{
	return blktrack_set_error(f->ctx, err, "merge into backup %" PRIu64 ": %s of backup %"
				  PRIu64 ": %s", f->target->id, e->file, e->id,
				  rd ? bfile_reader_error(rd) : strerror(-err));
}

/* The member's next DATA or ZERO record (its EXCL records taken on the way). */
static int advance(struct fold *f, struct source *s)
{
	uint32_t bs = s->h.block_size;
	struct blockset *x = NULL;
	int err;

	while ((err = bfile_read_record(s->rd, &s->rec)) > 0 && s->rec.tag == BFILE_TAG_EXCL) {
		err = blockset_deserialize(s->rec.data, s->rec.stored_len, &x);
		if (!err)
			err = blockset_or(s->excl, x);
		blockset_free(x);
		x = NULL;
		if (err)
			return blktrack_set_error(f->ctx, err, "merge: %s of backup %" PRIu64
						  ": its EXCL record is damaged", s->e->file,
						  s->e->id);
	}
	if (err < 0)
		return fold_fail(f, err, s->e, s->rd);
	s->done = !err;
	if (!s->done)
		err = blockset_add_range(s->held, s->rec.offset / bs,
					 (s->rec.offset % bs + s->rec.length + bs - 1) / bs);
	return err;
}

/*
 * What the folded point lacks (doc/WRITERS.md, "Ranges"), as a restore of
 * the members would say: each member's records make their blocks the
 * point's again, its exclusions make them not. Written after the data: a
 * reader takes an EXCL record wherever it stands.
 */
static int fold_excl(struct fold *f, struct source *s, struct bfile_writer *w)
{
	struct blockset *e = NULL;
	void *buf = NULL;
	size_t i, len;
	int err = blockset_new(&e);

	for (i = 0; !err && i < f->n; i++) {
		err = blockset_andnot(e, s[i].held);
		if (!err)
			err = blockset_or(e, s[i].excl);
	}
	if (!err && blockset_cardinality(e))
		err = blockset_serialize(e, &buf, &len);
	if (!err && buf)
		err = len > BFILE_EXT_PAYLOAD_MAX ? -E2BIG :
		      bfile_write_extension(w, BFILE_TAG_EXCL, BFILE_REC_SKIPPABLE, 0, buf, len);
	free(buf);
	blockset_free(e);
	if (err)
		return blktrack_set_error(f->ctx, err, "merge into backup %" PRIu64 ": the "
					  "writers' exclusions: %s", f->target->id, strerror(-err));
	return 0;
}

static int sources_open(struct fold *f, struct source *s)
{
	const char *why;
	size_t i;
	int err;

	for (i = 0; i < f->n; i++) {
		s[i].e = f->members[i];
		err = repo_file_open(f->r, s[i].e->file, &s[i].file);
		if (err)
			return blktrack_set_error(f->ctx, err, "%s", repo_error(f->r));
		err = bfile_reader_open_fn(repo_file_read, s[i].file, &s[i].h, &s[i].rd);
		if (err)
			return fold_fail(f, err, s[i].e, s[i].rd);
		bfile_reader_deliver(s[i].rd, BFILE_TAG_EXCL);
		if (blockset_new(&s[i].excl) || blockset_new(&s[i].held))
			return -ENOMEM;
		why = member_foreign(&s[i].h, s[i].e, i ? &s[i - 1].h : NULL);
		if (why)
			return blktrack_set_error(f->ctx, -EBADMSG, "merge: %s of backup %" PRIu64
						  ": a foreign file: %s", s[i].e->file,
						  s[i].e->id, why);
		err = advance(f, &s[i]);
		if (err)
			return err;
	}
	return 0;
}

/*
 * The next piece from @pos: from the newest member whose current record
 * holds @pos, up to where that record ends or a newer member's next record
 * starts. *@src = -1 when none holds @pos: *@stop is then where one starts.
 */
static void next_piece(struct source *s, size_t n, uint64_t pos, uint64_t end,
		       ssize_t *src, uint64_t *stop)
{
	size_t i;

	*src = -1;
	*stop = end;
	for (i = n; i-- > 0;) {
		if (s[i].done)
			continue;
		if (s[i].rec.offset <= pos) {
			*src = i;
			if (s[i].rec.offset + s[i].rec.length < *stop)
				*stop = s[i].rec.offset + s[i].rec.length;
			return;
		}
		if (s[i].rec.offset < *stop)
			*stop = s[i].rec.offset;
	}
}

static int fold_records(struct fold *f, struct source *s, struct bfile_writer *w)
{
	uint64_t pos = 0, end = f->target->to.size, stop;
	ssize_t src;
	size_t i;
	int err;

	while (pos < end) {
		for (i = 0; i < f->n; i++)
			while (!s[i].done && s[i].rec.offset + s[i].rec.length <= pos) {
				err = advance(f, &s[i]);
				if (err)
					return err;
			}
		next_piece(s, f->n, pos, end, &src, &stop);
		if (src >= 0) {
			const struct bfile_record *rec = &s[src].rec;

			err = rec->tag == BFILE_TAG_DATA ?
			      bfile_write_data(w, pos, (const uint8_t *)rec->data +
					       (pos - rec->offset), stop - pos) :
			      bfile_write_zero(w, pos, stop - pos);
			if (err)
				return blktrack_set_error(f->ctx, err, "merge into backup %" PRIu64
							  ": %s", f->target->id,
							  bfile_writer_error(w));
		}
		pos = stop;
	}
	/* Read every member to its END: its digest is what vouches for the records. */
	for (i = 0; i < f->n; i++)
		while (!s[i].done) {
			err = advance(f, &s[i]);
			if (err)
				return err;
		}
	return 0;
}

/* The new file's header: backup @target as it was, with the fold's type and parent. */
static void fold_header(const struct fold *f, const struct source *s, struct bfile_header *h)
{
	const struct bfile_header *last = &s[f->n - 1].h;

	*h = *last;
	h->type = (uint32_t)f->type + 1;
	memcpy(h->parent_id, s[0].h.parent_id, BFILE_ID_LEN);
	memcpy(&h->from, &s[0].h.from, sizeof(h->from));
	if (f->type == REPO_FULL) {
		memset(h->parent_id, 0, BFILE_ID_LEN);
		memset(&h->from, 0, sizeof(h->from));
	}
}

/* A file's chain: the merged file carries the newest member's extent map (doc/FILES.md). */
static int fold_map(struct fold *f, struct bfile_writer *w, uint32_t record_max)
{
	struct filemap m;
	char why[256];
	struct repo_file *file;
	int err;

	if (!f->target->path[0])
		return 0;
	err = repo_file_open(f->r, f->target->file, &file);
	if (err)
		return blktrack_set_error(f->ctx, err, "%s", repo_error(f->r));
	err = filemap_read_records(repo_file_read, file, &m, why, sizeof(why));
	repo_file_close(file);
	if (!err) {
		err = filemap_write_records(w, &m, record_max);
		snprintf(why, sizeof(why), "%s", bfile_writer_error(w));
		filemap_free(&m);
	}
	if (err)
		return blktrack_set_error(f->ctx, err, "merge into backup %" PRIu64 ": the "
					  "extent map of %s: %s", f->target->id, f->target->file,
					  why);
	return 0;
}

int fold_write(struct fold *f, struct repo_file *out)
{
	struct source *s = calloc(f->n, sizeof(*s));
	struct bfile_writer *w = NULL;
	struct bfile_header h;
	struct bfile_stats st;
	size_t i;
	int err;

	if (!s)
		return -ENOMEM;
	err = sources_open(f, s);
	if (!err) {
		fold_header(f, s, &h);
		err = bfile_writer_open_fn(repo_file_write, out, &h, &w);
		if (err)
			blktrack_set_error(f->ctx, err, "merge into backup %" PRIu64 ": %s",
					   f->target->id, bfile_writer_error(w));
	}
	if (!err)
		err = fold_map(f, w, h.record_max);
	if (!err)
		err = fold_records(f, s, w);
	if (!err)
		err = fold_excl(f, s, w);
	if (!err) {
		err = bfile_writer_finish(w, &st);
		w = NULL;
		f->written = st.stream_bytes;
	}
	bfile_writer_abort(w);
	for (i = 0; i < f->n; i++) {
		struct bfile_stats rs;

		if (s[i].rd) {
			bfile_reader_stats(s[i].rd, &rs);
			f->read += rs.stream_bytes;
		}
		bfile_reader_free(s[i].rd);
		blockset_free(s[i].excl);
		blockset_free(s[i].held);
		repo_file_close(s[i].file);
	}
	free(s);
	return err;
}
