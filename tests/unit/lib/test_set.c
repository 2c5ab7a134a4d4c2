// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Backup sets (blktrack_backup_set(), blktrack_restore_set()) over the fake
 * kernel with two volumes of different sizes: one CHECKPOINT of both, the
 * writers told once (BLKTRACK_SET_MEMBERS), one catalog write for both
 * members, each member restored to what the test wrote by the set's instant;
 * a member that fails unwinds both (nothing committed, both checkpoints
 * ABORTed, every change in the next set); inputs refused before anything
 * is done; a damaged member refused before any target is written.
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
#include "repo/repo.h"
#include "unit.h"

#define BS	4096U
#define NVOL	2

static const unsigned int nblocks[NVOL] = { 96, 160 };
static char top[64], path[NVOL][128], repo_dir[128], locks[128], wdir[128], wlog[128];
static char target[NVOL][128];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static dev_t dev[NVOL];
static uint8_t *model[NVOL];		/* each volume as the test wrote it */
static uint32_t gen = 1;

static void vwrite(int v, uint64_t first, uint64_t n)
{
	uint64_t b;

	gen++;
	for (b = first; b < first + n; b++)
		unit_fill_block(model[v] + b * BS, BS, b + 1000 * v, gen);
	cr_assert_eq(fake_kernel_write(fk, dev[v], first * BS, n * BS, model[v] + first * BS), 0);
}

static void setup(void)
{
	struct blktrack_ctx *plain;
	char w[160];
	FILE *f;
	int v, fd;

	snprintf(top, sizeof(top), "/tmp/bt-set.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", top);
	snprintf(locks, sizeof(locks), "%s/locks", top);
	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	snprintf(wlog, sizeof(wlog), "%s/writers.log", top);
	cr_assert_eq(mkdir(wdir, 0700), 0);
	setenv("TEST_LOG", wlog, 1);
	plain = blktrack_new();
	cr_assert_eq(blktrack_repo_init(plain, repo_dir), 0, "%s", blktrack_get_error(plain));
	blktrack_unref(plain);
	fk = fake_kernel_new(0);
	cr_assert(fk);
	for (v = 0; v < NVOL; v++) {
		snprintf(path[v], sizeof(path[v]), "%s/volume%d.img", top, v);
		snprintf(target[v], sizeof(target[v]), "%s/restored%d.img", top, v);
		model[v] = calloc(nblocks[v], BS);
		cr_assert(model[v]);
		fd = open(path[v], O_RDWR | O_CREAT | O_EXCL, 0600);
		cr_assert(fd >= 0);
		cr_assert_eq(ftruncate(fd, (off_t)nblocks[v] * BS), 0);
		close(fd);
		cr_assert_eq(fake_kernel_add_volume(fk, path[v], &dev[v]), 0);
	}
	ctx = fake_kernel_context(fk);
	cr_assert(ctx);
	for (v = 0; v < NVOL; v++)
		cr_assert_eq(blktrack_attach(ctx, dev[v], 0, 0), 0);
	/* A writer that logs each event, and the set's members at freeze; $VETO: a veto. */
	snprintf(w, sizeof(w), "%s/log", wdir);
	f = fopen(w, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\nprintf '%%s ' \"$1\" >>\"$TEST_LOG\"\n"
		"[ \"$1\" = freeze ] && printf '[%%s] ' \"$BLKTRACK_SET_MEMBERS\" "
		">>\"$TEST_LOG\"\n[ \"$1\" = prepare-backup ] && [ -n \"$VETO\" ] && exit 3\n"
		"[ \"$1\" = post-snapshot ] && [ -n \"$RANGES\" ] && "
		"printf '%%b' \"$RANGES\" >\"$BLKTRACK_RANGES_FILE\"\n"
		"exit 0\n");
	fclose(f);
	cr_assert_eq(chmod(w, 0700), 0);
}

static void teardown(void)
{
	char cmd[160];
	int v;

	blktrack_unref(ctx);
	fake_kernel_free(fk);
	for (v = 0; v < NVOL; v++)
		free(model[v]);
	unsetenv("VETO");
	unsetenv("RANGES");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(set, .init = setup, .fini = teardown, .timeout = 60);

static void set_opts(struct blktrack_backup_opts *o)
{
	int v;

	for (v = 0; v < NVOL; v++)
		o[v] = (struct blktrack_backup_opts){
			.device = path[v], .repo = repo_dir, .writers_dir = wdir,
			.writer_timeout = 10, .lock_dir = locks,
		};
}

/* A set of both volumes; @mode: how it is read (the freeze, or a snapshot of each). */
static int backup_set_read(struct blktrack_backup_result *res, enum blktrack_snapshot_mode mode)
{
	struct blktrack_backup_opts o[NVOL];

	set_opts(o);
	o[0].snapshot = o[1].snapshot = mode;
	unlink(wlog);
	return blktrack_backup_set(ctx, o, NVOL, res);
}

static int backup_set(struct blktrack_backup_result *res)
{
	return backup_set_read(res, BLKTRACK_SNAPSHOT_FREEZE);
}

/* Each target holds exactly @want[v] (the volume as it was at the set's instant). */
static void expect_restored(uint8_t *const want[NVOL])
{
	uint8_t *got;
	int v;

	for (v = 0; v < NVOL; v++) {
		size_t len = (size_t)nblocks[v] * BS;
		int fd = open(target[v], O_RDONLY);

		cr_assert(fd >= 0, "%s: %s", target[v], strerror(errno));
		got = malloc(len + 1);
		cr_assert(got);
		cr_assert_eq(pread(fd, got, len + 1, 0), (ssize_t)len, "%s: not the volume's size",
			     target[v]);
		close(fd);
		cr_expect_eq(memcmp(got, want[v], len), 0, "%s differs from volume %d at the "
			     "set's instant", target[v], v);
		free(got);
	}
}

/* The volumes as they are now: what a set taken now must restore to. */
static void models_now(uint8_t *copy[NVOL])
{
	int v;

	for (v = 0; v < NVOL; v++) {
		copy[v] = malloc((size_t)nblocks[v] * BS);
		cr_assert(copy[v]);
		memcpy(copy[v], model[v], (size_t)nblocks[v] * BS);
	}
}

static void models_free(uint8_t *copy[NVOL])
{
	int v;

	for (v = 0; v < NVOL; v++)
		free(copy[v]);
}

static int restore_set(uint64_t set, size_t n, struct blktrack_restore_result *res)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .writers_dir = wdir,
					   .writer_timeout = 10 };
	const char *t[NVOL] = { target[0], target[1] };

	unlink(target[0]);
	unlink(target[1]);
	return blktrack_restore_set(ctx, &o, set, t, n, res);
}

static size_t catalog_entries(void)
{
	struct repo *r;
	size_t n;

	cr_assert_eq(repo_open(repo_dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	n = repo_count(r);
	repo_close(r);
	return n;
}

Test(set, one_checkpoint_one_commit_each_restored)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_restore_result rr[NVOL];
	uint8_t *at1[NVOL], *at2[NVOL];
	char want[512];
	uint64_t set1;

	vwrite(0, 3, 10);
	vwrite(1, 100, 50);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT), 1,
		     "one checkpoint for the set: %s", fake_kernel_log(fk));
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_COMMIT), 2, "%s", fake_kernel_log(fk));
	cr_expect_eq(res[0].type, BLKTRACK_BACKUP_FULL);
	cr_expect_eq(res[1].id, res[0].id + 1);
	cr_expect_eq(res[0].set, res[0].id);
	cr_expect_eq(res[1].set, res[0].id);
	/* The writers hear each event once, with the set's members. */
	snprintf(want, sizeof(want), "identify prepare-backup freeze [%s\n%s\n] post-snapshot "
		 "thaw backup-complete ", path[0], path[1]);
	cr_expect_str_eq(unit_read_text(wlog), want);
	set1 = res[0].set;
	models_now(at1);

	/* An incremental set through a snapshot of each: its own volume's changes each. */
	vwrite(0, 50, 2);
	vwrite(1, 0, 1);
	vwrite(1, 159, 1);
	cr_assert_eq(backup_set_read(res, BLKTRACK_SNAPSHOT_COW), 0, "%s",
		     blktrack_get_error(ctx));
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT_SNAP), 1,
		     "one snapshot checkpoint for the set: %s", fake_kernel_log(fk));
	cr_expect_str_eq(res[1].snapshot, "cow");
	cr_expect_eq(res[0].type, BLKTRACK_BACKUP_INCREMENTAL);
	cr_expect_eq(res[1].type, BLKTRACK_BACKUP_INCREMENTAL);
	cr_expect_eq(res[0].covered_bytes, 2 * BS);
	cr_expect_eq(res[1].covered_bytes, 2 * BS);
	models_now(at2);
	vwrite(0, 60, 1);		/* after the set: in neither restore */
	vwrite(1, 60, 1);

	cr_assert_eq(restore_set(res[0].set, NVOL, rr), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(rr[0].backup_id, res[0].id);
	cr_expect_eq(rr[1].backup_id, res[1].id);
	expect_restored(at2);
	cr_assert_eq(restore_set(set1, NVOL, rr), 0, "%s", blktrack_get_error(ctx));
	expect_restored(at1);
	models_free(at1);
	models_free(at2);
}

/* The second member fails after the checkpoint: both unwound, nothing lost. */
Test(set, a_member_fails_both_unwound)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_restore_result rr[NVOL];
	uint8_t *now[NVOL];
	size_t entries;

	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	entries = catalog_entries();
	vwrite(0, 7, 3);
	vwrite(1, 140, 4);
	fake_kernel_fail(fk, BLKTRACK_IOC_READ_EXTENTS, 2, EIO);
	cr_assert_eq(backup_set(res), -EIO);
	cr_expect_eq(res[0].id, 0);
	cr_expect_eq(res[1].id, 0);
	cr_expect_neq(res[0].failure, BLKTRACK_FAIL_NONE);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 2, "both ABORTed: %s",
		     fake_kernel_log(fk));
	cr_expect_eq(catalog_entries(), entries, "nothing committed, nothing left pending");
	cr_expect(strstr(unit_read_text(wlog), "abort"), "the writers heard abort");
	cr_expect(strstr(blktrack_get_error(ctx), path[1]), "the failing member is named: %s",
		  blktrack_get_error(ctx));

	/* The next set holds every change of both. */
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res[0].covered_bytes, 3 * BS);
	cr_expect_eq(res[1].covered_bytes, 4 * BS);
	models_now(now);
	cr_assert_eq(restore_set(res[0].set, NVOL, rr), 0, "%s", blktrack_get_error(ctx));
	expect_restored(now);
	models_free(now);
}

/* A writer's veto: no checkpoint taken, nothing in the catalog. */
Test(set, a_veto_takes_nothing)
{
	struct blktrack_backup_result res[NVOL];

	setenv("VETO", "1", 1);
	cr_assert_eq(backup_set(res), -ECANCELED);
	cr_expect_eq(res[0].failure, BLKTRACK_FAIL_WRITER);
	cr_expect_eq(res[1].failure, BLKTRACK_FAIL_WRITER);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT_SNAP), 0);
	cr_expect_eq(catalog_entries(), 0);
}

Test(set, refused_inputs_change_nothing)
{
	struct blktrack_backup_opts o[NVOL + 1];
	struct blktrack_backup_result res[NVOL + 1];
	struct blktrack_restore_result rr[NVOL];
	char other[160];

	set_opts(o);
	o[1].device = path[0];				/* one volume twice */
	cr_expect_eq(blktrack_backup_set(ctx, o, NVOL, res), -EINVAL);
	cr_expect(strstr(blktrack_get_error(ctx), "one volume twice"), "%s",
		  blktrack_get_error(ctx));
	set_opts(o);
	snprintf(other, sizeof(other), "%s/other", top);
	o[1].repo = other;				/* two repositories */
	cr_expect_eq(blktrack_backup_set(ctx, o, NVOL, res), -EINVAL);
	set_opts(o);
	o[0].output_fd = 1;				/* a stream */
	cr_expect_eq(blktrack_backup_set(ctx, o, NVOL, res), -EINVAL);
	cr_expect_eq(blktrack_backup_set(ctx, o, 0, res), -EINVAL);
	cr_expect_eq(blktrack_backup_set(ctx, o, BLKTRACK_SET_MAX + 1, res), -EINVAL);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT), 0);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT_SNAP), 0);
	cr_expect_eq(catalog_entries(), 0);

	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(restore_set(res[0].set, 1, rr), -EINVAL, "a target short");
	cr_expect_eq(restore_set(res[0].set + 7, NVOL, rr), -ENOENT, "no such set");
	cr_expect_eq(rr[0].failure, BLKTRACK_FAIL_CHAIN);
	cr_expect_neq(access(target[0], F_OK), 0, "nothing written");
	{
		struct blktrack_restore_opts ro = { .repo = repo_dir, .writers_dir = wdir };
		const char *twice[NVOL] = { target[0], target[0] }, *dir[NVOL] = { target[0], top };

		cr_expect_eq(blktrack_restore_set(ctx, &ro, res[0].set, twice, NVOL, rr), -EINVAL,
			     "one target for two members");
		cr_expect_eq(blktrack_restore_set(ctx, &ro, res[0].set, dir, NVOL, rr), -EISDIR);
		cr_expect_eq(blktrack_restore_set(ctx, &ro, res[0].set, dir, 0, rr), -EINVAL);
		cr_expect_neq(access(target[0], F_OK), 0, "nothing written");
	}
}

/* A damaged member: refused before the first target is written. */
Test(set, a_damaged_member_writes_nothing)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_restore_result rr[NVOL];
	char file[160];

	vwrite(0, 0, 20);
	vwrite(1, 0, 20);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	snprintf(file, sizeof(file), "%s/backups/%llu.bkt", repo_dir,
		 (unsigned long long)res[1].id);
	unit_flip_bits(file, 200, 0x10);
	cr_assert_lt(restore_set(res[0].set, NVOL, rr), 0);
	cr_expect_eq(rr[1].failure, BLKTRACK_FAIL_CORRUPT);
	cr_expect_neq(access(target[0], F_OK), 0, "the first member's target was written");
	cr_expect_neq(access(target[1], F_OK), 0);
}

/* restore's report: *@excluded bytes not the point's; the targets read into @got. */
static void restored_with(uint64_t set, uint64_t excluded0, uint64_t excluded1)
{
	struct blktrack_restore_result rr[NVOL];

	cr_assert_eq(restore_set(set, NVOL, rr), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(rr[0].excluded_bytes, excluded0);
	cr_expect_eq(rr[1].excluded_bytes, excluded1);
}

/* Block @b of the restored target @v is @want's block @b. */
static void expect_block(int v, uint64_t b, const uint8_t *want, const char *what)
{
	uint8_t got[BS];
	int fd = open(target[v], O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, got, BS, b * BS), BS);
	close(fd);
	cr_expect_eq(memcmp(got, want + b * BS, BS), 0, "target %d block %llu: %s", v,
		     (unsigned long long)b, what);
}

/*
 * Writers naming ranges at post-snapshot: an exclusion leaves changed
 * blocks out (and the restore says so until a later point holds them), an
 * addition stores unchanged blocks; a bad line or path rejects the set.
 */
Test(set, writers_add_and_exclude_ranges)
{
	struct blktrack_backup_result res[NVOL];
	uint8_t *at1[NVOL];
	char ranges[512];

	vwrite(0, 0, 4);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	models_now(at1);
	vwrite(0, 0, 4);			/* blocks 0-3 of A changed */
	vwrite(1, 5, 1);			/* block 5 of B */
	/* Bytes 100 to 8291 of A: block 1 only (whole blocks); block 10 of B added. */
	snprintf(ranges, sizeof(ranges), "# a comment\nexclude 100 8192 %s\n\nadd %u 1 %s\n",
		 path[0], 10 * BS + 7, path[1]);
	setenv("RANGES", ranges, 1);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res[0].covered_bytes, 3 * BS);
	cr_expect_eq(res[0].excluded_bytes, BS);
	cr_expect_eq(res[0].added_bytes, 0);
	cr_expect_eq(res[1].covered_bytes, 2 * BS);
	cr_expect_eq(res[1].added_bytes, BS);
	cr_expect_str_eq(res[0].writer_ranges, "log\t4096\t4096\n");
	restored_with(res[0].set, BS, 0);
	expect_block(0, 1, at1[0], "excluded: the older point's");
	expect_block(0, 2, model[0], "the point's");
	expect_block(1, 10, model[1], "added");

	/* Not named again, block 1 unchanged: still not the point's. */
	unsetenv("RANGES");
	vwrite(1, 6, 1);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	restored_with(res[0].set, BS, 0);
	/* Rewritten and stored: the point's again. */
	vwrite(0, 1, 1);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	restored_with(res[0].set, 0, 0);
	expect_block(0, 1, model[0], "stored again");

	/* A line that says nothing we know, a path of no member: rejected, nothing kept. */
	vwrite(0, 2, 1);
	setenv("RANGES", "drop /dev/null\n", 1);
	cr_assert_eq(backup_set(res), -EINVAL);
	cr_expect_eq(res[0].failure, BLKTRACK_FAIL_WRITER);
	cr_expect(strstr(blktrack_get_error(ctx), "line 1"), "%s", blktrack_get_error(ctx));
	snprintf(ranges, sizeof(ranges), "add %s\n", top);
	setenv("RANGES", ranges, 1);
	cr_assert_lt(backup_set(res), 0);
	cr_expect_eq(res[0].failure, BLKTRACK_FAIL_WRITER);
	unsetenv("RANGES");
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res[0].covered_bytes, BS, "the refused sets lost nothing");
	models_free(at1);
}

/* The blocks a restore of backup @id gives, and what it says is not the point's. */
static void restore_one(uint64_t id, uint64_t excluded)
{
	struct blktrack_restore_opts ro = { .repo = repo_dir, .no_writers = true,
					    .backup_id = id, .target = target[0] };
	struct blktrack_restore_result rr;

	unlink(target[0]);
	cr_assert_eq(blktrack_restore(ctx, &ro, &rr), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(rr.excluded_bytes, excluded);
}

/* A prune folding a member that excluded a block: the merged point still says so. */
Test(set, a_merge_keeps_what_was_excluded)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_prune_opts po = { .repo = repo_dir, .keep_last = 1 };
	struct blktrack_prune_result pr;
	uint8_t *at1[NVOL];
	char ranges[512];

	vwrite(0, 0, 4);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	models_now(at1);
	vwrite(0, 0, 4);
	snprintf(ranges, sizeof(ranges), "exclude 4096 4096 %s\n", path[0]);
	setenv("RANGES", ranges, 1);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	unsetenv("RANGES");
	vwrite(0, 7, 1);
	vwrite(0, 2, 1);		/* block 2: excluded by none, rewritten */
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	restore_one(res[0].id, BS);
	cr_assert_eq(blktrack_repo_prune(ctx, &po, &pr), 0, "%s", blktrack_get_error(ctx));
	blktrack_prune_result_free(&pr);
	restore_one(res[0].id, BS);
	expect_block(0, 1, at1[0], "excluded: the first point's");
	expect_block(0, 2, model[0], "the point's");
	models_free(at1);
}

/* A range the line protocol does not allow: the set refused. */
Test(set, ranges_with_bad_numbers_are_refused)
{
	static const char *const bad[] = { "exclude 4096  -4096 %s\n", "exclude -1 4096 %s\n",
					   "add 0 0 %s\n", "exclude 1 +2 %s\n", "add 1 %s\n" };
	struct blktrack_backup_result res[NVOL];
	char ranges[512];

	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	vwrite(0, 0, 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(ranges, sizeof(ranges), bad[i], path[0]);
		setenv("RANGES", ranges, 1);
		cr_expect_eq(backup_set(res), -EINVAL, "'%s' accepted", ranges);
	}
	unsetenv("RANGES");
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res[0].covered_bytes, 4 * BS, "the refused sets lost nothing");
}

/* A resync reads and compares every block: exclusions do not apply, and none is reported. */
Test(set, a_resync_ignores_exclusions)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_backup_opts o[NVOL];
	char ranges[512];

	vwrite(0, 0, 4);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	vwrite(0, 0, 4);
	snprintf(ranges, sizeof(ranges), "exclude 4096 8192 %s\n", path[0]);
	setenv("RANGES", ranges, 1);
	set_opts(o);
	o[0].type = o[1].type = BLKTRACK_BACKUP_RESYNC;
	cr_assert_eq(blktrack_backup_set(ctx, o, NVOL, res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res[0].covered_bytes, 4 * BS);
	cr_expect_eq(res[0].excluded_bytes, 0);
	restore_one(res[0].id, 0);
	expect_block(0, 1, model[0], "the point's");
}

/* verify --against a full that excluded a block: the rest compared, the block reported. */
Test(set, verify_against_a_point_with_exclusions)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_restore_opts ro = { .repo = repo_dir, .no_writers = true };
	struct blktrack_restore_result rr;
	char ranges[512];

	vwrite(0, 0, 4);
	snprintf(ranges, sizeof(ranges), "exclude 4096 4096 %s\n", path[0]);
	setenv("RANGES", ranges, 1);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	unsetenv("RANGES");
	vwrite(0, 1, 1);		/* the excluded block differs from the volume now */
	ro.backup_id = res[0].id;
	ro.against = path[0];
	cr_expect_eq(blktrack_verify(ctx, &ro, &rr), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(rr.excluded_bytes, BS);
	vwrite(0, 3, 1);		/* a block the backup holds: a mismatch */
	cr_expect_eq(blktrack_verify(ctx, &ro, &rr), -EBADE);
}

/*
 * blktrack copy moves a set whole: asked for one member's chain, it copies
 * every member (one commit), and the copy restores the set as it was.
 */
Test(set, a_set_is_copied_whole)
{
	struct blktrack_backup_result res[NVOL];
	struct blktrack_restore_result rr[NVOL];
	struct blktrack_copy_result cr;
	struct blktrack_copy_opts co;
	uint8_t *at1[NVOL];
	char copy_dir[128], src_dir[128];
	struct repo *r;

	vwrite(0, 3, 10);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	models_now(at1);
	vwrite(1, 5, 2);
	cr_assert_eq(backup_set(res), 0, "%s", blktrack_get_error(ctx));
	snprintf(copy_dir, sizeof(copy_dir), "%s/copy", top);
	cr_assert_eq(blktrack_repo_init(ctx, copy_dir), 0, "%s", blktrack_get_error(ctx));
	co = (struct blktrack_copy_opts){ .from = repo_dir, .to = copy_dir, .backup_id = 1 };
	cr_assert_eq(blktrack_copy(ctx, &co, &cr), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(cr.copied, 2, "backup 1 and its set's other member");
	cr_assert_eq(repo_open(copy_dir, REPO_RDONLY, &r), 0);
	cr_expect_eq(repo_count(r), 2);
	cr_expect_eq(repo_find(r, 1)->set, 1);
	cr_expect_eq(repo_find(r, 2)->set, 1);
	repo_close(r);
	snprintf(src_dir, sizeof(src_dir), "%s", repo_dir);
	snprintf(repo_dir, sizeof(repo_dir), "%s", copy_dir);
	cr_expect_eq(restore_set(1, NVOL, rr), 0, "%s", blktrack_get_error(ctx));
	expect_restored(at1);
	snprintf(repo_dir, sizeof(repo_dir), "%s", src_dir);
	models_free(at1);
}
