// SPDX-License-Identifier: GPL-2.0
/*
 * bench_growth - how the userspace cost of delta composition and restore
 * grows (issue 5, "Growth"), on the host: the repository and restore code
 * need no kernel, so lib/ is driven directly on a repository built here.
 *
 *	make bench-growth                     extents up to 10^6, chains up to
 *	                                      100, catalogs up to 10^4 backups
 *	build/bench-growth -e 7 -d DIR        extents up to 10^7 (restore writes
 *	                                      a 10 GB target file in DIR)
 *	build/bench-growth -p catalog -c N    the catalog part alone, up to N
 *	                                      backups (10^3 .. 10^5)
 *
 * (i) N separated extents (every other block), N = 10^3 .. 10^E:
 *	set     blockset_from_extents() of N extents, as READ_EXTENTS gives them
 *	compose repo_compose() of a differential after full + one incremental:
 *	        the incremental's stored delta (N/2 extents, read back from the
 *	        repository) | the new checkpoint's delta (N/2 other extents) =
 *	        N extents (an incremental would read no stored delta: its base
 *	        is the last incremental)
 *	walk    blockset_for_each_extent() over the result (what the backup
 *	        queues reads from)
 *	restore blktrack_restore() of full (all ZERO records) + one
 *	        incremental of N one-block DATA records, onto a new sparse file
 * (ii) a chain of k incrementals of 10^4 extents each (k = 1 .. 100, all
 * extents of all incrementals separated):
 *	compose repo_compose() of a differential after k incrementals: k
 *	        stored deltas read and ORed (an incremental reads none: its
 *	        base is the last incremental)
 *	restore blktrack_restore() of full + k incrementals
 * (iii) the catalog of a repository of n backups (n = 10^3 .. -c MAX,
 * 10^4 by default): a full and n - 1 incrementals of one block each, all
 * one chain. Per size, what one more backup costs the repository code, by
 * step, as the requester runs them:
 *	open    repo_open() + repo_close(): the catalog read and parsed
 *	recover repo_recover() with nothing to repair (it sweeps backups/,
 *	        deltas/ and hashes/ for files no entry names)
 *	compose repo_compose() of the next incremental
 *	backup  repo_begin() + an empty backup file + repo_commit(): the
 *	        catalog written twice
 *	chain   repo_chain() of the newest backup: the whole chain, n members
 *	        (what a restore resolves)
 * and the catalog's bytes. ns per entry = time / n: flat means each backup
 * costs time linear in the catalog (building a repository of n backups is
 * then O(n^2) in all); growing means worse.
 *
 * Blocks are 512 bytes (the smallest bfile allows) so that 10^7 extents fit
 * in a 10 GB volume; the data of each block is compressible (zstd, the
 * default). Figures: host CPU time of this process (user + system, best of
 * RUNS runs), and ns per extent (per extent of the result for compose, per
 * extent written for restore). The ratio column is the largest per-extent
 * cost over the smallest: linear or better means it stays near 1 (or the
 * per-extent cost falls).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "format/bfile.h"
#include "format/blockset.h"
#include "libblktrack.h"
#include "repo/repo.h"

#define BS		512U
#define VOL		"uuid:bench-growth"
#define CHAIN_MAX	100
#define CHAIN_EXTENTS	10000U
#define RUNS		3

static const char *base_dir;
static int max_exp = 6;
static uint64_t catalog_max = 10000;
static const char *parts = "extents,chain,catalog";

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-growth: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- a repository built without a kernel -------------------------------- */

struct bench_repo {
	char path[4096];
	struct repo *r;
	uint64_t size;			/* volume bytes */
	uint64_t epoch;			/* of the next checkpoint */
	uint64_t last;			/* id of the last backup */
	uint8_t last_bid[BFILE_ID_LEN];	/* its bfile id */
};

static struct repo_stamp stamp_at(const struct bench_repo *b, uint64_t epoch)
{
	struct repo_stamp s = { .volume_id = VOL, .epoch = epoch, .size = b->size,
				.block_size = BS };

	memset(s.generation, 0x5b, sizeof(s.generation));
	return s;
}

static void to_bstamp(const struct repo_stamp *s, struct bfile_stamp *o)
{
	memcpy(o->generation, s->generation, 16);
	o->epoch = s->epoch;
	o->size = s->size;
	o->block_size = s->block_size;
}

static void rm_rf(const char *path)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd))
		die(path, EIO);
}

static void brepo_open(struct bench_repo *b, const char *name, uint64_t size)
{
	int err;

	memset(b, 0, sizeof(*b));
	snprintf(b->path, sizeof(b->path), "%s/%s", base_dir, name);
	rm_rf(b->path);
	b->size = size;
	err = repo_open(b->path, REPO_CREATE, &b->r);
	if (err)
		die(b->r ? repo_error(b->r) : b->path, err);
}

static void brepo_close(struct bench_repo *b)
{
	repo_close(b->r);
	rm_rf(b->path);
}

struct data_ctx {
	struct bfile_writer *w;
	uint8_t buf[BS];
};

/* Each block holds its number: not zero (a DATA record), compressible. */
static int write_blocks(void *data, uint64_t first, uint64_t count)
{
	struct data_ctx *d = data;
	uint64_t b;
	size_t i;
	int err;

	for (b = first; b < first + count; b++) {
		for (i = 0; i < BS; i += 8)
			memcpy(d->buf + i, &b, 8);
		err = bfile_write_data(d->w, b * BS, d->buf, BS);
		if (err)
			return err;
	}
	return 0;
}

/*
 * A committed backup of @type (full or incremental after the last one) whose
 * checkpoint delta is @delta; a full stores zeros, an incremental the blocks
 * of @delta.
 */
static void brepo_add(struct bench_repo *b, enum repo_type type, const struct blockset *delta)
{
	const struct repo_entry *parent = type == REPO_FULL ? NULL : repo_find(b->r, b->last);
	struct repo_entry e = { .type = type };
	struct data_ctx d = { 0 };
	struct bfile_header h;
	struct bfile_stats st;
	struct repo_file *rf;
	uint64_t id;
	int err;

	e.to = stamp_at(b, b->epoch + 1);
	if (parent) {
		e.has_from = true;
		e.from = parent->to;
		e.parent = parent->id;
	}
	err = repo_begin(b->r, &e, delta, &id);
	if (!err)
		err = repo_backup_create(b->r, id, &rf);
	if (err)
		die(repo_error(b->r), err);
	err = bfile_header_init(&h, type == REPO_FULL ? BFILE_TYPE_FULL :
				BFILE_TYPE_INCREMENTAL);
	if (err)
		die("bfile_header_init", err);
	snprintf(h.volume_id, sizeof(h.volume_id), "%s", VOL);
	h.volume_size = b->size;
	h.block_size = BS;
	to_bstamp(&e.to, &h.to);
	if (parent) {
		to_bstamp(&e.from, &h.from);	/* repo_begin() may move *parent */
		memcpy(h.parent_id, b->last_bid, BFILE_ID_LEN);
	}
	err = bfile_writer_open_fn(repo_file_write, rf, &h, &d.w);
	if (err)
		die(d.w ? bfile_writer_error(d.w) : "bfile_writer_open", err);
	if (type == REPO_FULL)
		err = bfile_write_zero(d.w, 0, b->size);
	else
		err = blockset_for_each_extent(delta, write_blocks, &d);
	if (err)
		die(bfile_writer_error(d.w), err);
	err = bfile_writer_finish(d.w, &st);
	if (!err)
		err = repo_backup_install(b->r, id, rf);
	if (!err)
		err = repo_commit(b->r, id, st.stream_bytes);
	if (err)
		die(repo_error(b->r), err);
	b->last = id;
	memcpy(b->last_bid, h.id, BFILE_ID_LEN);
	b->epoch++;
}

/* The blocks first + i * stride, i < n. */
static struct blockset *strided(uint64_t first, uint64_t stride, uint64_t n)
{
	struct blockset *s;
	uint64_t i;
	int err = blockset_new(&s);

	for (i = 0; !err && i < n; i++)
		err = blockset_add_range(s, first + i * stride, 1);
	if (err)
		die("blockset", err);
	return s;
}

/* ---- the measurements --------------------------------------------------- */

static int count_extent(void *data, uint64_t first, uint64_t count)
{
	(*(uint64_t *)data)++;
	return 0;
}

/* CPU seconds of a restore of backup @id, onto a new file; checks the bytes. */
static double restore_once(struct bench_repo *b, uint64_t id, uint64_t want_bytes,
			   size_t want_members)
{
	struct blktrack_restore_opts o = { .repo = b->path, .backup_id = id };
	struct blktrack_restore_result res;
	struct blktrack_ctx *ctx = blktrack_new();
	char target[4200];
	double t;
	int err;

	if (!ctx)
		die("blktrack_new", ENOMEM);
	snprintf(target, sizeof(target), "%s.target", b->path);
	unlink(target);
	o.target = target;
	/* The restore takes the repository's lock shared: let go of ours. */
	repo_close(b->r);
	t = cpu_now();
	err = blktrack_restore(ctx, &o, &res);
	t = cpu_now() - t;
	if (err)
		die(blktrack_get_error(ctx), err);
	if (res.bytes != want_bytes || res.members != want_members) {
		fprintf(stderr, "bench-growth: restore of %" PRIu64 ": %" PRIu64
			" bytes in %zu members, wanted %" PRIu64 " in %zu\n", id,
			res.bytes, res.members, want_bytes, want_members);
		exit(1);
	}
	unlink(target);
	blktrack_unref(ctx);
	err = repo_open(b->path, 0, &b->r);
	if (err)
		die(b->r ? repo_error(b->r) : b->path, err);
	return t;
}

static double best(double a, double b)
{
	return a < b ? a : b;
}

struct row {
	uint64_t n;			/* extents (or chain length) */
	uint64_t units;			/* extents the per-unit cost divides by */
	double t[4];			/* seconds per column */
};

static void print_table(const char *title, const char *what, const char *const *cols,
			int ncols, const struct row *rows, int nrows)
{
	double lo[4], hi[4], first[4], last[4];
	int i, c;

	printf("\n%s\n| %s |", title, what);
	for (c = 0; c < ncols; c++)
		printf(" %s ms | %s ns/extent |", cols[c], cols[c]);
	printf("\n|---:|");
	for (c = 0; c < ncols; c++)
		printf("---:|---:|");
	printf("\n");
	for (c = 0; c < ncols; c++) {
		lo[c] = 1e30;
		hi[c] = 0;
	}
	for (i = 0; i < nrows; i++) {
		printf("| %" PRIu64 " |", rows[i].n);
		for (c = 0; c < ncols; c++) {
			double per = rows[i].t[c] * 1e9 / rows[i].units;

			printf(" %.2f | %.1f |", rows[i].t[c] * 1e3, per);
			if (!i)
				first[c] = per;
			last[c] = per;
			lo[c] = per < lo[c] ? per : lo[c];
			hi[c] = per > hi[c] ? per : hi[c];
		}
		printf("\n");
	}
	printf("| last/first |");
	for (c = 0; c < ncols; c++)
		printf(" | %.2f |", last[c] / first[c]);
	printf("\n| max/min |");
	for (c = 0; c < ncols; c++)
		printf(" | %.2f |", hi[c] / lo[c]);
	printf("\n");
	fflush(stdout);
}

static void bench_extents(void)
{
	static const char *const cols[] = { "set", "compose", "walk", "restore" };
	struct row rows[8];
	int e, nrows = 0;

	for (e = 3; e <= max_exp; e++) {
		struct row *row = &rows[nrows++];
		struct blockset *neu, *out, *full, *inc;
		struct blktrack_extent *ext;
		struct bench_repo b;
		struct repo_stamp ck;
		uint64_t n = 1, i, seen, base, full_id;
		int run, err;

		for (i = 0; i < (uint64_t)e; i++)
			n *= 10;
		memset(row, 0, sizeof(*row));
		row->n = row->units = n;
		for (i = 0; i < 4; i++)
			row->t[i] = 1e30;

		/* set: the extents READ_EXTENTS would return, to a block set. */
		ext = malloc(n * sizeof(*ext));
		if (!ext)
			die("extents", ENOMEM);
		for (i = 0; i < n; i++) {
			ext[i].offset = 2 * i * BS;
			ext[i].length = BS;
		}
		for (run = 0; run < RUNS; run++) {
			double t = cpu_now();

			err = blockset_from_extents(ext, n, BS, &out);
			t = cpu_now() - t;
			if (err)
				die("blockset_from_extents", err);
			if (blockset_cardinality(out) != n)
				die("blockset_from_extents: wrong count", EIO);
			blockset_free(out);
			row->t[0] = best(row->t[0], t);
		}
		free(ext);

		/* compose: full, then an incremental of N/2 extents; then the next. */
		brepo_open(&b, "extents", 2 * n * BS);
		full = strided(0, 1, 0);
		brepo_add(&b, REPO_FULL, full);
		full_id = b.last;
		inc = strided(0, 4, n / 2);
		brepo_add(&b, REPO_INCREMENTAL, inc);
		neu = strided(2, 4, n / 2);
		ck = stamp_at(&b, b.epoch);
		for (run = 0; run < RUNS; run++) {
			double t = cpu_now();

			err = repo_compose(b.r, REPO_DIFFERENTIAL, &ck, neu, &out, &base);
			t = cpu_now() - t;
			if (err)
				die(repo_error(b.r), err);
			row->t[1] = best(row->t[1], t);
			seen = 0;
			t = cpu_now();
			blockset_for_each_extent(out, count_extent, &seen);
			t = cpu_now() - t;
			row->t[2] = best(row->t[2], t);
			if (seen != n || base != full_id)
				die("compose: wrong extents or base", EIO);
			blockset_free(out);
		}
		blockset_free(neu);
		blockset_free(full);
		blockset_free(inc);

		brepo_close(&b);

		/* restore: full + one incremental of N extents. */
		brepo_open(&b, "extents", 2 * n * BS);
		full = strided(0, 1, 0);
		brepo_add(&b, REPO_FULL, full);
		blockset_free(full);
		inc = strided(1, 2, n);
		brepo_add(&b, REPO_INCREMENTAL, inc);
		blockset_free(inc);
		for (run = 0; run < (n >= 1000000 ? 1 : RUNS); run++)
			row->t[3] = best(row->t[3], restore_once(&b, b.last,
						b.size + n * BS, 2));
		brepo_close(&b);
		fprintf(stderr, "bench-growth: %" PRIu64 " extents done\n", n);
	}
	print_table("(i) N separated extents, 512-byte blocks (host CPU, best of 3)",
		    "extents", cols, 4, rows, nrows);
}

static void bench_chain(void)
{
	static const char *const cols[] = { "compose", "restore" };
	static const unsigned int ks[] = { 1, 2, 5, 10, 20, 50, 100 };
	struct row rows[8];
	struct bench_repo b;
	struct blockset *empty;
	unsigned int k, ki = 0;
	int nrows = 0;

	brepo_open(&b, "chain", 2ULL * CHAIN_MAX * CHAIN_EXTENTS * BS);
	empty = strided(0, 1, 0);
	brepo_add(&b, REPO_FULL, empty);
	for (k = 1; k <= CHAIN_MAX; k++) {
		struct blockset *d = strided(2 * (k - 1), 2 * CHAIN_MAX, CHAIN_EXTENTS);
		struct row *row;
		int run;

		brepo_add(&b, REPO_INCREMENTAL, d);
		blockset_free(d);
		if (k != ks[ki])
			continue;
		ki++;
		row = &rows[nrows++];
		row->n = k;
		row->units = (uint64_t)k * CHAIN_EXTENTS;
		row->t[0] = row->t[1] = 1e30;
		for (run = 0; run < RUNS; run++) {
			struct repo_stamp ck = stamp_at(&b, b.epoch);
			struct blockset *out;
			uint64_t base, seen = 0;
			double t = cpu_now();
			int err;

			err = repo_compose(b.r, REPO_DIFFERENTIAL, &ck, empty, &out, &base);
			t = cpu_now() - t;
			if (err)
				die(repo_error(b.r), err);
			blockset_for_each_extent(out, count_extent, &seen);
			if (seen != row->units)
				die("differential: wrong extents", EIO);
			blockset_free(out);
			row->t[0] = best(row->t[0], t);
			row->t[1] = best(row->t[1], restore_once(&b, b.last,
						b.size + row->units * BS, k + 1));
		}
	}
	blockset_free(empty);
	brepo_close(&b);
	print_table("(ii) chain of k incrementals of 10^4 extents each (host CPU, best of 3)",
		    "k", cols, 2, rows, nrows);
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench_catalog(void)
{
	static const uint64_t sizes[] = { 1000, 2000, 5000, 10000, 20000, 50000, 100000 };
	static const char *const cols[] = { "open", "recover", "compose", "backup",
					    "chain" };
	struct bench_repo b;
	struct blockset *d;
	uint64_t nb = 2048, k = 0;
	double t0 = wall_now();
	unsigned int si;

	brepo_open(&b, "catalog", nb * BS);
	d = strided(0, 1, 0);
	brepo_add(&b, REPO_FULL, d);
	blockset_free(d);
	k = 1;
	printf("\n(iii) catalog of n backups (full + n - 1 one-block incrementals, one chain;"
	       " host CPU, best of 3)\n| n | catalog bytes | bytes/entry |");
	for (si = 0; si < 5; si++)
		printf(" %s ms | %s ns/entry |", cols[si], cols[si]);
	printf("\n|---:|---:|---:|");
	for (si = 0; si < 5; si++)
		printf("---:|---:|");
	printf("\n");
	fflush(stdout);
	for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]) && sizes[si] <= catalog_max; si++) {
		double t[5] = { 1e30, 1e30, 1e30, 1e30, 1e30 };
		struct stat st;
		char cat[4200];
		int run, c;

		/* The repository grows to n - 3: the 3 timed backups make it n. */
		for (; k < sizes[si] - RUNS; k++) {
			d = strided(k % nb, 1, 1);
			brepo_add(&b, REPO_INCREMENTAL, d);
			blockset_free(d);
		}
		for (run = 0; run < RUNS; run++, k++) {
			struct repo_recovery rec;
			struct repo_stamp ck = stamp_at(&b, b.epoch);
			struct blockset *out;
			uint64_t base, *ids, n;
			double x;
			int err;

			repo_close(b.r);
			x = cpu_now();
			err = repo_open(b.path, 0, &b.r);
			t[0] = best(t[0], cpu_now() - x);
			if (err)
				die(b.r ? repo_error(b.r) : b.path, err);

			x = cpu_now();
			err = repo_recover(b.r, NULL, &rec);
			t[1] = best(t[1], cpu_now() - x);
			if (err || rec.removed || rec.dropped)
				die(repo_error(b.r), err ? err : EIO);

			d = strided(k % nb, 1, 1);
			x = cpu_now();
			err = repo_compose(b.r, REPO_INCREMENTAL, &ck, d, &out, &base);
			t[2] = best(t[2], cpu_now() - x);
			if (err || base != b.last)
				die(repo_error(b.r), err ? err : EIO);
			blockset_free(out);

			x = cpu_now();
			brepo_add(&b, REPO_INCREMENTAL, d);
			t[3] = best(t[3], cpu_now() - x);
			blockset_free(d);

			x = cpu_now();
			err = repo_chain(b.r, b.last, &ids, &n);
			t[4] = best(t[4], cpu_now() - x);
			if (err || n != k + 1)
				die(repo_error(b.r), err ? err : EIO);
			free(ids);
		}
		snprintf(cat, sizeof(cat), "%s/catalog", b.path);
		if (stat(cat, &st))
			die(cat, errno);
		printf("| %" PRIu64 " | %lld | %.0f |", k, (long long)st.st_size,
		       (double)st.st_size / k);
		for (c = 0; c < 5; c++)
			printf(" %.3f | %.1f |", t[c] * 1e3, t[c] * 1e9 / k);
		printf("\n");
		fflush(stdout);
		fprintf(stderr, "bench-growth: catalog of %" PRIu64 " backups done (%.0f s)\n",
			k, wall_now() - t0);
	}
	brepo_close(&b);
}

int main(int argc, char **argv)
{
	int c;

	base_dir = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
	while ((c = getopt(argc, argv, "e:d:c:p:")) != -1) {
		switch (c) {
		case 'e':
			max_exp = atoi(optarg);
			break;
		case 'c':
			catalog_max = strtoull(optarg, NULL, 0);
			break;
		case 'p':
			parts = optarg;
			break;
		case 'd':
			base_dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench-growth [-e MAX_EXPONENT] [-c MAX_BACKUPS]"
				" [-p extents,chain,catalog] [-d DIR]\n");
			return 2;
		}
	}
	if (max_exp < 3 || max_exp > 7) {
		fprintf(stderr, "bench-growth: -e takes 3 to 7\n");
		return 2;
	}
	printf("bench-growth: repositories in %s\n", base_dir);
	if (strstr(parts, "extents"))
		bench_extents();
	if (strstr(parts, "chain"))
		bench_chain();
	if (strstr(parts, "catalog") && catalog_max >= 1000)
		bench_catalog();
	return 0;
}
