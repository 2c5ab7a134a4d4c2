// SPDX-License-Identifier: GPL-2.0
/*
 * The backup stream format (lib/format/bfile.c, doc/FORMAT.md): round trips
 * against the volume the test made up, the byte layout against the
 * document, every single-bit flip and every truncation of a small backup,
 * a pipe, extension records, and hand-built streams (out of order, bad
 * digest...) that a second, independent encoder in this file produces
 * from doc/FORMAT.md.
 *
 * BFILE_WRITE_CORPUS=DIR build/unit-tests --filter 'bfile/corpus'
 * rewrites the fuzz seeds of tests/fuzz/corpus/bfile/ into DIR; the test
 * always checks that each committed seed reads with the result its name
 * announces (ok or an errno name).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <criterion/criterion.h>
#include <xxhash.h>

#include "format/bfile.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void fill_random(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = rnd() >> 56;
}

static void fill_text(uint8_t *p, size_t n, unsigned int seed)
{
	static const char text[] = "blktrack tracks the blocks that changed. ";
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = text[(i + seed) % (sizeof(text) - 1)];
}

static int memfd(void)
{
	int fd = memfd_create("bfile", 0);

	cr_assert_geq(fd, 0);
	return fd;
}

/* The whole content of @fd, from byte 0. */
static uint8_t *slurp(int fd, size_t *len)
{
	struct stat st;
	uint8_t *p;

	cr_assert_eq(fstat(fd, &st), 0);
	p = malloc(st.st_size ? st.st_size : 1);
	cr_assert_not_null(p);
	cr_assert_eq(pread(fd, p, st.st_size, 0), st.st_size);
	*len = st.st_size;
	return p;
}

static void refill(int fd, const uint8_t *p, size_t len)
{
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(pwrite(fd, p, len, 0), (ssize_t)len);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
}

static void le32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void test_header(struct bfile_header *h, uint32_t comp, uint64_t size, uint32_t bs,
			uint32_t record_max)
{
	int i;

	memset(h, 0, sizeof(*h));
	h->compression = comp;
	h->type = BFILE_TYPE_INCREMENTAL;
	snprintf(h->volume_id, sizeof(h->volume_id), "3f2a1c9e-test-volume");
	h->volume_size = size;
	h->block_size = bs;
	h->record_max = record_max;
	for (i = 0; i < 16; i++) {
		h->id[i] = 0xa0 + i;
		h->parent_id[i] = 0x50 + i;
	}
	h->from = (struct bfile_stamp){ .generation = { 1, 2, 3 }, .epoch = 41,
					.size = size, .block_size = bs };
	h->to = (struct bfile_stamp){ .generation = { 1, 2, 3 }, .epoch = 42,
				      .size = size, .block_size = bs };
	h->ctime_ns = 1767225600123456789ULL;
}

static void expect_header_eq(const struct bfile_header *a, const struct bfile_header *b)
{
	cr_expect_eq(a->compression, b->compression);
	cr_expect_eq(a->type, b->type);
	cr_expect_str_eq(a->volume_id, b->volume_id);
	cr_expect_eq(a->volume_size, b->volume_size);
	cr_expect_eq(a->block_size, b->block_size);
	cr_expect_eq(a->record_max, b->record_max);
	cr_expect_arr_eq(a->from.generation, b->from.generation, 16);
	cr_expect_eq(a->from.epoch, b->from.epoch);
	cr_expect_eq(a->from.size, b->from.size);
	cr_expect_eq(a->from.block_size, b->from.block_size);
	cr_expect_arr_eq(a->to.generation, b->to.generation, 16);
	cr_expect_eq(a->to.epoch, b->to.epoch);
	cr_expect_eq(a->to.size, b->to.size);
	cr_expect_eq(a->to.block_size, b->to.block_size);
	cr_expect_eq(a->ctime_ns, b->ctime_ns);
	cr_expect_arr_eq(a->id, b->id, 16);
	cr_expect_arr_eq(a->parent_id, b->parent_id, 16);
}

static bool header_same(const struct bfile_header *a, const struct bfile_header *b)
{
	return a->compression == b->compression && a->type == b->type &&
	       !strcmp(a->volume_id, b->volume_id) && a->volume_size == b->volume_size &&
	       a->block_size == b->block_size && a->record_max == b->record_max &&
	       !memcmp(&a->from.generation, &b->from.generation, 16) &&
	       a->from.epoch == b->from.epoch && a->from.size == b->from.size &&
	       a->from.block_size == b->from.block_size &&
	       !memcmp(&a->to.generation, &b->to.generation, 16) &&
	       a->to.epoch == b->to.epoch && a->to.size == b->to.size &&
	       a->to.block_size == b->to.block_size && a->ctime_ns == b->ctime_ns &&
	       !memcmp(a->id, b->id, 16) && !memcmp(a->parent_id, b->parent_id, 16);
}

/*
 * A made-up volume and what the test wrote of it: @vol holds the content,
 * @written[b] says whether block b went into the backup (as data or zeros).
 */
struct volume {
	uint8_t *vol;
	bool *written;
	uint64_t size;
	uint32_t bs;
	uint64_t data_bytes;	/* written non-zero bytes */
	uint64_t zero_bytes;	/* written zero bytes */
};

static uint64_t nblocks(const struct volume *v)
{
	return (v->size + v->bs - 1) / v->bs;
}

static void volume_free(struct volume *v)
{
	free(v->vol);
	free(v->written);
}

/* What the reader gave back. */
struct outcome {
	int open_err;
	int rc;			/* last bfile_read_record() result */
	uint64_t wrong;		/* records that do not match the volume */
	uint64_t data_records, zero_records, compressed, raw;
	uint64_t longest;	/* the longest DATA record */
	uint8_t *image;		/* records applied onto 0xee bytes, or NULL */
	struct bfile_header h;
	struct bfile_stats st;
	char msg[320];
};

static bool range_written(const struct volume *v, uint64_t off, uint64_t len)
{
	uint64_t b;

	if (!len || off % v->bs || len > v->size || off > v->size - len)
		return false;
	for (b = off / v->bs; b < (off + len + v->bs - 1) / v->bs; b++)
		if (!v->written[b])
			return false;
	return true;
}

static bool is_zero(const uint8_t *p, uint64_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* Read the stream on @fd, checking every record against @v. */
static void run_reader(int fd, const struct volume *v, const struct bfile_header *want,
		       bool keep_image, struct outcome *o)
{
	struct bfile_reader *r;
	struct bfile_record rec;

	memset(o, 0, sizeof(*o));
	if (keep_image) {
		o->image = malloc(v->size);
		cr_assert_not_null(o->image);
		memset(o->image, 0xee, v->size);
	}
	o->open_err = bfile_reader_open(fd, &o->h, &r);
	cr_assert_not_null(r);
	if (o->open_err) {
		o->rc = o->open_err;
		goto out;
	}
	if (want && !header_same(&o->h, want))
		o->wrong++;
	while ((o->rc = bfile_read_record(r, &rec)) > 0) {
		if (!range_written(v, rec.offset, rec.length)) {
			o->wrong++;
			continue;
		}
		if (rec.tag == BFILE_TAG_DATA) {
			o->data_records++;
			if (rec.length > o->longest)
				o->longest = rec.length;
			if (rec.flags & BFILE_REC_COMPRESSED)
				o->compressed++;
			else
				o->raw++;
			if (memcmp(rec.data, v->vol + rec.offset, rec.length))
				o->wrong++;
			if (o->image)
				memcpy(o->image + rec.offset, rec.data, rec.length);
		} else {
			o->zero_records++;
			if (!is_zero(v->vol + rec.offset, rec.length))
				o->wrong++;
			if (o->image)
				memset(o->image + rec.offset, 0, rec.length);
		}
	}
out:
	bfile_reader_stats(r, &o->st);
	snprintf(o->msg, sizeof(o->msg), "%s", bfile_reader_error(r));
	bfile_reader_free(r);
}

/* The image the reader should rebuild: the written blocks, 0xee elsewhere. */
static void expect_image(const struct volume *v, const uint8_t *image)
{
	uint64_t b, off, n;

	for (b = 0; b < nblocks(v); b++) {
		off = b * v->bs;
		n = v->size - off < v->bs ? v->size - off : v->bs;
		if (v->written[b])
			cr_assert(!memcmp(image + off, v->vol + off, n), "block %lu differs", b);
		else
			cr_assert(image[off] == 0xee && !memcmp(image + off, image + off + 1, n - 1),
				  "block %lu was not written but restored", b);
	}
}

/*
 * A synthetic incremental backup of @blocks blocks (+ a partial last block
 * of @tail bytes): runs of random data, text, zeros (both through
 * write_data and write_zero) and gaps, in calls of random sizes.
 */
static void make_volume(struct volume *v, uint64_t blocks, uint32_t tail, uint32_t bs,
			uint64_t seed)
{
	rng_state = seed;
	memset(v, 0, sizeof(*v));
	v->bs = bs;
	v->size = blocks * bs + tail;
	v->vol = malloc(v->size);
	v->written = calloc(nblocks(v), sizeof(bool));
	cr_assert(v->vol && v->written);
	fill_random(v->vol, v->size);
}

/* @prefix blocks of random data in one call, then runs of every kind. */
static void write_volume(struct bfile_writer *w, struct volume *v, uint64_t prefix,
			 unsigned int max_run)
{
	uint64_t b = prefix, n, off, len, i;
	unsigned int kind;

	if (prefix) {
		cr_assert_eq(bfile_write_data(w, 0, v->vol, prefix * v->bs), 0);
		v->data_bytes += prefix * v->bs;
		for (i = 0; i < prefix; i++)
			v->written[i] = true;
	}

	while (b < nblocks(v)) {
		n = 1 + rnd() % max_run;
		if (n > nblocks(v) - b)
			n = nblocks(v) - b;
		off = b * v->bs;
		len = n * v->bs;
		if (off + len > v->size)
			len = v->size - off;
		kind = rnd() % 5;
		if (kind == 0) {		/* gap: not in this backup */
			b += n;
			continue;
		}
		if (kind == 1 || kind == 2)	/* zeros */
			memset(v->vol + off, 0, len);
		else if (kind == 3)		/* compressible */
			fill_text(v->vol + off, len, b);
		if (kind == 2)
			cr_assert_eq(bfile_write_zero(w, off, len), 0, "%s", bfile_writer_error(w));
		else
			cr_assert_eq(bfile_write_data(w, off, v->vol + off, len), 0, "%s",
				     bfile_writer_error(w));
		if (kind == 1 || kind == 2)
			v->zero_bytes += len;
		else
			v->data_bytes += len;
		for (i = b; i < b + n; i++)
			v->written[i] = true;
		b += n;
	}
}

/* A backup of a fresh synthetic volume into a memfd. */
static int make_backup(struct volume *v, struct bfile_header *h, uint32_t comp,
		       uint64_t blocks, uint32_t tail, uint32_t bs, uint32_t record_max,
		       uint64_t prefix, unsigned int max_run, bool extension,
		       struct bfile_stats *st)
{
	struct bfile_writer *w;
	int fd = memfd();

	make_volume(v, blocks, tail, bs, 0x9e3779b97f4a7c15ULL + comp + blocks);
	test_header(h, comp, v->size, bs, record_max);
	cr_assert_eq(bfile_writer_open(fd, h, &w), 0, "%s", bfile_writer_error(w));
	if (extension)
		cr_assert_eq(bfile_write_extension(w, 0x54584554 /* "TEXT" */,
						   BFILE_REC_SKIPPABLE, 0, "a note", 6), 0);
	write_volume(w, v, prefix, max_run);
	cr_assert_eq(bfile_writer_finish(w, st), 0);
	return fd;
}

/* ---- an independent encoder, from doc/FORMAT.md --------------------------- */

struct craft {
	uint8_t buf[65536];
	size_t len;
	uint64_t records, data_bytes, zero_bytes;
};

static void craft_put(struct craft *c, const void *p, size_t n)
{
	cr_assert_leq(c->len + n, sizeof(c->buf));
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void craft_header(struct craft *c, uint32_t version, uint32_t flags, uint32_t type,
			 uint64_t size, uint32_t bs, uint32_t record_max)
{
	uint8_t h[256] = { 0 };
	int i;

	memset(c, 0, sizeof(*c));
	memcpy(h, "BLKTRKB", 8);
	le32(h + 8, version);
	le32(h + 12, 256);
	le32(h + 16, flags);
	le32(h + 20, type);
	strcpy((char *)h + 24, "crafted");
	le64(h + 88, size);
	le32(h + 96, bs);
	le32(h + 100, record_max);
	if (type != BFILE_TYPE_FULL) {
		h[104] = 7;			/* from: generation */
		le64(h + 120, 1);		/* epoch */
	}
	h[144] = 7;				/* to: generation */
	le64(h + 160, 2);			/* epoch */
	le64(h + 168, size);
	le32(h + 176, bs);
	le64(h + 184, 1767225600000000000ULL);
	for (i = 0; i < 16; i++)
		h[192 + i] = 0xc0 + i;		/* id */
	le64(h + 248, XXH3_64bits(h, 248));
	craft_put(c, h, sizeof(h));
}

static void craft_record(struct craft *c, uint32_t tag, uint32_t flags, uint32_t payload_len,
			 uint64_t off, uint64_t len, const void *payload, uint32_t stored)
{
	uint8_t r[40], tmp[32 + 8192];

	cr_assert_leq(stored, 8192);
	le32(r, tag);
	le32(r + 4, flags);
	le32(r + 8, payload_len);
	le32(r + 12, stored);
	le64(r + 16, off);
	le64(r + 24, len);
	memcpy(tmp, r, 32);
	if (stored)
		memcpy(tmp + 32, payload, stored);
	le64(r + 32, XXH3_64bits(tmp, 32 + stored));
	craft_put(c, r, 40);
	if (stored)
		craft_put(c, payload, stored);
	if (tag == BFILE_TAG_END)
		return;
	c->records++;
	if (tag == BFILE_TAG_DATA)
		c->data_bytes += len;
	if (tag == BFILE_TAG_ZERO)
		c->zero_bytes += len;
}

static void craft_data(struct craft *c, uint64_t off, const uint8_t *p, uint32_t len)
{
	craft_record(c, BFILE_TAG_DATA, 0, len, off, len, p, len);
}

static void craft_end(struct craft *c)
{
	XXH128_canonical_t d;
	uint8_t e[40];

	le64(e, c->records);
	le64(e + 8, c->data_bytes);
	le64(e + 16, c->zero_bytes);
	XXH128_canonicalFromHash(&d, XXH3_128bits(c->buf, c->len));
	memcpy(e + 24, d.digest, 16);
	craft_record(c, BFILE_TAG_END, 0, 40, 0, 0, e, 40);
}

/* Read a crafted stream; the volume model says which ranges may come back. */
static int read_craft(const struct craft *c, const struct volume *v, struct outcome *o)
{
	int fd = memfd();

	refill(fd, c->buf, c->len);
	run_reader(fd, v, NULL, false, o);
	close(fd);
	return o->rc;
}

/* A 16-block volume of 512-byte blocks whose content is the crafted data. */
static uint8_t craft_vol[16 * 512];
static bool craft_written[16];

static struct volume craft_volume(void)
{
	struct volume v = { craft_vol, craft_written, sizeof(craft_vol), 512, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof(craft_vol); i++)
		craft_vol[i] = i * 7 + 1;
	for (i = 0; i < 16; i++)
		craft_written[i] = true;
	return v;
}

/* ---- round trips ---------------------------------------------------------- */

static void round_trip(uint32_t comp)
{
	struct bfile_header h;
	struct bfile_stats st;
	struct outcome o;
	struct volume v;
	int fd;

	/*
	 * 8 MiB + 1000 bytes, 4 KiB blocks, 1 MiB records: 2 MiB of random
	 * data in one call, then runs of up to 300 blocks of each kind.
	 */
	fd = make_backup(&v, &h, comp, 2048, 1000, 4096, 0, 512, 300, false, &st);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	h.record_max = BFILE_RECORD_MAX_DEFAULT;	/* what 0 means */
	run_reader(fd, &v, &h, true, &o);
	cr_assert_eq(o.rc, 0, "%s", o.msg);
	cr_assert_eq(o.wrong, 0);
	expect_header_eq(&o.h, &h);
	expect_image(&v, o.image);

	cr_expect_eq(o.longest, BFILE_RECORD_MAX_DEFAULT);	/* runs were split */
	cr_expect_geq(o.data_records, v.data_bytes / BFILE_RECORD_MAX_DEFAULT);
	cr_expect_eq(o.st.data_bytes, v.data_bytes);
	cr_expect_eq(o.st.zero_bytes, v.zero_bytes);
	cr_expect_gt(v.zero_bytes, 0);
	cr_expect_gt(o.zero_records, 0);
	cr_expect_eq(o.st.records, st.records);
	cr_expect_eq(o.st.stream_bytes, st.stream_bytes);
	cr_expect_arr_eq(o.st.digest, st.digest, 16);
	if (comp == BFILE_COMP_ZSTD) {
		cr_expect_gt(o.compressed, 0);	/* the text */
		cr_expect_gt(o.raw, 0);		/* the random data */
		cr_expect_lt(o.st.stored_bytes, o.st.data_bytes);
	} else {
		cr_expect_eq(o.compressed, 0);
		cr_expect_eq(o.st.stored_bytes, o.st.data_bytes);
	}
	free(o.image);
	volume_free(&v);
	close(fd);
}

Test(bfile, round_trip_zstd, .timeout = 10)
{
	round_trip(BFILE_COMP_ZSTD);
}

Test(bfile, round_trip_uncompressed, .timeout = 10)
{
	round_trip(BFILE_COMP_NONE);
}

Test(bfile, empty_volume_and_header_only)
{
	struct bfile_header h;
	struct bfile_stats st;
	struct bfile_writer *w;
	struct outcome o;
	struct volume v = { NULL, NULL, 0, 512, 0, 0 };
	int fd = memfd();

	test_header(&h, BFILE_COMP_ZSTD, 0, 512, 0);
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_write_data(w, 0, "x", 1), -ERANGE);
	cr_assert_eq(bfile_writer_finish(w, &st), 0);
	cr_expect_eq(st.records, 0);
	cr_expect_eq(st.stream_bytes, 256 + 80);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	run_reader(fd, &v, NULL, false, &o);
	cr_expect_eq(o.rc, 0, "%s", o.msg);
	close(fd);
}

/* ---- the layout of doc/FORMAT.md ----------------------------------------- */

Test(bfile, layout_matches_format_md)
{
	struct bfile_header h;
	struct bfile_stats st;
	struct bfile_writer *w;
	XXH128_canonical_t d;
	uint8_t blk[1024], tmp[32 + 1024], *f;
	size_t len, e;
	int fd = memfd();

	test_header(&h, BFILE_COMP_NONE, 1 << 20, 512, 4096);
	h.type = BFILE_TYPE_DIFFERENTIAL;
	rng_state = 7;
	fill_random(blk, sizeof(blk));
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_write_data(w, 4096, blk, 1024), 0);
	cr_assert_eq(bfile_write_zero(w, 8192, 1536), 0);
	cr_assert_eq(bfile_writer_finish(w, &st), 0);
	f = slurp(fd, &len);
	cr_assert_eq(len, 256 + 40 + 1024 + 40 + 40 + 40);
	cr_expect_eq(st.stream_bytes, len);

	/* header */
	cr_expect_arr_eq(f, "BLKTRKB\0", 8);
	cr_expect_eq(get32(f + 8), 1);
	cr_expect_eq(get32(f + 12), 256);
	cr_expect_eq(get32(f + 16), BFILE_COMP_NONE);
	cr_expect_eq(get32(f + 20), 3);		/* differential */
	cr_expect_str_eq((char *)f + 24, h.volume_id);
	cr_expect(is_zero(f + 24 + strlen(h.volume_id), 64 - strlen(h.volume_id)));
	cr_expect_eq(get64(f + 88), 1 << 20);
	cr_expect_eq(get32(f + 96), 512);
	cr_expect_eq(get32(f + 100), 4096);
	cr_expect_arr_eq(f + 104, h.from.generation, 16);
	cr_expect_eq(get64(f + 120), 41);
	cr_expect_eq(get64(f + 128), 1 << 20);
	cr_expect_eq(get32(f + 136), 512);
	cr_expect_arr_eq(f + 144, h.to.generation, 16);
	cr_expect_eq(get64(f + 160), 42);
	cr_expect_eq(get64(f + 168), 1 << 20);
	cr_expect_eq(get32(f + 176), 512);
	cr_expect_eq(get64(f + 184), h.ctime_ns);
	cr_expect_arr_eq(f + 192, h.id, 16);
	cr_expect_arr_eq(f + 208, h.parent_id, 16);
	cr_expect(is_zero(f + 224, 24));
	cr_expect_eq(get64(f + 248), XXH3_64bits(f, 248));

	/* DATA at 256: "DATA" in the file */
	cr_expect_arr_eq(f + 256, "DATA", 4);
	cr_expect_eq(get32(f + 256), BFILE_TAG_DATA);
	cr_expect_eq(get32(f + 260), 0);
	cr_expect_eq(get32(f + 264), 1024);
	cr_expect_eq(get32(f + 268), 1024);
	cr_expect_eq(get64(f + 272), 4096);
	cr_expect_eq(get64(f + 280), 1024);
	memcpy(tmp, f + 256, 32);
	memcpy(tmp + 32, blk, 1024);
	cr_expect_eq(get64(f + 288), XXH3_64bits(tmp, 32 + 1024));
	cr_expect_arr_eq(f + 296, blk, 1024);

	/* ZERO at 1320 */
	cr_expect_arr_eq(f + 1320, "ZERO", 4);
	cr_expect_eq(get32(f + 1328), 0);
	cr_expect_eq(get32(f + 1332), 0);
	cr_expect_eq(get64(f + 1336), 8192);
	cr_expect_eq(get64(f + 1344), 1536);
	cr_expect_eq(get64(f + 1352), XXH3_64bits(f + 1320, 32));

	/* END at 1360 */
	e = 1360;
	cr_expect_arr_eq(f + e, "END\0", 4);
	cr_expect_eq(get32(f + e + 8), 40);
	cr_expect_eq(get32(f + e + 12), 40);
	cr_expect_eq(get64(f + e + 16), 0);
	cr_expect_eq(get64(f + e + 24), 0);
	memcpy(tmp, f + e, 32);
	memcpy(tmp + 32, f + e + 40, 40);
	cr_expect_eq(get64(f + e + 32), XXH3_64bits(tmp, 72));
	cr_expect_eq(get64(f + e + 40), 2);	/* records */
	cr_expect_eq(get64(f + e + 48), 1024);	/* data bytes */
	cr_expect_eq(get64(f + e + 56), 1536);	/* zero bytes */
	XXH128_canonicalFromHash(&d, XXH3_128bits(f, e));
	cr_expect_arr_eq(f + e + 64, d.digest, 16);
	cr_expect_arr_eq(st.digest, d.digest, 16);
	free(f);
	close(fd);
}

/* ---- corruption ------------------------------------------------------------ */

/* A few KiB: 512-byte blocks, 1 KiB records, an extension record. */
static int small_backup(struct volume *v, struct bfile_header *h, uint32_t comp)
{
	struct bfile_stats st;
	int fd = make_backup(v, h, comp, 24, 100, 512, 1024, 0, 4, true, &st);

	cr_assert_lt(st.stream_bytes, 8192);
	cr_assert_gt(st.data_records, 2);
	cr_assert_gt(st.zero_records, 0);
	return fd;
}

static void every_bit_flip(uint32_t comp)
{
	struct bfile_header h;
	struct outcome o;
	struct volume v;
	uint8_t *f;
	size_t len, byte;
	unsigned int bit, ebadmsg = 0;
	int fd = small_backup(&v, &h, comp);

	f = slurp(fd, &len);
	refill(fd, f, len);
	run_reader(fd, &v, &h, false, &o);
	cr_assert_eq(o.rc, 0, "%s", o.msg);		/* the intact file reads */
	if (comp == BFILE_COMP_ZSTD)
		cr_assert_gt(o.compressed, 0);
	for (byte = 0; byte < len; byte++) {
		for (bit = 0; bit < 8; bit++) {
			f[byte] ^= 1U << bit;
			cr_assert_eq(pwrite(fd, f + byte, 1, byte), 1);
			cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
			run_reader(fd, &v, &h, false, &o);
			cr_assert_lt(o.rc, 0, "flip of bit %u of byte %zu not detected", bit, byte);
			cr_assert_eq(o.wrong, 0, "flip of bit %u of byte %zu: a wrong record",
				     bit, byte);
			cr_assert_str_neq(o.msg, "no error");
			ebadmsg += o.rc == -EBADMSG;
			f[byte] ^= 1U << bit;
			cr_assert_eq(pwrite(fd, f + byte, 1, byte), 1);
		}
	}
	/* Most flips land in checksummed bytes and read as such. */
	cr_expect_gt(ebadmsg, len * 8 * 9 / 10);
	free(f);
	volume_free(&v);
	close(fd);
}

Test(bfile, every_bit_flip_is_detected_zstd, .timeout = 20)
{
	every_bit_flip(BFILE_COMP_ZSTD);
}

Test(bfile, every_bit_flip_is_detected_uncompressed, .timeout = 20)
{
	every_bit_flip(BFILE_COMP_NONE);
}

Test(bfile, every_truncation_is_detected, .timeout = 20)
{
	struct bfile_header h;
	struct outcome o;
	struct volume v;
	uint8_t *f, *g;
	size_t len, cut;
	int fd = small_backup(&v, &h, BFILE_COMP_ZSTD);

	f = slurp(fd, &len);
	for (cut = 0; cut < len; cut++) {
		refill(fd, f, cut);
		run_reader(fd, &v, &h, false, &o);
		cr_assert_eq(o.rc, -ENODATA, "truncation at byte %zu: %d (%s)", cut, o.rc, o.msg);
		cr_assert_eq(o.wrong, 0);
		cr_assert(strstr(o.msg, "truncated"), "%s", o.msg);
	}
	refill(fd, f, len);
	run_reader(fd, &v, &h, false, &o);
	cr_assert_eq(o.rc, 0, "%s", o.msg);

	/* and one byte too many */
	g = malloc(len + 1);
	memcpy(g, f, len);
	g[len] = 0;
	refill(fd, g, len + 1);
	run_reader(fd, &v, &h, false, &o);
	cr_assert_eq(o.rc, -EBADMSG);
	cr_expect(strstr(o.msg, "after the END"), "%s", o.msg);
	free(g);
	free(f);
	volume_free(&v);
	close(fd);
}

Test(bfile, messages_name_the_record_and_byte)
{
	struct craft c;
	struct outcome o;
	struct volume v = craft_volume();
	char want[96];
	size_t at;

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	at = c.len;
	craft_data(&c, 1024, craft_vol + 1024, 1024);
	craft_end(&c);
	c.buf[at + 40 + 100] ^= 0x20;		/* in record 1's payload */
	cr_assert_eq(read_craft(&c, &v, &o), -EBADMSG);
	snprintf(want, sizeof(want), "record 1 at byte %zu: checksum mismatch", at);
	cr_expect(strstr(o.msg, want), "%s", o.msg);
	cr_expect_eq(o.data_records, 1);

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	c.buf[3] = 'x';
	cr_assert_eq(read_craft(&c, &v, &o), -EPROTO);
	cr_expect(strstr(o.msg, "magic"), "%s", o.msg);
}

/* ---- a pipe ---------------------------------------------------------------- */

struct pipe_job {
	int fd;
	struct volume v;
	struct bfile_header h;
	int err;
};

static void *pipe_writer(void *arg)
{
	struct pipe_job *j = arg;
	struct bfile_writer *w;
	uint64_t off;

	j->err = bfile_writer_open(j->fd, &j->h, &w);
	/* 64 KiB calls, every other 128 KiB skipped: many partial pipe writes */
	for (off = 0; !j->err && off < j->v.size; off += 128 << 10)
		j->err = bfile_write_data(w, off, j->v.vol + off, 64 << 10);
	if (j->err)
		bfile_writer_abort(w);
	else
		j->err = bfile_writer_finish(w, NULL);
	close(j->fd);
	return NULL;
}

Test(bfile, reader_and_writer_on_a_pipe, .timeout = 10)
{
	struct pipe_job j;
	struct outcome o;
	pthread_t t;
	uint64_t b;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	make_volume(&j.v, 1024, 0, 4096, 99);		/* 4 MiB, random */
	for (b = 0; b < 1024; b++)
		j.v.written[b] = (b * 4096) % (128 << 10) < (64 << 10);
	test_header(&j.h, BFILE_COMP_ZSTD, j.v.size, 4096, 0);
	j.h.record_max = BFILE_RECORD_MAX_DEFAULT;
	j.fd = p[1];
	cr_assert_eq(lseek(p[1], 0, SEEK_CUR), -1);	/* a pipe cannot seek */
	cr_assert_eq(pthread_create(&t, NULL, pipe_writer, &j), 0);
	run_reader(p[0], &j.v, &j.h, true, &o);
	pthread_join(t, NULL);
	cr_assert_eq(j.err, 0);
	cr_assert_eq(o.rc, 0, "%s", o.msg);
	cr_assert_eq(o.wrong, 0);
	expect_image(&j.v, o.image);
	cr_expect_eq(o.st.data_bytes, 2 << 20);
	free(o.image);
	volume_free(&j.v);
	close(p[0]);
}

/* ---- extension records -------------------------------------------------------- */

Test(bfile, unknown_skippable_record_is_skipped)
{
	struct craft c;
	struct outcome o;
	struct volume v = craft_volume();

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	craft_record(&c, 0x12345678, BFILE_REC_SKIPPABLE | 0x100, 5, 77, 88, "later", 5);
	craft_record(&c, 0x12345679, BFILE_REC_SKIPPABLE, 0, 0, 0, NULL, 0);
	craft_data(&c, 512, craft_vol + 512, 512);
	craft_end(&c);
	cr_assert_eq(read_craft(&c, &v, &o), 0, "%s", o.msg);
	cr_expect_eq(o.data_records, 2);
	cr_expect_eq(o.st.skipped, 2);
	cr_expect_eq(o.st.records, 4);
	cr_expect_eq(o.wrong, 0);
}

Test(bfile, unknown_record_without_skippable_is_refused)
{
	struct bfile_header h;
	struct bfile_writer *w;
	struct craft c;
	struct outcome o;
	struct volume v = craft_volume();
	uint8_t *f;
	size_t len;
	int fd;

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	craft_record(&c, 0x12345678, 0, 5, 0, 0, "later", 5);
	craft_end(&c);
	cr_assert_eq(read_craft(&c, &v, &o), -EPROTO);
	cr_expect(strstr(o.msg, "record 1 at byte 808: unknown record tag 0x12345678"),
		  "%s", o.msg);
	cr_expect_eq(o.data_records, 1);

	/* the same through the writer */
	fd = memfd();
	test_header(&h, BFILE_COMP_NONE, sizeof(craft_vol), 512, 1024);
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_write_extension(w, BFILE_TAG_DATA, 0, 0, "x", 1), -EINVAL);
	cr_assert_eq(bfile_write_extension(w, 0x4e455758, 0, 0, "x", 1), 0);
	cr_assert_eq(bfile_writer_finish(w, NULL), 0);
	f = slurp(fd, &len);
	refill(fd, f, len);
	run_reader(fd, &v, NULL, false, &o);
	cr_expect_eq(o.rc, -EPROTO);
	free(f);
	close(fd);
}

/* ---- order and range ------------------------------------------------------------- */

Test(bfile, writer_refuses_out_of_order)
{
	struct bfile_header h;
	struct bfile_writer *w;
	uint8_t blk[1024] = { 1 };
	int fd = memfd();

	test_header(&h, BFILE_COMP_ZSTD, 8192 + 100, 512, 1024);
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_write_data(w, 1024, blk, 1024), 0);
	cr_expect_eq(bfile_write_data(w, 1536, blk, 512), -ERANGE);	/* overlaps */
	cr_expect(strstr(bfile_writer_error(w), "out of order"), "%s", bfile_writer_error(w));
	cr_expect_eq(bfile_write_data(w, 0, blk, 512), -ERANGE);	/* backwards */
	cr_expect_eq(bfile_write_zero(w, 1024, 512), -ERANGE);
	cr_expect_eq(bfile_write_data(w, 2048 + 1, blk, 512), -ERANGE);	/* misaligned */
	cr_expect_eq(bfile_write_data(w, 2048, blk, 100), -ERANGE);	/* partial block */
	cr_expect_eq(bfile_write_zero(w, 8192, 101), -ERANGE);		/* past the end */
	/* a refused call leaves the stream intact */
	cr_expect_eq(bfile_write_data(w, 8192, blk, 100), 0);		/* the tail */
	cr_expect_eq(bfile_writer_finish(w, NULL), 0);
	close(fd);
}

Test(bfile, reader_refuses_out_of_order_and_out_of_range)
{
	struct craft c;
	struct outcome o;
	struct volume v = craft_volume();

	/* backwards */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 1024, craft_vol + 1024, 512);
	craft_data(&c, 0, craft_vol, 512);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -ERANGE);
	cr_expect(strstr(o.msg, "record 1 at byte 808"), "%s", o.msg);
	cr_expect_eq(o.data_records, 1);

	/* overlapping, through a ZERO */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 1024);
	craft_record(&c, BFILE_TAG_ZERO, 0, 0, 512, 512, NULL, 0);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -ERANGE);

	/* past the volume size */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_record(&c, BFILE_TAG_ZERO, 0, 0, 7680, 1024, NULL, 0);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -ERANGE);
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_record(&c, BFILE_TAG_ZERO, 0, 0, UINT64_MAX - 511, 1024, NULL, 0);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -ERANGE);

	/* misaligned */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 100, craft_vol + 100, 512);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -ERANGE);

	/* the same records in order read fine */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	craft_data(&c, 1024, craft_vol + 1024, 512);
	craft_data(&c, 1536, craft_vol + 1536, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), 0, "%s", o.msg);
	cr_expect_eq(o.data_records, 3);
}

/* ---- header, END ------------------------------------------------------------------ */

Test(bfile, version_and_flags_outside_v1_are_refused)
{
	struct craft c;
	struct outcome o;
	struct volume v = craft_volume();

	craft_header(&c, 2, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EPROTO);
	cr_expect(strstr(o.msg, "version 2"), "%s", o.msg);
	craft_header(&c, 0, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EPROTO);
	craft_header(&c, 1, 2, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EPROTO);	/* compression 2 */
	craft_header(&c, 1, 0x100, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EPROTO);	/* a flag bit */
	craft_header(&c, 1, 0, 9, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EPROTO);	/* backup type */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 768, 1536);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EBADMSG);	/* block size */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1000);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), -EBADMSG);	/* record size */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	cr_expect_eq(read_craft(&c, &v, &o), 0, "%s", o.msg);
}

Test(bfile, end_that_does_not_match_the_stream_is_refused)
{
	struct craft c;
	struct outcome o;
	struct volume v = craft_volume();
	size_t cut, next;

	/* a whole record removed: counts and digest */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	cut = c.len;
	craft_data(&c, 512, craft_vol + 512, 512);
	next = c.len;
	craft_data(&c, 1024, craft_vol + 1024, 512);
	craft_end(&c);
	memmove(c.buf + cut, c.buf + next, c.len - next);
	c.len -= next - cut;
	cr_expect_eq(read_craft(&c, &v, &o), -EILSEQ);
	cr_expect(strstr(o.msg, "records lost"), "%s", o.msg);

	/* the END's digest over other bytes than those the reader sees */
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	c.buf[100] ^= 1;		/* a header byte, while the digest is taken */
	craft_end(&c);
	c.buf[100] ^= 1;		/* header checksum good again, digest not */
	cr_expect_eq(read_craft(&c, &v, &o), -EILSEQ);
	cr_expect(strstr(o.msg, "digest mismatch"), "%s", o.msg);

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	craft_data(&c, 512, craft_vol + 512, 512);
	craft_end(&c);
	{
		/* swap the END onto another stream with the same counts */
		struct craft c2;
		uint8_t end[80];

		memcpy(end, c.buf + c.len - 80, 80);
		craft_header(&c2, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
		craft_data(&c2, 512, craft_vol + 512, 512);
		craft_data(&c2, 1024, craft_vol + 1024, 512);
		craft_put(&c2, end, 80);
		cr_expect_eq(read_craft(&c2, &v, &o), -EILSEQ);
		cr_expect(strstr(o.msg, "digest mismatch"), "%s", o.msg);
	}
}

Test(bfile, writer_checks_the_header)
{
	struct bfile_header h;
	struct bfile_writer *w;
	int fd = memfd();

	test_header(&h, BFILE_COMP_ZSTD, 1 << 20, 4096, 0);
	h.type = BFILE_TYPE_FULL;		/* with a from-stamp */
	cr_expect_eq(bfile_writer_open(fd, &h, &w), -EINVAL);
	cr_expect(strstr(bfile_writer_error(w), "from-stamp"), "%s", bfile_writer_error(w));
	bfile_writer_abort(w);
	memset(&h.from, 0, sizeof(h.from));
	memset(h.id, 0, sizeof(h.id));
	cr_expect_eq(bfile_writer_open(fd, &h, &w), -EINVAL);
	bfile_writer_abort(w);
	h.id[0] = 1;
	h.block_size = 3000;
	cr_expect_eq(bfile_writer_open(fd, &h, &w), -EINVAL);
	bfile_writer_abort(w);
	h.block_size = 4096;
	h.compression = 7;
	cr_expect_eq(bfile_writer_open(fd, &h, &w), -EINVAL);
	bfile_writer_abort(w);
	h.compression = BFILE_COMP_ZSTD;
	memset(h.volume_id, 'v', sizeof(h.volume_id));
	cr_expect_eq(bfile_writer_open(fd, &h, &w), -EINVAL);
	bfile_writer_abort(w);
	h.volume_id[63] = 0;
	cr_expect_eq(bfile_writer_open(fd, &h, &w), 0);
	bfile_writer_abort(w);
	close(fd);
}

Test(bfile, header_init_and_names)
{
	struct bfile_header a, b;
	uint32_t t;

	cr_assert_eq(bfile_header_init(&a, BFILE_TYPE_FULL), 0);
	cr_assert_eq(bfile_header_init(&b, BFILE_TYPE_FULL), 0);
	cr_expect(!bfile_id_is_zero(a.id));
	cr_expect_arr_neq(a.id, b.id, 16);
	cr_expect_gt(a.ctime_ns, 1700000000ULL * 1000000000ULL);
	cr_expect_eq(a.compression, BFILE_COMP_ZSTD);
	cr_expect_str_eq(bfile_type_name(BFILE_TYPE_RESYNC), "resync");
	cr_expect_null(bfile_type_name(0));
	cr_expect_null(bfile_type_name(6));
	cr_expect_eq(bfile_type_parse("differential", &t), 0);
	cr_expect_eq(t, BFILE_TYPE_DIFFERENTIAL);
	cr_expect_eq(bfile_type_parse("weekly", &t), -EINVAL);
	cr_expect_str_eq(bfile_tag_name(BFILE_TAG_END), "END");
	cr_expect_str_eq(bfile_compression_name(BFILE_COMP_NONE), "none");
}

/* ---- the fuzz seeds ------------------------------------------------------------------ */

static const char *corpus_dir(void)
{
	const char *d = getenv("BFILE_CORPUS");

	return d ? d : "tests/fuzz/corpus/bfile";
}

static void corpus_write(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(p, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* The seeds: a few small streams, valid and not, named RESULT.what.bfile. */
static void corpus_generate(const char *dir)
{
	struct bfile_header h;
	struct bfile_writer *w;
	struct volume v;
	struct craft c;
	uint8_t *f, *g, blk[6144];
	size_t len;
	int fd;

	/* random, text (compressed), zeros, a mix; an extension record */
	fd = memfd();
	test_header(&h, BFILE_COMP_ZSTD, 12 * 512, 512, 1024);
	rng_state = 12345;
	fill_random(blk, sizeof(blk));
	fill_text(blk + 1024, 2048, 0);
	memset(blk + 3072, 0, 1536);
	fill_text(blk + 4608, 1024, 3);
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_write_extension(w, 0x54584554, BFILE_REC_SKIPPABLE, 0, "a note", 6), 0);
	cr_assert_eq(bfile_write_data(w, 0, blk, 3072), 0);
	cr_assert_eq(bfile_write_zero(w, 3072, 1024), 0);
	cr_assert_eq(bfile_write_data(w, 4096, blk + 4096, 2048), 0);
	cr_assert_eq(bfile_writer_finish(w, NULL), 0);
	f = slurp(fd, &len);
	corpus_write(dir, "ok.zstd.bfile", f, len);
	corpus_write(dir, "ENODATA.truncated.bfile", f, len - 50);
	g = malloc(len + 3);
	memcpy(g, f, len);
	g[300] ^= 4;
	corpus_write(dir, "EBADMSG.record-checksum.bfile", g, len);
	memcpy(g, f, len);
	g[40] ^= 1;
	corpus_write(dir, "EBADMSG.header-checksum.bfile", g, len);
	memcpy(g, f, len);
	memcpy(g + len, "xyz", 3);
	corpus_write(dir, "EBADMSG.trailing-data.bfile", g, len + 3);
	memcpy(g, f, len);
	g[0] = 'X';
	corpus_write(dir, "EPROTO.magic.bfile", g, len);
	free(g);
	free(f);
	close(fd);

	fd = make_backup(&v, &h, BFILE_COMP_NONE, 8, 200, 512, 2048, 0, 3, false, NULL);
	f = slurp(fd, &len);
	corpus_write(dir, "ok.uncompressed.bfile", f, len);
	free(f);
	volume_free(&v);
	close(fd);

	fd = memfd();
	test_header(&h, BFILE_COMP_ZSTD, 0, 512, 0);
	h.type = BFILE_TYPE_COPY;
	memset(&h.from, 0, sizeof(h.from));
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_writer_finish(w, NULL), 0);
	f = slurp(fd, &len);
	corpus_write(dir, "ok.empty.bfile", f, len);
	free(f);
	close(fd);

	(void)craft_volume();
	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	craft_record(&c, 0x54584554, BFILE_REC_SKIPPABLE, 5, 0, 0, "later", 5);
	craft_record(&c, BFILE_TAG_ZERO, 0, 0, 1024, 2048, NULL, 0);
	craft_end(&c);
	corpus_write(dir, "ok.skippable.bfile", c.buf, c.len);

	craft_header(&c, 2, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_end(&c);
	corpus_write(dir, "EPROTO.version.bfile", c.buf, c.len);

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_record(&c, 0x4e455758, 0, 5, 0, 0, "later", 5);
	craft_end(&c);
	corpus_write(dir, "EPROTO.unknown-tag.bfile", c.buf, c.len);

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 1024, craft_vol + 1024, 512);
	craft_data(&c, 0, craft_vol, 512);
	craft_end(&c);
	corpus_write(dir, "ERANGE.out-of-order.bfile", c.buf, c.len);

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_record(&c, BFILE_TAG_ZERO, 0, 0, 7680, 1024, NULL, 0);
	craft_end(&c);
	corpus_write(dir, "ERANGE.past-the-end.bfile", c.buf, c.len);

	craft_header(&c, 1, 0, BFILE_TYPE_INCREMENTAL, sizeof(craft_vol), 512, 1024);
	craft_data(&c, 0, craft_vol, 512);
	craft_data(&c, 512, craft_vol + 512, 512);
	c.records--;				/* END counts one record less */
	craft_end(&c);
	corpus_write(dir, "EILSEQ.end-count.bfile", c.buf, c.len);
}

static const struct {
	const char *name;
	int err;
} corpus_results[] = {
	{ "ok", 0 }, { "ENODATA", -ENODATA }, { "EBADMSG", -EBADMSG },
	{ "EPROTO", -EPROTO }, { "ERANGE", -ERANGE }, { "EILSEQ", -EILSEQ },
};

Test(bfile, corpus_seeds_read_as_named)
{
	const char *gen = getenv("BFILE_WRITE_CORPUS");
	struct bfile_header h;
	struct bfile_reader *r;
	struct bfile_record rec;
	struct dirent *de;
	unsigned int seen = 0, ok = 0;
	char path[512];
	size_t i, n;
	DIR *d;
	int fd, rc;

	if (gen)
		corpus_generate(gen);
	d = opendir(corpus_dir());
	cr_assert_not_null(d, "%s: %s (run from the top directory)", corpus_dir(),
			   strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < sizeof(corpus_results) / sizeof(corpus_results[0]); i++) {
			n = strlen(corpus_results[i].name);
			if (!strncmp(de->d_name, corpus_results[i].name, n) &&
			    de->d_name[n] == '.')
				break;
		}
		cr_assert_lt(i, sizeof(corpus_results) / sizeof(corpus_results[0]),
			     "%s: the name does not start with a result", de->d_name);
		snprintf(path, sizeof(path), "%s/%s", corpus_dir(), de->d_name);
		fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0);
		rc = bfile_reader_open(fd, &h, &r);
		while (!rc && (rc = bfile_read_record(r, &rec)) > 0)
			rc = 0;
		cr_expect_eq(rc, corpus_results[i].err, "%s: %d (%s)", de->d_name, rc,
			     bfile_reader_error(r));
		bfile_reader_free(r);
		close(fd);
		seen++;
		ok += !rc;
	}
	closedir(d);
	cr_expect_geq(seen, 10);
	cr_expect_geq(ok, 3);
}

/* An extension the caller asks for comes back with its offset and payload, in order. */
Test(bfile, extension_delivered)
{
	struct bfile_header h;
	struct bfile_writer *w;
	struct bfile_reader *r;
	struct bfile_record rec;
	struct bfile_stats st;
	char blk[1024];
	int fd = memfd(), n = 0;

	memset(blk, 7, sizeof(blk));
	test_header(&h, BFILE_COMP_ZSTD, 4096, 512, 1024);
	cr_assert_eq(bfile_writer_open(fd, &h, &w), 0);
	cr_assert_eq(bfile_write_extension(w, BFILE_TAG_FMAP, BFILE_REC_SKIPPABLE, 0, "one", 3), 0);
	cr_assert_eq(bfile_write_extension(w, 0x54584554, BFILE_REC_SKIPPABLE, 0, "skip", 4), 0);
	cr_assert_eq(bfile_write_extension(w, BFILE_TAG_FMAP, BFILE_REC_SKIPPABLE, 9, "two!", 4), 0);
	cr_assert_eq(bfile_write_data(w, 0, blk, sizeof(blk)), 0);
	cr_assert_eq(bfile_writer_finish(w, NULL), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(bfile_reader_open(fd, &h, &r), 0);
	bfile_reader_deliver(r, BFILE_TAG_FMAP);
	cr_assert_eq(bfile_read_record(r, &rec), 1);
	cr_assert(rec.tag == BFILE_TAG_FMAP && rec.offset == 0 && rec.stored_len == 3 &&
		  !memcmp(rec.data, "one", 3));
	cr_assert_eq(bfile_read_record(r, &rec), 1);
	cr_assert(rec.tag == BFILE_TAG_FMAP && rec.offset == 9 && rec.stored_len == 4 &&
		  !memcmp(rec.data, "two!", 4));
	while (bfile_read_record(r, &rec) > 0)
		n++;
	bfile_reader_stats(r, &st);
	cr_assert_eq(n, 1);
	cr_assert_eq(st.skipped, 1);
	cr_assert_eq(st.records, 4);
	bfile_reader_free(r);
	close(fd);
}

/* A bfile_write_fn into a memfd, failing with -EIO once @fail_at bytes went. */
struct sink {
	int fd;
	uint64_t bytes, fail_at;
	unsigned int calls;
};

static int sink_write(void *data, const void *buf, size_t len)
{
	struct sink *s = data;

	s->calls++;
	if (s->bytes + len > s->fail_at)
		return -EIO;
	cr_assert_eq(write(s->fd, buf, len), (ssize_t)len);
	s->bytes += len;
	return 0;
}

/*
 * Through a write function the stream is byte for byte the one written to
 * an fd (a repository's file on another store); its error sticks, as an
 * fd's does.
 */
Test(bfile, a_write_function_gets_the_same_stream)
{
	struct sink s = { .fd = memfd(), .fail_at = UINT64_MAX };
	struct bfile_writer *w;
	struct bfile_header h;
	struct bfile_stats st;
	struct volume v, v2;
	size_t la, lb;
	uint8_t *a, *b;
	int fd;

	fd = make_backup(&v, &h, BFILE_COMP_ZSTD, 600, 100, 4096, 0, 64, 50, true, &st);
	make_volume(&v2, 600, 100, 4096, 0x9e3779b97f4a7c15ULL + BFILE_COMP_ZSTD + 600);
	cr_assert_eq(bfile_writer_open_fn(sink_write, &s, &h, &w), 0, "%s", bfile_writer_error(w));
	cr_assert_eq(bfile_write_extension(w, 0x54584554, BFILE_REC_SKIPPABLE, 0, "a note", 6), 0);
	write_volume(w, &v2, 64, 50);
	cr_assert_eq(bfile_writer_finish(w, &st), 0);
	cr_expect_gt(s.calls, 1, "written in pieces, not per call");
	a = slurp(fd, &la);
	b = slurp(s.fd, &lb);
	cr_assert_eq(la, lb);
	cr_expect(!memcmp(a, b, la), "another stream through the function");
	free(a);
	free(b);
	close(s.fd);

	s = (struct sink){ .fd = memfd(), .fail_at = 100000 };
	cr_assert_eq(bfile_writer_open_fn(sink_write, &s, &h, &w), 0);
	rng_state = 1;
	cr_expect_eq(bfile_write_data(w, 0, v.vol, 256 * 4096), -EIO);
	cr_expect(strstr(bfile_writer_error(w), "Input/output error"), "%s",
		  bfile_writer_error(w));
	cr_expect_eq(bfile_write_zero(w, 256 * 4096, 4096), -EIO, "the error sticks");
	bfile_writer_abort(w);
	close(s.fd);
	close(fd);
	volume_free(&v);
	volume_free(&v2);
}
