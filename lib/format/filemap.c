// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: file extent maps (filemap.h): the changed blocks of a file
 * from its volume's changed blocks and two of its maps, and the FMAP records
 * that carry a map in a per-file backup (doc/FORMAT.md).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/bfile.h"
#include "format/blockset.h"
#include "format/filemap.h"

#define FMAP_UNTRUSTED	0x1	/* header flags */

void filemap_init(struct filemap *m)
{
	memset(m, 0, sizeof(*m));
	m->trusted = true;
	m->declared = UINT64_MAX;
}

void filemap_free(struct filemap *m)
{
	free(m->ext);
	filemap_init(m);
}

int filemap_add(struct filemap *m, uint64_t logical, uint64_t physical, uint64_t length,
		uint32_t flags)
{
	const struct fext *last = m->n ? &m->ext[m->n - 1] : NULL;

	if (!length || logical + length < logical || physical + length < physical ||
	    (flags & ~FILEMAP_UNWRITTEN) || (last && logical < last->logical + last->length))
		return -EINVAL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct fext *e = realloc(m->ext, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		m->ext = e;
		m->cap = cap;
	}
	m->ext[m->n++] = (struct fext){ logical, physical, length, flags };
	return 0;
}

/* ---- what changed ------------------------------------------------------- */

/* Add the file blocks holding bytes [@a, @b). */
static int mark(struct blockset *s, uint64_t a, uint64_t b, uint32_t bs)
{
	if (b <= a)
		return 0;
	return blockset_add_range(s, a / bs, (b - 1) / bs - a / bs + 1);
}

enum place_kind { PLACE_HOLE, PLACE_DATA, PLACE_UNWRITTEN };

struct place {
	enum place_kind kind;
	uint64_t phys;			/* PLACE_DATA: where the byte lies */
	uint64_t end;			/* the next byte that may lie otherwise */
};

/* How byte @x of @m lies; *@i is a cursor that only moves forward. */
static struct place place_at(const struct filemap *m, size_t *i, uint64_t x)
{
	const struct fext *e;

	while (*i < m->n && m->ext[*i].logical + m->ext[*i].length <= x)
		(*i)++;
	if (*i == m->n)
		return (struct place){ PLACE_HOLE, 0, UINT64_MAX };
	e = &m->ext[*i];
	if (x < e->logical)
		return (struct place){ PLACE_HOLE, 0, e->logical };
	return (struct place){ e->flags & FILEMAP_UNWRITTEN ? PLACE_UNWRITTEN : PLACE_DATA,
			       e->physical + (x - e->logical), e->logical + e->length };
}

/* The ranges placed otherwise in @now than in @prev, and what lies past the smaller size. */
static int moved(const struct filemap *now, const struct filemap *prev, uint32_t bs,
		 struct blockset *out)
{
	uint64_t lim = now->size < prev->size ? now->size : prev->size, x = 0, y;
	size_t i = 0, j = 0;
	int err = 0;

	while (!err && x < lim) {
		struct place p = place_at(now, &i, x), q = place_at(prev, &j, x);

		y = p.end < q.end ? p.end : q.end;
		if (y > lim)
			y = lim;
		if (p.kind != q.kind || (p.kind == PLACE_DATA && p.phys != q.phys))
			err = mark(out, x, y, bs);
		x = y;
	}
	if (!err && now->size != prev->size)
		err = mark(out, lim, now->size > lim ? now->size : lim + 1, bs);
	return err;
}

/* The first of the sorted runs [first, first + count) of blocks that ends after byte @x. */
static size_t first_run_after(const uint64_t *first, const uint64_t *count, size_t n,
			      uint64_t x, uint32_t bs)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((first[mid] + count[mid]) * bs <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Through each extent of @m (within its size, only written ones when
 * @data_only), the bytes that lie on @runs' blocks, with @from on one side
 * and @to on the other: the volume blocks under file blocks, or the file
 * blocks over volume blocks.
 */
struct runs {
	uint64_t *first, *count;
	size_t n;
};

static int through_extents(const struct filemap *m, const struct runs *r, bool runs_are_file,
			   bool data_only, uint32_t bs, struct blockset *out)
{
	int err = 0;

	for (size_t i = 0; !err && i < m->n; i++) {
		const struct fext *e = &m->ext[i];
		uint64_t len = e->length, base, end;

		if (e->logical >= m->size || (data_only && (e->flags & FILEMAP_UNWRITTEN)))
			continue;
		if (len > m->size - e->logical)
			len = m->size - e->logical;
		base = runs_are_file ? e->logical : e->physical;
		end = base + len;
		for (size_t k = first_run_after(r->first, r->count, r->n, base, bs);
		     !err && k < r->n && r->first[k] * bs < end; k++) {
			uint64_t a = r->first[k] * bs, b = (r->first[k] + r->count[k]) * bs;

			a = a > base ? a : base;
			b = b < end ? b : end;
			if (runs_are_file)
				err = mark(out, e->physical + (a - base), e->physical + (b - base), bs);
			else
				err = mark(out, e->logical + (a - base), e->logical + (b - base), bs);
		}
	}
	return err;
}

static int runs_of(const struct blockset *s, struct runs *r)
{
	return blockset_extents(s, &r->first, &r->count, &r->n);
}

static void runs_free(struct runs *r)
{
	free(r->first);
	free(r->count);
}

int filemap_changed(const struct filemap *now, const struct filemap *prev,
		    const struct blockset *vol_delta, uint32_t bs, struct blockset **out)
{
	struct runs r = { 0 };
	int err;

	if (!bs)
		return -EINVAL;
	err = blockset_new(out);
	if (err)
		return err;
	if (!prev || !prev->trusted || !now->trusted || prev->ino != now->ino ||
	    prev->generation != now->generation)
		return mark(*out, 0, now->size, bs);
	err = moved(now, prev, bs, *out);
	if (!err)
		err = runs_of(vol_delta, &r);
	if (!err)
		err = through_extents(now, &r, false, false, bs, *out);
	runs_free(&r);
	return err;
}

int filemap_volume_blocks(const struct filemap *m, const struct blockset *want,
			  uint32_t bs, struct blockset **out)
{
	struct runs r = { 0 };
	int err;

	if (!bs)
		return -EINVAL;
	err = blockset_new(out);
	if (!err)
		err = runs_of(want, &r);
	if (!err)
		err = through_extents(m, &r, true, true, bs, *out);
	runs_free(&r);
	return err;
}

void filemap_piece(const struct filemap *m, uint64_t off, uint64_t max, uint64_t *phys,
		   uint64_t *len)
{
	size_t lo = 0, hi = m->n;
	const struct fext *e;

	while (lo < hi) {		/* the first extent that ends after @off */
		size_t mid = lo + (hi - lo) / 2;

		if (m->ext[mid].logical + m->ext[mid].length <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	*phys = UINT64_MAX;
	*len = max;
	if (lo == m->n)
		return;
	e = &m->ext[lo];
	if (off < e->logical) {
		if (e->logical - off < max)
			*len = e->logical - off;
		return;
	}
	if (e->logical + e->length - off < max)
		*len = e->logical + e->length - off;
	if (!(e->flags & FILEMAP_UNWRITTEN))
		*phys = e->physical + (off - e->logical);
}

/* ---- FMAP records ------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

int filemap_encode(const struct filemap *m, uint64_t *first, void *buf, size_t cap,
		   size_t *used)
{
	uint8_t *p = buf;
	size_t k = 0;

	if (cap < FILEMAP_HEADER_LEN + FILEMAP_EXTENT_LEN || *first > m->n)
		return -EINVAL;
	if (!*first) {
		memset(p, 0, FILEMAP_HEADER_LEN);
		put64(p, m->size);
		put64(p + 8, m->ino);
		put64(p + 16, m->generation);
		put32(p + 24, m->trusted ? 0 : FMAP_UNTRUSTED);
		put64(p + 32, m->n);
		k = FILEMAP_HEADER_LEN;
	}
	for (; *first < m->n && k + FILEMAP_EXTENT_LEN <= cap; (*first)++) {
		const struct fext *e = &m->ext[*first];

		put64(p + k, e->logical);
		put64(p + k + 8, e->physical);
		put64(p + k + 16, e->length);
		put32(p + k + 24, e->flags);
		put32(p + k + 28, 0);
		k += FILEMAP_EXTENT_LEN;
	}
	*used = k;
	return *first < m->n;
}

int filemap_decode(struct filemap *m, uint64_t first, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int err = 0;

	if (first != m->n || (first == 0) != (m->declared == UINT64_MAX))
		return -EBADMSG;	/* a record missing, repeated or out of order */
	if (!first) {
		if (len < FILEMAP_HEADER_LEN || (get32(p + 24) & ~FMAP_UNTRUSTED) ||
		    get32(p + 28))
			return -EBADMSG;
		m->size = get64(p);
		m->ino = get64(p + 8);
		m->generation = get64(p + 16);
		m->trusted = !(get32(p + 24) & FMAP_UNTRUSTED);
		m->declared = get64(p + 32);
		p += FILEMAP_HEADER_LEN;
		len -= FILEMAP_HEADER_LEN;
	}
	if (len % FILEMAP_EXTENT_LEN || len / FILEMAP_EXTENT_LEN > m->declared - m->n)
		return -EBADMSG;
	for (; !err && len; p += FILEMAP_EXTENT_LEN, len -= FILEMAP_EXTENT_LEN) {
		if (get32(p + 28))
			return -EBADMSG;
		err = filemap_add(m, get64(p), get64(p + 8), get64(p + 16), get32(p + 24));
	}
	return err == -EINVAL ? -EBADMSG : err;
}

int filemap_decoded(const struct filemap *m)
{
	return m->declared == m->n ? 0 : -EBADMSG;
}

/* ---- in a backup file --------------------------------------------------- */

int filemap_write_records(struct bfile_writer *w, const struct filemap *m, size_t cap)
{
	uint64_t first = 0, at;
	size_t used;
	void *buf;
	int more;

	if (cap > BFILE_EXT_PAYLOAD_MAX)
		cap = BFILE_EXT_PAYLOAD_MAX;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	do {
		at = first;
		more = filemap_encode(m, &first, buf, cap, &used);
		if (more >= 0) {
			int err = bfile_write_extension(w, BFILE_TAG_FMAP, BFILE_REC_SKIPPABLE,
							at, buf, used);
			if (err)
				more = err;
		}
	} while (more > 0);
	free(buf);
	return more;
}

int filemap_read_records(bfile_read_fn fn, void *data, struct filemap *m, char *msg,
			 size_t len)
{
	struct bfile_header h;
	struct bfile_reader *r;
	struct bfile_record rec;
	int err;

	filemap_init(m);
	msg[0] = 0;
	err = bfile_reader_open_fn(fn, data, &h, &r);
	if (!err) {
		bfile_reader_deliver(r, BFILE_TAG_FMAP);
		/* The FMAP records come first: stop at the first block. */
		while ((err = bfile_read_record(r, &rec)) > 0 && rec.tag == BFILE_TAG_FMAP) {
			err = filemap_decode(m, rec.offset, rec.data, rec.stored_len);
			if (err) {
				snprintf(msg, len, "FMAP record %" PRIu64 ": damaged", rec.index);
				break;
			}
		}
		if (err < 0 && !msg[0])
			snprintf(msg, len, "%s", bfile_reader_error(r));
	} else {
		snprintf(msg, len, "%s", r ? bfile_reader_error(r) : strerror(-err));
	}
	bfile_reader_free(r);
	if (err >= 0 && m->declared == UINT64_MAX) {
		snprintf(msg, len, "no extent map (FMAP records): not a per-file backup");
		err = -ENOENT;
	} else if (err >= 0 && filemap_decoded(m)) {
		snprintf(msg, len, "its extent map has %zu of its %" PRIu64 " extents", m->n,
			 m->declared);
		err = -EBADMSG;
	}
	if (err < 0)
		filemap_free(m);
	return err < 0 ? err : 0;
}
