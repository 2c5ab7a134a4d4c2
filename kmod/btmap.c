// SPDX-License-Identifier: GPL-2.0
/*
 * btmap - the dirty-block map (see btmap.h for the contract).
 *
 * Slot states: BTMAP_CLEAN (0), BTMAP_FULL (1), or a pointer to a leaf.
 * Transitions: CLEAN -> leaf and CLEAN -> FULL (markers, by cmpxchg),
 * leaf -> FULL (btmap_coarsen() and btmap_merge(), by xchg). A FULL slot
 * never changes back while the map is live, so the fill counter of a FULL
 * region is meaningless and ignored: markers that still hold a replaced
 * leaf may keep adding to it until the grace period ends.
 *
 * The only exception is the source of btmap_merge(), which is quiescent and
 * is emptied back to CLEAN.
 */
#include "btmap.h"

#ifdef __KERNEL__
atomic_long_t blktrack_allocations = ATOMIC_LONG_INIT(0);
#else
atomic_long_t blktrack_allocations;
int btmap_fail_leaf_alloc;
void (*btmap_mark_delay)(void);
#endif

#define BTMAP_CLEAN		0UL
#define BTMAP_FULL		1UL
#define BTMAP_REGION_SHIFT	15
#define BTMAP_WORD_BITS		(8U * (unsigned int)sizeof(unsigned long))
#define BTMAP_LEAF_WORDS	(BTMAP_LEAF_BYTES / sizeof(unsigned long))
/* Bins of the fill-count histogram used to pick the densest leaves. */
#define BTMAP_HIST_SHIFT	9
#define BTMAP_HIST_BINS		((BTMAP_REGION_BLOCKS >> BTMAP_HIST_SHIFT) + 1)
/* Keeps the slot array below kvmalloc's INT_MAX cap (16 PiB at 4 KiB). */
#define BTMAP_MAX_REGIONS	(1UL << 27)

_Static_assert(BTMAP_REGION_BLOCKS == 1U << BTMAP_REGION_SHIFT,
	       "BTMAP_REGION_SHIFT does not match BTMAP_REGION_BLOCKS");

struct btmap {
	u64 nr_blocks;
	u64 mem_limit;
	unsigned long nr_regions;
	atomic_long_t leaf_bytes;	/* changes only on leaf alloc/free */
	unsigned long *slots;
	atomic_t *fill;			/* bits set in each region's leaf */
};

static inline bool slot_is_leaf(unsigned long s)
{
	return s > BTMAP_FULL;
}

/* Blocks in region @r: BTMAP_REGION_BLOCKS except for a short last one. */
static unsigned int region_blocks(const struct btmap *map, unsigned long r)
{
	u64 left = map->nr_blocks - ((u64)r << BTMAP_REGION_SHIFT);

	return left < BTMAP_REGION_BLOCKS ? (unsigned int)left : BTMAP_REGION_BLOCKS;
}

static void leaf_free(unsigned long *leaf)
{
	btmap_free(leaf);
	btmap_alloc_count(-1);
}

/* ---- Retiring leaves after a grace period -------------------------------- */

/*
 * Leaves replaced by FULL are kept here until one grace period covers the
 * whole batch. The array is sized for the expected batch; if allocating it
 * fails, or more leaves come, we fall back to small batches.
 */
struct btmap_retire {
	unsigned long **v;
	unsigned long n, cap;
	bool allocated;
	unsigned long *small[16];
};

static void retire_init(struct btmap_retire *rt, unsigned long want)
{
	rt->n = 0;
	rt->allocated = false;
	rt->v = rt->small;
	rt->cap = sizeof(rt->small) / sizeof(rt->small[0]);
	if (want > rt->cap) {
		unsigned long **v = btmap_kvcalloc(want, sizeof(*v));

		if (v) {
			btmap_alloc_count(1);
			rt->v = v;
			rt->cap = want;
			rt->allocated = true;
		}
	}
}

static void retire_flush(struct btmap_retire *rt)
{
	unsigned long i;

	if (!rt->n)
		return;
	/* After this no marker still holds any of these leaves. */
	synchronize_rcu();
	for (i = 0; i < rt->n; i++)
		leaf_free(rt->v[i]);
	rt->n = 0;
}

static void retire_add(struct btmap_retire *rt, unsigned long *leaf)
{
	if (rt->n == rt->cap)
		retire_flush(rt);
	rt->v[rt->n++] = leaf;
}

static void retire_done(struct btmap_retire *rt)
{
	retire_flush(rt);
	if (rt->allocated) {
		btmap_kvfree(rt->v);
		btmap_alloc_count(-1);
	}
}

/* Replace the leaf in region @r by FULL; the leaf goes to @rt. */
static void collapse(struct btmap *map, unsigned long r, struct btmap_retire *rt)
{
	unsigned long old = xchg(&map->slots[r], BTMAP_FULL);

	if (!slot_is_leaf(old))
		return;
	atomic_long_sub(BTMAP_LEAF_BYTES, &map->leaf_bytes);
	retire_add(rt, (unsigned long *)old);
}

/* ---- Create, destroy ----------------------------------------------------- */

struct btmap *btmap_create(u64 nr_blocks, u64 mem_limit)
{
	struct btmap *map;
	u64 nr_regions;

	if (!nr_blocks)
		return NULL;
	nr_regions = ((nr_blocks - 1) >> BTMAP_REGION_SHIFT) + 1;
	if (nr_regions > BTMAP_MAX_REGIONS)
		return NULL;

	map = btmap_zalloc(sizeof(*map));
	if (!map)
		return NULL;
	btmap_alloc_count(1);
	map->nr_blocks = nr_blocks;
	map->mem_limit = mem_limit;
	map->nr_regions = (unsigned long)nr_regions;
	atomic_long_set(&map->leaf_bytes, 0);

	map->slots = btmap_kvcalloc(map->nr_regions, sizeof(*map->slots));
	if (!map->slots)
		goto out_free_map;
	btmap_alloc_count(1);
	map->fill = btmap_kvcalloc(map->nr_regions, sizeof(*map->fill));
	if (!map->fill)
		goto out_free_slots;
	btmap_alloc_count(1);
	return map;

out_free_slots:
	btmap_kvfree(map->slots);
	btmap_alloc_count(-1);
out_free_map:
	btmap_free(map);
	btmap_alloc_count(-1);
	return NULL;
}

void btmap_destroy(struct btmap *map)
{
	unsigned long r;

	if (!map)
		return;
	for (r = 0; r < map->nr_regions; r++)
		if (slot_is_leaf(map->slots[r]))
			leaf_free((unsigned long *)map->slots[r]);
	btmap_kvfree(map->fill);
	btmap_alloc_count(-1);
	btmap_kvfree(map->slots);
	btmap_alloc_count(-1);
	btmap_free(map);
	btmap_alloc_count(-1);
}

/* ---- Marking ------------------------------------------------------------- */

/* Set @mask in *@word; return how many of its bits were not set before. */
static inline unsigned int word_set(unsigned long *word, unsigned long mask)
{
	unsigned long old;

	/* A rewrite of dirty blocks must not dirty the cache line. */
	if ((READ_ONCE(*word) & mask) == mask)
		return 0;
	old = btmap_fetch_or(word, mask);
	return btmap_popcount(mask & ~old);
}

/* Set bits [@off, @off + @n) of @leaf; return how many were newly set. */
static unsigned int leaf_set(unsigned long *leaf, unsigned int off, unsigned int n)
{
	unsigned int end = off + n, newly = 0;

	while (off < end) {
		unsigned int b = off % BTMAP_WORD_BITS;
		unsigned int k = end - off;
		unsigned long mask;

		if (k > BTMAP_WORD_BITS - b)
			k = BTMAP_WORD_BITS - b;
		mask = k == BTMAP_WORD_BITS ? ~0UL : ((1UL << k) - 1) << b;
		newly += word_set(&leaf[off / BTMAP_WORD_BITS], mask);
		off += k;
	}
	return newly;
}

static inline bool over_limit(const struct btmap *map)
{
	return map->mem_limit &&
	       (u64)atomic_long_read(&map->leaf_bytes) + BTMAP_LEAF_BYTES > map->mem_limit;
}

/* Mark [@off, @off + @n) of region @r, @n >= 1. */
static bool mark_region(struct btmap *map, unsigned long r, unsigned int off,
			unsigned int n)
{
	unsigned long *slot = &map->slots[r];
	unsigned long s = READ_ONCE(*slot);
	unsigned int newly, all = region_blocks(map, r);

	while (s == BTMAP_CLEAN) {
		bool whole = n == all;
		unsigned long *leaf = NULL;

		if (!whole && !over_limit(map))
			leaf = btmap_leaf_alloc(BTMAP_LEAF_BYTES);
		if (!leaf) {
			/*
			 * The whole region, or no room or memory for a leaf:
			 * precision degrades, a change is never lost.
			 */
			s = cmpxchg(slot, BTMAP_CLEAN, BTMAP_FULL);
			if (s == BTMAP_CLEAN)
				return !whole;
			continue;
		}
		btmap_alloc_count(1);
		s = cmpxchg(slot, BTMAP_CLEAN, (unsigned long)leaf);
		if (s != BTMAP_CLEAN) {
			/* Another marker won; nobody saw our leaf. */
			leaf_free(leaf);
			continue;
		}
		atomic_long_add(BTMAP_LEAF_BYTES, &map->leaf_bytes);
		s = (unsigned long)leaf;
	}
	if (s == BTMAP_FULL)
		return false;

	btmap_mark_window();
	newly = leaf_set((unsigned long *)s, off, n);
	return newly && (unsigned int)atomic_add_return(newly, &map->fill[r]) >= all;
}

bool btmap_mark(struct btmap *map, u64 first, u64 count)
{
	bool want = false;
	u64 end;

	if (first >= map->nr_blocks || !count)
		return false;
	end = count > map->nr_blocks - first ? map->nr_blocks : first + count;

	while (first < end) {
		unsigned long r = (unsigned long)(first >> BTMAP_REGION_SHIFT);
		unsigned int off = (unsigned int)(first & (BTMAP_REGION_BLOCKS - 1));
		u64 n = end - first;

		if (n > BTMAP_REGION_BLOCKS - off)
			n = BTMAP_REGION_BLOCKS - off;
		if (mark_region(map, r, off, (unsigned int)n))
			want = true;
		first += n;
	}
	return want;
}

/* ---- Coarsening and merging ---------------------------------------------- */

static inline unsigned int fill_bin(unsigned int fill)
{
	if (fill > BTMAP_REGION_BLOCKS)
		fill = BTMAP_REGION_BLOCKS;
	return fill >> BTMAP_HIST_SHIFT;
}

void btmap_coarsen(struct btmap *map, u64 target)
{
	unsigned long hist[BTMAP_HIST_BINS] = { 0 };
	unsigned long r, nfull = 0, need = 0, take = 0;
	struct btmap_retire rt;
	unsigned int t = 0;
	long bytes;

	/* Count full leaves and build the histogram of the others' fill. */
	for (r = 0; r < map->nr_regions; r++) {
		unsigned int fill;

		if (!slot_is_leaf(READ_ONCE(map->slots[r])))
			continue;
		fill = atomic_read(&map->fill[r]);
		if (fill >= region_blocks(map, r))
			nfull++;
		else
			hist[fill_bin(fill)]++;
	}

	bytes = atomic_long_read(&map->leaf_bytes) - (long)nfull * BTMAP_LEAF_BYTES;
	if (bytes > 0 && (u64)bytes > target)
		need = ((u64)bytes - target + BTMAP_LEAF_BYTES - 1) / BTMAP_LEAF_BYTES;
	if (need) {
		/* Densest bins first: all of bins above t, @take leaves of bin t. */
		unsigned long acc = 0;

		for (t = BTMAP_HIST_BINS; t-- > 0; ) {
			if (acc + hist[t] >= need)
				break;
			acc += hist[t];
		}
		if (t >= BTMAP_HIST_BINS) {	/* fewer leaves than needed: all */
			t = 0;
			take = ~0UL;
		} else {
			take = need - acc;
		}
	}

	retire_init(&rt, nfull + need);
	for (r = 0; r < map->nr_regions; r++) {
		unsigned int fill, b;

		if (!slot_is_leaf(READ_ONCE(map->slots[r])))
			continue;
		fill = atomic_read(&map->fill[r]);
		if (fill >= region_blocks(map, r)) {
			collapse(map, r, &rt);
			continue;
		}
		if (!need)
			continue;
		/* Fill only grows under us: a leaf may move to a higher bin. */
		b = fill_bin(fill);
		if (b > t) {
			collapse(map, r, &rt);
		} else if (b == t && take) {
			take--;
			collapse(map, r, &rt);
		}
	}
	retire_done(&rt);
}

void btmap_merge(struct btmap *dst, struct btmap *src)
{
	struct btmap_retire rt;
	unsigned long r, want = 0;

	for (r = 0; r < src->nr_regions; r++)
		if (src->slots[r] == BTMAP_FULL && slot_is_leaf(READ_ONCE(dst->slots[r])))
			want++;
	retire_init(&rt, want);

	for (r = 0; r < src->nr_regions; r++) {
		unsigned long s = src->slots[r], d;
		unsigned long *leaf;
		unsigned int fill;

		if (s == BTMAP_CLEAN)
			continue;
		src->slots[r] = BTMAP_CLEAN;
		if (s == BTMAP_FULL) {
			collapse(dst, r, &rt);
			continue;
		}

		leaf = (unsigned long *)s;
		fill = atomic_read(&src->fill[r]);
		atomic_set(&src->fill[r], 0);
		atomic_long_sub(BTMAP_LEAF_BYTES, &src->leaf_bytes);

		/* Move the leaf when dst has none; markers may race us for it. */
		d = cmpxchg(&dst->slots[r], BTMAP_CLEAN, s);
		if (d == BTMAP_CLEAN) {
			atomic_long_add(BTMAP_LEAF_BYTES, &dst->leaf_bytes);
			/* Markers add only the bits they newly set: the sum stays exact. */
			atomic_add(fill, &dst->fill[r]);
			continue;
		}
		if (slot_is_leaf(d)) {
			unsigned long *dl = (unsigned long *)d;
			unsigned int i, newly = 0;

			for (i = 0; i < BTMAP_LEAF_WORDS; i++)
				if (leaf[i])
					newly += word_set(&dl[i], leaf[i]);
			if (newly)
				atomic_add(newly, &dst->fill[r]);
		}
		/* src is quiescent: nobody else can hold this leaf. */
		leaf_free(leaf);
	}
	retire_done(&rt);
}

/* ---- Reading ------------------------------------------------------------- */

/* First bit >= @off that is set (@dirty) or clear; BTMAP_REGION_BLOCKS if none. */
static unsigned int leaf_find(const unsigned long *leaf, unsigned int off, bool dirty)
{
	unsigned int w = off / BTMAP_WORD_BITS;
	unsigned long x = READ_ONCE(leaf[w]);

	if (!dirty)
		x = ~x;
	x &= ~0UL << (off % BTMAP_WORD_BITS);
	while (!x) {
		if (++w == BTMAP_LEAF_WORDS)
			return BTMAP_REGION_BLOCKS;
		x = READ_ONCE(leaf[w]);
		if (!dirty)
			x = ~x;
	}
	return w * BTMAP_WORD_BITS + (unsigned int)btmap_ctz(x);
}

/* First block >= @pos that is dirty (@dirty) or clean; nr_blocks if none. */
static u64 map_find(const struct btmap *map, u64 pos, bool dirty)
{
	unsigned long r;

	for (r = (unsigned long)(pos >> BTMAP_REGION_SHIFT); r < map->nr_regions;
	     r++, pos = (u64)r << BTMAP_REGION_SHIFT) {
		unsigned long s = READ_ONCE(map->slots[r]);
		unsigned int off;

		if (s == BTMAP_CLEAN) {
			if (!dirty)
				return pos;
			continue;
		}
		if (s == BTMAP_FULL) {
			if (dirty)
				return pos;
			continue;
		}
		off = leaf_find((const unsigned long *)s,
				(unsigned int)(pos & (BTMAP_REGION_BLOCKS - 1)), dirty);
		if (off < BTMAP_REGION_BLOCKS) {
			pos = ((u64)r << BTMAP_REGION_SHIFT) + off;
			return pos < map->nr_blocks ? pos : map->nr_blocks;
		}
	}
	return map->nr_blocks;
}

bool btmap_next_extent(const struct btmap *map, u64 *pos, u64 *start, u64 *len)
{
	u64 s, e;

	if (*pos >= map->nr_blocks)
		return false;
	/* Keeps leaves that btmap_coarsen() or btmap_merge() retire alive. */
	rcu_read_lock();
	s = map_find(map, *pos, true);
	e = s < map->nr_blocks ? map_find(map, s, false) : s;
	rcu_read_unlock();
	if (s >= map->nr_blocks)
		return false;
	*start = s;
	*len = e - s;
	*pos = e;
	return true;
}

u64 btmap_dirty(const struct btmap *map)
{
	unsigned long r;
	u64 n = 0;

	for (r = 0; r < map->nr_regions; r++) {
		unsigned long s = READ_ONCE(map->slots[r]);

		if (s == BTMAP_FULL)
			n += region_blocks(map, r);
		else if (s != BTMAP_CLEAN)
			n += (unsigned int)atomic_read(&map->fill[r]);
	}
	return n;
}

u64 btmap_bytes(const struct btmap *map)
{
	return sizeof(*map) +
	       (u64)map->nr_regions * (sizeof(*map->slots) + sizeof(*map->fill)) +
	       (u64)atomic_long_read(&map->leaf_bytes);
}

u64 btmap_nr_blocks(const struct btmap *map)
{
	return map->nr_blocks;
}
