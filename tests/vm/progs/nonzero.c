// SPDX-License-Identifier: GPL-2.0
/*
 * nonzero FILE BLOCK_SIZE [FROM]: print the blocks of FILE (or a device)
 * that hold a non-zero byte, from byte FROM on, as merged "OFFSET LENGTH"
 * lines in bytes: the blocks something wrote to a device that started
 * zeroed. The VM tests use it as the expected set of writes they did not
 * make themselves (swap-out, tests/vm/0460-rw-page.sh).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint64_t off, run = 0, run_len = 0;
	size_t bs;
	char *buf;
	ssize_t n;
	int fd;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: nonzero FILE BLOCK_SIZE [FROM]\n");
		return 2;
	}
	bs = strtoull(argv[2], NULL, 0);
	off = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;
	fd = open(argv[1], O_RDONLY);
	buf = bs ? malloc(bs) : NULL;
	if (fd < 0 || !buf || lseek(fd, off, SEEK_SET) < 0) {
		perror("nonzero");
		return 1;
	}
	while ((n = read(fd, buf, bs)) > 0) {
		ssize_t i;

		for (i = 0; i < n && !buf[i]; i++)
			;
		if (i < n) {
			if (run_len && run + run_len == off) {
				run_len += n;
			} else {
				if (run_len)
					printf("%" PRIu64 " %" PRIu64 "\n", run, run_len);
				run = off;
				run_len = n;
			}
		}
		off += n;
	}
	if (n < 0) {
		perror("nonzero: read");
		return 1;
	}
	if (run_len)
		printf("%" PRIu64 " %" PRIu64 "\n", run, run_len);
	return 0;
}
