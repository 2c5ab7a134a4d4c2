// SPDX-License-Identifier: GPL-2.0
/*
 * memhog MIB SECONDS: take MIB MiB of anonymous memory and keep writing to
 * every page of it for SECONDS: memory pressure that swaps (and may end in
 * the OOM killer, which the caller points at us with oom_score_adj).
 * Prints "touched N MiB" at the end. tests/vm/0992-snapshot-pressure.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib, i, page = (size_t)sysconf(_SC_PAGESIZE), touched = 0;
	time_t end;
	char *mem;

	if (argc != 3) {
		fprintf(stderr, "usage: memhog MIB SECONDS\n");
		return 2;
	}
	mib = strtoull(argv[1], NULL, 0);
	end = time(NULL) + strtol(argv[2], NULL, 0);
	mem = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("memhog: mmap");
		return 1;
	}
	do {
		/* A different byte each pass: every page is dirty again. */
		for (i = 0; i < mib << 20; i += page)
			mem[i] = (char)(i / page + touched);
		touched += mib;
	} while (time(NULL) < end);
	printf("touched %zu MiB\n", touched);
	return 0;
}
