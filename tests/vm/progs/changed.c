// SPDX-License-Identifier: GPL-2.0
/*
 * changed A B BLOCK_SIZE: print the blocks that differ between files (or
 * devices) A and B, over the length of the shorter one, as merged "OFFSET
 * LENGTH" lines in bytes: what something changed on a device since an image
 * of it was taken (tests/vm/0461-mpage.sh).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t read_block(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0)
			return -1;
		if (!n)
			break;
		got += n;
	}
	return got;
}

int main(int argc, char **argv)
{
	uint64_t off = 0, run = 0, run_len = 0;
	ssize_t na, nb, n;
	char *a, *b;
	size_t bs;
	int fa, fb;

	if (argc != 4) {
		fprintf(stderr, "usage: changed A B BLOCK_SIZE\n");
		return 2;
	}
	bs = strtoull(argv[3], NULL, 0);
	fa = open(argv[1], O_RDONLY);
	fb = open(argv[2], O_RDONLY);
	a = bs ? malloc(bs) : NULL;
	b = bs ? malloc(bs) : NULL;
	if (fa < 0 || fb < 0 || !a || !b) {
		perror("changed");
		return 1;
	}
	for (;;) {
		na = read_block(fa, a, bs);
		nb = read_block(fb, b, bs);
		if (na < 0 || nb < 0) {
			perror("changed: read");
			return 1;
		}
		n = na < nb ? na : nb;
		if (!n)
			break;
		if (memcmp(a, b, n)) {
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
	if (run_len)
		printf("%" PRIu64 " %" PRIu64 "\n", run, run_len);
	return 0;
}
