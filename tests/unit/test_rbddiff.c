// SPDX-License-Identifier: GPL-2.0
/*
 * lib/format/rbddiff.c, read back by a parser of the test's own written
 * from Ceph's doc/dev/rbd-diff.rst (not from the writer): both versions
 * carry the names, the size and exactly the records the test wrote, data
 * byte for byte, 'e' last with nothing after it; each call's bytes are in
 * the file when it returns (nothing held back); a small stream is compared
 * with the bytes the document gives; misuse is refused with nothing
 * written, and a write error sticks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "format/rbddiff.h"

#define SIZE	((10ULL << 20) + 1234)	/* a partial last 4 KiB block */
#define NREC	6

/* ---- the test's parser ---------------------------------------------------- */

struct rec {
	char tag;
	uint64_t off, len;
	const uint8_t *data;		/* 'w': into the stream */
};

struct parsed {
	char from[64], to[64];		/* "": no such record */
	uint64_t size;
	struct rec r[NREC + 4];
	int n;
	bool ended;
};

static uint64_t le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

/* @len bytes at *@pos of @buf (@end bytes): where they start. */
static const uint8_t *take(const uint8_t *buf, size_t end, size_t *pos, uint64_t len)
{
	cr_assert_leq(len, end - *pos, "the stream ends inside a record at %zu", *pos);
	*pos += len;
	return buf + *pos - len;
}

static void parse_name(const uint8_t *buf, size_t end, size_t *pos, char *out)
{
	uint64_t n = le(take(buf, end, pos, 4), 4);

	cr_assert_lt(n, 64);
	memcpy(out, take(buf, end, pos, n), n);
	out[n] = 0;
}

static void parse(const uint8_t *buf, size_t end, unsigned int version, struct parsed *p)
{
	size_t pos = 0, start;
	uint64_t len = 0;
	char tag;

	memset(p, 0, sizeof(*p));
	cr_assert_eq(memcmp(take(buf, end, &pos, 12), version == 1 ? "rbd diff v1\n" :
			    "rbd diff v2\n", 12), 0, "banner");
	while (!p->ended) {
		tag = (char)*take(buf, end, &pos, 1);
		if (version == 2 && tag != 'e')
			len = le(take(buf, end, &pos, 8), 8);
		start = pos;
		switch (tag) {
		case 'f':
			parse_name(buf, end, &pos, p->from);
			break;
		case 't':
			parse_name(buf, end, &pos, p->to);
			break;
		case 's':
			p->size = le(take(buf, end, &pos, 8), 8);
			break;
		case 'w':
		case 'z':
			cr_assert_lt(p->n, NREC + 4);
			p->r[p->n].tag = tag;
			p->r[p->n].off = le(take(buf, end, &pos, 8), 8);
			p->r[p->n].len = le(take(buf, end, &pos, 8), 8);
			if (tag == 'w')
				p->r[p->n].data = take(buf, end, &pos, p->r[p->n].len);
			p->n++;
			break;
		case 'e':
			p->ended = true;
			break;
		default:
			cr_assert_fail("unknown tag 0x%02x at %zu", (unsigned)(uint8_t)tag, pos - 1);
		}
		if (version == 2 && tag != 'e')
			cr_assert_eq(len, pos - start, "v2 length of '%c': %llu, holds %zu", tag,
				     (unsigned long long)len, pos - start);
	}
	cr_assert_eq(pos, end, "%zu bytes after 'e'", end - pos);
}

/* ---- helpers ---------------------------------------------------------------- */

static int tmp_fd(void)
{
	char path[] = "/tmp/bt-rbddiff.XXXXXX";
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	unlink(path);
	return fd;
}

static uint64_t fd_len(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

static uint8_t *read_all(int fd, size_t *len)
{
	uint8_t *buf;

	*len = fd_len(fd);
	buf = malloc(*len + 1);
	cr_assert(buf);
	cr_assert_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
	return buf;
}

static void pattern(uint8_t *p, uint64_t len, uint64_t off)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)((off + i) * 131 + (off + i) / 4093) | 1;
}

/* The records the test writes: in order, some touching, the last at the end. */
static const struct rec plan[NREC] = {
	{ 'w', 0, 4096, NULL },
	{ 'z', 4096, 8192, NULL },
	{ 'w', 1 << 20, 1 << 20, NULL },
	{ 'w', 2 << 20, 512, NULL },		/* right after the one before */
	{ 'z', 5 << 20, 3 << 20, NULL },
	{ 'w', SIZE - 1234 - 4096, 4096 + 1234, NULL },
};

static void write_and_check(unsigned int version)
{
	size_t v2 = version == 2 ? 8 : 0, len;
	struct rbddiff_writer *w;
	struct parsed p;
	uint8_t *data = malloc(SIZE), *buf;
	uint64_t before;
	int fd = tmp_fd(), k;

	cr_assert(data);
	pattern(data, SIZE, 0);
	cr_assert_eq(rbddiff_begin(fd, version, "blktrack-4", "blktrack-7", SIZE, &w), 0);
	/* banner, 'f', 't', 's' */
	cr_assert_eq(fd_len(fd), 12 + 3 * (1 + v2) + 2 * (4 + 10) + 8);
	for (k = 0; k < NREC; k++) {
		const struct rec *r = &plan[k];

		before = fd_len(fd);
		if (r->tag == 'w')
			cr_assert_eq(rbddiff_write(w, r->off, r->len, data + r->off), 0);
		else
			cr_assert_eq(rbddiff_zero(w, r->off, r->len), 0);
		/* Streamed: the whole record is in the file when the call returns. */
		cr_assert_eq(fd_len(fd) - before, 1 + v2 + 16 + (r->tag == 'w' ? r->len : 0),
			     "record %d", k);
	}
	cr_assert_eq(rbddiff_end(w), 0);
	buf = read_all(fd, &len);
	parse(buf, len, version, &p);
	cr_expect_str_eq(p.from, "blktrack-4");
	cr_expect_str_eq(p.to, "blktrack-7");
	cr_expect_eq(p.size, SIZE);
	cr_assert_eq(p.n, NREC);
	for (k = 0; k < NREC; k++) {
		cr_expect_eq(p.r[k].tag, plan[k].tag, "record %d", k);
		cr_expect_eq(p.r[k].off, plan[k].off, "record %d", k);
		cr_expect_eq(p.r[k].len, plan[k].len, "record %d", k);
		if (plan[k].tag == 'w')
			cr_expect_eq(memcmp(p.r[k].data, data + plan[k].off, plan[k].len), 0,
				     "record %d's data", k);
	}
	free(buf);
	free(data);
	close(fd);
}

/* ---- tests ------------------------------------------------------------------- */

Test(rbddiff, v1_reads_back_as_written, .timeout = 10)
{
	write_and_check(RBDDIFF_V1);
}

Test(rbddiff, v2_reads_back_as_written, .timeout = 10)
{
	write_and_check(RBDDIFF_V2);
}

/* A first image (no 'f'), byte for byte as doc/dev/rbd-diff.rst lays it out. */
Test(rbddiff, bytes_as_cephs_document_has_them, .timeout = 10)
{
	static const uint8_t v1[] = {
		'r', 'b', 'd', ' ', 'd', 'i', 'f', 'f', ' ', 'v', '1', '\n',
		't', 2, 0, 0, 0, 't', '1',
		's', 0x00, 0x10, 0, 0, 0, 0, 0, 0,
		'w', 0x10, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c',
		'z', 0x20, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0,
		'e',
	};
	static const uint8_t v2[] = {
		'r', 'b', 'd', ' ', 'd', 'i', 'f', 'f', ' ', 'v', '2', '\n',
		't', 6, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 't', '1',
		's', 8, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0,
		'w', 19, 0, 0, 0, 0, 0, 0, 0,
		0x10, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c',
		'z', 16, 0, 0, 0, 0, 0, 0, 0,
		0x20, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0,
		'e',			/* no length after 'e', in v2 too */
	};
	const uint8_t *want[] = { v1, v2 };
	const size_t want_len[] = { sizeof(v1), sizeof(v2) };
	struct rbddiff_writer *w;
	uint8_t *buf;
	size_t len;

	for (unsigned int v = RBDDIFF_V1; v <= RBDDIFF_V2; v++) {
		int fd = tmp_fd();

		cr_assert_eq(rbddiff_begin(fd, v, NULL, "t1", 0x1000, &w), 0);
		cr_assert_eq(rbddiff_write(w, 0x10, 3, "abc"), 0);
		cr_assert_eq(rbddiff_zero(w, 0x20, 0x10), 0);
		cr_assert_eq(rbddiff_end(w), 0);
		buf = read_all(fd, &len);
		cr_expect_eq(len, want_len[v - 1], "v%u: %zu bytes", v, len);
		cr_expect_eq(memcmp(buf, want[v - 1], want_len[v - 1]), 0, "v%u bytes", v);
		free(buf);
		close(fd);
	}
}

/* Misuse: the call refused, nothing written, the writer usable after. */
Test(rbddiff, misuse_refused_with_nothing_written, .timeout = 10)
{
	char name[RBDDIFF_NAME_MAX + 2];
	struct rbddiff_writer *w;
	int fd = tmp_fd();
	uint64_t len;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	cr_expect_eq(rbddiff_begin(fd, 3, NULL, "t", 100, &w), -EINVAL);
	cr_expect_eq(rbddiff_begin(fd, RBDDIFF_V1, "", "t", 100, &w), -EINVAL);
	cr_expect_eq(rbddiff_begin(fd, RBDDIFF_V1, name, "t", 100, &w), -ENAMETOOLONG);
	cr_expect_null(w);
	cr_assert_eq(fd_len(fd), 0, "a refused begin wrote");
	name[RBDDIFF_NAME_MAX] = 0;		/* the longest rbd import-diff reads */
	cr_assert_eq(rbddiff_begin(fd, RBDDIFF_V1, name, "t", 100, &w), 0);
	cr_assert_eq(rbddiff_write(w, 10, 10, name), 0);
	len = fd_len(fd);
	cr_expect_eq(rbddiff_write(w, 19, 1, "x"), -ERANGE, "overlap");
	cr_expect_eq(rbddiff_zero(w, 0, 5), -ERANGE, "before the last");
	cr_expect_eq(rbddiff_zero(w, 90, 11), -ERANGE, "past the size");
	cr_expect_eq(rbddiff_zero(w, 101, 1), -ERANGE, "past the size");
	cr_expect_eq(rbddiff_write(w, 30, 0, "x"), -EINVAL, "empty");
	cr_expect_eq(fd_len(fd), len, "a refused record wrote");
	cr_expect_eq(rbddiff_zero(w, 20, 80), 0, "to the very end");
	cr_expect_eq(rbddiff_end(w), 0);
	close(fd);
}

/* A reader gone: the write fails, and every later call with it; no 'e'. */
Test(rbddiff, write_error_sticks, .timeout = 10)
{
	struct rbddiff_writer *w;
	int p[2];

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(rbddiff_begin(p[1], RBDDIFF_V2, "a", "b", 1 << 20, &w), 0);
	close(p[0]);
	cr_expect_eq(rbddiff_write(w, 0, 4, "data"), -EPIPE);
	cr_expect_eq(rbddiff_zero(w, 4096, 4096), -EPIPE);
	cr_expect_eq(rbddiff_end(w), -EPIPE);
	close(p[1]);
}
