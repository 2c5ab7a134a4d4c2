// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack prune and delete (doc/REPOSITORY.md, "Retention"): real chains
 * (full, incrementals, a differential) made by blktrack_backup() over the
 * fake kernel, with a copy of the volume as the test wrote it at each
 * backup; then a prune or a delete, and every backup still in the catalog
 * restored and compared bit for bit with that copy; the refusals with
 * their exact errors; a requester killed at each crash point of a merge,
 * after which recovery leaves the repository before or after the prune
 * and blktrack check finds nothing. The keep rules alone: dates in, keep
 * set out (retention_select()).
 *
 * Linked with the whole library and the fake (make unit: build/unit-tests-lib).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "fake_kernel.h"
#include "libblktrack.h"
#include "repo/repo.h"
#include "repo/retention.h"
#include "unit.h"

#define BS	4096U
#define NB	256U			/* 1 MiB */
#define SIZE	((uint64_t)NB * BS)
#define MAX_IDS	12

static char top[64], vol[128], repo_dir[128], locks[128], target[128], wdir[128];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static dev_t dev;
static uint8_t *model;			/* the volume as the test wrote it */
static uint8_t *at[MAX_IDS + 1];	/* the volume at backup id i */
static uint32_t gen = 1;

/* Block @b's content of generation @g (unit.h). */
static void fill(uint8_t *buf, uint64_t b, uint32_t g)
{
	unit_fill_block(buf, BS, b, g);
}

/* Blocks [@first, +@n) written through the fake; @zero: zeroed instead. */
static void vwrite(uint64_t first, uint64_t n, bool zero)
{
	uint64_t b;

	gen++;
	for (b = first; b < first + n; b++) {
		if (zero)
			memset(model + b * BS, 0, BS);
		else
			fill(model + b * BS, b, gen);
	}
	cr_assert_eq(fake_kernel_write(fk, dev, first * BS, n * BS, model + first * BS), 0);
}

static void setup(void)
{
	struct blktrack_ctx *plain;
	uint64_t b;
	int fd;

	snprintf(top, sizeof(top), "/tmp/bt-prune.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(vol, sizeof(vol), "%s/volume.img", top);
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", top);
	snprintf(locks, sizeof(locks), "%s/locks", top);
	snprintf(target, sizeof(target), "%s/restored.img", top);
	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	cr_assert_eq(mkdir(wdir, 0700), 0);
	model = calloc(1, SIZE);
	cr_assert(model);
	for (b = 0; b < NB; b++)
		if (b % 8 != 3)
			fill(model + b * BS, b, 0);
	fd = open(vol, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, model, SIZE, 0), (ssize_t)SIZE);
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
}

static void teardown(void)
{
	char cmd[160];
	size_t i;

	repo_fault_hook = NULL;
	blktrack_unref(ctx);
	fake_kernel_free(fk);
	free(model);
	for (i = 0; i <= MAX_IDS; i++) {
		free(at[i]);
		at[i] = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(prune, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(prune_crash, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t backup(enum blktrack_backup_type type)
{
	struct blktrack_backup_opts o = {
		.device = vol, .repo = repo_dir, .type = type, .lock_dir = locks,
		.writers_dir = wdir,
	};
	struct blktrack_backup_result res;

	cr_assert_eq(blktrack_backup(ctx, &o, &res), 0, "backup: %s", blktrack_get_error(ctx));
	cr_assert_leq(res.id, MAX_IDS);
	at[res.id] = malloc(SIZE);
	memcpy(at[res.id], model, SIZE);
	return res.id;
}

/*
 * 1 full, 2 incr, 3 incr, 4 differential, 5 incr, 6 incr: overlapping
 * writes, a zeroed range, the last block; each id's volume kept in at[].
 */
static void six_backups(void)
{
	cr_assert_eq(backup(BLKTRACK_BACKUP_FULL), 1);
	vwrite(10, 20, false);
	vwrite(255, 1, false);
	cr_assert_eq(backup(BLKTRACK_BACKUP_INCREMENTAL), 2);
	vwrite(20, 20, false);
	vwrite(100, 8, true);
	cr_assert_eq(backup(BLKTRACK_BACKUP_INCREMENTAL), 3);
	vwrite(35, 3, false);
	cr_assert_eq(backup(BLKTRACK_BACKUP_DIFFERENTIAL), 4);
	vwrite(0, 4, false);
	vwrite(104, 10, false);
	cr_assert_eq(backup(BLKTRACK_BACKUP_INCREMENTAL), 5);
	vwrite(200, 30, false);
	cr_assert_eq(backup(BLKTRACK_BACKUP_INCREMENTAL), 6);
}

/* Restore backup @id and compare it with the volume the test had then. */
static void expect_restore(uint64_t id)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .target = target,
					   .backup_id = id, .force = true };
	struct blktrack_restore_result res;
	uint8_t *got = malloc(SIZE);
	int fd;

	unlink(target);
	cr_assert_eq(blktrack_restore(ctx, &o, &res), 0, "restore %llu: %s",
		     (unsigned long long)id, blktrack_get_error(ctx));
	fd = open(target, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, got, SIZE, 0), (ssize_t)SIZE);
	close(fd);
	cr_assert(!memcmp(got, at[id], SIZE), "backup %llu restores other bytes",
		  (unsigned long long)id);
	free(got);
}

static void collect(void *data, const char *problem)
{
	fprintf(stderr, "check: %s\n", problem);
	(*(unsigned int *)data)++;
}

/* blktrack check: nothing to report. */
static void expect_check_clean(void)
{
	struct blktrack_check_result res;
	unsigned int lines = 0;

	cr_assert_eq(blktrack_repo_check(ctx, repo_dir, false, collect, &lines, &res), 0);
	cr_assert_eq(res.problems, 0, "check found %u problems", res.problems);
}

/* The ids the catalog holds, as a string "1 2 5". */
static const char *catalog_ids(void)
{
	static char s[128];
	struct repo *r;
	size_t i, n = 0;

	cr_assert_eq(repo_open(repo_dir, REPO_RDONLY, &r), 0);
	s[0] = 0;
	for (i = 0; i < repo_count(r); i++)
		n += snprintf(s + n, sizeof(s) - n, "%s%llu", i ? " " : "",
			      (unsigned long long)repo_entry_at(r, i)->id);
	repo_close(r);
	return s;
}

static const struct repo_entry *entry(struct repo *r, uint64_t id)
{
	const struct repo_entry *e = repo_find(r, id);

	cr_assert(e, "backup %llu missing", (unsigned long long)id);
	return e;
}

static void expect_type(uint64_t id, enum repo_type t, uint64_t parent)
{
	struct repo *r;

	cr_assert_eq(repo_open(repo_dir, REPO_RDONLY, &r), 0);
	cr_expect_eq(entry(r, id)->type, t, "backup %llu: type %s", (unsigned long long)id,
		     repo_type_name(entry(r, id)->type));
	cr_expect_eq(entry(r, id)->parent, parent);
	repo_close(r);
}

static int prune(struct blktrack_prune_opts o, struct blktrack_prune_result *res)
{
	o.repo = repo_dir;
	return blktrack_repo_prune(ctx, &o, res);
}

static void expect_all_restore(const char *ids)
{
	const char *p = ids;
	char *end;

	while (*p) {
		expect_restore(strtoull(p, &end, 10));
		p = end + (*end == ' ');
	}
}

/* The files of backups/, deltas/, hashes/ as one sorted line. */
static const char *files(void)
{
	static char s[2048];
	char cmd[300];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cd '%s' && (ls backups; ls deltas; ls hashes) | tr '\\n' ' '", repo_dir);
	f = popen(cmd, "r");
	n = fread(s, 1, sizeof(s) - 1, f);
	s[n] = 0;
	pclose(f);
	return s;
}

/* ---- the merges --------------------------------------------------------- */

Test(prune, keep_last_merges_the_chain_into_a_full)
{
	struct blktrack_prune_result res;

	six_backups();
	cr_assert_eq(prune((struct blktrack_prune_opts){ .keep_last = 2 }, &res), 0, "%s",
		     blktrack_get_error(ctx));
	cr_expect_eq(res.merged, 1);
	cr_expect_eq(res.deleted, 4);
	cr_expect_eq(res.kept, 1);
	cr_log_info("merge: read %llu, wrote %llu, replaced %llu bytes, %.3f s",
		    (unsigned long long)res.read_bytes, (unsigned long long)res.written_bytes,
		    (unsigned long long)res.replaced_bytes, res.seconds);
	blktrack_prune_result_free(&res);
	cr_assert_str_eq(catalog_ids(), "5 6");
	expect_type(5, REPO_FULL, 0);
	expect_type(6, REPO_INCREMENTAL, 5);
	expect_all_restore("5 6");
	expect_check_clean();
	/* The chain goes on: an incremental after the prune, then a resync. */
	vwrite(50, 5, false);
	cr_assert_eq(backup(BLKTRACK_BACKUP_INCREMENTAL), 8);	/* 7 named the merge's file */
	expect_all_restore("5 6 8");
	expect_check_clean();
}

Test(prune, delete_a_middle_incremental_folds_it_into_the_next)
{
	struct blktrack_prune_result res;

	six_backups();
	cr_assert_eq(prune((struct blktrack_prune_opts){ .delete_id = 3 }, &res), 0, "%s",
		     blktrack_get_error(ctx));
	cr_expect_eq(res.merged, 1);
	cr_expect_eq(res.deleted, 1);
	blktrack_prune_result_free(&res);
	cr_assert_str_eq(catalog_ids(), "1 2 4 5 6");
	expect_type(5, REPO_INCREMENTAL, 2);
	expect_all_restore("1 2 4 5 6");
	expect_check_clean();
}

Test(prune, delete_the_full_makes_its_dependents_fulls)
{
	struct blktrack_prune_result res;

	six_backups();
	cr_assert_eq(prune((struct blktrack_prune_opts){ .delete_id = 1 }, &res), 0, "%s",
		     blktrack_get_error(ctx));
	cr_expect_eq(res.merged, 2);	/* 2 and the differential 4 */
	blktrack_prune_result_free(&res);
	cr_assert_str_eq(catalog_ids(), "2 3 4 5 6");
	expect_type(2, REPO_FULL, 0);
	expect_type(4, REPO_FULL, 0);
	expect_type(3, REPO_INCREMENTAL, 2);
	expect_all_restore("2 3 4 5 6");
	expect_check_clean();
	vwrite(60, 2, false);
	cr_assert_eq(backup(BLKTRACK_BACKUP_INCREMENTAL), 9);
	expect_all_restore("9");
}

Test(prune, delete_a_leaf_merges_nothing)
{
	struct blktrack_prune_result res;

	six_backups();
	cr_assert_eq(prune((struct blktrack_prune_opts){ .delete_id = 4 }, &res), 0, "%s",
		     blktrack_get_error(ctx));
	cr_expect_eq(res.merged, 0);
	cr_expect_eq(res.deleted, 1);
	cr_expect_eq(res.read_bytes, 0);
	blktrack_prune_result_free(&res);
	cr_assert_str_eq(catalog_ids(), "1 2 3 5 6");
	expect_all_restore("1 2 3 5 6");
	expect_check_clean();
}

Test(prune, dry_run_plans_and_changes_nothing)
{
	struct blktrack_prune_result res;
	char before[2048];

	six_backups();
	snprintf(before, sizeof(before), "%s", files());
	cr_assert_eq(prune((struct blktrack_prune_opts){ .keep_last = 2, .dry_run = true },
			   &res), 0, "%s", blktrack_get_error(ctx));
	cr_assert_eq(res.n, 6);
	cr_expect_eq(res.items[4].action, BLKTRACK_PRUNE_MERGE);
	cr_expect_str_eq(res.items[4].new_type, "full");
	cr_expect_eq(res.items[4].nfolded, 3);
	cr_expect_eq(res.items[4].folded[0], 1);
	cr_expect_eq(res.items[4].folded[2], 3);
	cr_expect_eq(res.items[5].why, BLKTRACK_KEEP_LAST | BLKTRACK_KEEP_NEWEST);
	cr_expect_eq(res.items[3].action, BLKTRACK_PRUNE_DELETE);
	blktrack_prune_result_free(&res);
	cr_expect_str_eq(files(), before);
	cr_assert_str_eq(catalog_ids(), "1 2 3 4 5 6");
}

/* ---- check and rebuild after a merge ------------------------------------ */

Test(prune, check_detects_a_broken_result_and_rebuild_reads_merged_files)
{
	struct blktrack_prune_result res;
	struct blktrack_check_result cres;
	unsigned int lines = 0;
	char path[200], cmd[300];

	six_backups();
	cr_assert_eq(prune((struct blktrack_prune_opts){ .keep_last = 2 }, &res), 0);
	blktrack_prune_result_free(&res);
	/* The catalog lost: the rebuild enters backups/5.7.bkt as backup 5, the full. */
	snprintf(path, sizeof(path), "%s/catalog", repo_dir);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(blktrack_repo_check(ctx, repo_dir, true, collect, &lines, &cres), 0, "%s",
		     blktrack_get_error(ctx));
	cr_assert_str_eq(catalog_ids(), "5 6");
	expect_type(5, REPO_FULL, 0);
	expect_type(6, REPO_INCREMENTAL, 5);
	expect_all_restore("5 6");
	expect_check_clean();
	/* The old file of 5 back beside the merged one: named by no entry, reported. */
	snprintf(cmd, sizeof(cmd), "cp '%s/backups/5.7.bkt' '%s/backups/5.bkt'", repo_dir,
		 repo_dir);
	cr_assert_eq(system(cmd), 0);
	lines = 0;
	cr_assert_eq(blktrack_repo_check(ctx, repo_dir, false, collect, &lines, &cres), 0);
	cr_expect_eq(cres.problems, 1);
	snprintf(path, sizeof(path), "%s/backups/5.bkt", repo_dir);
	cr_assert_eq(unlink(path), 0);
	/* The merged full gone: its entry and the chain of 6 are reported. */
	snprintf(path, sizeof(path), "%s/backups/5.7.bkt", repo_dir);
	cr_assert_eq(unlink(path), 0);
	lines = 0;
	cr_assert_eq(blktrack_repo_check(ctx, repo_dir, false, collect, &lines, &cres), 0);
	cr_expect_eq(cres.problems, 2);	/* the file, and the chain of 6 */
}

/* ---- refusals ----------------------------------------------------------- */

Test(prune, refusals_change_nothing)
{
	struct blktrack_prune_result res;
	char before[2048];

	six_backups();
	snprintf(before, sizeof(before), "%s", files());
	cr_assert_eq(prune((struct blktrack_prune_opts){ .delete_id = 6 }, &res), -EBUSY);
	cr_expect(res.refused);
	cr_expect(strstr(blktrack_get_error(ctx), "backup 6 is the newest full, incremental "
			 "or resync of volume"), "%s", blktrack_get_error(ctx));
	blktrack_prune_result_free(&res);
	cr_assert_eq(prune((struct blktrack_prune_opts){ .delete_id = 9 }, &res), -ENOENT);
	cr_expect(strstr(blktrack_get_error(ctx), "backup 9 is not a committed backup"));
	blktrack_prune_result_free(&res);
	cr_assert_eq(prune((struct blktrack_prune_opts){ 0 }, &res), -EINVAL);
	cr_expect(strstr(blktrack_get_error(ctx), "no keep rule given"));
	blktrack_prune_result_free(&res);
	cr_expect_str_eq(files(), before);
	cr_assert_str_eq(catalog_ids(), "1 2 3 4 5 6");
}

Test(prune, broken_chain_of_a_kept_backup_refused)
{
	struct blktrack_prune_result res;
	char path[200], before[2048];

	six_backups();
	snprintf(path, sizeof(path), "%s/backups/2.bkt", repo_dir);
	cr_assert_eq(unlink(path), 0);
	snprintf(before, sizeof(before), "%s", files());
	cr_assert_eq(prune((struct blktrack_prune_opts){ .keep_last = 2 }, &res), -ENOENT);
	cr_expect(strstr(blktrack_get_error(ctx), "backup 5 is kept, but its chain cannot be "
			 "merged"), "%s", blktrack_get_error(ctx));
	blktrack_prune_result_free(&res);
	cr_expect_str_eq(files(), before);
}

/* ---- a prune killed at each crash point --------------------------------- */

static void prune_and_crash(void *point)
{
	struct blktrack_prune_opts o = { .repo = repo_dir, .keep_last = 2 };
	struct blktrack_prune_result res;

	setenv("BLKTRACK_TEST_CRASH_AT", point, 1);
	blktrack_repo_prune(ctx, &o, &res);
	_exit(3);	/* not killed: the crash point was never reached */
}

/*
 * Kill the prune at @point: the repository then holds the old chain or
 * the new full (@after), every backup of it restores, recovery leaves no
 * file behind, check reports nothing; a prune then finishes the job.
 */
static void crash(const char *point, bool after)
{
	struct blktrack_prune_result res;
	struct blktrack_check_result cres;
	struct repo_recovery rec;
	unsigned int lines = 0;
	struct repo *r;
	int status;

	six_backups();
	status = fake_kernel_run_child(fk, prune_and_crash, (void *)point);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: status %#x",
		  point, status);
	/* What the dead prune left is what check sees: the trash list. */
	cr_assert_eq(blktrack_repo_check(ctx, repo_dir, false, collect, &lines, &cres), 0);
	cr_expect_eq(cres.problems, 1, "%s: the interrupted prune", point);
	cr_assert_str_eq(catalog_ids(), after ? "5 6" : "1 2 3 4 5 6", "%s", point);
	expect_all_restore(after ? "5 6" : "1 2 3 4 5 6");
	cr_assert_eq(repo_open(repo_dir, 0, &r), 0);
	cr_assert_eq(repo_recover(r, NULL, &rec), 0, "%s", repo_error(r));
	cr_expect_eq(repo_trash_count(r), 0);
	repo_close(r);
	cr_expect_str_eq(files(), after ? "5.7.bkt 6.bkt 5.set 6.set 6.bh " :
			 "1.bkt 2.bkt 3.bkt 4.bkt 5.bkt 6.bkt 1.set 2.set 3.set 4.set 5.set "
			 "6.set 6.bh ", "%s", point);
	expect_check_clean();
	expect_all_restore(after ? "5 6" : "1 2 3 4 5 6");
	cr_assert_eq(prune((struct blktrack_prune_opts){ .keep_last = 2 }, &res), 0);
	blktrack_prune_result_free(&res);
	cr_assert_str_eq(catalog_ids(), "5 6");
	expect_all_restore("5 6");
	expect_check_clean();
}

Test(prune_crash, after_the_names_are_reserved)
{
	crash("merge-begun", false);
}

Test(prune_crash, after_one_new_file)
{
	crash("merge-one-written", false);
}

Test(prune_crash, after_every_new_file)
{
	crash("merge-written", false);
}

Test(prune_crash, after_the_commit)
{
	crash("prune-committed", true);
}

/* The commit's catalog write (the second of a prune with a merge) failing at @fail_step. */
static const char *fail_step;
static int catalog_writes;

static int fail_commit(const char *step, const char *name)
{
	if (strcmp(name, "catalog"))
		return 0;
	catalog_writes += !strcmp(step, "open");
	return catalog_writes == 2 && !strcmp(step, fail_step) ? -ENOSPC : 0;
}

Test(prune, failed_commit_leaves_before_or_after)
{
	static const char *const steps[] = { "open", "write", "fsync", "rename", "fsync-dir" };
	struct blktrack_prune_result res;
	struct repo_recovery rec;
	struct repo *r;
	size_t i;

	six_backups();
	for (i = 0; i < 5; i++) {
		bool after = i == 4;	/* the rename done: committed, maybe not durable */

		fail_step = steps[i];
		catalog_writes = 0;
		repo_fault_hook = fail_commit;
		cr_assert_eq(prune((struct blktrack_prune_opts){ .delete_id = 3 }, &res), -ENOSPC,
			     "%s: %s", steps[i], blktrack_get_error(ctx));
		repo_fault_hook = NULL;
		blktrack_prune_result_free(&res);
		cr_assert_str_eq(catalog_ids(), after ? "1 2 4 5 6" : "1 2 3 4 5 6", "%s",
				 steps[i]);
		expect_all_restore(after ? "1 2 4 5 6" : "1 2 3 4 5 6");
		cr_assert_eq(repo_open(repo_dir, 0, &r), 0);
		cr_assert_eq(repo_recover(r, NULL, &rec), 0, "%s", repo_error(r));
		repo_close(r);
		expect_check_clean();
		expect_all_restore(after ? "1 2 4 5 6" : "1 2 3 4 5 6");
	}
}

/* ---- the keep rules ----------------------------------------------------- */

static int64_t day(int y, int m, int d, int h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = h,
			 .tm_isdst = -1 };

	return mktime(&tm);
}

static const char *kept(const int64_t *t, size_t n, struct retention_rules k,
			unsigned int rule)
{
	static char s[256];
	unsigned int why[128];
	size_t i, len = 0;

	cr_assert_leq(n, 128);
	cr_assert_eq(retention_select(t, n, &k, why), 0);
	s[0] = 0;
	for (i = 0; i < n; i++)
		if (why[i] & rule)
			len += snprintf(s + len, sizeof(s) - len, "%s%zu", len ? " " : "", i);
	return s;
}

Test(retention, rules_pick_the_newest_of_each_period)
{
	/* Two a day (8h, 20h) from Mon 2024-01-01 to Sun 2024-02-04: 70 backups. */
	int64_t t[70];
	size_t i;

	setenv("TZ", "UTC", 1);
	tzset();
	for (i = 0; i < 70; i++)
		t[i] = day(2024, 1, 1 + i / 2, i % 2 ? 20 : 8);
	cr_expect_str_eq(kept(t, 70, (struct retention_rules){ .last = 3 }, RETAIN_LAST),
			 "67 68 69");
	cr_expect_str_eq(kept(t, 70, (struct retention_rules){ .daily = 3 }, RETAIN_DAILY),
			 "65 67 69");
	/* ISO weeks end on Sunday: the 20h backup of each Sunday. */
	cr_expect_str_eq(kept(t, 70, (struct retention_rules){ .weekly = 2 }, RETAIN_WEEKLY),
			 "55 69");
	cr_expect_str_eq(kept(t, 70, (struct retention_rules){ .monthly = 5 },
			      RETAIN_MONTHLY), "61 69");
	cr_expect_str_eq(kept(t, 70, (struct retention_rules){ 0 }, ~0U), "");
}

Test(retention, days_without_a_backup_do_not_count_and_order_is_by_time)
{
	/* Given out of order; days 1, 2, 5 and 9 of March. */
	int64_t t[5];

	setenv("TZ", "UTC", 1);
	tzset();
	t[0] = day(2024, 3, 9, 1);
	t[1] = day(2024, 3, 1, 1);
	t[2] = day(2024, 3, 5, 1);
	t[3] = day(2024, 3, 2, 1);
	t[4] = day(2024, 3, 5, 23);
	cr_expect_str_eq(kept(t, 5, (struct retention_rules){ .daily = 3 }, RETAIN_DAILY),
			 "0 3 4");
	cr_expect_str_eq(kept(t, 5, (struct retention_rules){ .last = 2 }, RETAIN_LAST), "0 4");
	/* Equal times: the later backup is the newer. */
	t[1] = t[0];
	cr_expect_str_eq(kept(t, 5, (struct retention_rules){ .last = 1 }, RETAIN_LAST), "1");
}
