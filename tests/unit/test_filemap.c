// SPDX-License-Identifier: GPL-2.0
/*
 * lib/format/filemap.c against a model of a filesystem: a volume of 4 KiB
 * units each holding a value, a file as a list of units (a hole, an
 * unwritten unit, or a volume unit). Between two maps the model writes
 * units, copies a range elsewhere (defragmentation), shares another file's
 * units (a reflink), punches holes, preallocates, writes into unwritten
 * units and changes the size; every file block filemap_changed() leaves out
 * must hold the same bytes at both points. Then the FMAP records: a round
 * trip, and every missing, repeated or damaged record refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>

#include "format/blockset.h"
#include "format/filemap.h"

#define UNIT		4096U
#define VOL_UNITS	2048
#define FILE_UNITS	192
#define HOLE		-1

struct fsmodel {
	uint64_t value[VOL_UNITS];	/* what each volume unit holds */
	int unit[FILE_UNITS];		/* the file: a volume unit, or HOLE */
	bool unw[FILE_UNITS];		/* allocated, unwritten */
	size_t size;			/* file bytes */
};

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * UINT64_C(2685821657736338717);
}

/* A volume unit the file does not use (free, or another file's). */
static int free_unit(const struct fsmodel *fs)
{
	for (;;) {
		int u = (int)(rnd() % VOL_UNITS);
		size_t i = 0;

		while (i < FILE_UNITS && fs->unit[i] != u)
			i++;
		if (i == FILE_UNITS)
			return u;
	}
}

/* The bytes of file unit @i as a number: 0 for a hole, an unwritten unit or past the end. */
static uint64_t content(const struct fsmodel *fs, size_t i)
{
	if (i * UNIT >= fs->size || fs->unit[i] < 0 || fs->unw[i])
		return 0;
	return fs->value[fs->unit[i]];
}

/* The model's file as FIEMAP would give it: runs of contiguous units. */
static void to_map(const struct fsmodel *fs, struct filemap *m)
{
	filemap_init(m);
	m->size = fs->size;
	m->ino = 12;
	m->generation = 34;
	for (size_t i = 0; i < FILE_UNITS; i++) {
		struct fext *last = m->n ? &m->ext[m->n - 1] : NULL;
		uint32_t fl = fs->unw[i] ? FILEMAP_UNWRITTEN : 0;

		if (fs->unit[i] < 0)
			continue;
		if (last && last->logical + last->length == i * UNIT && last->flags == fl &&
		    last->physical + last->length == (uint64_t)fs->unit[i] * UNIT)
			last->length += UNIT;
		else
			cr_assert_eq(filemap_add(m, i * UNIT, (uint64_t)fs->unit[i] * UNIT, UNIT,
						 fl), 0);
	}
}

static void vol_write(struct fsmodel *fs, int u, struct blockset *delta, uint32_t bs)
{
	fs->value[u] = rnd() | 1;
	cr_assert_eq(blockset_add_range(delta, (uint64_t)u * UNIT / bs, 1), 0);
}

/* One random change of the file or the volume under it. */
static void change(struct fsmodel *fs, struct blockset *delta, uint32_t bs)
{
	size_t i = rnd() % FILE_UNITS, n = 1 + rnd() % 8, k;

	switch (rnd() % 7) {
	case 0:		/* a write anywhere on the volume */
		vol_write(fs, (int)(rnd() % VOL_UNITS), delta, bs);
		break;
	case 1:		/* a write into the file: allocate a hole, fill an unwritten unit */
		if (fs->unit[i] < 0)
			fs->unit[i] = free_unit(fs);
		fs->unw[i] = false;
		vol_write(fs, fs->unit[i], delta, bs);
		break;
	case 2:		/* defragmentation: units copied elsewhere, the old ones freed */
		for (k = i; k < i + n && k < FILE_UNITS; k++) {
			int to = free_unit(fs);

			if (fs->unit[k] < 0)
				continue;
			fs->value[to] = fs->value[fs->unit[k]];
			cr_assert_eq(blockset_add_range(delta, (uint64_t)to * UNIT / bs, 1), 0);
			fs->unit[k] = to;
		}
		break;
	case 3:		/* a reflink of another file's units: no write at all */
		for (k = i; k < i + n && k < FILE_UNITS; k++) {
			fs->unit[k] = free_unit(fs);
			fs->unw[k] = false;
		}
		break;
	case 4:		/* punch a hole */
		for (k = i; k < i + n && k < FILE_UNITS; k++)
			fs->unit[k] = HOLE;
		break;
	case 5:		/* preallocate (unwritten) */
		for (k = i; k < i + n && k < FILE_UNITS; k++)
			if (fs->unit[k] < 0) {
				fs->unit[k] = free_unit(fs);
				fs->unw[k] = true;
			}
		break;
	case 6:		/* truncate or extend */
		fs->size = rnd() % (FILE_UNITS * UNIT + 1);
		for (k = (fs->size + UNIT - 1) / UNIT; k < FILE_UNITS; k++)
			fs->unit[k] = HOLE;
		break;
	}
}

static void check_rounds(uint32_t bs, unsigned int rounds, unsigned int changes)
{
	struct fsmodel fs = { .size = FILE_UNITS * UNIT - 1000 };

	rnd_state = 0x5eed0000 + bs;
	for (size_t i = 0; i < FILE_UNITS; i++) {
		fs.unit[i] = free_unit(&fs);
		fs.value[fs.unit[i]] = rnd() | 1;
	}
	for (unsigned int r = 0; r < rounds; r++) {
		uint64_t before[FILE_UNITS];
		struct filemap prev, now;
		struct blockset *delta, *changed;
		size_t prev_size = fs.size;

		for (size_t i = 0; i < FILE_UNITS; i++)
			before[i] = content(&fs, i);
		to_map(&fs, &prev);
		cr_assert_eq(blockset_new(&delta), 0);
		for (unsigned int c = 0; c < 1 + r % changes; c++)
			change(&fs, delta, bs);
		to_map(&fs, &now);
		cr_assert_eq(filemap_changed(&now, &prev, delta, bs, &changed), 0);
		for (size_t i = 0; i * UNIT < fs.size; i++) {
			uint64_t b = i * UNIT / bs;

			if (blockset_contains(changed, b))
				continue;
			cr_assert_eq(content(&fs, i), before[i], "round %u: file unit %zu "
				     "(block %llu) changed but is not in the set", r, i,
				     (unsigned long long)b);
			cr_assert(i * UNIT + UNIT <= prev_size || (i + 1) * UNIT > fs.size ||
				  prev_size == fs.size, "round %u: unit %zu past the old size "
				  "is not in the set", r, i);
		}
		filemap_free(&prev);
		filemap_free(&now);
		blockset_free(delta);
		blockset_free(changed);
	}
}

Test(filemap, every_changed_block_is_in_the_set_4k, .timeout = 30)
{
	check_rounds(4096, 3000, 6);
}

Test(filemap, every_changed_block_is_in_the_set_16k, .timeout = 30)
{
	check_rounds(16384, 3000, 6);
}

/* Exact sets for changes the test names: nothing more is reported either. */
Test(filemap, exact_sets)
{
	struct filemap a, b;
	struct blockset *delta, *out;

	filemap_init(&a);
	a.size = 10 * UNIT;
	cr_assert_eq(filemap_add(&a, 0, 100 * UNIT, 4 * UNIT, 0), 0);
	cr_assert_eq(filemap_add(&a, 6 * UNIT, 200 * UNIT, 4 * UNIT, 0), 0);
	cr_assert_eq(blockset_new(&delta), 0);

	/* Writes outside the file, same map: nothing. */
	cr_assert_eq(blockset_add_range(delta, 50, 20), 0);
	cr_assert_eq(filemap_changed(&a, &a, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 0);
	blockset_free(out);

	/* Volume blocks 101 and 203: file blocks 1 and 9. */
	cr_assert_eq(blockset_add_range(delta, 101, 1), 0);
	cr_assert_eq(blockset_add_range(delta, 203, 1), 0);
	cr_assert_eq(filemap_changed(&a, &a, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 2);
	cr_assert(blockset_contains(out, 1) && blockset_contains(out, 9));
	blockset_free(out);
	blockset_free(delta);
	cr_assert_eq(blockset_new(&delta), 0);

	/* The second extent moved by one unit, the hole filled unwritten: 4..9. */
	filemap_init(&b);
	b.size = a.size;
	cr_assert_eq(filemap_add(&b, 0, 100 * UNIT, 4 * UNIT, 0), 0);
	cr_assert_eq(filemap_add(&b, 4 * UNIT, 300 * UNIT, 2 * UNIT, FILEMAP_UNWRITTEN), 0);
	cr_assert_eq(filemap_add(&b, 6 * UNIT, 201 * UNIT, 4 * UNIT, 0), 0);
	cr_assert_eq(filemap_changed(&b, &a, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 6);
	cr_assert(blockset_contains(out, 4) && blockset_contains(out, 9));
	cr_assert(!blockset_contains(out, 3));
	blockset_free(out);

	/* Another inode, or no previous map: the whole file. */
	b.ino = 1;
	cr_assert_eq(filemap_changed(&b, &a, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 10);
	blockset_free(out);
	cr_assert_eq(filemap_changed(&a, NULL, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 10);
	blockset_free(out);
	/* An untrusted map: the whole file too. */
	b.ino = a.ino;
	b.trusted = false;
	cr_assert_eq(filemap_changed(&b, &a, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 10);
	blockset_free(out);

	/* The volume blocks of file blocks 3 and 6: 103 and 200 (holes and unwritten: none). */
	b.trusted = true;
	cr_assert_eq(blockset_add_range(delta, 3, 4), 0);
	cr_assert_eq(filemap_volume_blocks(&b, delta, UNIT, &out), 0);
	cr_assert_eq(blockset_cardinality(out), 2);
	cr_assert(blockset_contains(out, 103) && blockset_contains(out, 201));
	blockset_free(out);
	blockset_free(delta);
	filemap_free(&a);
	filemap_free(&b);
}

Test(filemap, piece)
{
	struct filemap m;
	uint64_t phys, len;

	filemap_init(&m);
	m.size = 20 * UNIT;
	cr_assert_eq(filemap_add(&m, 2 * UNIT, 100 * UNIT, 4 * UNIT, 0), 0);
	cr_assert_eq(filemap_add(&m, 6 * UNIT, 50 * UNIT, 2 * UNIT, FILEMAP_UNWRITTEN), 0);
	filemap_piece(&m, 0, 1 << 20, &phys, &len);
	cr_assert(phys == UINT64_MAX && len == 2 * UNIT);
	filemap_piece(&m, 3 * UNIT + 5, 1 << 20, &phys, &len);
	cr_assert(phys == 101 * UNIT + 5 && len == 3 * UNIT - 5);
	filemap_piece(&m, 3 * UNIT, 100, &phys, &len);
	cr_assert(phys == 101 * UNIT && len == 100);
	filemap_piece(&m, 7 * UNIT, 1 << 20, &phys, &len);
	cr_assert(phys == UINT64_MAX && len == UNIT);
	filemap_piece(&m, 9 * UNIT, 1 << 20, &phys, &len);
	cr_assert(phys == UINT64_MAX && len == 1 << 20);
	cr_assert_eq(filemap_add(&m, 7 * UNIT, 0, UNIT, 0), -EINVAL);	/* overlaps */
	cr_assert_eq(filemap_add(&m, 9 * UNIT, 0, 0, 0), -EINVAL);	/* empty */
	cr_assert_eq(filemap_add(&m, 9 * UNIT, 0, UNIT, 0x80), -EINVAL);/* unknown flag */
	filemap_free(&m);
}

/* A map of @n extents in records of @cap bytes, read back. */
static size_t encode_all(const struct filemap *m, size_t cap, uint8_t **rec, size_t *len,
			 uint64_t *first)
{
	uint64_t next = 0;
	size_t k = 0;
	int more;

	do {
		rec[k] = malloc(cap);
		first[k] = next;
		more = filemap_encode(m, &next, rec[k], cap, &len[k]);
		cr_assert(more >= 0);
		k++;
	} while (more);
	return k;
}

Test(filemap, records_round_trip_and_damage)
{
	uint8_t *rec[64];
	size_t len[64], nrec;
	uint64_t first[64];
	struct filemap m, d;

	filemap_init(&m);
	m.size = UINT64_C(1) << 40;
	m.ino = 77;
	m.generation = 99;
	m.trusted = false;
	for (uint64_t i = 0; i < 1000; i++)
		cr_assert_eq(filemap_add(&m, i * 3 * UNIT, (5000 - i) * UNIT, 2 * UNIT,
					 i % 3 ? 0 : FILEMAP_UNWRITTEN), 0);
	nrec = encode_all(&m, 4096, rec, len, first);
	cr_assert_gt(nrec, 5);

	filemap_init(&d);
	for (size_t k = 0; k < nrec; k++)
		cr_assert_eq(filemap_decode(&d, first[k], rec[k], len[k]), 0);
	cr_assert_eq(filemap_decoded(&d), 0);
	cr_assert(d.size == m.size && d.ino == 77 && d.generation == 99 && !d.trusted);
	cr_assert_eq(d.n, m.n);
	cr_assert_eq(memcmp(d.ext, m.ext, m.n * sizeof(*m.ext)), 0);
	filemap_free(&d);

	/* A record missing at the end, in the middle, repeated, or first missing. */
	filemap_init(&d);
	for (size_t k = 0; k + 1 < nrec; k++)
		cr_assert_eq(filemap_decode(&d, first[k], rec[k], len[k]), 0);
	cr_assert_eq(filemap_decoded(&d), -EBADMSG);
	filemap_free(&d);
	filemap_init(&d);
	cr_assert_eq(filemap_decode(&d, first[0], rec[0], len[0]), 0);
	cr_assert_eq(filemap_decode(&d, first[2], rec[2], len[2]), -EBADMSG);
	cr_assert_eq(filemap_decode(&d, first[0], rec[0], len[0]), -EBADMSG);
	filemap_free(&d);
	filemap_init(&d);
	cr_assert_eq(filemap_decode(&d, first[1], rec[1], len[1]), -EBADMSG);
	filemap_free(&d);

	/* A truncated record, an unknown flag, a reserved field set, extents out of order. */
	filemap_init(&d);
	cr_assert_eq(filemap_decode(&d, 0, rec[0], len[0] - 1), -EBADMSG);
	filemap_free(&d);
	rec[0][24] |= 2;
	filemap_init(&d);
	cr_assert_eq(filemap_decode(&d, 0, rec[0], len[0]), -EBADMSG);
	filemap_free(&d);
	rec[0][24] &= ~2;
	rec[0][FILEMAP_HEADER_LEN + 28] = 1;
	filemap_init(&d);
	cr_assert_eq(filemap_decode(&d, 0, rec[0], len[0]), -EBADMSG);
	filemap_free(&d);
	rec[0][FILEMAP_HEADER_LEN + 28] = 0;
	memcpy(rec[0] + FILEMAP_HEADER_LEN + FILEMAP_EXTENT_LEN, rec[0] + FILEMAP_HEADER_LEN, 8);
	filemap_init(&d);
	cr_assert_eq(filemap_decode(&d, 0, rec[0], len[0]), -EBADMSG);
	filemap_free(&d);
	for (size_t k = 0; k < nrec; k++)
		free(rec[k]);
	filemap_free(&m);
}
