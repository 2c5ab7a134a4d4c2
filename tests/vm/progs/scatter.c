// SPDX-License-Identifier: GPL-2.0
/*
 * scatter DEV COUNT STRIDE: write COUNT blocks of 4 KiB with O_DIRECT, one
 * every STRIDE bytes (a multiple of 4 KiB, at a small varying offset inside
 * it, never its first or last block), as fast as one thread can, and print each as "OFFSET 4096": the
 * expected set. Many first writes to new map regions in a burst, faster
 * than the module's leaf reserve is refilled (tests/vm/0210-leaf-reserve.sh).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096

int main(int argc, char **argv)
{
	uint64_t count, stride, i, *offs;
	void *buf;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: scatter DEV COUNT STRIDE\n");
		return 2;
	}
	count = strtoull(argv[2], NULL, 0);
	stride = strtoull(argv[3], NULL, 0);
	if (!count || stride < 16 * BLOCK || stride % BLOCK) {
		fprintf(stderr, "scatter: COUNT > 0, STRIDE a multiple of 4096 from 65536\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_DIRECT);
	offs = calloc(count, sizeof(*offs));
	if (fd < 0 || !offs || posix_memalign(&buf, BLOCK, BLOCK)) {
		perror("scatter");
		return 1;
	}
	memset(buf, 0xa5, BLOCK);
	/* Print after the burst: stdio must not slow it down. */
	for (i = 0; i < count; i++) {
		/* Never a stride's first or last block (0210 relies on it). */
		offs[i] = i * stride + (1 + i * 37 % 14) * BLOCK;
		if (pwrite(fd, buf, BLOCK, (off_t)offs[i]) != BLOCK) {
			perror("scatter: pwrite");
			return 1;
		}
	}
	for (i = 0; i < count; i++)
		printf("%" PRIu64 " %d\n", offs[i], BLOCK);
	return close(fd) ? 1 : 0;
}
