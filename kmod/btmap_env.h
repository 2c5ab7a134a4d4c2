/* SPDX-License-Identifier: GPL-2.0 */
/*
 * btmap_env.h - what btmap.c needs from its environment, so that the same
 * map source builds in the kernel and in userspace (unit tests, with
 * -DBTMAP_USERSPACE, liburcu standing in for kernel RCU).
 *
 * btmap.c is written against the kernel's API (kzalloc, call_rcu,
 * hweight_long, the per-CPU allocator...). In the kernel this header only
 * includes it; in userspace it supplies stand-ins of the same names and
 * meaning. The btmap_* hooks below are the few places where the two
 * builds really differ: the leaves' allocation flags, the markers'
 * read-side section and the tests' race windows.
 *
 * Every allocation and free the map makes moves blktrack_allocations: the
 * module's leak counter (debugfs) and the unit tests' check that destroy
 * frees everything.
 */
#ifndef BLKTRACK_BTMAP_ENV_H
#define BLKTRACK_BTMAP_ENV_H

#ifdef __KERNEL__

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/types.h>

/*
 * Called from the bio probes with preemption off: never sleeps, never warns;
 * from the leaf reserve on PREEMPT_RT, where even GFP_NOWAIT may sleep
 * (leaf_reserve.c).
 */
void *bt_leaf_alloc(size_t size);
#define btmap_leaf_alloc(size)	bt_leaf_alloc(size)

int bt_leaf_reserve_init(void);		/* module load */
void bt_leaf_reserve_exit(void);	/* module unload, no probe left */
void bt_leaf_reserve_stats(u64 *taken, u64 *missed, unsigned int *ready);

/* Tests widen the race windows here; nothing in the kernel. */
#define btmap_mark_window()	do { } while (0)
#define btmap_replace_window()	do { } while (0)

/*
 * btmap_mark_one()'s and btmap_mark()'s read-side section. Their callers
 * (tracepoint probes, and bt_mark_blocks() in volume.c) run with preemption
 * (or interrupts) off: since the RCU flavours
 * were consolidated (4.20) that is a read-side critical section for
 * call_rcu() and synchronize_rcu(), and on PREEMPT_RCU kernels an
 * rcu_read_lock() pair would be two out-of-line calls per mark.
 */
#define btmap_probe_read_lock()						\
	RCU_LOCKDEP_WARN(!rcu_read_lock_any_held(),			\
			 "btmap_mark*() outside an RCU read-side section")
#define btmap_probe_read_unlock()	do { } while (0)

#else /* userspace */

#include <assert.h>		/* static_assert */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <urcu.h>		/* memb flavour: threads call rcu_register_thread() */

#include <sched.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef struct { int counter; } atomic_t;
typedef struct { long counter; } atomic_long_t;

/* Nonzero: every leaf allocation fails (tests of the FULL fallback). */
extern int btmap_fail_leaf_alloc;
/* Called by markers between reading a leaf pointer and setting its bits. */
extern void (*btmap_mark_delay)(void);
/* Called by a hash leaf's replacer between freezing it and publishing its copy. */
extern void (*btmap_replace_delay)(void);

/* ---- Stand-ins for the kernel's API --------------------------------------- */

#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_CONSUME)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define cmpxchg(p, o, n) ({						\
	__typeof__(*(p)) __o = (o);					\
	__atomic_compare_exchange_n((p), &__o, (n), false,		\
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);\
	__o; })
#define xchg(p, v)		__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

#define ATOMIC_LONG_INIT(i)	{ (i) }
#define atomic_read(v)		__atomic_load_n(&(v)->counter, __ATOMIC_RELAXED)
#define atomic_set(v, i)	__atomic_store_n(&(v)->counter, (i), __ATOMIC_RELAXED)
#define atomic_add(i, v)	((void)__atomic_add_fetch(&(v)->counter, (i), __ATOMIC_SEQ_CST))
#define atomic_add_return(i, v)	__atomic_add_fetch(&(v)->counter, (i), __ATOMIC_SEQ_CST)
#define atomic_long_read(v)	__atomic_load_n(&(v)->counter, __ATOMIC_RELAXED)
#define atomic_long_set(v, i)	__atomic_store_n(&(v)->counter, (i), __ATOMIC_RELAXED)
#define atomic_long_add(i, v)	((void)__atomic_add_fetch(&(v)->counter, (i), __ATOMIC_SEQ_CST))
#define atomic_long_sub(i, v)	((void)__atomic_sub_fetch(&(v)->counter, (i), __ATOMIC_SEQ_CST))
#define atomic_long_inc(v)	atomic_long_add(1, v)
#define atomic_long_dec(v)	atomic_long_sub(1, v)

#define GFP_KERNEL		0
#define kzalloc(size, gfp)	calloc(1, size)
#define kfree(p)		free(p)
#define kvcalloc(n, size, gfp)	calloc(n, size)
#define kvfree(p)		free(p)

#define hweight_long(x)		((unsigned int)__builtin_popcountl(x))
#define __ffs(x)		((unsigned long)__builtin_ctzl(x))	/* x != 0 */

#define BITS_PER_LONG		(8 * (int)sizeof(long))
#define BIT_WORD(nr)		((nr) / BITS_PER_LONG)
#define BIT_MASK(nr)		(1UL << ((nr) % BITS_PER_LONG))

/* Not atomic: for a bitmap nobody else can see yet. */
static inline void __set_bit(unsigned long nr, unsigned long *addr)
{
	addr[BIT_WORD(nr)] |= BIT_MASK(nr);
}

static inline bool test_and_set_bit(unsigned long nr, unsigned long *addr)
{
	return __atomic_fetch_or(&addr[BIT_WORD(nr)], BIT_MASK(nr), __ATOMIC_SEQ_CST) &
	       BIT_MASK(nr);
}

/* Atomically clear @mask and set @bits in *@ptr; the old value. */
#define set_mask_bits(ptr, mask, bits) ({				\
	const __typeof__(*(ptr)) __mask = (mask), __bits = (bits);	\
	__typeof__(*(ptr)) __old = __atomic_load_n((ptr), __ATOMIC_RELAXED); \
									\
	while (!__atomic_compare_exchange_n((ptr), &__old,		\
					    (__old & ~__mask) | __bits, false, \
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) \
		;							\
	__old; })

/*
 * One CPU: the per-CPU hint arrays (btmap.c, "Hints") are one array that
 * every thread shares; correct, if not cache-friendly.
 */
#define __percpu
#define __alloc_percpu(size, align)	calloc(1, size)
#define free_percpu(p)			free(p)
#define raw_cpu_ptr(p)			(p)
#define per_cpu_ptr(p, cpu)		((void)(cpu), (p))
#define for_each_possible_cpu(cpu)	for ((cpu) = 0; (cpu) < 1; (cpu)++)
#define num_possible_cpus()		1U

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#ifndef container_of
#define container_of(ptr, type, member)	caa_container_of(ptr, type, member)
#endif
#define noinline		__attribute__((__noinline__))
/* call_rcu(), synchronize_rcu(), rcu_read_lock(): liburcu's, same names. */

/* ---- The hooks ------------------------------------------------------------ */

#define btmap_leaf_alloc(size)	(btmap_fail_leaf_alloc ? NULL : calloc(1, size))
#define btmap_mark_window()	do { if (btmap_mark_delay) btmap_mark_delay(); } while (0)
#define btmap_replace_window()	do { if (btmap_replace_delay) btmap_replace_delay(); } while (0)

/* No preemption to rely on here: a real read-side section (it nests). */
#define btmap_probe_read_lock()		rcu_read_lock()
#define btmap_probe_read_unlock()	rcu_read_unlock()

#endif /* __KERNEL__ */

/* Live allocations of the module: maps, slot arrays, leaves, volumes. */
extern atomic_long_t blktrack_allocations;

#endif /* BLKTRACK_BTMAP_ENV_H */
