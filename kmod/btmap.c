// SPDX-License-Identifier: GPL-2.0
/*
 * btmap - the dirty-block map (see btmap.h for the contract).
 *
 * Slot states: BTMAP_CLEAN (0), BTMAP_FULL (1), a pointer to a bitmap leaf
 * (BTMAP_LEAF_BYTES of bits), or a pointer to a hash leaf tagged with
 * BTMAP_HASH_TAG (both kinds of leaf are at least 8-byte aligned).
 *
 * Hash leaves: a region with few dirty blocks keeps their 16-bit offsets in
 * an open-addressed hash table (linear probing), 2 bytes a cell, so that
 * writes scattered over a large volume cost memory per dirty block, not per
 * region touched. A cell holds offset + 1 (0: empty) and changes once,
 * from empty to an offset, by cmpxchg: an insert is a short probe and one
 * cmpxchg, with no lock, no shift and no search of sorted entries, and any
 * context may insert (hard IRQ included). Entries never move, so a lookup
 * needs no lock either. Order is needed only by readers (process context),
 * which scan the table: btmap_next_extent() costs a pass over the cells of
 * each hash leaf per extent (at most 1013 cells, about 3 us).
 *
 * The table is sized in powers of two, 64 to 2048 bytes: those are exact
 * kmalloc size classes, so the memory accounted is the memory used. It
 * holds at most 13/16 of its cells; the insert that goes past that replaces
 * it by a bigger copy, or past the largest table by a bitmap leaf (4096
 * bytes: a 4096-byte table would cost as much, and mark and read slower).
 * A mark that takes a region past what the biggest table holds makes it a
 * bitmap at once, its blocks set a word at a time: a bitmap is never
 * bigger than the table the region would need.
 *
 * Replacing a hash leaf, lock-free (hash_replace()): the replacer *freezes*
 * it, setting every empty cell to BTMAP_HASH_FROZEN by cmpxchg, and copies
 * each entry as it passes. A cell it has passed never changes again, so
 * the copy holds every insert that succeeded, and an insert that comes
 * later finds no empty cell to take: it never reports a block marked in a
 * leaf that is being dropped. Such an inserter does the replacement itself
 * (freezing and copying what is left), then starts over from the slot.
 * Nobody waits for anybody: an insert that interrupts a replacement on its
 * own CPU (a completion in hard IRQ) just finishes it first. Every
 * replacer's copy is the same; the slot's cmpxchg picks one, the others
 * free theirs. The winner frees the old leaf with call_rcu(): markers and
 * readers are in RCU read-side sections (rcu_read_lock, or for the
 * markers in the kernel their callers' disabled preemption), so no leaf can be
 * freed and its address reused under one of them.
 *
 * Transitions: CLEAN -> leaf and CLEAN -> FULL (markers, by cmpxchg),
 * frozen hash -> bigger hash, bitmap or FULL (any marker, by cmpxchg),
 * leaf -> FULL (btmap_coarsen() and btmap_merge(), by xchg; a FULL slot
 * covers whatever a marker still adds to the leaf it holds). A FULL slot
 * never changes back while the map is live, so the fill counter of a FULL
 * region is meaningless and ignored: markers that still hold a replaced
 * leaf may keep adding to it until the grace period ends.
 *
 * The only exception is the source of btmap_merge(), which is quiescent and
 * is emptied back to CLEAN.
 */
#include "btmap.h"

atomic_long_t blktrack_allocations = ATOMIC_LONG_INIT(0);

#ifndef __KERNEL__
/* The userspace build's test hooks (btmap_env.h). */
int btmap_fail_leaf_alloc;
void (*btmap_mark_delay)(void);
void (*btmap_replace_delay)(void);
#endif

#define BTMAP_CLEAN		0UL
#define BTMAP_FULL		1UL
#define BTMAP_HASH_TAG		2UL
#define BTMAP_REGION_SHIFT	15
#define BTMAP_WORD_BITS		(8U * (unsigned int)sizeof(unsigned long))
#define BTMAP_LEAF_WORDS	(BTMAP_LEAF_BYTES / sizeof(unsigned long))
/* Bins of the fill-count histogram used to pick the densest leaves. */
#define BTMAP_HIST_SHIFT	9
#define BTMAP_HIST_BINS		((BTMAP_REGION_BLOCKS >> BTMAP_HIST_SHIFT) + 1)
/* Bytes of a hint array (btmap.h: BTMAP_HINTS and the last run); see "Hints". */
#define BTMAP_HINT_BYTES	((BTMAP_HINTS + 1) * sizeof(u64))
/* Keeps the slot array below kvmalloc's INT_MAX cap (16 PiB at 4 KiB). */
#define BTMAP_MAX_REGIONS	(1UL << 27)

/*
 * Hash leaf sizes: 64 << class bytes, class 0 .. BTMAP_HASH_CLASSES - 1,
 * up to half a bitmap leaf: a table as big as a bitmap would cost the same
 * memory, and a bitmap is faster to mark and to read.
 */
#define BTMAP_HASH_MIN_SHIFT	6
#define BTMAP_HASH_CLASSES	6
/* A cell frozen empty (hash_replace()); entries are 1 .. BTMAP_REGION_BLOCKS. */
#define BTMAP_HASH_FROZEN	0xffffU
/* Most entries of a hash leaf (823 with a 20-byte header and the end mark). */
#define BTMAP_HASH_MAX		hash_class_max(BTMAP_HASH_CLASSES - 1)

static_assert(BTMAP_REGION_BLOCKS == 1U << BTMAP_REGION_SHIFT,
	      "BTMAP_REGION_SHIFT does not match BTMAP_REGION_BLOCKS");
static_assert((2U << (BTMAP_HASH_MIN_SHIFT + BTMAP_HASH_CLASSES - 1)) == BTMAP_LEAF_BYTES,
	      "the largest hash leaf must cost half what a bitmap leaf costs");
static_assert(BTMAP_REGION_BLOCKS < BTMAP_HASH_FROZEN, "entries must fit in a cell");
/* A hint entry holds first + 1 below its count bits (btmap.h). */
static_assert(((u64)BTMAP_MAX_REGIONS << BTMAP_REGION_SHIFT) <
	      (1ULL << BTMAP_HINT_COUNT_SHIFT), "blocks must fit below a hint entry's count");
/* A hint is read and written whole (READ_ONCE/WRITE_ONCE): no torn u64. */
static_assert(sizeof(long) == sizeof(u64), "hints need single-copy atomic 64-bit accesses");

struct btmap {
	struct btmap_front f;		/* nr_blocks, hint: first (btmap.h) */
	u64 mem_limit;
	unsigned long nr_regions;
	atomic_long_t leaf_bytes;	/* changes only on leaf alloc/free */
	unsigned long *slots;
	atomic_t *fill;			/* dirty blocks in each region's leaf */
};

/*
 * A sparse leaf: an open-addressed table of the region's dirty blocks.
 * Cells go from 0 to offset + 1, or to BTMAP_HASH_FROZEN, once (cmpxchg).
 * One more cell, cell[cap], is BTMAP_HASH_FROZEN from the start: it ends
 * the markers' probe loop (hash_insert_fast()) without a bound or a wrap.
 */
struct btmap_hash {
	struct rcu_head rcu;		/* freeing it once replaced */
	u16 cap;			/* cells; never changes */
	u16 max;			/* entries it takes: then grow, or it is full */
	u16 cell[];			/* cap + 1 */
};

#define BTMAP_HASH_HDR		offsetof(struct btmap_hash, cell)

static inline size_t hash_class_bytes(unsigned int c)
{
	return (size_t)1 << (BTMAP_HASH_MIN_SHIFT + c);
}

/* Cells of a table of class @c, not counting the end mark. */
static inline unsigned int hash_class_cap(unsigned int c)
{
	return (unsigned int)((hash_class_bytes(c) - BTMAP_HASH_HDR) / sizeof(u16)) - 1;
}

/*
 * Entries a table of class @c takes: 13/16 of its cells. Probes stay short
 * (about 3 cells for an insert near the end), and 1 GiB of random 4k
 * writes on 1 TiB (32 blocks a region) fits 128-byte tables but for a few.
 */
static inline unsigned int hash_class_max(unsigned int c)
{
	return hash_class_cap(c) * 13 / 16;
}

/* The smallest class that takes @n entries; BTMAP_HASH_CLASSES if none. */
static unsigned int hash_class_for(unsigned int n)
{
	unsigned int c;

	for (c = 0; c < BTMAP_HASH_CLASSES; c++)
		if (hash_class_max(c) >= n)
			break;
	return c;
}

static inline unsigned int hash_class(const struct btmap_hash *h)
{
	unsigned int c = 0;

	while (hash_class_cap(c) != h->cap)
		c++;
	return c;
}

/*
 * The cell where the probe for @off starts. The multiplication scrambles
 * the offset (runs of blocks must not land in one cluster), the second one
 * maps its top 16 bits onto [0, cap) without a division.
 */
static inline unsigned int hash_start(const struct btmap_hash *h, unsigned int off)
{
	return (((off * 0x9e3779b1U) >> 16) * h->cap) >> 16;
}

static inline bool slot_is_leaf(unsigned long s)
{
	return s > BTMAP_FULL;
}

static inline bool slot_is_hash(unsigned long s)
{
	return slot_is_leaf(s) && (s & BTMAP_HASH_TAG);
}

static inline struct btmap_hash *slot_hash(unsigned long s)
{
	return (struct btmap_hash *)(s & ~BTMAP_HASH_TAG);
}

static inline unsigned long hash_slot(const struct btmap_hash *h)
{
	return (unsigned long)h | BTMAP_HASH_TAG;
}

/* Bytes the leaf in slot value @s takes (cap never changes). */
static size_t leaf_size(unsigned long s)
{
	if (slot_is_hash(s))
		return hash_class_bytes(hash_class(slot_hash(s)));
	return BTMAP_LEAF_BYTES;
}

/* Blocks in region @r: BTMAP_REGION_BLOCKS except for a short last one. */
static unsigned int region_blocks(const struct btmap *map, unsigned long r)
{
	u64 left = map->f.nr_blocks - ((u64)r << BTMAP_REGION_SHIFT);

	return left < BTMAP_REGION_BLOCKS ? (unsigned int)left : BTMAP_REGION_BLOCKS;
}

/* Free the leaf of slot value @s now: nobody can hold it. */
static void leaf_free(unsigned long s)
{
	if (slot_is_hash(s))
		kfree(slot_hash(s));
	else
		kfree((unsigned long *)s);
	atomic_long_dec(&blktrack_allocations);
}

static void hash_free_rcu(struct rcu_head *head)
{
	kfree(container_of(head, struct btmap_hash, rcu));
	atomic_long_dec(&blktrack_allocations);
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
	rt->cap = ARRAY_SIZE(rt->small);
	if (want > rt->cap) {
		unsigned long *v = kvcalloc(want, sizeof(*v), GFP_KERNEL);

		if (v) {
			atomic_long_inc(&blktrack_allocations);
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
		kvfree(rt->v);
		atomic_long_dec(&blktrack_allocations);
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

	map = kzalloc(sizeof(*map), GFP_KERNEL);
	if (!map)
		return NULL;
	atomic_long_inc(&blktrack_allocations);
	map->f.nr_blocks = nr_blocks;
	map->mem_limit = mem_limit;
	map->nr_regions = (unsigned long)nr_regions;
	atomic_long_set(&map->leaf_bytes, 0);

	map->slots = kvcalloc(map->nr_regions, sizeof(*map->slots), GFP_KERNEL);
	if (!map->slots)
		goto out_free_map;
	atomic_long_inc(&blktrack_allocations);
	map->fill = kvcalloc(map->nr_regions, sizeof(*map->fill), GFP_KERNEL);
	if (!map->fill)
		goto out_free_slots;
	atomic_long_inc(&blktrack_allocations);
	map->f.hint = __alloc_percpu(BTMAP_HINT_BYTES, 64);
	if (!map->f.hint)
		goto out_free_fill;
	atomic_long_inc(&blktrack_allocations);
	return map;

out_free_fill:
	kvfree(map->fill);
	atomic_long_dec(&blktrack_allocations);
out_free_slots:
	kvfree(map->slots);
	atomic_long_dec(&blktrack_allocations);
out_free_map:
	kfree(map);
	atomic_long_dec(&blktrack_allocations);
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
	free_percpu(map->f.hint);
	atomic_long_dec(&blktrack_allocations);
	kvfree(map->fill);
	atomic_long_dec(&blktrack_allocations);
	kvfree(map->slots);
	atomic_long_dec(&blktrack_allocations);
	kfree(map);
	atomic_long_dec(&blktrack_allocations);
}

/* ---- Marking ------------------------------------------------------------- */

/* Set @mask in *@word; return how many of its bits were not set before. */
static inline unsigned int word_set(unsigned long *word, unsigned long mask)
{
	unsigned long old;

	/* A rewrite of dirty blocks must not dirty the cache line. */
	if ((READ_ONCE(*word) & mask) == mask)
		return 0;
	old = set_mask_bits(word, 0, mask);	/* an atomic OR, the old word back */
	return hweight_long(mask & ~old);
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
		atomic_long_inc(&blktrack_allocations);
	return leaf;
}


/*
 * A zeroed table of class @c (every cell empty) for a region of @all
 * blocks. Its max is also below @all, so that the markers' one check
 * "fill > max" catches a region that became wholly dirty too.
 */
static struct btmap_hash *hash_alloc(unsigned int c, unsigned int all)
{
	struct btmap_hash *h = btmap_leaf_alloc(hash_class_bytes(c));
	unsigned int max = hash_class_max(c);

	if (!h)
		return NULL;
	atomic_long_inc(&blktrack_allocations);
	h->cap = (u16)hash_class_cap(c);
	h->max = (u16)(max < all ? max : all - 1);
	h->cell[h->cap] = BTMAP_HASH_FROZEN;
	return h;
}

/* Add @off to a table nobody else can see yet (it has room, @off is not in it). */
static void hash_put_private(struct btmap_hash *h, unsigned int off)
{
	unsigned int cap = h->cap, i = hash_start(h, off);

	while (h->cell[i])
		if (++i == cap)
			i = 0;
	h->cell[i] = (u16)(off + 1);
}

/*
 * Insert @off into the live table @h: 1 when it went in, 0 when it was
 * there already, -1 when @h is frozen (or, in a race, full): the caller
 * must replace @h (hash_replace()) and start over from the slot. Cells go
 * from 0 to a value once, so two inserts of one offset meet at the same
 * cell: an offset is never in a table twice.
 */
static inline int hash_insert(struct btmap_hash *h, unsigned int off)
{
	unsigned int cap = h->cap, i = hash_start(h, off), n;
	u16 v = (u16)(off + 1), c;

	/*
	 * A frozen cell is passed over like another entry: the probe ends
	 * at an empty cell (an insert there is in every replacer's copy,
	 * which reads each cell once it can no longer change) or after
	 * every cell. So the loop tests two values, not three.
	 */
	for (n = cap; n; n--) {
		c = READ_ONCE(h->cell[i]);
		if (!c) {
			c = cmpxchg(&h->cell[i], (u16)0, v);
			if (!c)
				return 1;
		}
		if (c == v)
			return 0;
		if (++i == cap)
			i = 0;
	}
	return -1;
}

/*
 * hash_insert() for the markers' common case, in fewer instructions a
 * cell: the probe runs forward and stops at the first frozen cell, or at
 * the end mark. -1 then: go the long way (hash_insert(), which wraps).
 */
static inline int hash_insert_fast(struct btmap_hash *h, unsigned int off)
{
	u16 *p = &h->cell[hash_start(h, off)], v = (u16)(off + 1), c;

	for (;; p++) {
		c = READ_ONCE(*p);
		if (!c) {
			c = cmpxchg(p, (u16)0, v);
			if (!c)
				return 1;
		}
		if (c == v)
			return 0;
		if (c == BTMAP_HASH_FROZEN)
			return -1;
	}
}

/* Is @off in the hash leaf @h? Any context; RCU keeps @h alive. */
static bool hash_has(const struct btmap_hash *h, unsigned int off)
{
	unsigned int cap = h->cap, i = hash_start(h, off), n;

	for (n = cap; n; n--) {
		unsigned int c = READ_ONCE(h->cell[i]);

		if (c == off + 1)
			return true;
		/* Entries never move: a frozen cell was empty, and ends the probe. */
		if (!c || c == BTMAP_HASH_FROZEN)
			return false;
		if (++i == cap)
			i = 0;
	}
	return false;
}

/*
 * Replace the hash leaf @h of region @r by a copy with room for @extra more
 * entries: a bigger table, or a bitmap leaf past the biggest; FULL when
 * there is no room or memory for it (precision degrades, no change is
 * lost). Lock-free, callable by any marker, several at once (see the head
 * of this file). The caller read the slot as @h inside its RCU read-side
 * section. Returns true when this call made the region FULL (the map then
 * wants btmap_coarsen()); the slot no longer holds @h in any case.
 */
static noinline bool hash_replace(struct btmap *map, unsigned long r,
				  struct btmap_hash *h, unsigned int extra)
{
	unsigned int i, cap = h->cap, oc = hash_class(h), all = region_blocks(map, r);
	unsigned long *slot = &map->slots[r], th = hash_slot(h), leaf = 0, *bm = NULL;
	size_t old_bytes = hash_class_bytes(oc), new_bytes;
	struct btmap_hash *b = NULL;
	unsigned int c;

	/*
	 * The fill count is about the entries (markers count theirs just
	 * after inserting). Always a bigger class: its max is over the old
	 * cap, so whatever the count, every entry fits.
	 */
	c = hash_class_for((unsigned int)atomic_read(&map->fill[r]) + extra);
	if (c <= oc)
		c = oc + 1;
	if (c < BTMAP_HASH_CLASSES) {
		new_bytes = hash_class_bytes(c);
		if (!over_limit(map, new_bytes - old_bytes))
			b = hash_alloc(c, all);
		leaf = b ? hash_slot(b) : 0;
	} else {
		new_bytes = BTMAP_LEAF_BYTES;
		if (!over_limit(map, new_bytes - old_bytes))
			bm = leaf_bitmap_alloc();
		leaf = (unsigned long)bm;
	}

	/*
	 * Freeze and copy in one pass: once read (or frozen) here a cell
	 * never changes again, so the copy ends up with every entry an
	 * insert could report as marked.
	 */
	for (i = 0; i < cap; i++) {
		unsigned int v = READ_ONCE(h->cell[i]);

		if (!v)
			v = cmpxchg(&h->cell[i], (u16)0, (u16)BTMAP_HASH_FROZEN);
		if (!v || v == BTMAP_HASH_FROZEN)
			continue;
		v--;
		if (b)
			hash_put_private(b, v);
		else if (bm)
			__set_bit(v, bm);	/* nobody sees @bm yet */
	}
	btmap_replace_window();

	if (!leaf) {
		if (cmpxchg(slot, th, BTMAP_FULL) != th)
			return false;	/* another marker, coarsen or merge was first */
		atomic_long_sub(old_bytes, &map->leaf_bytes);
		call_rcu(&h->rcu, hash_free_rcu);
		return true;
	}
	if (cmpxchg(slot, th, leaf) != th) {
		/* Another replacer won, or coarsen or merge made it FULL. */
		leaf_free(leaf);
		return false;
	}
	atomic_long_add(new_bytes - old_bytes, &map->leaf_bytes);
	/* Markers and readers may still hold @h: free it after a grace period. */
	call_rcu(&h->rcu, hash_free_rcu);
	return false;
}

/*
 * After an insert into @h brought the region's count to @fill, past
 * @h->max: the region is wholly dirty, or @h must grow. Returns whether
 * the map wants btmap_coarsen().
 */
static bool hash_past_max(struct btmap *map, unsigned long r, struct btmap_hash *h,
			  unsigned int fill)
{
	if (fill >= region_blocks(map, r))
		return true;
	return hash_replace(map, r, h, 0);
}

/*
 * Mark block @off of the hash leaf @h of region @r. Returns -1 when @h was
 * replaced (reload the slot and start over), else whether the map wants
 * btmap_coarsen().
 */
static inline int hash_mark_one(struct btmap *map, unsigned long r, struct btmap_hash *h,
				unsigned int off)
{
	unsigned int fill;
	int ret = hash_insert(h, off);

	if (!ret)
		return 0;
	if (ret < 0)
		return hash_replace(map, r, h, 1) ? 1 : -1;
	fill = (unsigned int)atomic_add_return(1, &map->fill[r]);
	return fill > h->max && hash_past_max(map, r, h, fill);
}

/*
 * Mark the run [*@off, *@off + *@n) in the hash leaf @h of region @r, which
 * had room for it: the inserts first, then one count of the new ones (a
 * replacer sizes its copy by the count, but always a bigger class, so a
 * late count loses nothing). Returns -1 when @h was replaced (*@off, *@n:
 * what is left), else whether the map wants btmap_coarsen().
 */
static int hash_mark_run(struct btmap *map, unsigned long r, struct btmap_hash *h,
			 unsigned int *off, unsigned int *n)
{
	unsigned int newly = 0, fill;
	int ret;

	while (*n) {
		ret = hash_insert(h, *off);
		if (ret < 0)
			break;
		newly += ret;
		(*off)++;
		(*n)--;
	}
	if (!newly)
		return *n ? (hash_replace(map, r, h, *n) ? 1 : -1) : 0;
	fill = (unsigned int)atomic_add_return(newly, &map->fill[r]);
	if (*n)		/* frozen: the rest goes into the copy */
		return hash_replace(map, r, h, *n) ? 1 : -1;
	return fill > h->max && hash_past_max(map, r, h, fill);
}

/*
 * Mark [@off, @off + @n) of the clean region @r with a new leaf. Returns
 * -1 when another marker set the slot first, else whether the map wants
 * btmap_coarsen().
 */
static int clean_mark(struct btmap *map, unsigned long r, unsigned int off, unsigned int n)
{
	/* More than the biggest table holds: a bitmap, which costs no more. */
	unsigned int c = hash_class_for(n);
	unsigned int all = region_blocks(map, r);
	unsigned long *slot = &map->slots[r], leaf = 0;
	bool whole = n == all;

	if (whole) {
		/* No leaf: FULL is exact. */
	} else if (c < BTMAP_HASH_CLASSES) {
		struct btmap_hash *h;
		unsigned int k;

		h = over_limit(map, hash_class_bytes(c)) ? NULL : hash_alloc(c, all);
		if (h) {
			for (k = 0; k < n; k++)
				hash_put_private(h, off + k);
			leaf = hash_slot(h);
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
	bool want = false;

	for (;;) {
		unsigned long s = READ_ONCE(*slot);
		int ret = 0;

		if (s == BTMAP_FULL)
			return want;
		if (s == BTMAP_CLEAN) {
			ret = clean_mark(map, r, off, n);
		} else if (slot_is_hash(s)) {
			struct btmap_hash *h = slot_hash(s);

			btmap_mark_window();
			/*
			 * No room for the new ones: one replacement, sized for
			 * them; past the biggest table, a bitmap, which the
			 * next turn sets by words.
			 */
			if ((unsigned int)atomic_read(&map->fill[r]) + n > h->max) {
				unsigned int k, fill, missing = 0;

				/* Few of them can be there: no table holds them all. */
				if (n > (unsigned int)atomic_read(&map->fill[r]) + BTMAP_HASH_MAX) {
					if (hash_replace(map, r, h, n))
						want = true;
					continue;
				}
				for (k = 0; k < n; k++)
					missing += !hash_has(h, off + k);
				fill = (unsigned int)atomic_read(&map->fill[r]) + missing;
				if (fill > h->max && fill < all) {
					if (hash_replace(map, r, h, missing))
						want = true;
					continue;
				}
			}
			ret = hash_mark_run(map, r, h, &off, &n);
			if (ret >= 0)
				want |= ret;
		} else {
			btmap_mark_window();
			newly = leaf_set((unsigned long *)s, off, n);
			return (newly &&
				(unsigned int)atomic_add_return(newly, &map->fill[r]) >= all) ||
			       want;
		}
		if (ret >= 0)
			return ret || want;
	}
}

bool btmap_mark(struct btmap *map, u64 first, u64 count)
{
	bool want = false, whole;
	u64 end, from = first;

	if (first >= map->f.nr_blocks || !count)
		return false;
	whole = count <= map->f.nr_blocks - first;
	end = whole ? first + count : map->f.nr_blocks;

	/* Keeps hash leaves alive; in the kernel the caller's (btmap.h). */
	btmap_probe_read_lock();
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
	btmap_probe_read_unlock();
	/* After the marks: the completions of this run check it and are done. */
	if (whole && count <= BTMAP_HINT_MAX_RUN) {
		u64 *hint = raw_cpu_ptr(map->f.hint), e = btmap_hint_entry(from, count);

		WRITE_ONCE(hint[from % BTMAP_HINTS], e);
		WRITE_ONCE(hint[BTMAP_HINT_LAST_RUN], e);
	}
	return want;
}

/* ---- Single-block marks ------------------------------------------------- */

/*
 * Hints: every write is marked twice, at submission and again at completion
 * (doc/KERNEL.md), and the second mark nearly always finds the block set.
 * So btmap_mark_one() records each block it marked in a small direct-mapped
 * array of the map, entry (block % BTMAP_HINTS) = block + 1 (0: none), one
 * array per CPU in the kernel: completions mostly run on the submitting
 * CPU. btmap_mark() leaves an entry for its run too, holding the run's
 * length (btmap.h), so that a multi-block write's completion is checked
 * the same way, and another one for the last run, which the pieces of a
 * write split below the probe fall in. An entry is written after its
 * blocks are marked, in one store, and the map never loses a mark while it
 * is live, so an entry that matches proves them dirty; a completion that
 * finds its run there returns at once. A miss (evicted, another CPU) costs
 * the lookup it would have made anyway. The only map that loses marks,
 * btmap_merge()'s source, clears its hints.
 *
 * A CPU's array shares no cache line with another CPU's. Any CPU's array
 * would do as well for correctness: raw_cpu_ptr() needs no preemption
 * check.
 */

static void hint_clear(struct btmap *map)
{
	int cpu;

	for_each_possible_cpu(cpu)
		memset(per_cpu_ptr(map->f.hint, cpu), 0, BTMAP_HINT_BYTES);
}

/*
 * btmap_mark_one_hinted() when its fast path does not do: a clean, FULL or bitmap
 * slot, a frozen hash leaf, or an insert (@counted: made and counted, the
 * count now @fill) that took the region past the leaf's max.
 */
static noinline bool mark_one_slow(struct btmap *map, u64 block, u64 *hint,
				   bool counted, unsigned int fill)
{
	unsigned long r = (unsigned long)(block >> BTMAP_REGION_SHIFT), s;
	unsigned int off = (unsigned int)(block & (BTMAP_REGION_BLOCKS - 1));
	int ret;

	btmap_probe_read_lock();
	if (counted) {
		/* Grow whatever leaf is there now, if it is still a hash leaf. */
		s = READ_ONCE(map->slots[r]);
		ret = fill >= region_blocks(map, r);
		if (!ret && slot_is_hash(s) && fill > slot_hash(s)->max)
			ret = hash_replace(map, r, slot_hash(s), 0);
		goto out;
	}
	do {
		s = READ_ONCE(map->slots[r]);
		if (s == BTMAP_FULL) {
			ret = 0;
		} else if (s == BTMAP_CLEAN) {
			ret = clean_mark(map, r, off, 1);
		} else if (slot_is_hash(s)) {
			btmap_mark_window();
			ret = hash_mark_one(map, r, slot_hash(s), off);
		} else {
			btmap_mark_window();
			ret = 0;
			/* A rewrite of a dirty block must not dirty the cache line. */
			if (!(READ_ONCE(((unsigned long *)s)[BIT_WORD(off)]) & BIT_MASK(off)) &&
			    !test_and_set_bit(off, (unsigned long *)s))
				ret = (unsigned int)atomic_add_return(1, &map->fill[r]) >=
				      region_blocks(map, r);
		}
	} while (ret < 0);
out:
	btmap_probe_read_unlock();
	WRITE_ONCE(*hint, block + 1);
	return ret;
}

/*
 * btmap_mark_one() past its hint check (btmap.h); @hint: the entry for @block. The
 * common case, a block going into a live hash leaf that has room, or
 * already there, calls nothing (so saves no registers); everything else is
 * mark_one_slow()'s, called last.
 */
bool btmap_mark_one_hinted(struct btmap *map, u64 block, u64 *hint)
{
	unsigned long r = (unsigned long)(block >> BTMAP_REGION_SHIFT), s;
	unsigned int off = (unsigned int)(block & (BTMAP_REGION_BLOCKS - 1)), fill = 0;
	struct btmap_hash *h;
	int ret;

	btmap_probe_read_lock();
	s = READ_ONCE(map->slots[r]);
	if (!slot_is_hash(s))
		goto slow;
	h = slot_hash(s);
	btmap_mark_window();
	ret = hash_insert_fast(h, off);
	if (ret < 0)
		goto slow;
	if (ret) {
		fill = (unsigned int)atomic_add_return(1, &map->fill[r]);
		if (fill > h->max)
			goto slow;
	}
	btmap_probe_read_unlock();
	WRITE_ONCE(*hint, block + 1);
	return false;
slow:
	/* In the kernel the read-side section is the caller's: it goes on. */
	btmap_probe_read_unlock();
	return mark_one_slow(map, block, hint, fill != 0, fill);
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
 * freed; hash leaves only when collapsing every bitmap leaf is not enough,
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

	if (slot_is_hash(s)) {
		b = hash_class(slot_hash(s));
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
	unsigned long hist[BTMAP_HIST_BINS] = { 0 }, acls[BTMAP_HASH_CLASSES] = { 0 };
	struct coarsen_plan plan = { BTMAP_HIST_BINS, BTMAP_HASH_CLASSES, 0, 0 };
	unsigned long r, nfull = 0, nbm = 0, narr = 0, want;
	u64 full_bytes = 0, over = 0;
	struct btmap_retire rt;
	long bytes;

	/*
	 * Count full leaves and build the histograms of the others. A marker
	 * may replace a hash leaf under us and free it after a grace period: the
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
		} else if (slot_is_hash(s)) {
			acls[hash_class(slot_hash(s))]++;
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
		for (plan.ta = BTMAP_HASH_CLASSES; plan.ta-- > 0; ) {
			u64 cb = hash_class_bytes(plan.ta);

			if (acc + acls[plan.ta] * cb >= over) {
				plan.atake = (unsigned long)((over - acc + cb - 1) / cb);
				break;
			}
			acc += acls[plan.ta] * cb;
		}
		if (plan.ta >= BTMAP_HASH_CLASSES) {	/* ... and every hash leaf */
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

	if (slot_is_hash(s)) {
		const struct btmap_hash *h = slot_hash(s);

		for (i = 0; i < h->cap; i++)
			if (h->cell[i] && h->cell[i] != BTMAP_HASH_FROZEN)
				mark_region(dst, r, h->cell[i] - 1U, 1);
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
	hint_clear(src);

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
		if (slot_is_leaf(d) && !slot_is_hash(d) && !slot_is_hash(s)) {
			unsigned long *dl = (unsigned long *)d, *leaf = (unsigned long *)s;
			unsigned int i, newly = 0;

			for (i = 0; i < BTMAP_LEAF_WORDS; i++)
				if (leaf[i])
					newly += word_set(&dl[i], leaf[i]);
			if (newly)
				atomic_add(newly, &dst->fill[r]);
		} else if (d != BTMAP_FULL) {
			/*
			 * A hash leaf on either side: mark as markers do
			 * (this may grow or convert dst's leaf). The read-side
			 * section keeps dst's hash leaf alive if a marker
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
	return w * BTMAP_WORD_BITS + (unsigned int)__ffs(x);
}

/*
 * leaf_find() in a hash leaf (RCU keeps @h alive). The first dirty block
 * is the least entry >= @off: a scan of every cell (empty and frozen cells
 * are above any block, as v - 1 unsigned). The first clean one: lookups
 * from @off on.
 */
static unsigned int hash_find(const struct btmap_hash *h, unsigned int off, bool dirty)
{
	unsigned int i, v, ret = BTMAP_REGION_BLOCKS;

	if (dirty) {
		for (i = 0; i < h->cap; i++) {
			v = READ_ONCE(h->cell[i]) - 1U;
			if (v >= off && v < ret)
				ret = v;
		}
		return ret;
	}
	for (ret = off; ret < BTMAP_REGION_BLOCKS && hash_has(h, ret); ret++)
		;
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
		if (slot_is_hash(s))
			off = hash_find(slot_hash(s), off, dirty);
		else
			off = leaf_find((const unsigned long *)s, off, dirty);
		if (off < BTMAP_REGION_BLOCKS) {
			pos = ((u64)r << BTMAP_REGION_SHIFT) + off;
			return pos < map->f.nr_blocks ? pos : map->f.nr_blocks;
		}
	}
	return map->f.nr_blocks;
}

bool btmap_next_extent(const struct btmap *map, u64 *pos, u64 *start, u64 *len)
{
	u64 s, e;

	if (*pos >= map->f.nr_blocks)
		return false;
	/* Keeps leaves that markers, btmap_coarsen() or btmap_merge() retire alive. */
	rcu_read_lock();
	s = map_find(map, *pos, true);
	e = s < map->f.nr_blocks ? map_find(map, s, false) : s;
	rcu_read_unlock();
	if (s >= map->f.nr_blocks)
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
	return sizeof(*map) + (u64)BTMAP_HINT_BYTES * num_possible_cpus() +
	       (u64)map->nr_regions * (sizeof(*map->slots) + sizeof(*map->fill)) +
	       (u64)atomic_long_read(&map->leaf_bytes);
}

u64 btmap_nr_blocks(const struct btmap *map)
{
	return map->f.nr_blocks;
}
