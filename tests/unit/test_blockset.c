// SPDX-License-Identifier: GPL-2.0
/*
 * lib/format/blockset.c against a plain bool-array model: random unions,
 * differences and ranges (seeded), extents, READ_EXTENTS conversion, and
 * the serialized form: round trip, every single-bit flip and every
 * truncation refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <linux/blktrack.h>

#include "format/blockset.h"

/* A window of the model: block base + i for i < MODEL_N (crosses 65536). */
#define MODEL_N 140000

struct model {
	uint64_t base;
	bool *bit;
};

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	/* xorshift64*: independent of libc, same numbers on every host. */
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * UINT64_C(2685821657736338717);
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

/* Add a random range (short, long, or a container-sized one) to both. */
static void random_range(struct blockset *s, struct model *m)
{
	uint64_t first = rnd_below(MODEL_N), count, i;

	switch (rnd_below(4)) {
	case 0:
		count = 1;
		break;
	case 1:
		count = 1 + rnd_below(40);
		break;
	case 2:
		count = 1 + rnd_below(5000);
		break;
	default:
		count = 1 + rnd_below(70000);
		break;
	}
	if (count > MODEL_N - first)
		count = MODEL_N - first;
	cr_assert_eq(blockset_add_range(s, m->base + first, count), 0);
	for (i = first; i < first + count; i++)
		m->bit[i] = true;
}

static void random_set(struct blockset **s, struct model *m, uint64_t base)
{
	int k = rnd_below(30);

	cr_assert_eq(blockset_new(s), 0);
	m->base = base;
	m->bit = calloc(MODEL_N, sizeof(bool));
	cr_assert(m->bit);
	while (k--)
		random_range(*s, m);
}

struct walk {
	const struct model *m;
	uint64_t next;		/* model index the next run may start at */
	uint64_t seen;
};

/* Each run must be all set in the model, with a clear block either side. */
static int check_run(void *data, uint64_t first, uint64_t count)
{
	struct walk *w = data;
	uint64_t i, f;

	cr_assert_geq(first, w->m->base);
	f = first - w->m->base;
	cr_assert_geq(f, w->next, "runs out of order or touching");
	cr_assert_leq(f + count, MODEL_N);
	for (i = w->next; i < f; i++)
		cr_assert(!w->m->bit[i], "block %lu set but not reported", (unsigned long)i);
	for (i = f; i < f + count; i++)
		cr_assert(w->m->bit[i], "block %lu reported but not set", (unsigned long)i);
	if (f + count < MODEL_N)
		cr_assert(!w->m->bit[f + count], "run not maximal");
	w->next = f + count + 1;
	w->seen += count;
	return 0;
}

static void check_equal(const struct blockset *s, const struct model *m)
{
	struct walk w = { .m = m };
	uint64_t i, card = 0;

	for (i = 0; i < MODEL_N; i++)
		card += m->bit[i];
	cr_assert_eq(blockset_cardinality(s), card);
	cr_assert_eq(blockset_for_each_extent(s, check_run, &w), 0);
	for (i = w.next; i < MODEL_N; i++)
		cr_assert(!m->bit[i]);
	cr_assert_eq(w.seen, card);
	for (i = 0; i < 200; i++) {
		uint64_t b = rnd_below(MODEL_N);

		cr_assert_eq(blockset_contains(s, m->base + b), m->bit[b]);
	}
}

static void random_algebra(uint64_t seed, uint64_t base)
{
	struct blockset *a, *b;
	struct model ma, mb;
	int round, i;

	rnd_state = seed;
	random_set(&a, &ma, base);
	check_equal(a, &ma);
	for (round = 0; round < 30; round++) {
		random_set(&b, &mb, base);
		switch (rnd_below(3)) {
		case 0:
			cr_assert_eq(blockset_or(a, b), 0);
			for (i = 0; i < MODEL_N; i++)
				ma.bit[i] |= mb.bit[i];
			break;
		case 1:
			cr_assert_eq(blockset_andnot(a, b), 0);
			for (i = 0; i < MODEL_N; i++)
				ma.bit[i] &= !mb.bit[i];
			break;
		default:
			random_range(a, &ma);
			break;
		}
		check_equal(a, &ma);
		check_equal(b, &mb);
		blockset_free(b);
		free(mb.bit);
	}
	blockset_free(a);
	free(ma.bit);
}

Test(blockset, algebra_vs_model_low, .timeout = 30)
{
	uint64_t seed;

	for (seed = 1; seed <= 4; seed++)
		random_algebra(seed * 0x9e3779b97f4a7c15, 0);
}

Test(blockset, algebra_vs_model_at_the_limit, .timeout = 30)
{
	random_algebra(77, BLOCKSET_MAX_BLOCKS - MODEL_N);
}

Test(blockset, copy_equal_and_limit)
{
	struct blockset *s, *c;

	cr_assert_eq(blockset_new(&s), 0);
	cr_expect_eq(blockset_add_range(s, 5, 0), 0);
	cr_expect_eq(blockset_cardinality(s), 0);
	cr_expect_eq(blockset_add_range(s, BLOCKSET_MAX_BLOCKS - 1, 1), 0);
	cr_expect_eq(blockset_add_range(s, BLOCKSET_MAX_BLOCKS - 1, 2), -EFBIG);
	cr_expect_eq(blockset_add_range(s, BLOCKSET_MAX_BLOCKS, 1), -EFBIG);
	cr_expect_eq(blockset_add_range(s, 1, UINT64_MAX), -EFBIG);
	cr_expect_eq(blockset_cardinality(s), 1);
	cr_expect(!blockset_contains(s, BLOCKSET_MAX_BLOCKS));
	cr_assert_eq(blockset_copy(s, &c), 0);
	cr_expect(blockset_equal(s, c));
	cr_assert_eq(blockset_add_range(c, 0, 1), 0);
	cr_expect(!blockset_equal(s, c));
	cr_expect_eq(blockset_cardinality(s), 1, "the copy is independent");
	blockset_free(s);
	blockset_free(c);
	blockset_free(NULL);
}

Test(blockset, extents_array)
{
	struct blockset *s;
	uint64_t *f, *c;
	size_t n;

	cr_assert_eq(blockset_new(&s), 0);
	cr_assert_eq(blockset_extents(s, &f, &c, &n), 0);
	cr_expect_eq(n, 0);
	free(f);
	free(c);
	blockset_add_range(s, 10, 5);
	blockset_add_range(s, 15, 1);		/* touches: one run */
	blockset_add_range(s, 65535, 2);	/* across containers: one run */
	blockset_add_range(s, 100, 1);
	cr_assert_eq(blockset_extents(s, &f, &c, &n), 0);
	cr_assert_eq(n, 3);
	cr_expect_eq(f[0], 10);
	cr_expect_eq(c[0], 6);
	cr_expect_eq(f[1], 100);
	cr_expect_eq(c[1], 1);
	cr_expect_eq(f[2], 65535);
	cr_expect_eq(c[2], 2);
	free(f);
	free(c);
	blockset_free(s);
}

static int stop_at_second(void *data, uint64_t first, uint64_t count)
{
	int *calls = data;

	return ++*calls == 2 ? -EINTR : 0;
}

Test(blockset, walk_stops_on_error)
{
	struct blockset *s;
	int calls = 0;

	cr_assert_eq(blockset_new(&s), 0);
	blockset_add_range(s, 1, 1);
	blockset_add_range(s, 3, 1);
	blockset_add_range(s, 5, 1);
	cr_expect_eq(blockset_for_each_extent(s, stop_at_second, &calls), -EINTR);
	cr_expect_eq(calls, 2);
	blockset_free(s);
}

/* Byte extents -> blocks, against a per-block overlap test. */
Test(blockset, from_extents_vs_model, .timeout = 30)
{
	static const uint32_t sizes[] = { 512, 4096, 3000, 1 };
	struct blktrack_extent ext[40];
	unsigned int k, round;
	const uint64_t bytes = 1 << 22;

	rnd_state = 12345;
	for (round = 0; round < 40; round++) {
		uint32_t bs = sizes[round % 4];
		uint64_t nb = (bytes + bs - 1) / bs, b, i;
		size_t n = rnd_below(40);
		struct blockset *s;
		bool *want = calloc(nb, sizeof(bool));

		for (k = 0; k < n; k++) {
			ext[k].offset = rnd_below(bytes);
			ext[k].length = rnd_below(4) ? rnd_below(3 * bs) : rnd_below(bytes);
			if (ext[k].length > bytes - ext[k].offset)
				ext[k].length = bytes - ext[k].offset;
		}
		for (b = 0; b < nb; b++)
			for (k = 0; k < n; k++)
				if (ext[k].length && b * bs < ext[k].offset + ext[k].length &&
				    ext[k].offset < (b + 1) * bs)
					want[b] = true;
		cr_assert_eq(blockset_from_extents(ext, n, bs, &s), 0);
		for (b = i = 0; b < nb; b++) {
			cr_assert_eq(blockset_contains(s, b), want[b], "bs %u block %lu",
				     bs, (unsigned long)b);
			i += want[b];
		}
		cr_assert_eq(blockset_cardinality(s), i);
		blockset_free(s);
		free(want);
	}
}

Test(blockset, from_extents_rejects)
{
	struct blktrack_extent wrap = { UINT64_MAX - 10, 20 };
	struct blktrack_extent far = { (BLOCKSET_MAX_BLOCKS) * 512, 512 };
	struct blockset *s;

	cr_expect_eq(blockset_from_extents(&wrap, 1, 4096, &s), -EINVAL);
	cr_expect_eq(blockset_from_extents(&wrap, 0, 0, &s), -EINVAL);
	cr_expect_eq(blockset_from_extents(&far, 1, 512, &s), -EFBIG);
	cr_assert_eq(blockset_from_extents(&far, 1, 4096, &s), 0);
	cr_expect_eq(blockset_cardinality(s), 1);
	cr_expect(blockset_contains(s, BLOCKSET_MAX_BLOCKS / 8));
	blockset_free(s);
}

/* ---- serialization ------------------------------------------------------ */

/* Array, bitmap and run containers, and blocks near the limit. */
static struct blockset *mixed_set(void)
{
	struct blockset *s;
	uint64_t i;

	cr_assert_eq(blockset_new(&s), 0);
	for (i = 0; i < 50; i++)
		blockset_add_range(s, i * 7, 1);		/* array */
	for (i = 0; i < 5000; i++)
		blockset_add_range(s, 65536 + i * 3, 1);	/* bitmap */
	blockset_add_range(s, 3 * 65536, 100000);		/* runs */
	blockset_add_range(s, BLOCKSET_MAX_BLOCKS - 3, 3);
	return s;
}

Test(blockset, serialize_round_trip, .timeout = 30)
{
	struct blockset *s, *t;
	struct model m;
	size_t len;
	void *buf;
	int k;

	s = mixed_set();
	cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
	cr_assert_eq(blockset_deserialize(buf, len, &t), 0);
	cr_expect(blockset_equal(s, t));
	cr_expect_eq(blockset_cardinality(t), 50 + 5000 + 100000 + 3);
	blockset_free(t);
	blockset_free(s);
	free(buf);

	rnd_state = 99;
	for (k = 0; k < 10; k++) {
		random_set(&s, &m, k & 1 ? 0 : BLOCKSET_MAX_BLOCKS - MODEL_N);
		cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
		cr_assert_eq(blockset_deserialize(buf, len, &t), 0);
		check_equal(t, &m);
		blockset_free(t);
		blockset_free(s);
		free(m.bit);
		free(buf);
	}
	/* the empty set */
	cr_assert_eq(blockset_new(&s), 0);
	cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
	cr_assert_eq(blockset_deserialize(buf, len, &t), 0);
	cr_expect_eq(blockset_cardinality(t), 0);
	blockset_free(t);
	blockset_free(s);
	free(buf);
}

Test(blockset, serialized_layout)
{
	struct blockset *s;
	uint8_t *p;
	size_t len;
	void *buf;

	cr_assert_eq(blockset_new(&s), 0);
	blockset_add_range(s, 1000, 24);
	cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
	p = buf;
	cr_expect_eq(memcmp(p, "BTBS", 4), 0);
	cr_expect_eq(p[4] | p[5] << 8, 1);
	cr_expect_eq(p[6] | p[7], 0);
	cr_expect_eq(p[8] + (p[9] << 8), len - 32);
	cr_expect_eq(p[16], 24);
	blockset_free(s);
	free(buf);
}

Test(blockset, every_bit_flip_is_refused, .timeout = 60)
{
	struct blockset *s = mixed_set(), *t;
	uint8_t *p;
	size_t len, i;
	void *buf;
	int bit, ret;

	cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
	p = buf;
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			p[i] ^= 1 << bit;
			ret = blockset_deserialize(p, len, &t);
			cr_assert(ret == -EBADMSG, "flip of byte %zu bit %d: %d", i, bit, ret);
			p[i] ^= 1 << bit;
		}
	}
	cr_assert_eq(blockset_deserialize(p, len, &t), 0);
	cr_expect(blockset_equal(s, t));
	blockset_free(t);
	blockset_free(s);
	free(buf);
}

Test(blockset, every_truncation_and_extension_is_refused, .timeout = 30)
{
	struct blockset *s = mixed_set(), *t;
	uint8_t *big;
	size_t len, i;
	void *buf;

	cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
	for (i = 0; i < len; i++)
		cr_assert_eq(blockset_deserialize(buf, i, &t), -EBADMSG, "length %zu", i);
	big = malloc(len + 1);
	memcpy(big, buf, len);
	big[len] = 0;
	cr_expect_eq(blockset_deserialize(big, len + 1, &t), -EBADMSG);
	free(big);
	blockset_free(s);
	free(buf);
}

#include <xxhash.h>

Test(blockset, unknown_version_is_not_corruption)
{
	struct blockset *s, *t;
	uint8_t *p;
	uint64_t h;
	size_t len;
	void *buf;

	cr_assert_eq(blockset_new(&s), 0);
	blockset_add_range(s, 1, 1);
	cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
	p = buf;
	p[4] = 2;	/* version 2, correctly checksummed */
	h = htole64(XXH3_64bits(p, len - 8));
	memcpy(p + len - 8, &h, 8);
	cr_expect_eq(blockset_deserialize(p, len, &t), -EPROTONOSUPPORT);
	blockset_free(s);
	free(buf);
}

/* 1 to 6 containers of one block each: every size of the container table. */
Test(blockset, few_small_containers_round_trip)
{
	struct blockset *s, *t;
	size_t len;
	void *buf;
	int n, i;

	for (n = 1; n <= 6; n++) {
		cr_assert_eq(blockset_new(&s), 0);
		for (i = 0; i < n; i++)
			cr_assert_eq(blockset_add_range(s, (uint64_t)i * 65536 + 1, 1), 0);
		cr_assert_eq(blockset_serialize(s, &buf, &len), 0);
		cr_assert_eq(blockset_deserialize(buf, len, &t), 0, "%d containers", n);
		cr_expect(blockset_equal(s, t));
		blockset_free(t);
		blockset_free(s);
		free(buf);
	}
}
