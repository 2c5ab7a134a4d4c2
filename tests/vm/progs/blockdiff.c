// SPDX-License-Identifier: GPL-2.0
/*
 * blockdiff A B BLOCK_SIZE: print how many blocks of BLOCK_SIZE bytes differ
 * between files (or devices) A and B, compared byte for byte over the
 * length of the shorter one, plus one per block only one of them has.
 * The VM tests use it as the independent reference for a resync: the
 * blocks a resync must store are those that differ from the base's image.
 */
#include <fcntl.h>
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
	unsigned long long differ = 0;
	size_t bs;
	char *a, *b;
	int fa, fb;

	if (argc != 4 || !(bs = strtoul(argv[3], NULL, 0))) {
		fprintf(stderr, "usage: blockdiff A B BLOCK_SIZE\n");
		return 2;
	}
	fa = open(argv[1], O_RDONLY);
	fb = open(argv[2], O_RDONLY);
	a = malloc(bs);
	b = malloc(bs);
	if (fa < 0 || fb < 0 || !a || !b) {
		perror("blockdiff");
		return 2;
	}
	for (;;) {
		ssize_t na = read_block(fa, a, bs), nb = read_block(fb, b, bs);

		if (na < 0 || nb < 0) {
			perror("blockdiff: read");
			return 2;
		}
		if (!na && !nb)
			break;
		differ += na != nb || memcmp(a, b, na);
	}
	printf("%llu\n", differ);
	return 0;
}
