// SPDX-License-Identifier: GPL-2.0
/*
 * evidence - the report of a failed bit-exact comparison (VM tests).
 *
 *	evidence [--block-size N] [--max N] RESTORED REFERENCE [REPO BACKUP_ID]
 *
 * Compares the files (or devices) RESTORED and REFERENCE block by block and
 * prints, for the first --max (16) blocks that differ: the block's number
 * and byte offset, the first differing byte, both contents as hex (48
 * bytes around that byte) and, with REPO and BACKUP_ID, which backup of
 * the chain restored into RESTORED last wrote the block: the newest chain
 * member (the highest id) whose "covers" (blktrack_repo_json() with
 * detail) overlaps it, and which other members store it.
 * Then the ranges of differing blocks (at most 64 lines) and their count.
 * The block size is --block-size, else the backup's ("to"."block_size"),
 * else 4096. A block only one of the files has counts as differing.
 *
 * Exits 0 if the contents are the same, 1 if they differ, 2 on an error.
 * testlib.sh's keep_evidence runs it; see there for where its output goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "libblktrack.h"

#define WINDOW		48
#define MAX_RANGES	64

static struct json_object *chain;	/* the backup's chain ("chain": ids) */
static struct json_object *backups;	/* every backup of the repository */

static ssize_t read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n)
			break;
		got += n;
	}
	return got;
}

static struct json_object *find_backup(uint64_t id)
{
	size_t i, n = json_object_array_length(backups);

	for (i = 0; i < n; i++) {
		struct json_object *b = json_object_array_get_idx(backups, i), *v;

		if (json_object_object_get_ex(b, "id", &v) &&
		    (uint64_t)json_object_get_uint64(v) == id)
			return b;
	}
	return NULL;
}

/* Does backup @b store anything of [off, off + len)? */
static int covers(struct json_object *b, uint64_t off, uint64_t len)
{
	struct json_object *cov;
	size_t i, n;

	if (!json_object_object_get_ex(b, "covers", &cov))
		return 0;
	n = json_object_array_length(cov);
	for (i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(cov, i);
		uint64_t s = json_object_get_uint64(json_object_array_get_idx(p, 0));
		uint64_t l = json_object_get_uint64(json_object_array_get_idx(p, 1));

		if (s < off + len && off < s + l)
			return 1;
	}
	return 0;
}

/*
 * Which members of the chain store the block at @off. A backup's parent has
 * a smaller id (lib/repo/repo.c: repo_chain()), so the newest is the one with
 * the highest id, whatever the order of "chain".
 */
static void print_writers(uint64_t off, uint64_t len)
{
	size_t i, n = json_object_array_length(chain);
	uint64_t prev = UINT64_MAX, best;
	int found = 0;

	/* Members that store the block, highest id first. */
	for (;;) {
		int any = 0;

		best = 0;
		for (i = 0; i < n; i++) {
			uint64_t id = json_object_get_uint64(json_object_array_get_idx(chain, i));
			struct json_object *b = find_backup(id);

			if (id < prev && id >= best && b && covers(b, off, len)) {
				best = id;
				any = 1;
			}
		}
		if (!any)
			break;
		printf(found ? " %" PRIu64 : "  last written by backup %" PRIu64
		       " (chain members that store it, newest first: %" PRIu64, best, best);
		found = 1;
		prev = best;
	}
	if (found)
		printf(")\n");
	else
		printf("  stored by no backup of the chain\n");
}

static void hex_line(const char *name, const unsigned char *buf, size_t n,
		     uint64_t at, size_t from, size_t first)
{
	size_t i;

	printf("  %-9s @%" PRIu64 ":", name, at + from);
	for (i = from; i < from + WINDOW && i < n; i++)
		printf(i == first ? " [%02x]" : " %02x", buf[i]);
	if (from >= n)
		printf(" (past its end)");
	printf("\n");
}

/* Load the repository and the backup's chain; returns the backup's block size. */
static int load_repo(const char *repo, const char *idstr, struct json_object **top,
		     uint32_t *bs)
{
	struct blktrack_ctx *ctx = blktrack_new();
	struct json_object *b, *v, *to;
	uint64_t id = strtoull(idstr, NULL, 0);
	size_t i;
	int err;

	if (!ctx)
		return -ENOMEM;
	err = blktrack_repo_json(ctx, repo, true, top);
	if (err) {
		fprintf(stderr, "evidence: %s: %s\n", repo, blktrack_get_error(ctx));
		blktrack_unref(ctx);
		return err;
	}
	blktrack_unref(ctx);
	if (!json_object_object_get_ex(*top, "backups", &backups) ||
	    !(b = find_backup(id))) {
		fprintf(stderr, "evidence: no backup %" PRIu64 " in %s\n", id, repo);
		return -ENOENT;
	}
	if (json_object_object_get_ex(b, "to", &to) &&
	    json_object_object_get_ex(to, "block_size", &v))
		*bs = json_object_get_uint64(v);
	if (!json_object_object_get_ex(b, "chain", &chain)) {
		json_object_object_get_ex(b, "chain_error", &v);
		printf("backup %" PRIu64 " of %s: no chain: %s\n", id, repo,
		       v ? json_object_get_string(v) : "?");
		chain = NULL;
		return 0;
	}
	printf("backup %" PRIu64 " of %s: chain:", id, repo);
	for (i = 0; i < json_object_array_length(chain); i++) {
		uint64_t m = json_object_get_uint64(json_object_array_get_idx(chain, i));
		struct json_object *mb = find_backup(m), *t = NULL, *ok = NULL;

		if (mb) {
			json_object_object_get_ex(mb, "type", &t);
			json_object_object_get_ex(mb, "file_ok", &ok);
		}
		printf(" %" PRIu64 " (%s%s)", m, t ? json_object_get_string(t) : "?",
		       ok && !json_object_get_boolean(ok) ? ", file unreadable" : "");
	}
	printf("\n");
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: evidence [--block-size N] [--max N] RESTORED REFERENCE "
		"[REPO BACKUP_ID]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "max", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t blk, last = 0, differ = 0, ranges = 0, rng[MAX_RANGES][2];
	uint32_t bs = 0, opt_bs = 0, max = 16;
	struct json_object *top = NULL;
	unsigned char *a, *b;
	int c, fa, fb;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			opt_bs = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			max = strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 && argc != 4)
		usage();
	if (argc == 4 && load_repo(argv[2], argv[3], &top, &bs))
		return 2;
	bs = opt_bs ? opt_bs : bs ? bs : 4096;
	fa = open(argv[0], O_RDONLY);
	fb = open(argv[1], O_RDONLY);
	a = malloc(bs);
	b = malloc(bs);
	if (fa < 0 || fb < 0 || !a || !b) {
		perror("evidence");
		return 2;
	}
	printf("compare %s (restored) with %s, block size %u\n", argv[0], argv[1], bs);
	for (blk = 0;; blk++) {
		ssize_t na = read_full(fa, a, bs), nb = read_full(fb, b, bs);
		size_t i, n, from;

		if (na < 0 || nb < 0) {
			perror("evidence: read");
			return 2;
		}
		if (!na && !nb)
			break;
		n = na < nb ? na : nb;
		for (i = 0; i < n && a[i] == b[i]; i++)
			;
		if (na == nb && i == n)
			continue;
		if (differ < max) {
			printf("block %" PRIu64 " at byte %" PRIu64 ": first difference at byte %"
			       PRIu64 " (+%zu)\n", blk, blk * bs, blk * bs + i, i);
			if (chain)
				print_writers(blk * bs, bs);
			from = i < 16 ? 0 : (i - 16) & ~(size_t)15;
			hex_line("restored", a, na, blk * bs, from, i);
			hex_line("reference", b, nb, blk * bs, from, i);
		}
		if (differ++ && last + 1 == blk) {
			if (ranges <= MAX_RANGES)
				rng[ranges - 1][1] = blk;
		} else {
			if (ranges < MAX_RANGES)
				rng[ranges][0] = rng[ranges][1] = blk;
			ranges++;
		}
		last = blk;
	}
	for (blk = 0; blk < ranges && blk < MAX_RANGES; blk++)
		printf("differing blocks %" PRIu64 "-%" PRIu64 "\n", rng[blk][0], rng[blk][1]);
	if (ranges > MAX_RANGES)
		printf("... %" PRIu64 " ranges of differing blocks in all\n", ranges);
	printf("%" PRIu64 " differing block(s) of %u bytes\n", differ, bs);
	json_object_put(top);
	return differ ? 1 : 0;
}
