// SPDX-License-Identifier: GPL-2.0
/*
 * btmap - the dirty-block map (see btmap.h for the contract).
 *
 * Slot states: BTMAP_CLEAN (0), BTMAP_FULL (1), a pointer to a bitmap leaf
 * (BTMAP_LEAF_BYTES of bits), or a pointer to an array leaf tagged with
 * BTMAP_ARRAY_TAG (both kinds of leaf are at least 8-byte aligned).
 *
 * Array leaves ("the Roaring idea"): a region with few dirty blocks keeps a
 * sorted array of their 16-bit offsets, 2 bytes a block, so that writes
 * scattered over a large volume cost memory per dirty block, not per region
 * touched. The array is sized in powers of two, 64 to 4096 bytes: those are
 * exact kmalloc size classes, so the memory accounted is the memory used,
 * and an array never costs more than the bitmap it stands for. When a mark
 * would overflow the largest array, the region converts to a bitmap leaf.
 * A mark that covers many blocks of a clean region (BTMAP_ARRAY_DIRECT) goes
 * straight to a bitmap: the array could not hold many more.
 *
 * Bitmap leaves are marked lock-free (fetch_or). An array is changed under
 * its spinlock, which markers take with interrupts off (they run in hard
 * IRQ context too). A marker that must grow or convert an array builds the
 * new leaf while it holds the old one's lock, then swaps the slot by
 * cmpxchg and frees the old array with call_rcu(): markers and readers are
 * in RCU read-side sections (rcu_read_lock, or for btmap_mark_one() the
 * probes' disabled preemption), and one waiting for the lock finds, once it
 * has it, that the slot no longer points to this array, and starts over. (The slot
 * check replaces a "dead" flag: the array cannot be freed and its address
 * reused while the checker is inside its RCU read-side section.) Nothing
 * but a marker holding the lock replaces an array by another leaf; coarsen
 * and merge only replace leaves by FULL, which covers whatever a marker
 * still adds to the array it holds.
 *
 * Transitions: CLEAN -> leaf and CLEAN -> FULL (markers, by cmpxchg),
 * array -> bigger array, bitmap or FULL (markers holding the array's lock,
 * by cmpxchg), leaf -> FULL (btmap_coarsen() and btmap_merge(), by xchg).
 * A FULL slot never changes back while the map is live, so the fill counter
 * of a FULL region is meaningless and ignored: markers that still hold a
 * replaced leaf may keep adding to it until the grace period ends.
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
#define BTMAP_ARRAY_TAG		2UL
#define BTMAP_REGION_SHIFT	15
#define BTMAP_WORD_BITS		(8U * (unsigned int)sizeof(unsigned long))
#define BTMAP_LEAF_WORDS	(BTMAP_LEAF_BYTES / sizeof(unsigned long))
/* Bins of the fill-count histogram used to pick the densest leaves. */
#define BTMAP_HIST_SHIFT	9
#define BTMAP_HIST_BINS		((BTMAP_REGION_BLOCKS >> BTMAP_HIST_SHIFT) + 1)
/* Entries of a hint array (a power of two); see "Single-block marks". */
#define BTMAP_HINTS		256U
#define BTMAP_HINT_BYTES	(BTMAP_HINTS * sizeof(u64))
/* Keeps the slot array below kvmalloc's INT_MAX cap (16 PiB at 4 KiB). */
#define BTMAP_MAX_REGIONS	(1UL << 27)

/* Array leaf sizes: 64 << class bytes, class 0 .. BTMAP_ARRAY_CLASSES - 1. */
#define BTMAP_ARRAY_MIN_SHIFT	6
#define BTMAP_ARRAY_CLASSES	7
/* Most entries of an array leaf (2036 with a 24-byte header). */
#define BTMAP_ARRAY_MAX		array_class_cap(BTMAP_ARRAY_CLASSES - 1)
/* A mark of at least this many blocks on a clean region makes a bitmap. */
#define BTMAP_ARRAY_DIRECT	(BTMAP_ARRAY_MAX / 2)

_Static_assert(BTMAP_REGION_BLOCKS == 1U << BTMAP_REGION_SHIFT,
	       "BTMAP_REGION_SHIFT does not match BTMAP_REGION_BLOCKS");
_Static_assert((1U << (BTMAP_ARRAY_MIN_SHIFT + BTMAP_ARRAY_CLASSES - 1)) == BTMAP_LEAF_BYTES,
	       "the largest array leaf must cost what a bitmap leaf costs");
/* A hint is read and written whole (READ_ONCE/WRITE_ONCE): no torn u64. */
_Static_assert(sizeof(long) == sizeof(u64), "hints need single-copy atomic 64-bit accesses");

struct btmap {
	u64 nr_blocks;
	u64 mem_limit;
	unsigned long nr_regions;
	atomic_long_t leaf_bytes;	/* changes only on leaf alloc/free */
	unsigned long *slots;
	atomic_t *fill;			/* dirty blocks in each region's leaf */
	btmap_hint_t hint;		/* see "Single-block marks" */
};

/* A sparse leaf: the sorted offsets of the region's dirty blocks. */
struct btmap_array {
	struct rcu_head rcu;		/* freeing it once replaced */
	btmap_lock_t lock;		/* nr, off[] and seq */
	u16 nr;				/* entries in use */
	u16 cap;			/* entries that fit; never changes */
	u16 seq;			/* odd while nr or off[] change */
	u16 off[];			/* sorted, distinct */
};

#define BTMAP_ARRAY_HDR		offsetof(struct btmap_array, off)

static inline size_t array_class_bytes(unsigned int c)
{
	return (size_t)1 << (BTMAP_ARRAY_MIN_SHIFT + c);
}

/* Entries that fit in an array of class @c (0 if not even the header). */
static inline unsigned int array_class_cap(unsigned int c)
{
	size_t b = array_class_bytes(c);

	return b > BTMAP_ARRAY_HDR ? (unsigned int)((b - BTMAP_ARRAY_HDR) / sizeof(u16)) : 0;
}

/* The smallest class that holds @n entries; BTMAP_ARRAY_CLASSES if none. */
static unsigned int array_class_for(unsigned int n)
{
	unsigned int c;

	for (c = 0; c < BTMAP_ARRAY_CLASSES; c++)
		if (array_class_cap(c) >= n)
			break;
	return c;
}

static inline unsigned int array_class(const struct btmap_array *a)
{
	return array_class_for(a->cap);
}

static inline bool slot_is_leaf(unsigned long s)
{
	return s > BTMAP_FULL;
}

static inline bool slot_is_array(unsigned long s)
{
	return slot_is_leaf(s) && (s & BTMAP_ARRAY_TAG);
}

static inline struct btmap_array *slot_array(unsigned long s)
{
	return (struct btmap_array *)(s & ~BTMAP_ARRAY_TAG);
}

static inline unsigned long array_slot(const struct btmap_array *a)
{
	return (unsigned long)a | BTMAP_ARRAY_TAG;
}

/* Bytes the leaf in slot value @s takes (cap never changes: no lock). */
static size_t leaf_size(unsigned long s)
{
	if (slot_is_array(s))
		return array_class_bytes(array_class(slot_array(s)));
	return BTMAP_LEAF_BYTES;
}

/* Blocks in region @r: BTMAP_REGION_BLOCKS except for a short last one. */
static unsigned int region_blocks(const struct btmap *map, unsigned long r)
{
	u64 left = map->nr_blocks - ((u64)r << BTMAP_REGION_SHIFT);

	return left < BTMAP_REGION_BLOCKS ? (unsigned int)left : BTMAP_REGION_BLOCKS;
}

/* Free the leaf of slot value @s now: nobody can hold it. */
static void leaf_free(unsigned long s)
{
	if (slot_is_array(s))
		btmap_free(slot_array(s));
	else
		btmap_free((unsigned long *)s);
	btmap_alloc_count(-1);
}

static void array_free_rcu(struct rcu_head *head)
{
	btmap_free(container_of(head, struct btmap_array, rcu));
	btmap_alloc_count(-1);
}

/* ---- Retiring leaves after a grace period -------------------------------- */

/*
 * Leaves replaced by FULL are kept here until one grace period covers the
 * whole batch. The array is sized for the expected batch; if allocating it
 * fails, or more leaves come, we fall back to small batches.
 */
struct btmap_retire {
	unsigned long *v;		/* slot values */
	unsigned long n, cap;
	bool allocated;
	unsigned long small[16];
};

static void retire_init(struct btmap_retire *rt, unsigned long want)
{
	rt->n = 0;
	rt->allocated = false;
	rt->v = rt->small;
	rt->cap = sizeof(rt->small) / sizeof(rt->small[0]);
	if (want > rt->cap) {
		unsigned long *v = btmap_kvcalloc(want, sizeof(*v));

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

static void retire_add(struct btmap_retire *rt, unsigned long leaf)
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
	atomic_long_sub(leaf_size(old), &map->leaf_bytes);
	retire_add(rt, old);
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
	map->hint = btmap_hint_alloc(BTMAP_HINT_BYTES);
	if (!map->hint)
		goto out_free_fill;
	btmap_alloc_count(1);
	return map;

out_free_fill:
	btmap_kvfree(map->fill);
	btmap_alloc_count(-1);
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
			leaf_free(map->slots[r]);
	btmap_hint_free(map->hint);
	btmap_alloc_count(-1);
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

/* Would @more bytes of leaves take the map over its limit? */
static inline bool over_limit(const struct btmap *map, size_t more)
{
	return map->mem_limit &&
	       (u64)atomic_long_read(&map->leaf_bytes) + more > map->mem_limit;
}

static unsigned long *leaf_bitmap_alloc(void)
{
	unsigned long *leaf = btmap_leaf_alloc(BTMAP_LEAF_BYTES);

	if (leaf)
		btmap_alloc_count(1);
	return leaf;
}

static struct btmap_array *array_alloc(unsigned int c)
{
	struct btmap_array *a = btmap_array_alloc(array_class_bytes(c));

	if (!a)
		return NULL;
	btmap_alloc_count(1);
	btmap_lock_init(&a->lock);
	a->nr = 0;
	a->cap = (u16)array_class_cap(c);
	a->seq = 0;
	return a;
}

static inline void run_fill(u16 *v, unsigned int off, unsigned int n)
{
	while (n--)
		*v++ = (u16)off++;
}

/* Index of the first entry of @a in [@lo, @hi) that is >= @off; @hi if none. */
static inline unsigned int array_lower_in(const struct btmap_array *a, unsigned int lo,
					  unsigned int hi, unsigned int off)
{
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (a->off[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first entry of @a at or after @lo that is >= @off. */
static unsigned int array_lower(const struct btmap_array *a, unsigned int lo,
				unsigned int off)
{
	return array_lower_in(a, lo, a->nr, off);
}

/*
 * array_lower(@a, 0, @off) for single-block marks, in fewer steps when the
 * region's dirty blocks are spread evenly (random writes) or @off goes at
 * the end (sequential ones): start where @off would be if they were spread
 * evenly, step a few entries, and only then fall back to a binary search
 * of what is left. @off < BTMAP_REGION_BLOCKS.
 */
#define BTMAP_GUESS_STEPS	8
static inline unsigned int array_lower_guess(const struct btmap_array *a, unsigned int off)
{
	unsigned int nr = a->nr, i, k;

	if (!nr || a->off[nr - 1] < off)
		return nr;
	i = (off * nr) >> BTMAP_REGION_SHIFT;	/* < nr */
	if (a->off[i] < off) {
		/* In (i, nr - 1]: off[nr - 1] >= @off stops the steps. */
		for (k = 0; k < BTMAP_GUESS_STEPS; k++)
			if (a->off[++i] >= off)
				return i;
		return array_lower_in(a, i + 1, nr - 1, off);
	}
	/* In [0, i]: off[i] >= @off. */
	for (k = 0; k < BTMAP_GUESS_STEPS; k++) {
		if (!i || a->off[i - 1] < off)
			return i;
		i--;
	}
	return array_lower_in(a, 0, i, off);
}

/*
 * The sequence count of an array leaf lets array_has() search it without
 * the lock. Writers hold the lock and change nr and off[] in place only
 * between these two. An array takes at most cap (< 2048) in-place inserts
 * in its life before it is replaced, so the 16-bit count cannot wrap
 * under a reader.
 */
static inline void array_write_begin(struct btmap_array *a)
{
	WRITE_ONCE(a->seq, a->seq + 1);
	btmap_smp_wmb();		/* odd before any entry moves */
}

static inline void array_write_end(struct btmap_array *a)
{
	btmap_smp_wmb();		/* entries before even */
	WRITE_ONCE(a->seq, a->seq + 1);
}

/*
 * Mark [@off, @off + @n) in the array @a of region @r. The caller read the
 * slot as @a inside its RCU read-side section. Returns -1 when the slot no
 * longer holds @a (reload it and start over), else whether the map wants
 * btmap_coarsen().
 */
static int array_mark(struct btmap *map, unsigned long r, struct btmap_array *a,
		      unsigned int off, unsigned int n)
{
	unsigned long *slot = &map->slots[r], ta = array_slot(a), leaf = 0, flags;
	unsigned int i, j, nr, c, all = region_blocks(map, r);
	size_t old_bytes, new_bytes;
	bool retire = false;
	int ret;

	btmap_lock(&a->lock, flags);
	if (READ_ONCE(*slot) != ta) {
		/* Grown, converted or collapsed while we waited. */
		ret = -1;
		goto out_unlock;
	}
	i = array_lower(a, 0, off);
	if (n == 1)		/* the common 4k write: one search */
		j = i + (i < a->nr && a->off[i] == off);
	else
		j = array_lower(a, i, off + n);
	if (j - i == n) {		/* all there already */
		ret = 0;
		goto out_unlock;
	}
	nr = a->nr + n - (j - i);
	if (nr <= a->cap) {
		array_write_begin(a);
		memmove(&a->off[i + n], &a->off[j], (a->nr - j) * sizeof(u16));
		run_fill(&a->off[i], off, n);
		a->nr = (u16)nr;
		array_write_end(a);
		goto out_added;
	}

	/* Grow into the next array that holds the result, or a bitmap. */
	old_bytes = array_class_bytes(array_class(a));
	c = array_class_for(nr);
	if (c < BTMAP_ARRAY_CLASSES) {
		struct btmap_array *b;

		new_bytes = array_class_bytes(c);
		b = over_limit(map, new_bytes - old_bytes) ? NULL : array_alloc(c);
		if (b) {
			memcpy(b->off, a->off, i * sizeof(u16));
			run_fill(&b->off[i], off, n);
			memcpy(&b->off[i + n], &a->off[j], (a->nr - j) * sizeof(u16));
			b->nr = (u16)nr;
			leaf = array_slot(b);
		}
	} else {
		unsigned long *bm;

		new_bytes = BTMAP_LEAF_BYTES;
		bm = over_limit(map, new_bytes - old_bytes) ? NULL : leaf_bitmap_alloc();
		if (bm) {
			unsigned int k;

			for (k = 0; k < a->nr; k++)
				bm[a->off[k] / BTMAP_WORD_BITS] |=
					1UL << (a->off[k] % BTMAP_WORD_BITS);
			leaf_set(bm, off, n);
			leaf = (unsigned long)bm;
		}
	}
	if (!leaf) {
		/* No room or memory: precision degrades, no change is lost. */
		if (cmpxchg(slot, ta, BTMAP_FULL) == ta) {
			atomic_long_sub(old_bytes, &map->leaf_bytes);
			retire = true;
		}
		ret = 1;
		goto out_unlock;
	}
	if (cmpxchg(slot, ta, leaf) != ta) {
		/* Collapsed to FULL by coarsen or merge: that covers the mark. */
		leaf_free(leaf);
		ret = 0;
		goto out_unlock;
	}
	atomic_long_add(new_bytes - old_bytes, &map->leaf_bytes);
	retire = true;
out_added:
	ret = (unsigned int)atomic_add_return(n - (j - i), &map->fill[r]) >= all;
out_unlock:
	btmap_unlock(&a->lock, flags);
	/* Markers and readers may still hold @a: free it after a grace period. */
	if (retire)
		btmap_call_rcu(&a->rcu, array_free_rcu);
	return ret;
}

/*
 * Mark [@off, @off + @n) of the clean region @r with a new leaf. Returns
 * -1 when another marker set the slot first, else whether the map wants
 * btmap_coarsen().
 */
static int clean_mark(struct btmap *map, unsigned long r, unsigned int off, unsigned int n)
{
	unsigned int c = n < BTMAP_ARRAY_DIRECT ? array_class_for(n) : BTMAP_ARRAY_CLASSES;
	unsigned int all = region_blocks(map, r);
	unsigned long *slot = &map->slots[r], leaf = 0;
	bool whole = n == all;

	if (whole) {
		/* No leaf: FULL is exact. */
	} else if (c < BTMAP_ARRAY_CLASSES) {
		struct btmap_array *a;

		a = over_limit(map, array_class_bytes(c)) ? NULL : array_alloc(c);
		if (a) {
			run_fill(a->off, off, n);
			a->nr = (u16)n;
			leaf = array_slot(a);
		}
	} else {
		unsigned long *bm = over_limit(map, BTMAP_LEAF_BYTES) ? NULL : leaf_bitmap_alloc();

		if (bm) {
			leaf_set(bm, off, n);
			leaf = (unsigned long)bm;
		}
	}
	if (!leaf) {
		/*
		 * The whole region, or no room or memory for a leaf:
		 * precision degrades, a change is never lost.
		 */
		if (cmpxchg(slot, BTMAP_CLEAN, BTMAP_FULL) != BTMAP_CLEAN)
			return -1;
		return !whole;
	}
	if (cmpxchg(slot, BTMAP_CLEAN, leaf) != BTMAP_CLEAN) {
		/* Another marker won; nobody saw our leaf. */
		leaf_free(leaf);
		return -1;
	}
	atomic_long_add(leaf_size(leaf), &map->leaf_bytes);
	return (unsigned int)atomic_add_return(n, &map->fill[r]) >= all;
}

/* Mark [@off, @off + @n) of region @r, @n >= 1. */
static bool mark_region(struct btmap *map, unsigned long r, unsigned int off,
			unsigned int n)
{
	unsigned long *slot = &map->slots[r];
	unsigned int newly, all = region_blocks(map, r);

	for (;;) {
		unsigned long s = READ_ONCE(*slot);
		int ret;

		if (s == BTMAP_FULL)
			return false;
		if (s == BTMAP_CLEAN) {
			ret = clean_mark(map, r, off, n);
		} else if (slot_is_array(s)) {
			btmap_mark_window();
			ret = array_mark(map, r, slot_array(s), off, n);
		} else {
			btmap_mark_window();
			newly = leaf_set((unsigned long *)s, off, n);
			return newly &&
			       (unsigned int)atomic_add_return(newly, &map->fill[r]) >= all;
		}
		if (ret >= 0)
			return ret;
	}
}

bool btmap_mark(struct btmap *map, u64 first, u64 count)
{
	bool want = false;
	u64 end;

	if (first >= map->nr_blocks || !count)
		return false;
	end = count > map->nr_blocks - first ? map->nr_blocks : first + count;

	/* Callers hold it already (probes); it keeps array leaves alive. */
	rcu_read_lock();
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
	rcu_read_unlock();
	return want;
}

/* ---- Single-block marks ------------------------------------------------- */

/*
 * Hints: every write is marked twice, at submission and again at completion
 * (doc/KERNEL.md), and the second mark nearly always finds the block set.
 * So btmap_mark_one() records each block it marked in a small direct-mapped
 * array of the map, entry (block % BTMAP_HINTS) = block + 1 (0: none), one
 * array per CPU in the kernel: completions mostly run on the submitting
 * CPU. An entry is written after its block is marked, in one store, and the
 * map never loses a mark while it is live, so an entry that matches proves
 * the block dirty; a completion that finds its block there returns at once.
 * A miss (evicted, another CPU) costs the lookup it would have made anyway.
 * The only map that loses marks, btmap_merge()'s source, clears its hints.
 */

/*
 * Is @off in the array @a? Lock-free: a search bounded by cap whatever it
 * reads, validated by the sequence count. False when @off is absent, and
 * when a writer was changing the array (the caller then takes the lock).
 * The caller's RCU read-side section keeps @a alive.
 */
static inline bool array_has(const struct btmap_array *a, unsigned int off)
{
	unsigned int seq, lo = 0, hi;
	bool found = false;

	seq = READ_ONCE(a->seq);
	if (seq & 1)
		return false;
	btmap_smp_rmb();		/* seq before the entries */
	hi = READ_ONCE(a->nr);
	if (hi > a->cap)
		hi = a->cap;
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2, v = READ_ONCE(a->off[mid]);

		if (v == off) {
			found = true;
			break;
		}
		if (v < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	btmap_smp_rmb();		/* the entries before seq again */
	return found && READ_ONCE(a->seq) == seq;
}

/* array_mark() for one block: one search, an insert in place, no call. */
static inline int array_mark_one(struct btmap *map, unsigned long r,
				 struct btmap_array *a, unsigned int off)
{
	unsigned long flags;
	unsigned int i, nr;

	btmap_lock(&a->lock, flags);
	if (READ_ONCE(map->slots[r]) != array_slot(a)) {
		btmap_unlock(&a->lock, flags);
		return -1;	/* replaced while we waited: start over */
	}
	nr = a->nr;
	i = array_lower_guess(a, off);
	if (i < nr && a->off[i] == off) {
		btmap_unlock(&a->lock, flags);
		return 0;
	}
	if (nr == a->cap) {
		/* Grow or convert: the general path (it locks again). */
		btmap_unlock(&a->lock, flags);
		return array_mark(map, r, a, off, 1);
	}
	array_write_begin(a);
	memmove(&a->off[i + 1], &a->off[i], (nr - i) * sizeof(u16));
	a->off[i] = (u16)off;
	a->nr = (u16)(nr + 1);
	array_write_end(a);
	btmap_unlock(&a->lock, flags);
	return (unsigned int)atomic_add_return(1, &map->fill[r]) >= region_blocks(map, r);
}

/* btmap_mark_one() past its hint check; @hint: the entry for @block. */
static btmap_noinline bool mark_one(struct btmap *map, u64 block, bool likely_set, u64 *hint)
{
	unsigned long r = (unsigned long)(block >> BTMAP_REGION_SHIFT), s;
	unsigned int off = (unsigned int)(block & (BTMAP_REGION_BLOCKS - 1));
	int ret;

	btmap_probe_read_lock();
	do {
		s = READ_ONCE(map->slots[r]);
		if (s == BTMAP_FULL) {
			ret = 0;
		} else if (s == BTMAP_CLEAN) {
			ret = clean_mark(map, r, off, 1);
		} else if (slot_is_array(s)) {
			btmap_mark_window();
			if (likely_set && array_has(slot_array(s), off))
				ret = 0;
			else
				ret = array_mark_one(map, r, slot_array(s), off);
		} else {
			btmap_mark_window();
			ret = 0;
			/* A rewrite of a dirty block must not dirty the cache line. */
			if (!(READ_ONCE(((unsigned long *)s)[off / BTMAP_WORD_BITS]) &
			      (1UL << (off % BTMAP_WORD_BITS))) &&
			    !btmap_test_and_set_bit(off, (unsigned long *)s))
				ret = (unsigned int)atomic_add_return(1, &map->fill[r]) >=
				      region_blocks(map, r);
		}
	} while (ret < 0);
	btmap_probe_read_unlock();
	WRITE_ONCE(*hint, block + 1);
	return ret;
}

bool btmap_mark_one(struct btmap *map, u64 block, bool likely_set)
{
	u64 *hint;

	if (block >= map->nr_blocks)
		return false;
	hint = &btmap_hint_here(map->hint)[block % BTMAP_HINTS];
	if (likely_set && READ_ONCE(*hint) == block + 1)
		return false;	/* the completion of a write marked at submission */
	return mark_one(map, block, likely_set, hint);
}

/* ---- Coarsening and merging ---------------------------------------------- */

static inline unsigned int fill_bin(unsigned int fill)
{
	if (fill > BTMAP_REGION_BLOCKS)
		fill = BTMAP_REGION_BLOCKS;
	return fill >> BTMAP_HIST_SHIFT;
}

/*
 * Which leaves go FULL: bitmap leaves first, densest (by fill) first, as
 * each one frees BTMAP_LEAF_BYTES and costs the least precision per byte
 * freed; array leaves only when collapsing every bitmap leaf is not enough,
 * biggest (and so densest) first. For both kinds: every leaf above the
 * threshold bin (or class), and @take of the leaves in it.
 */
struct coarsen_plan {
	unsigned int t, ta;		/* threshold bin and class; _BINS/_CLASSES: none */
	unsigned long take, atake;
};

static bool plan_takes(struct coarsen_plan *p, unsigned long s, unsigned int fill)
{
	unsigned int b;

	if (slot_is_array(s)) {
		b = array_class(slot_array(s));
		if (b > p->ta)
			return true;
		if (b == p->ta && p->atake) {
			p->atake--;
			return true;
		}
		return false;
	}
	/* Fill only grows under us: a leaf may move to a higher bin. */
	b = fill_bin(fill);
	if (b > p->t)
		return true;
	if (b == p->t && p->take) {
		p->take--;
		return true;
	}
	return false;
}

void btmap_coarsen(struct btmap *map, u64 target)
{
	unsigned long hist[BTMAP_HIST_BINS] = { 0 }, acls[BTMAP_ARRAY_CLASSES] = { 0 };
	struct coarsen_plan plan = { BTMAP_HIST_BINS, BTMAP_ARRAY_CLASSES, 0, 0 };
	unsigned long r, nfull = 0, nbm = 0, narr = 0, want;
	u64 full_bytes = 0, over = 0;
	struct btmap_retire rt;
	long bytes;

	/*
	 * Count full leaves and build the histograms of the others. A marker
	 * may replace an array under us and free it after a grace period: the
	 * read-side section keeps the ones we look at alive.
	 */
	rcu_read_lock();
	for (r = 0; r < map->nr_regions; r++) {
		unsigned long s = READ_ONCE(map->slots[r]);
		unsigned int fill;

		if (!slot_is_leaf(s))
			continue;
		fill = atomic_read(&map->fill[r]);
		if (fill >= region_blocks(map, r)) {
			nfull++;
			full_bytes += leaf_size(s);
		} else if (slot_is_array(s)) {
			acls[array_class(slot_array(s))]++;
			narr++;
		} else {
			hist[fill_bin(fill)]++;
			nbm++;
		}
	}
	rcu_read_unlock();

	bytes = atomic_long_read(&map->leaf_bytes) - (long)full_bytes;
	if (bytes > 0 && (u64)bytes > target)
		over = (u64)bytes - target;
	if (over && (u64)nbm * BTMAP_LEAF_BYTES >= over) {
		unsigned long need = (over + BTMAP_LEAF_BYTES - 1) / BTMAP_LEAF_BYTES, acc = 0;

		for (plan.t = BTMAP_HIST_BINS; plan.t-- > 0; ) {
			if (acc + hist[plan.t] >= need)
				break;
			acc += hist[plan.t];
		}
		plan.take = need - acc;
	} else if (over) {
		u64 acc = 0;

		plan.t = 0;			/* every bitmap leaf ... */
		plan.take = ~0UL;
		over -= (u64)nbm * BTMAP_LEAF_BYTES;
		for (plan.ta = BTMAP_ARRAY_CLASSES; plan.ta-- > 0; ) {
			u64 cb = array_class_bytes(plan.ta);

			if (acc + acls[plan.ta] * cb >= over) {
				plan.atake = (unsigned long)((over - acc + cb - 1) / cb);
				break;
			}
			acc += acls[plan.ta] * cb;
		}
		if (plan.ta >= BTMAP_ARRAY_CLASSES) {	/* ... and every array */
			plan.ta = 0;
			plan.atake = ~0UL;
		}
	}

	want = nfull + (over ? nbm + narr : 0);
	retire_init(&rt, want);
	for (r = 0; r < map->nr_regions; r++) {
		unsigned int fill;
		unsigned long s;
		bool take;

		/* As above; collapse() may sleep, outside the section. */
		rcu_read_lock();
		s = READ_ONCE(map->slots[r]);
		fill = atomic_read(&map->fill[r]);
		take = slot_is_leaf(s) &&
		       (fill >= region_blocks(map, r) || (over && plan_takes(&plan, s, fill)));
		rcu_read_unlock();
		if (take)
			collapse(map, r, &rt);
	}
	retire_done(&rt);
}

static unsigned int leaf_find(const unsigned long *leaf, unsigned int off, bool dirty);

/* Mark in @dst's region @r every block of the (quiescent) leaf @s. */
static void merge_leaf(struct btmap *dst, unsigned long r, unsigned long s)
{
	unsigned int i, k;

	if (slot_is_array(s)) {
		const struct btmap_array *a = slot_array(s);

		for (i = 0; i < a->nr; i = k) {
			for (k = i + 1; k < a->nr && a->off[k] == a->off[k - 1] + 1; k++)
				;
			mark_region(dst, r, a->off[i], k - i);
		}
		return;
	}
	for (i = 0; i < BTMAP_REGION_BLOCKS; i = k) {
		i = leaf_find((const unsigned long *)s, i, true);
		if (i >= BTMAP_REGION_BLOCKS)
			break;
		k = leaf_find((const unsigned long *)s, i, false);
		mark_region(dst, r, i, k - i);
	}
}

void btmap_merge(struct btmap *dst, struct btmap *src)
{
	struct btmap_retire rt;
	unsigned long r, want = 0;

	for (r = 0; r < src->nr_regions; r++)
		if (src->slots[r] == BTMAP_FULL && slot_is_leaf(READ_ONCE(dst->slots[r])))
			want++;
	retire_init(&rt, want);
	/* src is emptied: its hints would lie. */
	btmap_hint_clear(src->hint, BTMAP_HINT_BYTES);

	for (r = 0; r < src->nr_regions; r++) {
		unsigned long s = src->slots[r], d;
		unsigned int fill;

		if (s == BTMAP_CLEAN)
			continue;
		src->slots[r] = BTMAP_CLEAN;
		if (s == BTMAP_FULL) {
			collapse(dst, r, &rt);
			continue;
		}

		fill = atomic_read(&src->fill[r]);
		atomic_set(&src->fill[r], 0);
		atomic_long_sub(leaf_size(s), &src->leaf_bytes);

		/* Move the leaf when dst has none; markers may race us for it. */
		d = cmpxchg(&dst->slots[r], BTMAP_CLEAN, s);
		if (d == BTMAP_CLEAN) {
			atomic_long_add(leaf_size(s), &dst->leaf_bytes);
			/* Markers add only the bits they newly set: the sum stays exact. */
			atomic_add(fill, &dst->fill[r]);
			continue;
		}
		if (slot_is_leaf(d) && !slot_is_array(d) && !slot_is_array(s)) {
			unsigned long *dl = (unsigned long *)d, *leaf = (unsigned long *)s;
			unsigned int i, newly = 0;

			for (i = 0; i < BTMAP_LEAF_WORDS; i++)
				if (leaf[i])
					newly += word_set(&dl[i], leaf[i]);
			if (newly)
				atomic_add(newly, &dst->fill[r]);
		} else if (d != BTMAP_FULL) {
			/*
			 * An array on either side: mark as markers do (this
			 * may grow or convert dst's leaf). The read-side
			 * section keeps dst's array alive if a marker
			 * replaces it.
			 */
			rcu_read_lock();
			merge_leaf(dst, r, s);
			rcu_read_unlock();
		}
		/* src is quiescent: nobody else can hold this leaf. */
		leaf_free(s);
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

/* The same in an array leaf, under its lock (RCU keeps @a alive). */
static unsigned int array_find(struct btmap_array *a, unsigned int off, bool dirty)
{
	unsigned long flags;
	unsigned int i, ret;

	btmap_lock(&a->lock, flags);
	i = array_lower(a, 0, off);
	if (dirty) {
		ret = i < a->nr ? a->off[i] : BTMAP_REGION_BLOCKS;
	} else {
		for (ret = off; i < a->nr && a->off[i] == ret; i++)
			ret++;
	}
	btmap_unlock(&a->lock, flags);
	return ret;
}

/* First block >= @pos that is dirty (@dirty) or clean; nr_blocks if none. */
static u64 map_find(const struct btmap *map, u64 pos, bool dirty)
{
	unsigned long r;

	for (r = (unsigned long)(pos >> BTMAP_REGION_SHIFT); r < map->nr_regions;
	     r++, pos = (u64)r << BTMAP_REGION_SHIFT) {
		unsigned long s = READ_ONCE(map->slots[r]);
		unsigned int off = (unsigned int)(pos & (BTMAP_REGION_BLOCKS - 1));

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
		if (slot_is_array(s))
			off = array_find(slot_array(s), off, dirty);
		else
			off = leaf_find((const unsigned long *)s, off, dirty);
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
	/* Keeps leaves that markers, btmap_coarsen() or btmap_merge() retire alive. */
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
	return sizeof(*map) + btmap_hint_bytes(BTMAP_HINT_BYTES) +
	       (u64)map->nr_regions * (sizeof(*map->slots) + sizeof(*map->fill)) +
	       (u64)atomic_long_read(&map->leaf_bytes);
}

u64 btmap_nr_blocks(const struct btmap *map)
{
	return map->nr_blocks;
}
