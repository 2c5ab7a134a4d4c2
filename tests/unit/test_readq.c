// SPDX-License-Identifier: GPL-2.0
/*
 * lib/core/readq.c: pieces come back in the order they were added, each with
 * the bytes of the file at its offset, at every depth; a read past the end
 * fails with its offset, and a consumer's error stops the queue.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>

#include "core/readq.h"

#define FILE_BYTES	(1U << 20)

static unsigned char content[FILE_BYTES];

struct seen {
	uint64_t off[4096];
	size_t len[4096];
	size_t n;
	int fail_at;		/* return -EPIPE on this call; -1: never */
};

static int check_piece(void *data, uint64_t off, const void *buf, size_t len)
{
	struct seen *s = data;

	cr_assert_lt(s->n, 4096);
	cr_assert_eq(memcmp(buf, content + off, len), 0, "piece at %llu holds other bytes",
		     (unsigned long long)off);
	if (s->fail_at == (int)s->n)
		return -EPIPE;
	s->off[s->n] = off;
	s->len[s->n++] = len;
	return 0;
}

static FILE *make_file(void)
{
	FILE *f = tmpfile();
	size_t i;

	cr_assert(f);
	for (i = 0; i < FILE_BYTES; i++)
		content[i] = (unsigned char)(i * 131 + i / 4093);
	cr_assert_eq(fwrite(content, 1, FILE_BYTES, f), FILE_BYTES);
	cr_assert_eq(fflush(f), 0);
	return f;
}

Test(readq, in_order_at_every_depth)
{
	FILE *f = make_file();
	unsigned int depth;

	for (depth = 1; depth <= 16; depth *= 2) {
		struct seen s = { .fail_at = -1 };
		uint64_t want_off[1000];
		size_t want_len[1000], i, n = 0;
		struct readq *q;

		srand(depth);
		cr_assert_eq(readq_open(fileno(f), 8192, depth, check_piece, &s, &q), 0);
		for (i = 0; i < 1000; i++) {
			size_t len = 1 + rand() % 8192;
			uint64_t off = rand() % (FILE_BYTES - len + 1);

			want_off[n] = off;
			want_len[n++] = len;
			cr_assert_eq(readq_add(q, off, len), 0);
			cr_assert_leq(i + 1 - s.n, depth, "more than depth pieces queued");
		}
		cr_assert_eq(readq_finish(q), 0);
		cr_assert_eq(readq_failed_at(q), UINT64_MAX);
		readq_free(q);
		cr_assert_eq(s.n, n);
		for (i = 0; i < n; i++) {
			cr_assert_eq(s.off[i], want_off[i], "depth %u piece %zu", depth, i);
			cr_assert_eq(s.len[i], want_len[i]);
		}
	}
	fclose(f);
}

Test(readq, read_past_the_end_fails_with_its_offset)
{
	FILE *f = make_file();
	struct seen s = { .fail_at = -1 };
	struct readq *q;
	int err = 0, i;

	cr_assert_eq(readq_open(fileno(f), 4096, 4, check_piece, &s, &q), 0);
	for (i = 0; i < 3 && !err; i++)
		err = readq_add(q, (uint64_t)i * 4096, 4096);
	if (!err)
		err = readq_add(q, FILE_BYTES - 100, 200);
	for (i = 0; i < 8 && !err; i++)
		err = readq_add(q, (uint64_t)i * 4096, 4096);
	if (!err)
		err = readq_finish(q);
	cr_assert_eq(err, -ENODATA);
	cr_assert_eq(readq_failed_at(q), FILE_BYTES - 100);
	cr_assert_eq(s.n, 3, "the pieces before the failed read are handed over, no later one");
	cr_assert_eq(readq_add(q, 0, 10), -ENODATA, "a failed queue stays failed");
	readq_free(q);
	fclose(f);
}

Test(readq, consumer_error_stops_the_queue)
{
	FILE *f = make_file();
	struct seen s = { .fail_at = 5 };
	struct readq *q;
	int err = 0, i;

	cr_assert_eq(readq_open(fileno(f), 4096, 3, check_piece, &s, &q), 0);
	for (i = 0; i < 50 && !err; i++)
		err = readq_add(q, (uint64_t)i * 4096, 4096);
	if (!err)
		err = readq_finish(q);
	cr_assert_eq(err, -EPIPE);
	cr_assert_eq(readq_failed_at(q), UINT64_MAX, "no read failed");
	cr_assert_eq(s.n, 5);
	cr_assert_eq(readq_finish(q), -EPIPE);
	readq_free(q);
	fclose(f);
}

Test(readq, bad_arguments)
{
	struct readq *q = (void *)1;

	cr_assert_eq(readq_open(0, 4096, 0, check_piece, NULL, &q), -EINVAL);
	cr_assert_null(q);
}
