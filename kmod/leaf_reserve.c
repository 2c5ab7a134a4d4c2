// SPDX-License-Identifier: GPL-2.0
/*
 * leaf_reserve.c - map leaves for probes that may not call the allocator.
 *
 * The probes mark with preemption off and a mark may need a new leaf
 * (btmap.c). Elsewhere that is kzalloc(GFP_NOWAIT). On PREEMPT_RT the slab
 * and page allocators take sleeping locks, so no allocation at all is
 * allowed there: leaves come from this reserve instead, a few zeroed leaves
 * of each size taken under a raw spinlock and refilled by a work item in
 * process context. An empty reserve is a failed allocation: the region goes
 * FULL (btmap.h), a bigger backup, never a lost change.
 *
 * leaf_reserve=N (module parameter): N leaves of each size; the default is
 * 64 on PREEMPT_RT and 0 (kzalloc) elsewhere. A non-RT kernel may set it
 * too, which is how the tests run this code on the cloud kernels.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/log2.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "btmap.h"

/* Leaf sizes: 64 << i bytes, i = 0 .. BT_LEAF_SIZES - 1 (btmap.c's hash classes and a bitmap). */
#define BT_LEAF_MIN_SHIFT	6
#define BT_LEAF_SIZES		7
static_assert((64U << (BT_LEAF_SIZES - 1)) == BTMAP_LEAF_BYTES,
	      "the largest reserved leaf is a bitmap leaf");

static unsigned int bt_leaf_reserve = IS_ENABLED(CONFIG_PREEMPT_RT) ? 64 : 0;
module_param_named(leaf_reserve, bt_leaf_reserve, uint, 0444);
MODULE_PARM_DESC(leaf_reserve,
		 "map leaves of each size kept ready for the probes (default 64 on PREEMPT_RT, else 0: they allocate)");

struct bt_leaf_stack {
	unsigned int nr;
	void **leaf;			/* bt_leaf_reserve slots */
};

static DEFINE_RAW_SPINLOCK(bt_leaf_lock);	/* taken by probes: raw on RT too */
static struct bt_leaf_stack bt_leaves[BT_LEAF_SIZES];
static atomic64_t bt_leaf_taken, bt_leaf_missed;

static void bt_leaf_refill(struct work_struct *work);
static DECLARE_WORK(bt_leaf_refill_work, bt_leaf_refill);

/* Fill every size back to bt_leaf_reserve. Process context. */
static void bt_leaf_refill(struct work_struct *work)
{
	unsigned int i;

	for (i = 0; i < BT_LEAF_SIZES; i++) {
		struct bt_leaf_stack *st = &bt_leaves[i];

		while (READ_ONCE(st->nr) < bt_leaf_reserve) {
			void *leaf = kzalloc(64U << i, GFP_KERNEL | __GFP_NOWARN);

			if (!leaf)
				return;	/* the next take queues us again */
			raw_spin_lock_irq(&bt_leaf_lock);
			if (st->nr < bt_leaf_reserve) {
				st->leaf[st->nr++] = leaf;
				leaf = NULL;
			}
			raw_spin_unlock_irq(&bt_leaf_lock);
			kfree(leaf);	/* a racing refill got there first */
		}
	}
}

/*
 * A zeroed leaf of @size bytes (a power of two from 64 to BTMAP_LEAF_BYTES),
 * or NULL. Any context; never sleeps. Freed with kfree() like any other.
 */
void *bt_leaf_alloc(size_t size)
{
	unsigned int i = ilog2(size) - BT_LEAF_MIN_SHIFT;
	struct bt_leaf_stack *st;
	unsigned long flags;
	void *leaf = NULL;
	bool low;

	if (!bt_leaf_reserve)
		return kzalloc(size, GFP_NOWAIT | __GFP_NOWARN);
	if (WARN_ON_ONCE(!is_power_of_2(size) || i >= BT_LEAF_SIZES))
		return NULL;
	st = &bt_leaves[i];
	raw_spin_lock_irqsave(&bt_leaf_lock, flags);
	if (st->nr)
		leaf = st->leaf[--st->nr];
	low = st->nr <= bt_leaf_reserve / 2;
	raw_spin_unlock_irqrestore(&bt_leaf_lock, flags);
	if (low)
		queue_work(system_unbound_wq, &bt_leaf_refill_work);
	atomic64_inc(leaf ? &bt_leaf_taken : &bt_leaf_missed);
	return leaf;
}

/*
 * For debugfs: leaves taken from the reserve, takes that found it empty,
 * and the leaves it holds now (of all sizes).
 */
void bt_leaf_reserve_stats(u64 *taken, u64 *missed, unsigned int *ready)
{
	unsigned int i;

	*taken = atomic64_read(&bt_leaf_taken);
	*missed = atomic64_read(&bt_leaf_missed);
	*ready = 0;
	for (i = 0; i < BT_LEAF_SIZES; i++)
		*ready += READ_ONCE(bt_leaves[i].nr);
}

int bt_leaf_reserve_init(void)
{
	unsigned int i;

	if (!bt_leaf_reserve)
		return 0;
	for (i = 0; i < BT_LEAF_SIZES; i++) {
		bt_leaves[i].leaf = kcalloc(bt_leaf_reserve, sizeof(void *), GFP_KERNEL);
		if (!bt_leaves[i].leaf) {
			bt_leaf_reserve_exit();
			return -ENOMEM;
		}
	}
	bt_leaf_refill(NULL);
	pr_info("leaf reserve: %u leaves of each size\n", bt_leaf_reserve);
	return 0;
}

/* After the last probe is gone: nobody takes any more. */
void bt_leaf_reserve_exit(void)
{
	unsigned int i;

	cancel_work_sync(&bt_leaf_refill_work);
	for (i = 0; i < BT_LEAF_SIZES; i++) {
		struct bt_leaf_stack *st = &bt_leaves[i];

		while (st->nr)
			kfree(st->leaf[--st->nr]);
		kfree(st->leaf);
		st->leaf = NULL;
	}
}
