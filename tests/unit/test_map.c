// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the dirty-block map (kmod/btmap.c, built for userspace).
 *
 * Every check compares the map against an expectation the test computes on
 * its own: a plain bool array of the blocks it marked. A region may read
 * back as wholly dirty when it went FULL (no leaf, limit, coarsening); it may
 * never lose a block, and never be dirty where nothing was marked.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "btmap.h"

#define R	((u64)BTMAP_REGION_BLOCKS)
#define LEAF	((u64)BTMAP_LEAF_BYTES)

static void setup(void)
{
	rcu_register_thread();
	btmap_fail_leaf_alloc = 0;
}

static void teardown(void)
{
	rcu_unregister_thread();
}

TestSuite(map, .init = setup, .fini = teardown);

/* ---- Helpers ------------------------------------------------------------- */

static u64 rnd_state;

static u64 rnd(void)
{
	/* xorshift64*: reproducible from the seed printed on failure. */
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

static u64 rnd_below(u64 n)
{
	return n ? rnd() % n : 0;
}

static void ref_mark(bool *ref, u64 nr, u64 first, u64 count)
{
	u64 i;

	for (i = first; i < nr && i - first < count; i++)
		ref[i] = true;
}

static u64 ref_count(const bool *ref, u64 from, u64 to)
{
	u64 i, n = 0;

	for (i = from; i < to; i++)
		n += ref[i];
	return n;
}

static u64 region_end(u64 nr, u64 r)
{
	return (r + 1) * R < nr ? (r + 1) * R : nr;
}

static u64 nr_regions(u64 nr)
{
	return (nr + R - 1) / R;
}

/*
 * Read the map through btmap_next_extent() into @out, checking that the
 * extents are nonempty, inside the map, sorted and merged (never adjacent).
 * Returns the number of extents.
 */
static u64 read_map(struct btmap *map, bool *out)
{
	u64 nr = btmap_nr_blocks(map), pos = 0, start, len, n = 0, prev_end = 0;

	memset(out, 0, nr);
	while (btmap_next_extent(map, &pos, &start, &len)) {
		cr_assert_gt(len, 0);
		cr_assert_leq(start + len, nr, "extent %llu+%llu past %llu",
			      (unsigned long long)start, (unsigned long long)len,
			      (unsigned long long)nr);
		if (n)
			cr_assert_gt(start, prev_end, "extents not merged/sorted at %llu",
				     (unsigned long long)start);
		cr_assert_eq(pos, start + len);
		memset(out + start, 1, len);
		prev_end = start + len;
		n++;
	}
	return n;
}

/* The map holds exactly @ref. */
static void expect_exact(struct btmap *map, const bool *ref)
{
	u64 nr = btmap_nr_blocks(map), i;
	bool *got = malloc(nr);

	read_map(map, got);
	for (i = 0; i < nr; i++)
		cr_assert_eq(got[i], ref[i], "block %llu: map %d, expected %d",
			     (unsigned long long)i, got[i], ref[i]);
	cr_assert_eq(btmap_dirty(map), ref_count(ref, 0, nr));
	free(got);
}

/*
 * The map covers @ref; each region is either exactly @ref or wholly dirty
 * while @ref has a block in it. Returns the number of partial regions (those
 * that must be leaves) in *@partial and of nonclean regions in *@nonclean.
 */
static void expect_cover(struct btmap *map, const bool *ref, u64 *partial, u64 *nonclean)
{
	u64 nr = btmap_nr_blocks(map), r, i, dirty = 0;
	bool *got = malloc(nr);

	*partial = *nonclean = 0;
	read_map(map, got);
	for (r = 0; r < nr_regions(nr); r++) {
		u64 lo = r * R, hi = region_end(nr, r);
		u64 want = ref_count(ref, lo, hi), have = ref_count(got, lo, hi);
		bool same = true;

		for (i = lo; i < hi; i++) {
			cr_assert(!ref[i] || got[i], "dirty block %llu lost",
				  (unsigned long long)i);
			if (got[i] != ref[i])
				same = false;
		}
		if (!same) {
			cr_assert_eq(have, hi - lo, "region %llu neither exact nor full",
				     (unsigned long long)r);
			cr_assert_gt(want, 0, "region %llu full with nothing marked",
				     (unsigned long long)r);
		}
		dirty += have;
		if (have)
			(*nonclean)++;
		if (have && have < hi - lo)
			(*partial)++;
	}
	cr_assert_eq(btmap_dirty(map), dirty);
	free(got);
}

/* Bytes of leaves the map holds, from btmap_bytes() less an empty map's. */
static u64 leaf_bytes(struct btmap *map)
{
	struct btmap *empty = btmap_create(btmap_nr_blocks(map), 0);
	u64 base = btmap_bytes(empty), b = btmap_bytes(map);

	btmap_destroy(empty);
	cr_assert_geq(b, base);
	return b - base;
}

static u64 pow2_ceil(u64 x)
{
	u64 p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

/*
 * Most blocks a hash leaf takes: the biggest table is half a bitmap (2048
 * bytes), a 20-byte header and a 2-byte end mark leave 1013 cells, 13/16 of
 * which may be used.
 */
#define HASH_MAX_BLOCKS	((LEAF / 2 - 20 - 2) / 2 * 13 / 16)

/*
 * What a leaf holding @c dirty blocks may cost. A sparse leaf is a hash
 * table of 2-byte cells after a small header (at most 34 bytes with its end
 * mark), sized in powers of two from 64 bytes and never more than 13/16
 * full; past HASH_MAX_BLOCKS a 4 KiB bitmap, however the blocks came (one
 * big mark makes it at once). Neither ever costs more than the bitmap: a
 * flat bitmap's share of the region.
 */
static u64 cost_lo(u64 c)
{
	u64 b = pow2_ceil((32 * c + 12) / 13);

	if (c > HASH_MAX_BLOCKS)
		return LEAF;
	return b < 64 ? 64 : b > LEAF ? LEAF : b;
}

static u64 cost_hi(u64 c)
{
	u64 b = pow2_ceil((32 * c + 12) / 13 + 34);

	if (c > HASH_MAX_BLOCKS)
		return LEAF;
	return b < 64 ? 64 : b > LEAF / 2 ? LEAF / 2 : b;
}

/*
 * The leaves of a map that holds exactly @ref cost what their dirty blocks
 * say: sum of cost_lo() .. sum of cost_hi() over the partial regions.
 */
static void expect_sparse_cost(struct btmap *map, const bool *ref)
{
	u64 nr = btmap_nr_blocks(map), r, lo = 0, hi = 0, b = leaf_bytes(map);

	for (r = 0; r < nr_regions(nr); r++) {
		u64 c = ref_count(ref, r * R, region_end(nr, r));

		if (c && c < region_end(nr, r) - r * R) {
			lo += cost_lo(c);
			hi += cost_hi(c);
		}
	}
	cr_assert(b >= lo && b <= hi, "leaf bytes %llu not in [%llu, %llu]",
		  (unsigned long long)b, (unsigned long long)lo, (unsigned long long)hi);
}

static void expect_no_leak(void)
{
	/* Hash leaves replaced by markers are freed by call_rcu(). */
	rcu_barrier();
	cr_assert_eq(atomic_long_read(&blktrack_allocations), 0,
		     "%ld allocations leaked", atomic_long_read(&blktrack_allocations));
}

/* ---- Marking ------------------------------------------------------------- */

Test(map, create_and_destroy, .timeout = 10)
{
	struct btmap *map;

	cr_assert_null(btmap_create(0, 0));
	map = btmap_create(1, 0);
	cr_assert_not_null(map);
	cr_assert_eq(btmap_nr_blocks(map), 1);
	cr_assert_eq(btmap_dirty(map), 0);
	/* struct + one slot + one counter, no leaf */
	cr_assert_geq(btmap_bytes(map), sizeof(unsigned long) + sizeof(int));
	cr_assert_lt(btmap_bytes(map), LEAF);
	cr_assert_gt(atomic_long_read(&blktrack_allocations), 0);
	btmap_destroy(map);
	expect_no_leak();

	map = btmap_create(100 * R, 0);
	cr_assert_geq(btmap_bytes(map), 100 * (sizeof(unsigned long) + sizeof(int)));
	btmap_destroy(map);
	expect_no_leak();
}

Test(map, ranges_at_every_alignment, .timeout = 10)
{
	const u64 nr = 3 * R + 777;
	const u64 points[] = {
		0, 1, 2, 31, 63, 64, 65, 127, 128, 1000, 4095, 4096,
		R - 65, R - 64, R - 1, R, R + 1, R + 63, R + 64,
		2 * R - 1, 2 * R, 3 * R - 1, 3 * R, nr - 64, nr - 1, nr, nr + 5,
	};
	const u64 counts[] = {
		0, 1, 2, 63, 64, 65, 127, 128, 129, 256, 411, 500, HASH_MAX_BLOCKS,
		HASH_MAX_BLOCKS + 1, 4097, R - 1, R, R + 1, 2 * R + 3, nr, ~0ULL / 2,
	};
	bool *ref = malloc(nr);
	size_t i, j;

	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		for (j = 0; j < sizeof(counts) / sizeof(counts[0]); j++) {
			u64 first = points[i], count = counts[j];
			struct btmap *map = btmap_create(nr, 0);

			memset(ref, 0, nr);
			ref_mark(ref, nr, first, count);
			btmap_mark(map, first, count);
			expect_exact(map, ref);

			/*
			 * One mark: a region it covers whole goes FULL without
			 * a leaf; a region it covers in part gets one leaf,
			 * sized by the blocks it holds.
			 */
			expect_sparse_cost(map, ref);

			/* Rewrites change nothing; an overlapping mark adds. */
			cr_assert_not(btmap_mark(map, first, count));
			expect_exact(map, ref);
			btmap_mark(map, first + 3, 70);
			ref_mark(ref, nr, first + 3, 70);
			expect_exact(map, ref);
			expect_sparse_cost(map, ref);
			btmap_destroy(map);
		}
	}
	free(ref);
	expect_no_leak();
}

Test(map, tiny_maps, .timeout = 10)
{
	const u64 sizes[] = { 1, 2, 63, 64, 65, R - 1, R, R + 1, 2 * R };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		u64 nr = sizes[i];
		bool *ref = calloc(nr, 1);
		struct btmap *map = btmap_create(nr, 0);

		btmap_mark(map, nr - 1, 1);
		ref_mark(ref, nr, nr - 1, 1);
		expect_exact(map, ref);
		btmap_mark(map, 0, ~0ULL);
		ref_mark(ref, nr, 0, ~0ULL);
		expect_exact(map, ref);
		cr_assert_eq(btmap_dirty(map), nr);
		btmap_destroy(map);
		free(ref);
	}
	expect_no_leak();
}

Test(map, dirty_and_bytes_exact, .timeout = 10)
{
	const u64 nr = 8 * R;
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 k;

	/* 100 scattered blocks in region 0, 5 in region 3: two leaves. */
	for (k = 0; k < 100; k++) {
		btmap_mark(map, k * 300, 1);
		ref_mark(ref, nr, k * 300, 1);
	}
	for (k = 0; k < 5; k++) {
		btmap_mark(map, 3 * R + k * 2, 1);
		ref_mark(ref, nr, 3 * R + k * 2, 1);
	}
	cr_assert_eq(btmap_dirty(map), 105);
	/* Two sparse leaves: 100 and 5 offsets, far less than 2 bitmaps. */
	expect_sparse_cost(map, ref);
	cr_assert_leq(leaf_bytes(map), 512 + 64);
	k = leaf_bytes(map);
	/* A whole region at once costs no leaf. */
	btmap_mark(map, 5 * R, R);
	ref_mark(ref, nr, 5 * R, R);
	cr_assert_eq(btmap_dirty(map), 105 + R);
	cr_assert_eq(leaf_bytes(map), k);
	expect_exact(map, ref);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

Test(map, full_leaf_wants_coarsen, .timeout = 10)
{
	const u64 nr = 2 * R;
	struct btmap *map = btmap_create(nr, 0);
	u64 k;

	/* Fill region 1 in chunks: only the last chunk reports the full leaf. */
	for (k = 0; k < R; k += 1000) {
		bool want = btmap_mark(map, R + k, 1000);

		cr_assert_eq(want, k + 1000 >= R, "chunk at %llu", (unsigned long long)k);
	}
	cr_assert_eq(leaf_bytes(map), LEAF);
	btmap_coarsen(map, ~0ULL);
	cr_assert_eq(leaf_bytes(map), 0, "a full leaf was not collapsed");
	cr_assert_eq(btmap_dirty(map), R);
	btmap_destroy(map);
	expect_no_leak();
}

/* ---- Sparse (hash) leaves ------------------------------------------------ */

/* Single blocks and short runs at every alignment, in every insertion order. */
Test(map, hash_leaves_at_every_alignment, .timeout = 10)
{
	const u64 nr = 2 * R + 300;	/* a short last region */
	const u64 offs[] = { 0, 1, 2, 63, 64, 65, 127, 128, 4095, 4096, 10000, R - 65,
			     R - 64, R - 2, R - 1 };
	const size_t n = sizeof(offs) / sizeof(offs[0]);
	bool *ref = malloc(nr);
	int order, len;
	size_t i;

	for (order = 0; order < 3; order++) {
		for (len = 1; len <= 3; len++) {
			struct btmap *map = btmap_create(nr, 0);

			memset(ref, 0, nr);
			for (i = 0; i < n; i++) {
				/* ascending, descending, and from the middle out */
				size_t k = order == 0 ? i : order == 1 ? n - 1 - i :
					   (i & 1 ? n / 2 + (i + 1) / 2 : n / 2 - i / 2 - 1);
				u64 f = offs[k % n];

				btmap_mark(map, f, len);
				ref_mark(ref, nr, f, len);
				btmap_mark(map, R + f, len);
				ref_mark(ref, nr, R + f, len);
				btmap_mark(map, 2 * R + f % 300, len);
				ref_mark(ref, nr, 2 * R + f % 300, len);
				expect_exact(map, ref);
				expect_sparse_cost(map, ref);
			}
			btmap_destroy(map);
		}
	}
	free(ref);
	expect_no_leak();
}

/* One region: hash -> bigger hashes -> bitmap -> FULL, every bit kept. */
Test(map, hash_grows_then_converts, .timeout = 20)
{
	const u64 nr = 3 * R;
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 k, c = 0, prev = 0;

	rnd_state = 0xa77a7;
	for (k = 0; c < 3000; k++) {
		u64 f = R + rnd_below(R), len = rnd() % 4 ? 1 : 1 + rnd_below(5);

		btmap_mark(map, f, len);
		ref_mark(ref, nr, f, len);
		c = ref_count(ref, R, 2 * R);
		/* Memory only grows, by steps that follow the blocks. */
		cr_assert_geq(leaf_bytes(map), prev);
		prev = leaf_bytes(map);
		cr_assert(prev >= cost_lo(c) && prev <= cost_hi(c), "%llu blocks cost %llu",
			  (unsigned long long)c, (unsigned long long)prev);
		if (k % 97 == 0 || c >= 3000)
			expect_exact(map, ref);
	}
	cr_assert_eq(leaf_bytes(map), LEAF, "3000 blocks: a bitmap leaf");
	/* Fill the rest one block at a time; then the leaf goes FULL. */
	for (k = R; k < 2 * R; k++) {
		bool want = btmap_mark(map, k, 1);

		cr_assert(!want || k == 2 * R - 1 || ref_count(ref, R, 2 * R) == R - 1);
		ref_mark(ref, nr, k, 1);
	}
	expect_exact(map, ref);
	btmap_coarsen(map, ~0ULL);
	cr_assert_eq(leaf_bytes(map), 0);
	expect_exact(map, ref);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/* Bytes of the leaf of region @r alone: the map's less the same map without it. */
static u64 region_leaf_bytes(struct btmap *map, const bool *ref, u64 r)
{
	u64 nr = btmap_nr_blocks(map), all = leaf_bytes(map), i;
	struct btmap *other = btmap_create(nr, 0);

	/* The same blocks, one at a time, but for region @r's. */
	for (i = 0; i < nr; i++)
		if (ref[i] && (i < r * R || i >= region_end(nr, r)))
			btmap_mark(other, i, 1);
	all -= leaf_bytes(other);
	btmap_destroy(other);
	return all;
}

/*
 * A mark that takes a region past what the biggest hash table holds makes
 * a bitmap leaf at once, on a clean region and on a sparse one, with exactly
 * the blocks marked; below that the region stays a hash leaf.
 */
Test(map, big_mark_makes_bitmap_at_once, .timeout = 10)
{
	const u64 nr = 4 * R + 500;	/* a short last region */
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 k, f;

	/* Clean region 0: one block more than a table takes. */
	btmap_mark(map, 1000, HASH_MAX_BLOCKS + 1);
	ref_mark(ref, nr, 1000, HASH_MAX_BLOCKS + 1);
	expect_exact(map, ref);
	cr_assert_eq(leaf_bytes(map), LEAF);

	/* Clean region 1: as many as a table takes stay a hash leaf. */
	btmap_mark(map, R + 7, HASH_MAX_BLOCKS);
	ref_mark(ref, nr, R + 7, HASH_MAX_BLOCKS);
	expect_exact(map, ref);
	cr_assert_eq(region_leaf_bytes(map, ref, 1), LEAF / 2);

	/* Sparse region 2: scattered blocks, then a run over some of them. */
	rnd_state = 0xb16b17;
	for (k = 0; k < 60; k++) {
		f = 2 * R + rnd_below(4000);
		btmap_mark(map, f, 1);
		ref_mark(ref, nr, f, 1);
	}
	cr_assert_leq(region_leaf_bytes(map, ref, 2), 256);
	btmap_mark(map, 2 * R + 1500, 3000);
	ref_mark(ref, nr, 2 * R + 1500, 3000);
	expect_exact(map, ref);
	cr_assert_eq(region_leaf_bytes(map, ref, 2), LEAF);

	/* Sparse region 3: a run that brings it just past the biggest table. */
	for (k = 0; k < 700; k++) {
		btmap_mark(map, 3 * R + 40 * k, 1);
		ref_mark(ref, nr, 3 * R + 40 * k, 1);
	}
	cr_assert_eq(region_leaf_bytes(map, ref, 3), LEAF / 2);
	/* Offsets 20..20 + 248: 124 of them new (every 40th is there). */
	btmap_mark(map, 3 * R + 20, 130);
	ref_mark(ref, nr, 3 * R + 20, 130);
	k = ref_count(ref, 3 * R, 4 * R);
	cr_assert_gt(k, HASH_MAX_BLOCKS);
	expect_exact(map, ref);
	cr_assert_eq(region_leaf_bytes(map, ref, 3), LEAF);

	/* The short last region: all but one block fit the biggest table. */
	btmap_mark(map, 4 * R + 1, 499);
	ref_mark(ref, nr, 4 * R + 1, 499);
	expect_exact(map, ref);
	expect_sparse_cost(map, ref);
	cr_assert_eq(region_leaf_bytes(map, ref, 4), LEAF / 2);

	/* Rewrites change nothing, the rest of a bitmap region goes FULL. */
	cr_assert_not(btmap_mark(map, 2 * R + 1500, 3000));
	expect_exact(map, ref);
	cr_assert(btmap_mark(map, 0, R));
	ref_mark(ref, nr, 0, R);
	btmap_coarsen(map, ~0ULL);
	expect_exact(map, ref);
	expect_sparse_cost(map, ref);
	btmap_destroy(map);

	/* No memory for the bitmap: FULL, nothing lost. */
	map = btmap_create(nr, LEAF - 1);
	memset(ref, 0, nr);
	btmap_mark(map, R + 5, 30);
	ref_mark(ref, nr, R + 5, 30);
	cr_assert(btmap_mark(map, R + 100, 2000));
	ref_mark(ref, nr, R + 100, 2000);
	expect_cover(map, ref, &k, &f);
	cr_assert_eq(btmap_dirty(map), R);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/*
 * btmap_mark_one() against a reference, through every kind of leaf: hashes
 * that grow and convert, bitmaps, FULL, a short last region, blocks past
 * the end; with and without likely_set, mixed with btmap_mark().
 */
Test(map, mark_one_equals_reference, .timeout = 20)
{
	const u64 nr = 4 * R + 300;
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 k, r;

	rnd_state = 0x0e0e0e;
	for (k = 0; k < 60000; k++) {
		/* Region 0 sparse, 1 dense, 2 filled, 3 random, then the short one. */
		u64 f, which = rnd_below(5);
		bool want;

		if (which == 0)
			f = rnd_below(R) & ~7ULL;
		else if (which == 1)
			f = R + rnd_below(R / 4);
		else if (which == 2)
			f = 2 * R + (k / 5) % R;
		else if (which == 3)
			f = rnd_below(nr + 10);		/* some past the end */
		else
			f = 4 * R + rnd_below(300);
		if (rnd() % 8 == 0) {
			u64 c = 1 + rnd_below(40);

			btmap_mark(map, f, c);
			ref_mark(ref, nr, f, c);
			continue;
		}
		want = btmap_mark_one(map, f, rnd() % 2);
		if (f < nr) {
			r = f / R;
			/* It asks for coarsening only when a leaf just became full. */
			if (want)
				cr_assert(!ref[f] &&
					  ref_count(ref, r * R, region_end(nr, r)) + 1 ==
					  region_end(nr, r) - r * R,
					  "block %llu: wants coarsen", (unsigned long long)f);
			ref_mark(ref, nr, f, 1);
		} else {
			cr_assert_not(want);
		}
		if (k % 4999 == 0)
			expect_exact(map, ref);
	}
	expect_exact(map, ref);
	/* A second pass of rewrites changes nothing. */
	for (k = 0; k < nr; k++)
		if (ref[k])
			cr_assert_not(btmap_mark_one(map, k, k % 2));
	expect_exact(map, ref);
	btmap_coarsen(map, ~0ULL);
	expect_exact(map, ref);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/*
 * Single-block inserts into hash leaves in every order: ascending and
 * descending runs (neighbours must not pile up in one probe run),
 * clusters, interleaved, random; exact after each batch, up to the
 * conversion to a bitmap.
 */
Test(map, mark_one_hash_orders, .timeout = 20)
{
	const u64 nr = 2 * R;
	int order;

	for (order = 0; order < 5; order++) {
		struct btmap *map = btmap_create(nr, 0);
		bool *ref = calloc(nr, 1);
		u64 k, f;

		rnd_state = 0x5eed0 + order;
		for (k = 0; k < 2100; k++) {
			switch (order) {
			case 0: f = R + 100 + 3 * k; break;		/* ascending, low */
			case 1: f = 2 * R - 1 - 5 * k; break;		/* descending, high */
			case 2: f = R + (k % 2 ? 7 * k : R - 1 - 7 * k); break;	/* both ends inward */
			case 3: f = R + rnd_below(1500) + (k % 3) * 15000; break;	/* clusters */
			default: f = R + rnd_below(R); break;
			}
			btmap_mark_one(map, f, rnd() % 4 == 0);
			ref_mark(ref, nr, f, 1);
			if (k % 150 == 0 || k == 2099)
				expect_exact(map, ref);
		}
		btmap_destroy(map);
		free(ref);
	}
	expect_no_leak();
}

/* btmap_mark_one() without memory for a leaf: the region goes FULL. */
Test(map, mark_one_failed_alloc_goes_full, .timeout = 10)
{
	const u64 nr = 2 * R + 50;
	struct btmap *map = btmap_create(nr, 0);

	btmap_mark_one(map, 3, false);
	btmap_fail_leaf_alloc = 1;
	cr_assert(btmap_mark_one(map, R + 7, true), "a FULL fallback must ask for attention");
	cr_assert(btmap_mark_one(map, 2 * R + 49, false));
	/* The hash leaf of region 0 cannot grow past its first size class. */
	for (int k = 0; k < 40; k++)
		btmap_mark_one(map, 100 + 2 * k, k % 2);
	btmap_fail_leaf_alloc = 0;
	cr_assert_eq(btmap_dirty(map), R + R + 50);
	cr_assert_eq(leaf_bytes(map), 0);
	cr_assert_not(btmap_mark_one(map, R + 100, false));
	btmap_destroy(map);
	expect_no_leak();
}

/*
 * A hash leaf's replacement interrupted (as by a completion in hard IRQ on
 * the same CPU) by marks of the same region: they find the leaf frozen,
 * finish the replacement themselves and mark the copy; the interrupted
 * replacer loses the slot and frees its own copy. Nothing is lost, nothing
 * leaks, the memory counted is the leaves held.
 */
static struct btmap *nest_map;
static bool *nest_ref;
static u64 nest_next, nest_left;
static bool nest_fail;

static void nest_marks(void)
{
	void (*hook)(void) = btmap_replace_delay;

	if (!nest_left)
		return;
	btmap_replace_delay = NULL;	/* the nested replacements run straight */
	if (nest_fail)
		btmap_fail_leaf_alloc = 1;
	while (nest_left) {
		btmap_mark_one(nest_map, nest_next, nest_left % 2);
		ref_mark(nest_ref, btmap_nr_blocks(nest_map), nest_next, 1);
		nest_next += 37;
		nest_left--;
	}
	btmap_replace_delay = hook;
}

static void nested_replace(bool fail, u64 nested)
{
	const u64 nr = 2 * R;
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 k, grown = 0, partial, nonclean;

	nest_map = map;
	nest_ref = ref;
	nest_fail = fail;
	nest_next = R + 5;
	btmap_replace_delay = nest_marks;
	/* Each replacement of region 1's leaf is interrupted by @nested marks. */
	for (k = 0; k < 3000 && !(fail && grown); k++) {
		u64 before = leaf_bytes(map);

		nest_left = nested;
		btmap_mark_one(map, R + 3 + 11 * k, false);
		ref_mark(ref, nr, R + 3 + 11 * k, 1);
		if (before && leaf_bytes(map) != before)
			grown++;	/* replaced: bigger, a bitmap, or FULL */
	}
	btmap_replace_delay = NULL;
	btmap_fail_leaf_alloc = 0;
	cr_assert_geq(grown, fail ? 1 : 4);
	if (fail) {
		/* The nested replacer could not allocate: the region went FULL. */
		expect_cover(map, ref, &partial, &nonclean);
		cr_assert_eq(partial, 0);
		cr_assert_eq(nonclean, 1);
		cr_assert_eq(leaf_bytes(map), 0);
	} else {
		expect_exact(map, ref);
		expect_sparse_cost(map, ref);
	}
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

Test(map, hash_replace_interrupted_by_inserts, .timeout = 10)
{
	nested_replace(false, 1);
	nested_replace(false, 40);	/* enough to make the nested mark grow it again */
}

Test(map, hash_replace_interrupted_alloc_fails, .timeout = 10)
{
	nested_replace(true, 3);
}

/*
 * A completion (likely_set) whose block is not in the map marks it, whether
 * or not a hint entry is there for another block or another map; and a
 * merge's emptied source forgets its hints.
 */
Test(map, mark_one_hints_never_skip_a_clean_block, .timeout = 10)
{
	const u64 nr = 2 * R;
	struct btmap *a = btmap_create(nr, 0), *b = btmap_create(nr, 0);
	u64 k;

	/* Blocks that share hint entries (same low bits), in two maps. */
	for (k = 0; k < 64; k++) {
		btmap_mark_one(a, k * 256 + 5, false);
		btmap_mark_one(b, k * 256 + 5, true);
		cr_assert_eq(btmap_dirty(a), k + 1);
		cr_assert_eq(btmap_dirty(b), k + 1);
	}
	btmap_mark_one(a, R + 7, false);
	btmap_merge(b, a);			/* a is empty now */
	cr_assert_eq(btmap_dirty(a), 0);
	cr_assert_eq(btmap_dirty(b), 65);
	btmap_mark_one(a, R + 7, true);		/* its hint was cleared */
	cr_assert_eq(btmap_dirty(a), 1);
	btmap_mark_one(a, 63 * 256 + 5, true);
	cr_assert_eq(btmap_dirty(a), 2);
	btmap_mark_one(a, 63 * 256 + 5, true);	/* a hit: nothing changes */
	cr_assert_eq(btmap_dirty(a), 2);
	btmap_destroy(a);
	btmap_destroy(b);
	expect_no_leak();
}

/*
 * btmap_mark() leaves a hint for its run: it proves exactly that run, not a
 * longer or shorter one, nor one the map clipped, nor after a merge emptied
 * the map; and btmap_mark_one() does not take a run's entry for its block.
 */
Test(map, run_hints_prove_only_their_run, .timeout = 10)
{
	const u64 nr = 2 * R + 100;
	struct btmap *a = btmap_create(nr, 0), *b = btmap_create(nr, 0), *c;

	cr_assert_not(btmap_hinted(a, 300, 33));
	btmap_mark(a, 300, 33);
	cr_assert(btmap_hinted(a, 300, 33));
	cr_assert_not(btmap_hinted(a, 300, 34));
	cr_assert_not(btmap_hinted(a, 300, 32));
	cr_assert_not(btmap_hinted(a, 301, 32));
	cr_assert_not(btmap_hinted(a, 299, 33));
	cr_assert_not(btmap_hinted(b, 300, 33));	/* another map */
	/* Same entry, another block: the run's first block, not its slot. */
	cr_assert_not(btmap_hinted(a, 300 + BTMAP_HINTS, 33));
	/* Pieces of the last run are covered (a write split after its mark). */
	cr_assert(btmap_hinted_in_last_run(a, 310, 5));
	cr_assert(btmap_hinted_in_last_run(a, 301, 32));
	cr_assert(btmap_hinted_in_last_run(a, 332, 1));
	cr_assert_not(btmap_hinted_in_last_run(a, 330, 4));
	cr_assert_not(btmap_hinted_in_last_run(a, 299, 2));
	cr_assert_not(btmap_hinted_in_last_run(a, 333, 1));
	cr_assert_not(btmap_hinted_in_last_run(a, 0, 1));
	/* A single block with the run's first block: marked, not hinted. */
	btmap_mark_one(a, 300, true);
	cr_assert_eq(btmap_dirty(a), 33);
	cr_assert(btmap_hinted(a, 300, 1));
	/* A single block in the run's slot that is not in the map gets marked. */
	btmap_mark(a, 40, 10);
	btmap_mark_one(a, 40 + BTMAP_HINTS, true);
	cr_assert_eq(btmap_dirty(a), 44);
	/* Only the last run covers its pieces. */
	cr_assert(btmap_hinted_in_last_run(a, 45, 5));
	cr_assert_not(btmap_hinted_in_last_run(a, 310, 5));
	/* Runs across regions, and a run the map clips: no entry. */
	btmap_mark(a, R - 5, 10);
	cr_assert(btmap_hinted(a, R - 5, 10));
	btmap_mark(a, nr - 3, 8);
	cr_assert_not(btmap_hinted(a, nr - 3, 8));
	cr_assert_not(btmap_hinted(a, nr - 3, 3));
	/* Runs longer than an entry holds get none: no count wraps to another. */
	c = btmap_create(BTMAP_HINT_MAX_RUN + 10, 0);
	btmap_mark(c, 0, BTMAP_HINT_MAX_RUN + 1);
	cr_assert_not(btmap_hinted(c, 0, BTMAP_HINT_MAX_RUN + 1));
	cr_assert_not(btmap_hinted(c, 0, 1));
	btmap_mark(c, 0, BTMAP_HINT_MAX_RUN);
	cr_assert(btmap_hinted(c, 0, BTMAP_HINT_MAX_RUN));
	cr_assert_not(btmap_hinted(c, 0, 2 * BTMAP_HINT_MAX_RUN));
	btmap_destroy(c);
	btmap_mark(b, 7, 3);
	cr_assert(btmap_hinted_in_last_run(a, R - 3, 2));
	btmap_merge(b, a);			/* a is empty now */
	cr_assert_not(btmap_hinted(a, R - 5, 10));
	cr_assert_not(btmap_hinted_in_last_run(a, R - 3, 2));
	cr_assert(btmap_hinted(b, 7, 3));
	btmap_destroy(a);
	btmap_destroy(b);
	expect_no_leak();
}

/* Memory follows the dirty blocks: about 2 bytes each, not 4 KiB a region. */
Test(map, scattered_blocks_cost_two_bytes_each, .timeout = 10)
{
	const u64 regions = 1024, nr = regions * R, per = 32;
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 r, k;

	rnd_state = 0x5ca77e4;
	for (k = 0; k < per; k++)
		for (r = 0; r < regions; r++) {
			u64 f = r * R + rnd_below(R);

			btmap_mark(map, f, 1);
			ref_mark(ref, nr, f, 1);
		}
	expect_exact(map, ref);
	expect_sparse_cost(map, ref);
	/* 32 offsets (64 bytes) and a header: at most 128 bytes a region. */
	cr_assert_leq(leaf_bytes(map), regions * 128);
	cr_assert_lt(btmap_bytes(map), regions * LEAF / 16);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/* Sequential small writes go hash -> bitmap -> FULL and free every leaf. */
Test(map, sequential_fill_collapses_full, .timeout = 10)
{
	const u64 nr = 4 * R + 1000, steps[] = { 1, 8, 256 };
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct btmap *map = btmap_create(nr, 0);
		bool *ref = calloc(nr, 1);
		u64 k;
		bool want = false;

		for (k = 0; k < nr; k += steps[i]) {
			want |= btmap_mark(map, k, steps[i]);
			ref_mark(ref, nr, k, steps[i]);
		}
		cr_assert(want, "full leaves must ask for coarsening");
		btmap_coarsen(map, ~0ULL);
		cr_assert_eq(leaf_bytes(map), 0, "step %llu", (unsigned long long)steps[i]);
		expect_exact(map, ref);
		cr_assert_eq(btmap_dirty(map), nr);
		btmap_destroy(map);
		free(ref);
	}
	expect_no_leak();
}

/* Hash leaves are cheap: coarsening takes every bitmap leaf before any of them. */
Test(map, coarsen_takes_bitmaps_before_hashes, .timeout = 10)
{
	const u64 nr = 8 * R;
	struct btmap *map = btmap_create(nr, 0);
	bool *ref = calloc(nr, 1);
	u64 r, k, hashes, p, n;

	/* Regions 0..3: a bitmap each; 4..7: 50, 100, 300, 700 scattered blocks. */
	for (r = 0; r < 4; r++) {
		btmap_mark(map, r * R + 1, R / 2);
		ref_mark(ref, nr, r * R + 1, R / 2);
	}
	for (r = 4; r < 8; r++) {
		const u64 cnt[] = { 50, 100, 300, 700 };

		for (k = 0; k < cnt[r - 4]; k++) {
			btmap_mark(map, r * R + k * 20, 1);
			ref_mark(ref, nr, r * R + k * 20, 1);
		}
	}
	expect_sparse_cost(map, ref);
	hashes = leaf_bytes(map) - 4 * LEAF;
	cr_assert_lt(hashes, 4 * LEAF);

	/* Down to what the hash leaves take: all bitmaps go, no hash leaf. */
	btmap_coarsen(map, hashes);
	cr_assert_eq(leaf_bytes(map), hashes);
	expect_cover(map, ref, &p, &n);
	cr_assert_eq(p, 4);
	for (r = 0; r < 4; r++) {
		u64 pos = r * R, s, l;

		cr_assert(btmap_next_extent(map, &pos, &s, &l));
		cr_assert_eq(s, r * R);
		cr_assert_geq(l, R, "bitmap region %llu kept", (unsigned long long)r);
	}
	/* One byte less: the biggest hash leaf (700 blocks) goes next. */
	btmap_coarsen(map, hashes - 1);
	cr_assert_eq(leaf_bytes(map), hashes - cost_lo(700));
	expect_cover(map, ref, &p, &n);
	cr_assert_eq(p, 3);
	k = 7 * R;
	cr_assert(btmap_next_extent(map, &k, &p, &n));
	cr_assert_eq(p, 7 * R);
	cr_assert_eq(n, R);
	btmap_coarsen(map, 0);
	cr_assert_eq(leaf_bytes(map), 0);
	expect_cover(map, ref, &p, &n);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/* Merging every pair of leaf kinds, exactly. */
Test(map, merge_mixed_kinds_exact, .timeout = 10)
{
	const u64 nr = 6 * R;
	bool *ra = calloc(nr, 1), *rb = calloc(nr, 1);
	int round;
	u64 p;

	rnd_state = 0x3e4e2;
	for (round = 0; round < 20; round++) {
		struct btmap *a = btmap_create(nr, 0), *b = btmap_create(nr, 0);
		u64 r, k;

		memset(ra, 0, nr);
		memset(rb, 0, nr);
		/* Region r: a is sparse / dense / clean, b is sparse / dense / clean. */
		for (r = 0; r < 6; r++) {
			int ka = (int)(r % 3), kb = (int)((r / 3 + r) % 3);

			for (k = 0; k < 2; k++) {
				struct btmap *m = k ? b : a;
				bool *ref = k ? rb : ra;
				int kind = k ? kb : ka;
				u64 j, cnt = kind == 0 ? rnd_below(1500) : kind == 1 ? 3 : 0;

				for (j = 0; j < cnt; j++) {
					u64 f = r * R + rnd_below(R), c = 1 + rnd_below(3);

					btmap_mark(m, f, c);
					ref_mark(ref, nr, f, c);
				}
				if (kind == 1) {
					u64 f = r * R + rnd_below(R / 2);

					btmap_mark(m, f, R / 3);
					ref_mark(ref, nr, f, R / 3);
				}
			}
		}
		btmap_merge(a, b);
		for (p = 0; p < nr; p++)
			ra[p] |= rb[p];
		expect_exact(a, ra);
		cr_assert_eq(btmap_dirty(b), 0);
		cr_assert_eq(leaf_bytes(b), 0);
		btmap_destroy(a);
		btmap_destroy(b);
	}
	free(ra);
	free(rb);
	expect_no_leak();
}

/* ---- Extents ------------------------------------------------------------- */

/* The first run of @ref at or after @pos, as btmap_next_extent() should see it. */
static bool ref_next(const bool *ref, u64 nr, u64 pos, u64 *start, u64 *len)
{
	u64 s = pos, e;

	while (s < nr && !ref[s])
		s++;
	if (s >= nr)
		return false;
	for (e = s; e < nr && ref[e]; e++)
		;
	*start = s;
	*len = e - s;
	return true;
}

Test(map, extents_merge_across_regions, .timeout = 10)
{
	const u64 nr = 4 * R + 100;
	struct btmap *map = btmap_create(nr, 0);
	u64 pos = 0, start, len;

	/* leaf tail of region 0 + FULL region 1 + leaf head of region 2 */
	btmap_mark(map, R - 10, R + 25);
	/* FULL last region, clipped at nr, joined to a leaf tail of region 3 */
	btmap_mark(map, 4 * R - 1, 1);
	btmap_mark(map, 4 * R, 100);

	cr_assert(btmap_next_extent(map, &pos, &start, &len));
	cr_assert_eq(start, R - 10);
	cr_assert_eq(len, R + 25);
	cr_assert(btmap_next_extent(map, &pos, &start, &len));
	cr_assert_eq(start, 4 * R - 1);
	cr_assert_eq(len, 101);
	cr_assert_eq(pos, nr);
	cr_assert_not(btmap_next_extent(map, &pos, &start, &len));

	/* Starting inside an extent yields its remainder. */
	pos = R + 5;
	cr_assert(btmap_next_extent(map, &pos, &start, &len));
	cr_assert_eq(start, R + 5);
	cr_assert_eq(len, 2 * R + 15 - (R + 5));
	btmap_destroy(map);
	expect_no_leak();
}

Test(map, extents_equal_reference_runs, .timeout = 10)
{
	const u64 nr = 5 * R + 321;
	bool *ref = calloc(nr, 1);
	struct btmap *map;
	int round, k;

	rnd_state = 0x5eed0001;
	for (round = 0; round < 20; round++) {
		map = btmap_create(nr, 0);
		memset(ref, 0, nr);
		for (k = 0; k < 200; k++) {
			u64 first = rnd_below(nr + 10);
			u64 count = rnd() % 8 ? rnd_below(200) : rnd_below(3 * R);

			btmap_mark(map, first, count);
			ref_mark(ref, nr, first, count);
		}
		/* From random positions, the next extent equals the next run. */
		for (k = 0; k < 300; k++) {
			u64 pos = rnd_below(nr + 2), p = pos, s, l, rs, rl;
			bool got = btmap_next_extent(map, &p, &s, &l);
			bool want = ref_next(ref, nr, pos, &rs, &rl);

			cr_assert_eq(got, want, "pos %llu", (unsigned long long)pos);
			if (got) {
				cr_assert_eq(s, rs);
				cr_assert_eq(l, rl);
				cr_assert_eq(p, s + l);
			}
		}
		expect_exact(map, ref);
		btmap_destroy(map);
	}
	free(ref);
	expect_no_leak();
}

/* ---- Fallbacks ----------------------------------------------------------- */

Test(map, failed_leaf_alloc_goes_full, .timeout = 10)
{
	const u64 nr = 3 * R + 50;
	struct btmap *map = btmap_create(nr, 0);
	u64 pos = 0, start, len;

	btmap_fail_leaf_alloc = 1;
	cr_assert(btmap_mark(map, R + 7, 1), "a FULL fallback must ask for attention");
	cr_assert(btmap_mark(map, 3 * R + 1, 2));
	btmap_fail_leaf_alloc = 0;

	cr_assert(btmap_next_extent(map, &pos, &start, &len));
	cr_assert_eq(start, R);
	cr_assert_eq(len, R);
	cr_assert(btmap_next_extent(map, &pos, &start, &len));
	cr_assert_eq(start, 3 * R);
	cr_assert_eq(len, 50, "the FULL last region must be clipped");
	cr_assert_not(btmap_next_extent(map, &pos, &start, &len));
	cr_assert_eq(btmap_dirty(map), R + 50);
	cr_assert_eq(leaf_bytes(map), 0);

	/* Later marks in a FULL region are no-ops; elsewhere leaves work again. */
	cr_assert_not(btmap_mark(map, R + 100, 5));
	btmap_mark(map, 5, 5);
	cr_assert_eq(btmap_dirty(map), R + 55);
	cr_assert_eq(leaf_bytes(map), cost_lo(5));
	btmap_destroy(map);
	expect_no_leak();
}

Test(map, mem_limit_goes_full, .timeout = 10)
{
	const u64 nr = 6 * R, half = R / 2;
	/* Room for two bitmap leaves and a half: never more than two. */
	struct btmap *map = btmap_create(nr, 2 * LEAF + LEAF / 2);
	bool *ref = calloc(nr, 1);
	u64 p, n;

	/* Half a region in one mark: a bitmap leaf at once. */
	cr_assert_not(btmap_mark(map, 10, half));
	cr_assert_not(btmap_mark(map, R + 10, half));
	cr_assert_eq(leaf_bytes(map), 2 * LEAF);
	cr_assert(btmap_mark(map, 2 * R + 10, half), "over the limit must ask for coarsening");
	cr_assert(btmap_mark(map, 4 * R + 10, half));
	ref_mark(ref, nr, 10, half);
	ref_mark(ref, nr, R + 10, half);
	ref_mark(ref, nr, 2 * R, R);
	ref_mark(ref, nr, 4 * R, R);
	expect_exact(map, ref);
	cr_assert_eq(leaf_bytes(map), 2 * LEAF);

	/* Coarsening to one leaf frees room for a new one. */
	btmap_coarsen(map, LEAF);
	cr_assert_eq(leaf_bytes(map), LEAF);
	expect_cover(map, ref, &p, &n);
	cr_assert_not(btmap_mark(map, 5 * R + 3, half));
	cr_assert_eq(leaf_bytes(map), 2 * LEAF);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/* A sparse leaf that cannot grow within the limit goes FULL, losing nothing. */
Test(map, mem_limit_hash_growth_goes_full, .timeout = 10)
{
	const u64 nr = 4 * R;
	struct btmap *map = btmap_create(nr, 3 * 64);
	bool *ref = calloc(nr, 1);
	u64 k, p, n;
	bool want = false;

	/* Three one-block leaves fit (each at most 64 bytes). */
	for (k = 0; k < 3; k++) {
		cr_assert_not(btmap_mark(map, k * R + 100, 1));
		ref_mark(ref, nr, k * R + 100, 1);
	}
	cr_assert_eq(leaf_bytes(map), 3 * 64);
	/* Region 0 grows past its smallest table: no room, it goes FULL. */
	for (k = 0; k < 40; k++) {
		want |= btmap_mark(map, 1000 + 7 * k, 1);
		ref_mark(ref, nr, 1000 + 7 * k, 1);
	}
	cr_assert(want, "going FULL must ask for coarsening");
	expect_cover(map, ref, &p, &n);
	cr_assert_eq(p, 2);
	cr_assert_eq(btmap_dirty(map), R + 2);
	cr_assert_leq(leaf_bytes(map), 3 * 64);
	btmap_destroy(map);
	free(ref);
	expect_no_leak();
}

/* ---- Coarsening ---------------------------------------------------------- */

Test(map, coarsen_keeps_every_bit, .timeout = 10)
{
	const u64 nr = 16 * R + 99;
	const u64 targets[] = { ~0ULL, 12 * LEAF, 8 * LEAF + 1, 5 * LEAF, LEAF, 1, 0 };
	bool *ref = calloc(nr, 1);
	size_t t;
	int k;

	rnd_state = 0xc0a45e;
	for (t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		struct btmap *map = btmap_create(nr, 0);
		u64 partial, nonclean;

		memset(ref, 0, nr);
		for (k = 0; k < 400; k++) {
			u64 first = rnd_below(nr), count = 1 + rnd_below(400);

			btmap_mark(map, first, count);
			ref_mark(ref, nr, first, count);
		}
		/* A leaf made full by small marks. */
		for (k = 0; k < (int)R; k += 4096) {
			btmap_mark(map, 7 * R + k, 4096);
			ref_mark(ref, nr, 7 * R + k, 4096);
		}
		btmap_coarsen(map, targets[t]);
		cr_assert_leq(leaf_bytes(map), targets[t]);
		expect_cover(map, ref, &partial, &nonclean);
		/* Full leaves are gone: every remaining leaf is a partial region. */
		cr_assert_leq(leaf_bytes(map), partial * LEAF);
		cr_assert_geq(leaf_bytes(map), partial * 64);
		btmap_destroy(map);
	}
	free(ref);
	expect_no_leak();
}

Test(map, coarsen_takes_densest_first, .timeout = 10)
{
	const u64 nr = 10 * R;
	struct btmap *map = btmap_create(nr, 0);
	u64 r, start, len, pos;

	u64 before;

	/*
	 * Region r has r * 2000 + 1 dirty blocks: density grows with r.
	 * Region 0 is sparse (a hash leaf), regions 1..9 are bitmaps.
	 */
	for (r = 0; r < 10; r++)
		btmap_mark(map, r * R, r * 2000 + 1);
	before = leaf_bytes(map);
	cr_assert_eq(before, 9 * LEAF + cost_lo(1));
	btmap_coarsen(map, 6 * LEAF);
	cr_assert_eq(leaf_bytes(map), before - 4 * LEAF, "collapsed more than needed");
	/* Regions 6..9 are FULL, 0..5 exact. */
	for (r = 0; r < 10; r++) {
		pos = r * R;
		cr_assert(btmap_next_extent(map, &pos, &start, &len));
		cr_assert_eq(start, r * R);
		if (r < 6)
			cr_assert_eq(len, r * 2000 + 1, "region %llu", (unsigned long long)r);
		else
			cr_assert_geq(len, R, "region %llu", (unsigned long long)r);
	}
	btmap_destroy(map);
	expect_no_leak();
}

/* ---- Merging ------------------------------------------------------------- */

Test(map, merge_is_union_and_empties_src, .timeout = 10)
{
	const u64 nr = 6 * R + 5;
	bool *ra = calloc(nr, 1), *rb = calloc(nr, 1);
	struct btmap *a = btmap_create(nr, 0), *b = btmap_create(nr, 0);
	u64 base, p, n;
	long allocs;

	/* region 0: both leaves; 1: b leaf only (moved); 2: b FULL over a leaf;
	 * 3: a FULL, b leaf; 4: a leaf only; 5 and the tail: nothing / b FULL */
	btmap_mark(a, 5, 10);		ref_mark(ra, nr, 5, 10);
	btmap_mark(b, 12, 20);		ref_mark(rb, nr, 12, 20);
	btmap_mark(b, R + 100, 7);	ref_mark(rb, nr, R + 100, 7);
	btmap_mark(a, 2 * R + 1, 1);	ref_mark(ra, nr, 2 * R + 1, 1);
	btmap_mark(b, 2 * R, R);	ref_mark(rb, nr, 2 * R, R);
	btmap_mark(a, 3 * R, R);	ref_mark(ra, nr, 3 * R, R);
	btmap_mark(b, 3 * R + 9, 9);	ref_mark(rb, nr, 3 * R + 9, 9);
	btmap_mark(a, 4 * R + 4, 4);	ref_mark(ra, nr, 4 * R + 4, 4);
	btmap_mark(b, 6 * R, 5);	ref_mark(rb, nr, 6 * R, 5);
	expect_sparse_cost(a, ra);
	expect_sparse_cost(b, rb);

	rcu_barrier();
	allocs = atomic_long_read(&blktrack_allocations);
	btmap_merge(a, b);
	for (p = 0; p < nr; p++)
		ra[p] |= rb[p];
	expect_exact(a, ra);
	/*
	 * a: leaves 0 (kept, grown to hold 27 offsets), 1 (moved from b), 4;
	 * leaf 2 retired for FULL.
	 */
	expect_sparse_cost(a, ra);
	/* b's leaf 0 and 3 freed, leaf 1 moved, a's leaf 2 freed: 3 fewer. */
	rcu_barrier();
	cr_assert_eq(atomic_long_read(&blktrack_allocations), allocs - 3);

	/* b is empty and reusable. */
	cr_assert_eq(btmap_dirty(b), 0);
	cr_assert_eq(leaf_bytes(b), 0);
	p = 0;
	cr_assert_not(btmap_next_extent(b, &p, &base, &n));
	memset(rb, 0, nr);
	btmap_mark(b, 77, 3);
	ref_mark(rb, nr, 77, 3);
	expect_exact(b, rb);

	btmap_destroy(a);
	btmap_destroy(b);
	free(ra);
	free(rb);
	expect_no_leak();
}

Test(map, merge_random, .timeout = 10)
{
	const u64 nr = 7 * R + 1234;
	bool *ra = calloc(nr, 1), *rb = calloc(nr, 1);
	int round, k;

	rnd_state = 0x3e4e;
	for (round = 0; round < 30; round++) {
		struct btmap *a = btmap_create(nr, round % 3 ? 0 : 3 * LEAF);
		struct btmap *b = btmap_create(nr, 0);
		u64 p, partial, nonclean;

		memset(ra, 0, nr);
		memset(rb, 0, nr);
		for (k = 0; k < 60; k++) {
			u64 f = rnd_below(nr), c = rnd() % 10 ? rnd_below(300) : rnd_below(2 * R);

			if (k & 1) {
				btmap_mark(a, f, c);
				ref_mark(ra, nr, f, c);
			} else {
				btmap_mark(b, f, c);
				ref_mark(rb, nr, f, c);
			}
		}
		btmap_merge(a, b);
		for (p = 0; p < nr; p++)
			ra[p] |= rb[p];
		expect_cover(a, ra, &partial, &nonclean);
		cr_assert_eq(btmap_dirty(b), 0);
		cr_assert_eq(leaf_bytes(b), 0);
		btmap_destroy(a);
		btmap_destroy(b);
	}
	free(ra);
	free(rb);
	expect_no_leak();
}

/* ---- Randomized model test ----------------------------------------------- */

Test(map, random_model, .timeout = 10)
{
	const u64 nr = 5 * R + 321;
	const unsigned long long seed = 0xb10c7ac;
	bool *ref = calloc(nr, 1), *rb = calloc(nr, 1);
	struct btmap *map = btmap_create(nr, 4 * LEAF);
	u64 partial, nonclean, p;
	int op;

	rnd_state = seed;
	for (op = 0; op < 3000; op++) {
		u64 kind = rnd_below(100);

		if (kind < 85) {
			u64 f = rnd_below(nr + 20);
			u64 c = rnd() % 16 ? 1 + rnd_below(100) : rnd_below(2 * R);

			btmap_fail_leaf_alloc = rnd_below(50) == 0;
			btmap_mark(map, f, c);
			btmap_fail_leaf_alloc = 0;
			ref_mark(ref, nr, f, c);
		} else if (kind < 93) {
			u64 target = rnd_below(6) * LEAF + rnd_below(2);

			btmap_coarsen(map, target);
			cr_assert_leq(leaf_bytes(map), target, "seed %llx op %d", seed, op);
		} else {
			struct btmap *b = btmap_create(nr, rnd_below(2) ? 0 : 2 * LEAF);
			int k, n = (int)rnd_below(20);

			memset(rb, 0, nr);
			for (k = 0; k < n; k++) {
				u64 f = rnd_below(nr), c = 1 + rnd_below(rnd() % 8 ? 500 : 2 * R);

				btmap_mark(b, f, c);
				ref_mark(rb, nr, f, c);
			}
			btmap_merge(map, b);
			cr_assert_eq(btmap_dirty(b), 0);
			btmap_destroy(b);
			for (p = 0; p < nr; p++)
				ref[p] |= rb[p];
		}
		if (op % 25 == 0 || op == 2999) {
			u64 b;

			expect_cover(map, ref, &partial, &nonclean);
			/* Never more than a flat bitmap of the regions touched. */
			b = leaf_bytes(map);
			cr_assert_geq(b, partial * 64, "seed %llx op %d", seed, op);
			cr_assert_leq(b, nonclean * LEAF, "seed %llx op %d", seed, op);
		}
	}
	btmap_destroy(map);
	free(ref);
	free(rb);
	expect_no_leak();
}

/* ---- Concurrency: markers racing checkpoints, aborts and coarsening ------- */

/*
 * An epoch is what the module publishes for a volume: the active map, plus
 * here the blocks the markers and merges put in it. Markers take
 * rcu_read_lock, mark the map and record the blocks in the same epoch, so
 * once an epoch is swapped out and a grace period has passed, its map can
 * be checked against its own record: short epochs keep both sparse, so a
 * lost bit shows.
 */
struct epoch {
	struct btmap *map;
	bool *ref;
};

struct race {
	u64 nr;
	u64 limit;		/* mem_limit of each active map */
	u64 max_count;		/* marks of 1..max_count blocks ... */
	bool big;		/* ... and now and then up to 2 regions */
	int nthreads;
	int epoch_iters;	/* main-thread iterations per checkpoint */
	int abort_pct;		/* checkpoints aborted: merged back into the live map */
	int coarsen;		/* 0: never, 1: to one leaf, 2: to zero */
	int merge_blocks;	/* per iteration: merge a map of so many blocks into the live one */
	bool exact;		/* no limit and no coarsening: maps are exact */
	int min_iter;		/* main-thread iterations at least (default: 40 epochs) */
	bool delay;		/* markers sometimes pause holding a leaf */
	bool one;		/* single blocks by btmap_mark_one(), and completions */
	bool replace_delay;	/* replacers sometimes pause between freeze and publish */
};

static struct epoch *cur;		/* rcu-published, as in the module */
static int stop;

struct marker {
	pthread_t tid;
	const struct race *rc;
	u64 seed;
	unsigned long ops;
	u64 inflight[8];	/* rc->one: blocks submitted, not yet completed */
};

static u64 trnd(u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void ref_mark_atomic(bool *ref, u64 nr, u64 first, u64 count)
{
	u64 i;

	for (i = first; i < nr && i - first < count; i++)
		__atomic_store_n(&ref[i], true, __ATOMIC_RELAXED);
}

static void *marker_main(void *arg)
{
	struct marker *m = arg;
	const struct race *rc = m->rc;

	rcu_register_thread();
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		u64 f = trnd(&m->seed) % rc->nr, c;
		struct epoch *e;

		if (rc->big && trnd(&m->seed) % 2048 == 0)
			c = trnd(&m->seed) % (2 * R);
		else
			c = 1 + trnd(&m->seed) % rc->max_count;
		rcu_read_lock();
		e = rcu_dereference(cur);
		if (rc->one && c == 1) {
			/*
			 * As the probes do: a submission marks the block, its
			 * completion (a few marks later, maybe in a later
			 * epoch) marks it again, expecting it set; now and
			 * then a block not marked yet is "completed".
			 */
			unsigned int k = (unsigned int)(m->ops % 8);
			bool done = m->ops >= 8 && trnd(&m->seed) % 16;

			if (done) {
				f = m->inflight[k];
			} else {
				m->inflight[k] = f;
				done = trnd(&m->seed) % 16 == 0;
			}
			btmap_mark_one(e->map, f, done);
		} else {
			btmap_mark(e->map, f, c);
		}
		ref_mark_atomic(e->ref, rc->nr, f, c);
		rcu_read_unlock();
		__atomic_store_n(&m->ops, m->ops + 1, __ATOMIC_RELAXED);
		/* On few CPUs, let the main thread (and its grace periods) run. */
		if (m->ops % 512 == 0)
			sched_yield();
	}
	rcu_unregister_thread();
	return NULL;
}

static struct epoch *epoch_new(const struct race *rc)
{
	struct epoch *e = malloc(sizeof(*e));

	e->map = btmap_create(rc->nr, rc->limit);
	e->ref = calloc(rc->nr, 1);
	cr_assert_not_null(e->map);
	return e;
}

static void epoch_free(struct epoch *e)
{
	btmap_destroy(e->map);
	free(e->ref);
	free(e);
}

static void epoch_check(const struct race *rc, struct epoch *e)
{
	u64 partial, nonclean;

	if (rc->exact)
		expect_exact(e->map, e->ref);
	else
		expect_cover(e->map, e->ref, &partial, &nonclean);
}

/* Wait until every marker runs, so the main thread really races them. */
static void wait_running(struct marker *m, int n)
{
	int t;

	for (t = 0; t < n; t++)
		while (!__atomic_load_n(&m[t].ops, __ATOMIC_RELAXED))
			usleep(100);
}

/*
 * At least @min_iter iterations, whatever the time they take (the epochs
 * the assertions count must happen on a loaded machine too), then until
 * 300000 marks or about 3 s.
 */
static bool keep_going(struct marker *m, int n, int iter, int min_iter)
{
	static struct timespec t0;
	struct timespec now;
	unsigned long ops = 0;
	int t;

	if (!iter)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	if (iter < min_iter)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - t0.tv_sec >= 3)
		return false;
	for (t = 0; t < n; t++)
		ops += __atomic_load_n(&m[t].ops, __ATOMIC_RELAXED);
	return ops < 300000;
}

static __thread u64 delay_calls;

/* Now and then a marker is preempted between reading a leaf and using it. */
static void marker_delay(void)
{
	if (++delay_calls % 128 == 0)
		usleep(20);
}

static __thread u64 replace_calls;

/* Now and then a replacer is preempted with its leaf frozen. */
static void replace_delay(void)
{
	if (++replace_calls % 4 == 0)
		usleep(50);
}

static void race(const struct race *rc)
{
	struct marker m[8];
	int t, iter, min_iter, checks = 0, aborts = 0;
	u64 k;

	cr_assert_leq(rc->nthreads, 8);
	rnd_state = 0xace0fba5e;
	cur = epoch_new(rc);
	stop = 0;
	btmap_mark_delay = rc->delay ? marker_delay : NULL;
	btmap_replace_delay = rc->replace_delay ? replace_delay : NULL;
	for (t = 0; t < rc->nthreads; t++) {
		m[t].rc = rc;
		m[t].seed = 0x9e3779b97f4a7c15ULL * (t + 1);
		m[t].ops = 0;
		cr_assert_eq(pthread_create(&m[t].tid, NULL, marker_main, &m[t]), 0);
	}
	wait_running(m, rc->nthreads);

	/* 40 epochs: enough for the checks and aborts asserted below. */
	min_iter = rc->min_iter ? rc->min_iter : 40 * rc->epoch_iters;
	for (iter = 0; keep_going(m, rc->nthreads, iter, min_iter); iter++) {
		if (rc->merge_blocks) {
			struct btmap *src = btmap_create(rc->nr, 0);

			for (k = 0; k < (u64)rc->merge_blocks; k++) {
				u64 f = rnd_below(rc->nr);

				btmap_mark(src, f, 1);
				ref_mark_atomic(cur->ref, rc->nr, f, 1);
			}
			btmap_merge(cur->map, src);
			cr_assert_eq(btmap_dirty(src), 0);
			btmap_destroy(src);
		}
		if (rc->coarsen)
			btmap_coarsen(cur->map, rc->coarsen == 1 ? LEAF : 0);
		if (iter % rc->epoch_iters == rc->epoch_iters - 1) {
			/* CHECKPOINT: swap in a fresh map ... */
			struct epoch *old = cur;

			rcu_assign_pointer(cur, epoch_new(rc));
			/* ... after which no marker still uses @old. */
			synchronize_rcu();
			if ((int)rnd_below(100) < rc->abort_pct) {
				/* ABORT: merge it back while markers run. */
				for (k = 0; k < rc->nr; k++)
					if (old->ref[k])
						__atomic_store_n(&cur->ref[k], true, __ATOMIC_RELAXED);
				btmap_merge(cur->map, old->map);
				cr_assert_eq(btmap_dirty(old->map), 0);
				aborts++;
			} else {
				epoch_check(rc, old);
				checks++;
			}
			epoch_free(old);
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (t = 0; t < rc->nthreads; t++)
		pthread_join(m[t].tid, NULL);
	btmap_mark_delay = NULL;
	btmap_replace_delay = NULL;
	epoch_check(rc, cur);
	epoch_free(cur);
	cur = NULL;
	cr_assert_geq(checks, 5, "only %d epochs checked", checks);
	cr_assert(!rc->abort_pct || aborts > 0);
	expect_no_leak();
}

/* Markers racing swaps and aborts, no limit: every epoch is exact. */
Test(map, concurrent_swaps_exact, .timeout = 20)
{
	struct race rc = {
		.nr = 6 * R + 100, .max_count = 64, .big = true, .nthreads = 4,
		.epoch_iters = 1, .abort_pct = 50, .exact = true,
	};

	race(&rc);
}

/* ABORT's merge into a live map: markers and the merge OR into the same words. */
Test(map, concurrent_merge_into_live_map, .timeout = 20)
{
	struct race rc = {
		.nr = 2 * R, .max_count = 3, .nthreads = 2, .epoch_iters = 10,
		.abort_pct = 30, .merge_blocks = 1500, .exact = true,
	};

	race(&rc);
}

/* Memory limit, the coarsening worker and aborts: no block is ever lost. */
Test(map, concurrent_limit_coarsen_abort, .timeout = 20)
{
	struct race rc = {
		.nr = 6 * R + 100, .limit = 3 * LEAF, .max_count = 64, .big = true,
		.nthreads = 4, .epoch_iters = 3, .abort_pct = 50, .coarsen = 1, .delay = true,
	};

	race(&rc);
}

/*
 * Coarsening to zero while markers run: leaves are retired under markers'
 * feet. Freeing one before the grace period is a use after free (caught
 * when built with -fsanitize=address) and may lose or invent a block.
 */
Test(map, concurrent_coarsen_retires_after_grace, .timeout = 20)
{
	struct race rc = {
		.nr = 6 * R + 100, .max_count = 200, .nthreads = 4, .epoch_iters = 2,
		.coarsen = 2, .min_iter = 1000, .delay = true,
	};

	race(&rc);
}

/*
 * Sparse marks in a few regions: hash leaves grow and convert under
 * markers racing for the same cells, while epochs are swapped and aborted
 * (merged back into the live map).
 */
Test(map, concurrent_sparse_growth_exact, .timeout = 20)
{
	struct race rc = {
		.nr = 3 * R, .max_count = 2, .nthreads = 4, .epoch_iters = 5,
		.abort_pct = 50, .merge_blocks = 200, .exact = true, .delay = true,
	};

	race(&rc);
}

/* The same with a limit and the coarsening worker: nothing lost. */
Test(map, concurrent_sparse_limit_coarsen, .timeout = 20)
{
	struct race rc = {
		.nr = 3 * R + 77, .limit = LEAF + 512, .max_count = 3, .nthreads = 4,
		.epoch_iters = 2, .abort_pct = 30, .coarsen = 1, .merge_blocks = 100,
		.delay = true,
	};

	race(&rc);
}

/*
 * btmap_mark_one(), submissions and completions (hint checks, lock-free
 * probes of hash leaves) racing inserts, growth and conversion, swaps and
 * aborts: a probe that saw a block that is not there would lose it.
 */
Test(map, concurrent_mark_one_exact, .timeout = 20)
{
	struct race rc = {
		.nr = 3 * R, .max_count = 1, .nthreads = 4, .epoch_iters = 5,
		.abort_pct = 50, .merge_blocks = 200, .exact = true, .delay = true,
		.one = true,
	};

	race(&rc);
}

/* The same with multi-block marks, a limit and the coarsening worker. */
Test(map, concurrent_mark_one_limit_coarsen, .timeout = 20)
{
	struct race rc = {
		.nr = 3 * R + 77, .limit = LEAF + 512, .max_count = 3, .nthreads = 4,
		.epoch_iters = 2, .abort_pct = 30, .coarsen = 1, .merge_blocks = 100,
		.delay = true, .one = true,
	};

	race(&rc);
}

/*
 * Single-block inserts into the hash leaves of one region racing their
 * growth and conversion, replacers preempted with a leaf frozen (the others
 * must finish the replacement, never wait, never mark a dropped leaf), swaps
 * and aborts: an insert lost in a replaced leaf shows in the exact check.
 */
Test(map, concurrent_inserts_race_growth_exact, .timeout = 20)
{
	struct race rc = {
		.nr = R, .max_count = 1, .nthreads = 6, .epoch_iters = 3,
		.abort_pct = 30, .merge_blocks = 50, .exact = true, .delay = true,
		.one = true, .replace_delay = true,
	};

	race(&rc);
}

/* The same with small multi-block marks, a limit and the coarsening worker. */
Test(map, concurrent_inserts_race_growth_limit, .timeout = 20)
{
	struct race rc = {
		.nr = 2 * R, .limit = 2048, .max_count = 4, .nthreads = 6,
		.epoch_iters = 2, .abort_pct = 30, .coarsen = 1, .merge_blocks = 50,
		.delay = true, .one = true, .replace_delay = true,
	};

	race(&rc);
}
