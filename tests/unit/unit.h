/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers the unit tests share (tests/unit/, tests/unit/lib/).
 */
#ifndef BLKTRACK_UNIT_H
#define BLKTRACK_UNIT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

/* The text of file @path (at most 4095 bytes; "" when missing), in a static buffer. */
static inline char *unit_read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	return buf;
}

/*
 * Block @b's content of generation @g, @bs bytes (a multiple of 8):
 * pseudo-random (zstd gains little), never zero.
 */
static inline void unit_fill_block(uint8_t *buf, size_t bs, uint64_t b, uint32_t g)
{
	uint64_t x = (b + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)g << 32), v;
	size_t i;

	for (i = 0; i < bs; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = (x * 0x2545f4914f6cdd1dULL) | 1;
		memcpy(buf + i, &v, 8);
	}
}

/* Damage file @path: flip the bits of @mask in its byte at @off. */
static inline void unit_flip_bits(const char *path, off_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t byte;

	cr_assert(fd >= 0, "%s", path);
	cr_assert_eq(pread(fd, &byte, 1, off), 1);
	byte ^= mask;
	cr_assert_eq(pwrite(fd, &byte, 1, off), 1);
	close(fd);
}

#endif /* BLKTRACK_UNIT_H */
