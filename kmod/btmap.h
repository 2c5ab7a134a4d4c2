/* SPDX-License-Identifier: GPL-2.0 */
/*
 * btmap - the dirty-block map: a two-level sparse bitmap.
 *
 * Typical use:
 *
 *	map = btmap_create(nr_blocks, mem_limit);     may sleep
 *	btmap_mark(map, first, count);                 RCU read side, never sleeps
 *	btmap_mark_one(map, block, likely_set);        the same for one block, from probes
 *	...
 *	for (pos = 0; btmap_next_extent(map, &pos, &start, &len); )
 *		use [start, start + len)
 *	btmap_destroy(map);                            no marker may remain
 *
 * Level 1 is an array of slots, one per region of BTMAP_REGION_BLOCKS
 * blocks, allocated at create time. A slot is CLEAN, FULL (the whole
 * region is dirty) or points to a leaf: a hash table of 16-bit block
 * offsets while the region is sparse (memory follows the dirty blocks, not
 * the regions touched), a bitmap of BTMAP_LEAF_BYTES once the table would
 * be as big. Both kinds are marked lock-free: a bit by an atomic OR, an
 * offset by a cmpxchg into an empty cell. A hash leaf is replaced (grown,
 * converted) by a copy, after freezing it so that no insert can land in it
 * unseen; the old one is freed after an RCU grace period.
 * btmap_mark() allocates leaves without sleeping; when that fails, or the
 * map is over its memory limit, the region goes FULL: precision degrades,
 * a change is never lost. btmap_coarsen() (process context) collapses the
 * densest leaves to FULL and frees them after an RCU grace period.
 *
 * The same source builds in the kernel and in userspace (unit tests),
 * through btmap_env.h; liburcu stands in for kernel RCU there.
 *
 * Blocks are numbered in units of the volume's tracking block size; the
 * map itself knows nothing of bytes or sectors.
 */
#ifndef BLKTRACK_BTMAP_H
#define BLKTRACK_BTMAP_H

#include "btmap_env.h"

#define BTMAP_LEAF_BYTES	4096U
#define BTMAP_REGION_BLOCKS	(BTMAP_LEAF_BYTES * 8U)	/* blocks per leaf */

struct btmap;

/*
 * Create a map of @nr_blocks clean blocks (@nr_blocks >= 1). @mem_limit is
 * the most bytes of leaves the map may hold (0: no limit). Sleeps.
 * Returns NULL when out of memory.
 */
struct btmap *btmap_create(u64 nr_blocks, u64 mem_limit);

/*
 * Free the map and its leaves. No btmap_mark() may be running on it, nor
 * start: the caller has unpublished it and waited for a grace period.
 */
void btmap_destroy(struct btmap *map);

/*
 * Mark blocks [@first, @first + @count) dirty; the range is clipped to the
 * map, and leaves hint entries for the run (btmap_hinted()). Never sleeps,
 * never fails, takes no lock (hard-IRQ callers are fine). Any number of
 * markers may run at once, and at the same time as btmap_coarsen() and
 * btmap_merge() into this map. As for btmap_mark_one(),
 * kernel callers must be in an RCU read-side section (preemption off): no
 * rcu_read_lock() of its own, two calls per mark on PREEMPT_RCU kernels.
 * Returns true when the map wants btmap_coarsen() to run soon (it went
 * over its memory limit, or a leaf became full).
 */
bool btmap_mark(struct btmap *map, u64 first, u64 count);

/*
 * The first members of every struct btmap, read by btmap_mark_one() inline;
 * nothing else outside btmap.c reads or writes them.
 */
struct btmap_front {
	u64 nr_blocks;
	u64 __percpu *hint;		/* BTMAP_HINTS entries per CPU (btmap.c) */
};

#define BTMAP_HINTS		256U

/*
 * A hint entry says "[first, first + count) is dirty": first + 1, with
 * count - 1 in the bits from BTMAP_HINT_COUNT_SHIFT up. A single block's
 * entry is block + 1. Blocks are below 2^42 (btmap.c); runs of more than
 * BTMAP_HINT_MAX_RUN blocks get no entry.
 */
#define BTMAP_HINT_COUNT_SHIFT	43
#define BTMAP_HINT_MAX_RUN	(1ULL << (64 - BTMAP_HINT_COUNT_SHIFT))
/*
 * One more entry after the BTMAP_HINTS: the last run btmap_mark() marked on
 * this CPU. The block layer splits a big write after the submission probe
 * saw it whole, so its completions come in pieces inside that run.
 */
#define BTMAP_HINT_LAST_RUN	BTMAP_HINTS

static inline u64 btmap_hint_entry(u64 first, u64 count)
{
	return (first + 1) | ((count - 1) << BTMAP_HINT_COUNT_SHIFT);
}

/* Does hint entry @e (0: none) cover [@first, @first + @count)? */
static inline bool btmap_hint_covers(u64 e, u64 first, u64 count)
{
	u64 start = (e & ((1ULL << BTMAP_HINT_COUNT_SHIFT) - 1)) - 1;

	/* No entry: start is ~0, above any block. */
	return first >= start &&
	       first - start + count <= (e >> BTMAP_HINT_COUNT_SHIFT) + 1;
}

/* btmap_mark_one() past its hint check; @hint: the entry for @block. */
bool btmap_mark_one_hinted(struct btmap *map, u64 block, u64 *hint);

/*
 * btmap_mark(@map, @block, 1), made for the write probes: no call inside
 * when @likely_set and @block's hint is there, and in the kernel no
 * rcu_read_lock() of its own. Kernel callers must be in an RCU read-side
 * section: preemption or interrupts off (a tracepoint probe) is one. Same
 * guarantees and return value as btmap_mark().
 * @likely_set: the caller expects the block to be dirty already (the
 * completion of a write whose submission marked it): a hint entry that
 * says so (see "Single-block marks" in btmap.c) is proof enough.
 */
static inline bool btmap_mark_one(struct btmap *map, u64 block, bool likely_set)
{
	const struct btmap_front *f = (const struct btmap_front *)map;
	u64 *hint;

	if (block >= f->nr_blocks)
		return false;
	hint = &raw_cpu_ptr(f->hint)[block % BTMAP_HINTS];
	if (likely_set && READ_ONCE(*hint) == block + 1)
		return false;	/* the completion of a write marked at submission */
	return btmap_mark_one_hinted(map, block, hint);
}

/*
 * Does this CPU's hint prove blocks [@first, @first + @count) dirty in @map
 * (@count >= 1)? Then marking them again would do nothing: the completion of
 * a write whose submission marked the same run. False says nothing. Same
 * context as btmap_mark_one(). Small enough for the completion probe to
 * inline without saving registers.
 */
static inline bool btmap_hinted(const struct btmap *map, u64 first, u64 count)
{
	const struct btmap_front *f = (const struct btmap_front *)map;

	return count <= BTMAP_HINT_MAX_RUN &&
	       READ_ONCE(raw_cpu_ptr(f->hint)[first % BTMAP_HINTS]) ==
	       btmap_hint_entry(first, count);
}

/*
 * Is [@first, @first + @count) inside the last run btmap_mark() marked in
 * @map on this CPU? Then it is dirty: a piece of a write the block layer
 * split after its submission was marked whole. Same context.
 */
static inline bool btmap_hinted_in_last_run(const struct btmap *map, u64 first, u64 count)
{
	const struct btmap_front *f = (const struct btmap_front *)map;

	return btmap_hint_covers(READ_ONCE(raw_cpu_ptr(f->hint)[BTMAP_HINT_LAST_RUN]),
				 first, count);
}

/*
 * Collapse leaves to FULL until the leaves use at most @target bytes,
 * densest first; leaves whose every bit is set are always collapsed.
 * Never drops a dirty block. Process context: sleeps for a grace period
 * before freeing what it replaced. Markers may run concurrently; calls to
 * btmap_coarsen() and btmap_merge() on one map must be serialized by the
 * caller.
 */
void btmap_coarsen(struct btmap *map, u64 target);

/*
 * @dst |= @src. @src must be quiescent (no markers); @dst may be marked
 * concurrently. Both maps must have the same nr_blocks. @src is left
 * empty (its leaves may be moved into @dst) and may then be destroyed.
 * Process context, may sleep.
 */
void btmap_merge(struct btmap *dst, struct btmap *src);

/*
 * Find the first dirty run starting at or after block *@pos. On success
 * store it in *@start, *@len (merged across region boundaries), set *@pos
 * to the block after it, and return true; return false when there is no
 * dirty block at or after *@pos. On a map being marked the result is a
 * snapshot: blocks marked during the walk may or may not be seen.
 */
bool btmap_next_extent(const struct btmap *map, u64 *pos, u64 *start, u64 *len);

/* Dirty blocks in the map (exact on a quiescent map). */
u64 btmap_dirty(const struct btmap *map);

/* Bytes of memory the map uses: its struct, slots, counters and leaves. */
u64 btmap_bytes(const struct btmap *map);

u64 btmap_nr_blocks(const struct btmap *map);

#endif /* BLKTRACK_BTMAP_H */
