// SPDX-License-Identifier: GPL-2.0
/*
 * lib/format/blockhash.c: a hash file written from known blocks reads back the
 * same hashes; every single-bit flip and every truncation is refused, and
 * so are extra bytes; a reader that stops early still checks the digest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "format/blockhash.h"

#define BS	4096U
#define SIZE	(37U * BS + 1000U)	/* a partial last block */
#define NBLK	38U

static unsigned char volume[SIZE];

/* Write the hashes of volume[] to a memory file; return its bytes. */
static size_t make_file(unsigned char **out)
{
	struct blockhash_writer *w;
	size_t len, i;
	char *buf;
	FILE *f;

	for (i = 0; i < SIZE; i++)
		volume[i] = (unsigned char)(i * 7 + i / BS);
	f = tmpfile();
	cr_assert(f);
	cr_assert_eq(blockhash_writer_open(fileno(f), SIZE, BS, &w), 0);
	for (i = 0; i < NBLK; i++) {
		size_t n = SIZE - i * BS < BS ? SIZE - i * BS : BS;

		cr_assert_eq(blockhash_put(w, blockhash_block(volume + i * BS, n)), 0);
	}
	cr_assert_eq(blockhash_put(w, 1), -ERANGE, "one hash too many");
	cr_assert_eq(blockhash_writer_finish(w), 0);
	len = (size_t)lseek(fileno(f), 0, SEEK_END);
	buf = malloc(len);
	cr_assert(buf);
	cr_assert_eq(pread(fileno(f), buf, len, 0), (ssize_t)len);
	fclose(f);
	*out = (unsigned char *)buf;
	return len;
}

/* A file holding @len bytes of @data, open for reading. */
static int memfile(const unsigned char *data, size_t len)
{
	FILE *f = tmpfile();
	int fd;

	cr_assert(f);
	fd = dup(fileno(f));
	fclose(f);
	cr_assert_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int check(const unsigned char *data, size_t len)
{
	uint64_t size;
	uint32_t bs;
	int fd = memfile(data, len), err;

	err = blockhash_check(fd, &size, &bs);
	close(fd);
	if (!err) {
		cr_assert_eq(size, SIZE);
		cr_assert_eq(bs, BS);
	}
	return err;
}

Test(blockhash, round_trip)
{
	struct blockhash_reader *r;
	unsigned char *file;
	size_t len = make_file(&file), i;
	uint64_t h;
	int fd = memfile(file, len);

	cr_assert_eq(len, 40 + 8 * NBLK + 8);
	cr_assert_eq(blockhash_reader_open(fd, &r), 0);
	cr_assert_eq(blockhash_reader_blocks(r), NBLK);
	cr_assert_eq(blockhash_reader_volume_size(r), SIZE);
	cr_assert_eq(blockhash_reader_block_size(r), BS);
	for (i = 0; i < NBLK; i++) {
		size_t n = SIZE - i * BS < BS ? SIZE - i * BS : BS;

		cr_assert_eq(blockhash_get(r, &h), 0);
		cr_assert_eq(h, blockhash_block(volume + i * BS, n), "block %zu", i);
	}
	cr_assert_eq(blockhash_get(r, &h), -ENODATA);
	cr_assert_eq(blockhash_reader_finish(r), 0);
	close(fd);
	free(file);
}

Test(blockhash, every_bit_flip_is_refused)
{
	unsigned char *file;
	size_t len = make_file(&file), bit;

	cr_assert_eq(check(file, len), 0);
	for (bit = 0; bit < 8 * len; bit++) {
		int err;

		file[bit / 8] ^= 1 << (bit % 8);
		err = check(file, len);
		cr_assert(err == -EBADMSG || err == -EPROTONOSUPPORT,
			  "bit %zu flipped: %d", bit, err);
		file[bit / 8] ^= 1 << (bit % 8);
	}
	free(file);
}

Test(blockhash, truncations_and_extra_bytes_are_refused)
{
	unsigned char *file, *longer;
	size_t len = make_file(&file), cut;

	for (cut = 0; cut < len; cut++)
		cr_assert_eq(check(file, cut), -EBADMSG, "truncated at %zu", cut);
	longer = malloc(len + 1);
	memcpy(longer, file, len);
	longer[len] = 0;
	cr_assert_eq(check(longer, len + 1), -EBADMSG);
	free(longer);
	free(file);
}

Test(blockhash, a_reader_that_stops_early_still_checks_the_digest)
{
	struct blockhash_reader *r;
	unsigned char *file;
	size_t len = make_file(&file);
	uint64_t h;
	int fd;

	file[len - 20] ^= 0x10;		/* a hash near the end */
	fd = memfile(file, len);
	cr_assert_eq(blockhash_reader_open(fd, &r), 0);
	cr_assert_eq(blockhash_get(r, &h), 0);
	cr_assert_eq(blockhash_reader_finish(r), -EBADMSG);
	close(fd);
	free(file);
}
