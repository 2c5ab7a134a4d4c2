// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack export --format rbd-diff (lib/requester/export.c) over the fake
 * kernel: real chains (a full, incrementals across a volume that grew, a
 * differential) exported one backup at a time and applied in the chain's
 * order to a plain file by the test's own applier, which does what `rbd
 * import-diff` does (Ceph's Import.cc: the from-snapshot must exist, the
 * to-snapshot must not, 's' resizes, 'w' writes, 'z' zeroes, the
 * to-snapshot taken at 'e'): after each, the file is the volume as the test
 * wrote it at that backup. Each stream holds exactly the blocks the test
 * changed since the parent, under the names blktrack-PARENT and blktrack-ID;
 * blocks a writer excluded have no record; a damaged member is refused with
 * no file and nothing on standard output; "-" gives the same bytes as a file.
 *
 * Linked with the whole library and the fake (make unit: build/unit-tests-lib).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "fake_kernel.h"
#include "libblktrack.h"
#include "unit.h"

#define BS	4096U
#define NB	256U			/* 1 MiB */
#define GROW	16U			/* blocks the volume grows by */
#define MAXB	(NB + GROW)
#define MAX_IDS	8

static char top[64], vol[128], repo_dir[128], locks[128], wdir[128], out[160];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static dev_t dev;
static uint8_t *model;			/* the volume as the test wrote it */
static uint64_t blocks = NB;		/* its size now */
static uint8_t *at[MAX_IDS + 1];	/* the volume at backup id i */
static uint64_t at_blocks[MAX_IDS + 1];
static bool changed[MAX_IDS + 1][MAXB];	/* blocks changed since the parent of id i */
static bool since[MAXB];		/* changed since the last backup */
static bool since_full[MAXB];		/* ... since the last full */
static uint32_t gen = 1;

/* Blocks [@first, +@n) written through the fake; @zero: zeroed instead. */
static void vwrite(uint64_t first, uint64_t n, bool zero)
{
	gen++;
	for (uint64_t b = first; b < first + n; b++) {
		if (zero)
			memset(model + b * BS, 0, BS);
		else
			unit_fill_block(model + b * BS, BS, b, gen);
		since[b] = since_full[b] = true;
	}
	cr_assert_eq(fake_kernel_write(fk, dev, first * BS, n * BS, model + first * BS), 0);
}

/* The volume grows by GROW blocks of zeros (the next backup holds them). */
static void grow(void)
{
	int fd = open(vol, O_RDWR);

	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, (off_t)(blocks + GROW) * BS), 0);
	close(fd);
	for (uint64_t b = blocks; b < blocks + GROW; b++)
		since[b] = since_full[b] = true;
	blocks += GROW;
}

static void setup(void)
{
	struct blktrack_ctx *plain;
	char w[160];
	FILE *f;
	int fd;

	snprintf(top, sizeof(top), "/tmp/bt-rbd.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(vol, sizeof(vol), "%s/volume.img", top);
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", top);
	snprintf(locks, sizeof(locks), "%s/locks", top);
	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	snprintf(out, sizeof(out), "%s/point.rbd", top);
	cr_assert_eq(mkdir(wdir, 0700), 0);
	model = calloc(MAXB, BS);
	cr_assert(model);
	for (uint64_t b = 0; b < NB; b++)
		if (b % 8 != 3)
			unit_fill_block(model + b * BS, BS, b, 0);
	fd = open(vol, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, model, NB * BS, 0), (ssize_t)(NB * BS));
	close(fd);
	plain = blktrack_new();
	cr_assert_eq(blktrack_repo_init(plain, repo_dir), 0, "%s", blktrack_get_error(plain));
	blktrack_unref(plain);
	fk = fake_kernel_new(0);
	cr_assert(fk);
	cr_assert_eq(fake_kernel_add_volume(fk, vol, &dev), 0);
	ctx = fake_kernel_context(fk);
	cr_assert(ctx);
	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	/* A writer that names $RANGES at post-snapshot (doc/WRITERS.md, "Ranges"). */
	snprintf(w, sizeof(w), "%s/ranges", wdir);
	f = fopen(w, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\n[ \"$1\" = post-snapshot ] && [ -n \"$RANGES\" ] && "
		"printf '%%b' \"$RANGES\" >\"$BLKTRACK_RANGES_FILE\"\nexit 0\n");
	fclose(f);
	cr_assert_eq(chmod(w, 0700), 0);
}

static void teardown(void)
{
	char cmd[160];

	blktrack_unref(ctx);
	fake_kernel_free(fk);
	free(model);
	for (int i = 0; i <= MAX_IDS; i++) {
		free(at[i]);
		at[i] = NULL;
	}
	unsetenv("RANGES");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(export_rbd, .init = setup, .fini = teardown, .timeout = 60);

/* A backup of @type: the volume then kept in at[id], its changes in changed[id]. */
static uint64_t backup(enum blktrack_backup_type type)
{
	struct blktrack_backup_opts o = {
		.device = vol, .repo = repo_dir, .type = type, .lock_dir = locks,
		.writers_dir = wdir,
	};
	struct blktrack_backup_result res;
	uint64_t id;

	cr_assert_eq(blktrack_backup(ctx, &o, &res), 0, "backup: %s", blktrack_get_error(ctx));
	id = res.id;
	cr_assert_leq(id, MAX_IDS);
	at[id] = malloc(blocks * BS);
	cr_assert(at[id]);
	memcpy(at[id], model, blocks * BS);
	at_blocks[id] = blocks;
	for (uint64_t b = 0; b < blocks; b++)
		changed[id][b] = type == BLKTRACK_BACKUP_FULL ||
				 (type == BLKTRACK_BACKUP_DIFFERENTIAL ? since_full : since)[b];
	memset(since, 0, sizeof(since));
	if (type == BLKTRACK_BACKUP_FULL)
		memset(since_full, 0, sizeof(since_full));
	return id;
}

/* blktrack export --format rbd-diff of backup @id (0: the default) to @path. */
static int export(uint64_t id, const char *path, struct blktrack_export_result *res)
{
	struct blktrack_export_opts o = { .repo = repo_dir, .backup_id = id, .output = path,
					  .format = BLKTRACK_EXPORT_RBD_DIFF };

	return blktrack_export(ctx, &o, res);
}

/* The same with OUT "-", standard output going to @path meanwhile. */
static int export_stdout(uint64_t id, const char *path, struct blktrack_export_result *res)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(STDOUT_FILENO);
	int err;

	cr_assert(fd >= 0 && saved >= 0);
	fflush(stdout);
	cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	err = export(id, "-", res);
	cr_assert_eq(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);
	close(fd);
	return err;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	cr_assert(buf);
	cr_assert_eq(read(fd, buf, *len), (ssize_t)*len);
	close(fd);
	return buf;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? UINT64_MAX : (uint64_t)st.st_size;
}

/* ---- the test's applier: what rbd import-diff does with a v1 stream ------- */

struct image {
	char path[200];
	char snaps[MAX_IDS + 1][32];	/* the snapshots taken, as rbd keeps them */
	int nsnaps;
};

/* What one stream held. */
struct stream {
	char from[32], to[32];
	uint64_t size;
	bool covered[MAXB];		/* blocks a 'w' or 'z' record covers */
	unsigned int w, z;
};

static uint64_t le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

static const uint8_t *take(const uint8_t *buf, size_t len, size_t *pos, uint64_t n)
{
	cr_assert_leq(n, len - *pos, "the stream ends inside a record");
	*pos += n;
	return buf + *pos - n;
}

static void take_name(const uint8_t *buf, size_t len, size_t *pos, char *name)
{
	uint64_t n = le(take(buf, len, pos, 4), 4);

	cr_assert_lt(n, 32);
	memcpy(name, take(buf, len, pos, n), n);
	name[n] = 0;
}

static bool has_snap(const struct image *im, const char *name)
{
	for (int i = 0; i < im->nsnaps; i++)
		if (!strcmp(im->snaps[i], name))
			return true;
	return false;
}

/* A 'w' or 'z' record onto the image, its blocks noted. */
static void apply_io(int fd, struct stream *s, char tag, uint64_t off, uint64_t n,
		     const uint8_t *data)
{
	static const uint8_t zeros[BS];

	cr_assert(off % BS == 0 && n % BS == 0 && off + n <= s->size,
		  "'%c' %llu+%llu: not whole blocks of the image", tag,
		  (unsigned long long)off, (unsigned long long)n);
	for (uint64_t b = off / BS; b < (off + n) / BS; b++) {
		cr_assert(!s->covered[b], "block %llu in two records", (unsigned long long)b);
		s->covered[b] = true;
		cr_assert_eq(pwrite(fd, data ? data + (b * BS - off) : zeros, BS, (off_t)(b * BS)),
			     (ssize_t)BS);
	}
	s->w += tag == 'w';
	s->z += tag == 'z';
}

/* Apply stream file @path to @im; false (nothing taken) when rbd would refuse it. */
static bool apply(struct image *im, const char *path, struct stream *s)
{
	size_t len, pos = 0;
	uint8_t *buf = read_file(path, &len);
	uint64_t off, n;
	bool ok = true;
	int fd = open(im->path, O_RDWR | O_CREAT, 0600);

	cr_assert(fd >= 0);
	memset(s, 0, sizeof(*s));
	cr_assert_eq(memcmp(take(buf, len, &pos, 12), "rbd diff v1\n", 12), 0, "banner");
	for (char tag = 0; ok && tag != 'e';) {
		tag = (char)*take(buf, len, &pos, 1);
		switch (tag) {
		case 'f':
			take_name(buf, len, &pos, s->from);
			ok = has_snap(im, s->from);
			break;
		case 't':
			take_name(buf, len, &pos, s->to);
			ok = !has_snap(im, s->to);
			break;
		case 's':
			s->size = le(take(buf, len, &pos, 8), 8);
			cr_assert_eq(ftruncate(fd, (off_t)s->size), 0);
			break;
		case 'w':
		case 'z':
			off = le(take(buf, len, &pos, 8), 8);
			n = le(take(buf, len, &pos, 8), 8);
			apply_io(fd, s, tag, off, n, tag == 'w' ? take(buf, len, &pos, n) : NULL);
			break;
		case 'e':
			cr_assert_eq(pos, len, "bytes after 'e'");
			snprintf(im->snaps[im->nsnaps++], sizeof(im->snaps[0]), "%s", s->to);
			break;
		default:
			cr_assert_fail("tag 0x%02x", (unsigned)(uint8_t)tag);
		}
	}
	close(fd);
	free(buf);
	return ok;
}

/* Backup @id exported to OUT and applied to @im: then @im is the volume at @id. */
static void export_apply(struct image *im, uint64_t id, uint64_t parent)
{
	struct blktrack_export_result res;
	struct stream s;
	char name[32], tmp[200];
	size_t len;
	uint8_t *got;

	unlink(out);
	cr_assert_eq(export(id, out, &res), 0, "export %llu: %s", (unsigned long long)id,
		     blktrack_get_error(ctx));
	cr_expect_eq(res.backup_id, id);
	cr_expect_eq(res.parent_id, parent);
	cr_expect_eq(res.images, 1);
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	cr_expect_eq(file_size(tmp), UINT64_MAX, "OUT.tmp left");
	cr_assert(apply(im, out, &s), "rbd would refuse backup %llu's stream",
		  (unsigned long long)id);
	snprintf(name, sizeof(name), "blktrack-%llu", (unsigned long long)parent);
	cr_expect_str_eq(s.from, parent ? name : "", "from-snap of %llu", (unsigned long long)id);
	snprintf(name, sizeof(name), "blktrack-%llu", (unsigned long long)id);
	cr_expect_str_eq(s.to, name);
	cr_expect_eq(s.size, at_blocks[id] * BS);
	for (uint64_t b = 0; b < at_blocks[id]; b++)
		cr_expect_eq(s.covered[b], changed[id][b], "backup %llu, block %llu: %s",
			     (unsigned long long)id, (unsigned long long)b, changed[id][b] ?
			     "changed, no record" : "a record, not changed");
	got = read_file(im->path, &len);
	cr_assert_eq(len, at_blocks[id] * BS, "the image after %llu", (unsigned long long)id);
	cr_assert(!memcmp(got, at[id], len), "the image after %llu is not the volume then",
		  (unsigned long long)id);
	free(got);
}

static void new_image(struct image *im, const char *name)
{
	memset(im, 0, sizeof(*im));
	snprintf(im->path, sizeof(im->path), "%s/%s", top, name);
}

/* ---- tests ------------------------------------------------------------------- */

Test(export_rbd, a_chain_applied_in_order_is_each_point)
{
	struct blktrack_export_result res;
	uint64_t full, inc1, inc2, diff;
	struct image a, b;
	struct stream s;

	full = backup(BLKTRACK_BACKUP_FULL);
	vwrite(10, 5, false);
	vwrite(40, 3, true);			/* zeroed: 'z' records */
	vwrite(NB - 1, 1, false);
	inc1 = backup(BLKTRACK_BACKUP_INCREMENTAL);
	vwrite(12, 20, false);
	grow();					/* 's' grows the image */
	inc2 = backup(BLKTRACK_BACKUP_INCREMENTAL);
	vwrite(100, 2, false);
	diff = backup(BLKTRACK_BACKUP_DIFFERENTIAL);	/* its parent: the full */

	new_image(&a, "a.img");
	export_apply(&a, full, 0);
	export_apply(&a, inc1, full);
	export_apply(&a, inc2, inc1);
	new_image(&b, "b.img");
	export_apply(&b, full, 0);
	export_apply(&b, diff, full);

	/* rbd itself keeps the order: a point out of turn or twice is refused. */
	cr_assert_eq(export(inc2, out, &res), 0);
	cr_expect(!apply(&b, out, &s), "inc2 onto a full + differential image");
	cr_assert_eq(export(inc1, out, &res), 0);
	cr_expect(!apply(&a, out, &s), "inc1 a second time");
}

Test(export_rbd, zeroed_blocks_go_as_z_records)
{
	struct blktrack_export_result res;
	struct image a;
	struct stream s;
	uint64_t full, inc;

	full = backup(BLKTRACK_BACKUP_FULL);
	vwrite(20, 4, true);
	vwrite(30, 1, false);
	inc = backup(BLKTRACK_BACKUP_INCREMENTAL);
	new_image(&a, "a.img");
	export_apply(&a, full, 0);
	cr_assert_eq(export(inc, out, &res), 0);
	cr_assert(apply(&a, out, &s));
	cr_expect_eq(s.w, 1, "block 30");
	cr_expect_eq(s.z, 1, "blocks 20-23, zeroed");
}

/* Blocks a writer excluded: no record; the image keeps the parent's there. */
Test(export_rbd, excluded_blocks_have_no_record)
{
	struct blktrack_export_result res;
	struct image a;
	uint64_t full, inc;
	char ranges[256];

	full = backup(BLKTRACK_BACKUP_FULL);
	vwrite(0, 4, false);
	snprintf(ranges, sizeof(ranges), "exclude %u %u %s\n", BS, BS, vol);
	setenv("RANGES", ranges, 1);
	inc = backup(BLKTRACK_BACKUP_INCREMENTAL);
	unsetenv("RANGES");
	changed[inc][1] = false;		/* not the point's */
	memcpy(at[inc] + BS, at[full] + BS, BS);
	new_image(&a, "a.img");
	export_apply(&a, full, 0);
	export_apply(&a, inc, full);
	cr_assert_eq(export(inc, out, &res), 0);
	cr_expect_eq(res.excluded_bytes, BS);
}

/* "-": the same bytes on standard output; the default point the newest. */
Test(export_rbd, stdout_gets_the_same_stream)
{
	struct blktrack_export_result res;
	char path[200];
	uint8_t *a, *b;
	size_t la, lb;
	uint64_t inc;

	backup(BLKTRACK_BACKUP_FULL);
	vwrite(7, 3, false);
	inc = backup(BLKTRACK_BACKUP_INCREMENTAL);
	snprintf(path, sizeof(path), "%s/stdout", top);
	cr_assert_eq(export_stdout(0, path, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.backup_id, inc);
	cr_assert_eq(export(inc, out, &res), 0, "%s", blktrack_get_error(ctx));
	a = read_file(path, &la);
	b = read_file(out, &lb);
	cr_assert_eq(la, lb);
	cr_expect_eq(memcmp(a, b, la), 0);
	free(a);
	free(b);
}

/* A damaged member anywhere in the chain: refused, no OUT, nothing on stdout. */
Test(export_rbd, a_damaged_member_writes_nothing)
{
	struct blktrack_export_result res;
	uint64_t full, inc1, inc2;
	char file[200], path[200];

	full = backup(BLKTRACK_BACKUP_FULL);
	vwrite(0, 8, false);
	inc1 = backup(BLKTRACK_BACKUP_INCREMENTAL);
	vwrite(50, 8, false);
	inc2 = backup(BLKTRACK_BACKUP_INCREMENTAL);
	(void)full;
	snprintf(file, sizeof(file), "%s/backups/%llu.bkt", repo_dir, (unsigned long long)inc1);
	unit_flip_bits(file, (off_t)file_size(file) / 2, 0x10);
	unlink(out);
	cr_assert_lt(export(inc2, out, &res), 0);
	cr_expect_eq(res.failure, BLKTRACK_FAIL_CORRUPT, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.images, 0);
	cr_expect_eq(file_size(out), UINT64_MAX, "OUT written");
	snprintf(path, sizeof(path), "%s.tmp", out);
	cr_expect_eq(file_size(path), UINT64_MAX, "OUT.tmp left");
	snprintf(path, sizeof(path), "%s/stdout", top);
	cr_assert_lt(export_stdout(inc2, path, &res), 0);
	cr_expect_eq(res.failure, BLKTRACK_FAIL_CORRUPT);
	cr_expect_eq(file_size(path), 0, "bytes on standard output");
}
