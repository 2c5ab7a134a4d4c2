// SPDX-License-Identifier: GPL-2.0
/*
 * bench_map - memory and speed of the dirty-block map (kmod/btmap.c built
 * for userspace), for a 1 TiB volume tracked at 4 KiB: 2^28 blocks.
 *
 *	make bench-map
 *
 * Each pattern starts from an empty map, marks 4 KiB writes (1 block each;
 * the sequential fill uses 1 MiB writes) and, like the module's coarsen
 * worker, calls btmap_coarsen() when btmap_mark() asks for it (no memory
 * limit: only full leaves collapse). It prints the map's bytes, the dirty
 * blocks and the time per mark, next to a flat bitmap of the volume.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "btmap.h"

#define NR_BLOCKS	(1ULL << 28)		/* 1 TiB / 4 KiB */
#define GIB_BLOCKS	(1ULL << 18)		/* 1 GiB / 4 KiB */

static u64 rnd_state = 0x6a09e667f3bcc908ULL;

static u64 rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

enum pattern { SEQ, RANDOM, HOTSPOT };

static void run(const char *name, enum pattern p, u64 marks)
{
	struct btmap *map = btmap_create(NR_BLOCKS, 0);
	u64 i, hot = NR_BLOCKS / 100, count = p == SEQ ? 256 : 1;
	double t0, t1;

	if (!map) {
		fprintf(stderr, "bench_map: out of memory\n");
		exit(1);
	}
	t0 = now_ns();
	for (i = 0; i < marks; i++) {
		u64 first;

		if (p == SEQ)
			first = i * count;
		else if (p == HOTSPOT && rnd() % 10)
			first = rnd() % hot;	/* 90% of writes in 1% of the volume */
		else
			first = rnd() % NR_BLOCKS;
		if (btmap_mark(map, first, count))
			btmap_coarsen(map, ~0ULL);
	}
	t1 = now_ns();
	printf("%-34s %10llu marks  %12llu dirty  %10.2f MiB  %6.1f ns/mark\n", name,
	       (unsigned long long)marks, (unsigned long long)btmap_dirty(map),
	       btmap_bytes(map) / 1048576.0, (t1 - t0) / (double)marks);
	btmap_destroy(map);
}

int main(void)
{
	rcu_register_thread();
	printf("1 TiB volume, 4 KiB blocks: a flat bitmap is %.2f MiB\n",
	       NR_BLOCKS / 8 / 1048576.0);
	run("sequential fill (1 MiB writes)", SEQ, NR_BLOCKS / 256);
	run("1 GiB of random 4k writes", RANDOM, GIB_BLOCKS);
	run("10 GiB of random 4k writes", RANDOM, 10 * GIB_BLOCKS);
	run("hot spot: 1 GiB, 90% in 1%", HOTSPOT, GIB_BLOCKS);
	run("hot spot: 10 GiB, 90% in 1%", HOTSPOT, 10 * GIB_BLOCKS);
	rcu_barrier();
	if (atomic_long_read(&blktrack_allocations))
		printf("leak: %ld allocations\n", atomic_long_read(&blktrack_allocations));
	rcu_unregister_thread();
	return 0;
}
