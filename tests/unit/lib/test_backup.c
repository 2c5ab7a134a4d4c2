// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack_backup(), blktrack_restore() and blktrack_verify() without a
 * kernel: the volume is a plain file, the control device the fake of
 * tests/unit/fake_kernel.c (the module's own map, kmod/btmap.c, in this
 * process), the repository and the writers directory real ones in /tmp.
 *
 * Each test keeps its own copy of the volume (model[]) and the set of
 * blocks written since the checkpoint of the newest backup in the catalog
 * (changed[]), both written only by the test, and checks after every
 * backup, failed or not:
 *  - the kernel lost nothing: after an abort no pending map is left and the
 *    active map holds exactly changed[] (fake_kernel_map());
 *  - the repository holds no half backup: its catalog lists exactly the
 *    backups the test saw succeed, all committed, and backups/, deltas/ and
 *    hashes/ hold no file of another id and no .tmp file;
 *  - the next incremental stores exactly changed[] (its delta);
 *  - a restore of the newest backup's chain to a file equals model[] bit
 *    for bit.
 *
 * The abort paths, by the phase blktrack_backup() had reached when it
 * failed (enum backup_phase, lib/requester/requester.h):
 *
 *   NEW           the device is no volume (ENOTBLK)        not_a_volume
 *   NEW           the volume is not attached (ENOENT)      not_attached
 *   OPEN          the writers directory is unsafe (EPERM)  writers_directory_refused
 *   PREPARED      a writer vetoes prepare-backup           writer_vetoes_prepare_backup
 *   FROZEN        a writer vetoes freeze                   writer_vetoes_freeze
 *   FROZEN        CHECKPOINT fails (EIO)                   checkpoint_fails
 *   FROZEN        CHECKPOINT_SNAP refused, --snapshot=cow  cow_refused_by_the_module,
 *                                                          cow_on_a_module_without_snapshots
 *   CHECKPOINTED  a writer fails post-snapshot             writer_fails_post_snapshot
 *   CHECKPOINTED  READ_EXTENTS fails (EIO)                 read_extents_fails
 *   COMPOSED      the catalog write of (a) fails (ENOSPC)  repo_full_at_begin
 *   BEGUN         the backup file: a full filesystem       repo_full_while_writing
 *   BEGUN         the backup file: backups/ read-only      repo_read_only
 *   BEGUN         the snapshot is lost (its store full)    snapshot_lost_during_the_read
 *   WRITTEN       the verify writer rejects the file       verify_writer_rejects
 *                 (BLKTRACK_TEST_VERIFY_MISMATCH)
 *   WRITTEN       --verify-source: the volume differs      verify_source_rejects
 *   WRITTEN       a writer fails thaw                      writer_fails_thaw
 *   WRITTEN       --strict: blocks rewritten in the read   strict_rejects_a_fuzzy_read
 *   WRITTEN       the media changed during the read        media_changed_during_the_read
 *   WRITTEN       a writer rejects backup-complete         writer_rejects_backup_complete
 *   CHECKED       the catalog commit (c) fails (ENOSPC)    catalog_commit_fails
 *   CHECKED       (c) fails after its rename (fsync-dir)   catalog_commit_not_durable
 *   COMMITTED     the kernel COMMIT fails: the backup      kernel_commit_fails,
 *                 stands, the next run's recovery COMMITs  kernel_commit_fails_in_the_kernel
 *                 (BLKTRACK_TEST_COMMIT_FAIL; an EIO)
 *
 * and a requester killed by SIGKILL (BLKTRACK_TEST_CRASH_AT, in a child
 * whose kernel is this process's fake), the next backup in the parent:
 *
 *   CHECKPOINTED  after-checkpoint: recovery ABORTs        crash_after_checkpoint
 *   BEGUN         during-write: recovery drops the entry   crash_during_write
 *   COMMITTED     after-catalog: recovery COMMITs          crash_after_catalog
 *
 * The paths that succeed: full, incremental and differential to DONE with
 * the writers' events in order (freeze and cow), READ_EXTENTS paged one
 * extent a call, --snapshot=auto falling back on a module that refuses
 * CHECKPOINT_SNAP, a cow backup with writes during its read (the snapshot
 * gives the volume as it was at the checkpoint). And verify: a chain read
 * back, --against the volume file equal and different, a damaged member.
 *
 * Linked with the whole library and the fake (make unit: build/unit-tests-lib).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "core/core.h"
#include "fake_kernel.h"
#include "format/blockset.h"
#include "libblktrack.h"
#include "repo/repo.h"
#include "unit.h"

#define BS	4096U
#define NB	640U			/* 2.5 MiB: more than one read of 1 MiB */
#define SIZE	((uint64_t)NB * BS)
#define MAX_IDS	16

static char top[64], vol[128], repo_dir[128], locks[128], wdir[128], wlog[128], target[128];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static dev_t dev;
static uint8_t *model;			/* the volume as the test wrote it */
static bool changed[NB];		/* written since the newest backup's checkpoint */
static bool pre[NB];			/* changed[] when the running backup began */
static uint64_t ids[MAX_IDS];		/* the backups the test saw committed */
static size_t nids;
static uint32_t gen = 1;		/* the content of the next write */

/* ---- the volume --------------------------------------------------------- */

/* Block @b's content of generation @g (unit.h). */
static void fill(uint8_t *buf, uint64_t b, uint32_t g)
{
	unit_fill_block(buf, BS, b, g);
}

/* Write blocks [@first, +@n) through the fake (the probe marks them). */
static void vwrite(uint64_t first, uint64_t n)
{
	uint64_t b;

	cr_assert_leq(first + n, NB);
	gen++;
	for (b = first; b < first + n; b++) {
		fill(model + b * BS, b, gen);
		changed[b] = true;
	}
	cr_assert_eq(fake_kernel_write(fk, dev, first * BS, n * BS, model + first * BS), 0);
}

/* A write the module never saw (a missed write). */
static void vwrite_untracked(uint64_t b)
{
	int fd = open(vol, O_WRONLY);

	fill(model + b * BS, b, ++gen);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, model + b * BS, BS, b * BS), BS);
	close(fd);
}

/* Blocks every 32nd from @from: single-block extents, one read each. */
static void vwrite_scattered(uint64_t from, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		vwrite(from + i * 32, 1);
}

/* ---- the fixture ------------------------------------------------------- */

static void make_dir(const char *path)
{
	cr_assert_eq(mkdir(path, 0700), 0, "%s: %s", path, strerror(errno));
}

static void start(unsigned int flags)
{
	struct blktrack_ctx *plain;
	uint64_t b;
	int fd;

	snprintf(top, sizeof(top), "/tmp/bt-backup.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(vol, sizeof(vol), "%s/volume.img", top);
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", top);
	snprintf(locks, sizeof(locks), "%s/locks", top);
	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	snprintf(wlog, sizeof(wlog), "%s/writers.log", top);
	snprintf(target, sizeof(target), "%s/restored.img", top);
	make_dir(wdir);
	setenv("TEST_LOG", wlog, 1);

	/* The volume before tracking: every 8th block zero, the rest data. */
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

	fk = fake_kernel_new(flags);
	cr_assert(fk);
	cr_assert_eq(fake_kernel_add_volume(fk, vol, &dev), 0);
	ctx = fake_kernel_context(fk);
	cr_assert(ctx);
	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
}

static void setup(void)
{
	start(0);
}

static void teardown(void)
{
	char cmd[160];

	repo_fault_hook = NULL;
	blktrack_unref(ctx);
	fake_kernel_free(fk);
	free(model);
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", top, top);
	cr_assert_eq(system(cmd), 0);
}

/* The fixture afresh, on a module built without snapshots. */
static void old_module(void)
{
	teardown();
	memset(changed, 0, sizeof(changed));
	nids = 0;
	start(FAKE_NO_SNAPSHOT);
}

TestSuite(backup, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(backup_abort, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(backup_crash, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(verify, .init = setup, .fini = teardown, .timeout = 60);

/* ---- writers ------------------------------------------------------------ */

/* The writer @name in the writers directory: a shell script of @body. */
static void install_writer(const char *name, const char *body)
{
	char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", wdir, name);
	f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\n%sexit 0\n", body);
	fclose(f);
	cr_assert_eq(chmod(path, 0700), 0);
}

/* A writer that logs each event and its backup id, and fails @fail_at (or none). */
static void writer(const char *name, const char *fail_at)
{
	char body[512];

	snprintf(body, sizeof(body), "printf '%%s ' \"$1\" >>\"$TEST_LOG\"\n"
		 "[ \"$1\" = backup-complete ] && printf 'id=%%s ' \"$BLKTRACK_BACKUP_ID\" "
		 ">>\"$TEST_LOG\"\n"
		 "[ \"$1\" = '%s' ] && exit 3\n", fail_at ? fail_at : "-");
	install_writer(name, body);
}

/*
 * A writer that keeps a backup stamp: logs the one it is given back at
 * prepare-backup, and leaves @stamp (printf's format: "\\n" ends a line) at
 * backup-complete.
 */
static void stamp_writer(const char *name, const char *stamp)
{
	char body[512];

	snprintf(body, sizeof(body), "[ \"$1\" = prepare-backup ] && printf 'prev=%%s ' "
		 "\"${BLKTRACK_PREV_WRITER_STAMP-none}\" >>\"$TEST_LOG\"\n"
		 "[ \"$1\" = backup-complete ] && printf '%s' >\"$BLKTRACK_WRITER_STAMP_FILE\"\n",
		 stamp);
	install_writer(name, body);
}

/* The writers directory emptied: the backups after a failure run faster. */
static void no_writers(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -f '%s'/*", wdir);
	cr_assert_eq(system(cmd), 0);
}

static const char *writer_log(void)
{
	const char *text = unit_read_text(wlog);

	unlink(wlog);
	return text;
}

/* ---- one backup ------------------------------------------------------------- */

static struct blktrack_backup_opts opts(enum blktrack_backup_type type)
{
	return (struct blktrack_backup_opts){
		.device = vol, .repo = repo_dir, .type = type, .writers_dir = wdir,
		.writer_timeout = 10, .lock_dir = locks,
	};
}

/*
 * Run a backup. Writes made during it (progress callbacks) land in
 * changed[] afresh; the set before it stays in pre[] until the outcome
 * says where it went: into the backup (committed) or back to changed[].
 */
static int run(struct blktrack_backup_opts *o, struct blktrack_backup_result *res)
{
	int err;

	memcpy(pre, changed, sizeof(pre));
	memset(changed, 0, sizeof(changed));
	err = blktrack_backup(ctx, o, res);
	if (!err || res->id) {
		cr_assert_lt(nids, MAX_IDS);
		cr_assert_gt(res->id, nids ? ids[nids - 1] : 0);
		ids[nids++] = res->id;
	} else {
		int b;

		for (b = 0; b < (int)NB; b++)
			changed[b] |= pre[b];
	}
	return err;
}

static uint64_t run_ok(enum blktrack_backup_type type)
{
	struct blktrack_backup_opts o = opts(type);
	struct blktrack_backup_result res;
	int err = run(&o, &res);

	cr_assert_eq(err, 0, "backup: %s", blktrack_get_error(ctx));
	cr_assert_eq(res.failure, BLKTRACK_FAIL_NONE);
	return res.id;
}

/* ---- what must hold ------------------------------------------------------ */

static void expect_map(enum fake_map which, const bool *want, const char *what)
{
	bool got[NB];
	uint64_t b;

	cr_assert_eq(fake_kernel_map(fk, dev, which, got, NB), 0, "%s: no map", what);
	for (b = 0; b < NB; b++)
		cr_assert_eq(got[b], want[b], "%s: block %llu is %s", what,
			     (unsigned long long)b, got[b] ? "marked, never written" :
			     "written, not marked: lost");
}

/* After an abort: no checkpoint pending, every change in the active map. */
static void expect_kernel_lost_nothing(void)
{
	bool scratch[NB];

	cr_assert_eq(fake_kernel_map(fk, dev, FAKE_PENDING, scratch, NB), -ENODATA,
		     "a checkpoint is still pending: %s", fake_kernel_log(fk));
	expect_map(FAKE_ACTIVE, changed, "active map");
}

static bool an_id(const char *name, const char *suffix, bool *tmp)
{
	size_t i, l = strlen(name), sl = strlen(suffix);
	char *end;
	unsigned long long id;

	*tmp = l > 4 && !strcmp(name + l - 4, ".tmp");
	if (*tmp)
		return false;
	if (l <= sl || strcmp(name + l - sl, suffix))
		return false;
	id = strtoull(name, &end, 10);
	if (end != name + l - sl)
		return false;
	for (i = 0; i < nids; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Files of @sub: none of another id, no .tmp; @all: one per committed backup. */
static void expect_files(const char *sub, const char *suffix, bool all)
{
	char path[160];
	struct dirent *de;
	size_t n = 0;
	bool tmp;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", repo_dir, sub);
	d = opendir(path);
	cr_assert(d, "%s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cr_expect(an_id(de->d_name, suffix, &tmp), "%s/%s: %s", sub, de->d_name,
			  tmp ? "a temporary file is left" : "no committed backup has it");
		n++;
	}
	closedir(d);
	if (all)
		cr_expect_eq(n, nids, "%s holds %zu files for %zu backups", sub, n, nids);
}

/* The catalog is exactly ids[], committed; no other file of a backup. */
static void expect_repo_clean(void)
{
	char path[160];
	struct repo *r;
	size_t i;

	cr_assert_eq(repo_open(repo_dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	cr_assert_eq(repo_count(r), nids, "the catalog has %zu entries, %zu committed "
		     "backups were made", repo_count(r), nids);
	for (i = 0; i < nids; i++) {
		const struct repo_entry *e = repo_entry_at(r, i);

		cr_expect_eq(e->id, ids[i]);
		cr_expect_eq(e->state, REPO_COMMITTED, "backup %llu is pending",
			     (unsigned long long)e->id);
	}
	repo_close(r);
	expect_files("backups", ".bkt", true);
	expect_files("deltas", ".set", true);
	expect_files("hashes", ".bh", false);
	snprintf(path, sizeof(path), "%s/catalog.tmp", repo_dir);
	cr_expect_neq(access(path, F_OK), 0, "catalog.tmp is left");
}

/* The delta backup @id's checkpoint stored is exactly @want. */
static void expect_delta(uint64_t id, const bool *want)
{
	struct blockset *set;
	struct repo *r;
	uint64_t b;

	cr_assert_eq(repo_open(repo_dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	cr_assert_eq(repo_load_delta(r, id, &set), 0, "%s", repo_error(r));
	for (b = 0; b < NB; b++)
		cr_assert_eq(blockset_contains(set, b), want[b], "backup %llu, block %llu: %s",
			     (unsigned long long)id, (unsigned long long)b,
			     want[b] ? "written, not in the backup: lost" : "stored, not written");
	blockset_free(set);
	repo_close(r);
}

/* A restore of backup @id's chain to a file equals @img, bit for bit. */
static void expect_restore(uint64_t id, const uint8_t *img)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .backup_id = id,
					   .target = target };
	struct blktrack_restore_result res;
	struct blktrack_ctx *rc = blktrack_new();
	uint8_t *got = malloc(SIZE + 1);
	uint64_t b;
	int fd;

	cr_assert(rc && got);
	unlink(target);
	cr_assert_eq(blktrack_restore(rc, &o, &res), 0, "restore %llu: %s",
		     (unsigned long long)id, blktrack_get_error(rc));
	blktrack_unref(rc);
	fd = open(target, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(read(fd, got, SIZE + 1), (ssize_t)SIZE, "the restored file's size");
	close(fd);
	for (b = 0; b < NB; b++)
		cr_assert_eq(memcmp(got + b * BS, img + b * BS, BS), 0,
			     "backup %llu restores block %llu wrong", (unsigned long long)id,
			     (unsigned long long)b);
	free(got);
}

/*
 * After a failed backup: the kernel lost nothing, the repository holds no
 * half backup, the next incremental holds every change, and restores.
 */
static void expect_recovered(void)
{
	bool want[NB];
	uint64_t id;

	expect_kernel_lost_nothing();
	expect_repo_clean();
	memcpy(want, changed, sizeof(want));
	id = run_ok(BLKTRACK_BACKUP_INCREMENTAL);
	expect_delta(id, want);
	expect_repo_clean();
	expect_restore(id, model);
}

/* A full backup of the volume as it is, and some writes after it; logs afresh. */
static void full_then_writes(void)
{
	run_ok(BLKTRACK_BACKUP_FULL);
	vwrite(0, 3);
	vwrite(100, 40);
	vwrite(NB - 1, 1);
	writer_log();
	fake_kernel_log_clear(fk);
}

/* Did the fake see ioctl @name since its log was cleared (failed or not)? */
static bool logged(const char *name)
{
	const char *log = fake_kernel_log(fk), *p;
	size_t n = strlen(name);

	for (p = log; (p = strstr(p, name)); p += n)
		if ((p == log || p[-1] == ' ') && (!p[n] || p[n] == ' ' || p[n] == ':'))
			return true;
	return false;
}

/* ---- the paths that succeed --------------------------------------------- */

Test(backup, full_incremental_differential_restore_bit_exact)
{
	uint8_t *img[4];
	uint64_t id[4];
	bool want[NB];
	int i;

	writer("10-log", NULL);
	id[0] = run_ok(BLKTRACK_BACKUP_FULL);
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze post-snapshot thaw "
			 "backup-complete id=1 ");
	img[0] = malloc(SIZE);
	memcpy(img[0], model, SIZE);
	for (i = 1; i < 4; i++) {
		vwrite(17 * i, 5 * i);
		vwrite(NB - 10 * i, 2);
		memcpy(want, changed, sizeof(want));
		id[i] = run_ok(i < 3 ? BLKTRACK_BACKUP_INCREMENTAL : BLKTRACK_BACKUP_DIFFERENTIAL);
		if (i < 3)
			expect_delta(id[i], want);
		img[i] = malloc(SIZE);
		memcpy(img[i], model, SIZE);
	}
	writer_log();
	/* Each backup restores the volume as it was when it was taken. */
	for (i = 0; i < 4; i++) {
		expect_restore(id[i], img[i]);
		free(img[i]);
	}
	expect_repo_clean();
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_COMMIT), 4);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 0);
	cr_expect_null(strstr(fake_kernel_log(fk), "CHECKPOINT_SNAP"), "--snapshot=freeze");
}

/* Every phase to DONE, the result and the kernel's calls in order. */
/* One backup of @type whose writers leave stamps: what the result says it kept. */
static const char *stamped(enum blktrack_backup_type type)
{
	static struct blktrack_backup_result r;
	struct blktrack_backup_opts o = opts(type);

	cr_assert_eq(run(&o, &r), 0, "backup: %s", blktrack_get_error(ctx));
	return r.writer_stamps;
}

/*
 * Backup stamps (issue 16, point 3): what a writer hands over at
 * backup-complete is kept with the backup, and given back to that writer by
 * the next backup based on it: an incremental gets its base's, a
 * differential its full's, a full none. A second writer keeps none.
 */
Test(backup, writer_stamps_go_back_to_their_writer)
{
	struct json_object *doc, *arr, *e, *st;

	stamp_writer("10-db", "lsn-1\\n");
	writer("20-plain", NULL);
	cr_expect_str_eq(stamped(BLKTRACK_BACKUP_FULL), "10-db\tlsn-1\n");
	stamp_writer("10-db", "lsn-2");
	vwrite(5, 2);
	cr_expect_str_eq(stamped(BLKTRACK_BACKUP_INCREMENTAL), "10-db\tlsn-2\n");
	stamp_writer("10-db", "lsn-3\\n");
	vwrite(9, 1);
	cr_expect_str_eq(stamped(BLKTRACK_BACKUP_DIFFERENTIAL), "10-db\tlsn-3\n");
	stamp_writer("10-db", "lsn-4\\n");
	vwrite(12, 1);
	cr_expect_str_eq(stamped(BLKTRACK_BACKUP_INCREMENTAL), "10-db\tlsn-4\n");
	/* Per event, 10-db (prev=) runs before 20-plain (the event's name). */
	cr_expect_str_eq(writer_log(), "identify prev=none prepare-backup freeze "
			 "post-snapshot thaw backup-complete id=1 "
			 "identify prev=lsn-1 prepare-backup freeze post-snapshot thaw "
			 "backup-complete id=2 "
			 "identify prev=lsn-1 prepare-backup freeze post-snapshot thaw "
			 "backup-complete id=3 "
			 "identify prev=lsn-2 prepare-backup freeze post-snapshot thaw "
			 "backup-complete id=4 ");
	/* Kept in the catalog: read back by another open. */
	cr_assert_eq(blktrack_repo_json(ctx, repo_dir, false, &doc), 0);
	cr_assert(json_object_object_get_ex(doc, "backups", &arr));
	cr_assert_eq(json_object_array_length(arr), 4);
	e = json_object_array_get_idx(arr, 2);
	cr_assert(json_object_object_get_ex(e, "writer_stamps", &st));
	cr_expect_str_eq(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN),
			 "{\"10-db\":\"lsn-3\"}");
	json_object_put(doc);
}

Test(backup, every_phase_in_order)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	const char *log;

	run_ok(BLKTRACK_BACKUP_FULL);
	vwrite(5, 10);
	writer("10-log", NULL);
	fake_kernel_log_clear(fk);
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze post-snapshot thaw "
			 "backup-complete id=2 ");
	log = fake_kernel_log(fk);
	/*
	 * The volume (before and after the lock), CHECKPOINT and the size it
	 * took, its extents, the active map (blocks rewritten during the
	 * read?), the media unchanged, COMMIT.
	 */
	cr_expect_str_eq(log, "STATUS STATUS CHECKPOINT STATUS STATUS READ_EXTENTS STATUS "
			 "READ_EXTENTS STATUS COMMIT");
	cr_expect_eq(res.type, BLKTRACK_BACKUP_INCREMENTAL);
	cr_expect_eq(res.parent, 1);
	cr_expect_eq(res.changed_bytes, 10 * BS);
	cr_expect_eq(res.covered_bytes, 10 * BS);
	cr_expect_eq(res.rewritten_bytes, 0);
	cr_expect(res.verified);
	cr_expect(res.hashes);
	cr_expect_str_eq(res.recovery, "none");
	cr_expect_str_eq(res.snapshot, "freeze");
	cr_expect_str_eq(res.volume_id, "uuid:fake-60-1");
	cr_expect_str_eq(res.mount_point, "");
	expect_map(FAKE_ACTIVE, changed, "active map");
	expect_restore(res.id, model);
}

/* READ_EXTENTS one extent a call: the cursor pages through the pending map. */
Test(backup, extents_paged_one_a_call)
{
	bool want[NB];
	uint64_t id;

	run_ok(BLKTRACK_BACKUP_FULL);
	vwrite_scattered(1, 19);
	vwrite(NB - 3, 3);
	memcpy(want, changed, sizeof(want));
	fake_kernel_set_page(fk, 1);
	fake_kernel_log_clear(fk);
	id = run_ok(BLKTRACK_BACKUP_INCREMENTAL);
	cr_expect_geq(fake_kernel_calls(fk, BLKTRACK_IOC_READ_EXTENTS), 20);
	expect_delta(id, want);
	expect_restore(id, model);
}

/* In the first progress callback (the read has begun): write @what. */
static enum { W_NONE, W_LATE_BLOCKS, W_MEDIA, W_UNTRACKED } during;

static void during_read(void *data, const char *what, uint64_t done, uint64_t total)
{
	int kind = during;

	during = W_NONE;
	if (kind == W_LATE_BLOCKS)
		vwrite_scattered(1 + 32 * 15, 4);	/* the last extents, not read yet */
	else if (kind == W_MEDIA)
		fake_kernel_media_change(fk, dev);
	else if (kind == W_UNTRACKED)
		vwrite_untracked(1);			/* a block read already */
}

/*
 * --snapshot=cow while blocks are rewritten during the read: the backup
 * holds the volume as it was at the checkpoint; the rewrites are the next
 * backup's.
 */
Test(backup, cow_backup_reads_the_volume_as_it_was)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	uint8_t *then = malloc(SIZE);
	bool want[NB];

	run_ok(BLKTRACK_BACKUP_FULL);
	vwrite_scattered(1, 20);
	memcpy(want, changed, sizeof(want));
	memcpy(then, model, SIZE);
	writer("10-log", NULL);
	o.snapshot = BLKTRACK_SNAPSHOT_COW;
	o.progress = during_read;
	during = W_LATE_BLOCKS;
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_str_eq(res.snapshot, "cow");
	cr_expect_eq(res.snapshot_copied, 4);
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze thaw post-snapshot "
			 "backup-complete id=2 ");
	expect_delta(res.id, want);
	expect_restore(res.id, then);
	free(then);
	/* What was written during the read is in the next backup. */
	expect_map(FAKE_ACTIVE, changed, "active map");
	memcpy(want, changed, sizeof(want));
	expect_delta(run_ok(BLKTRACK_BACKUP_INCREMENTAL), want);
	expect_restore(ids[nids - 1], model);
}

/* --snapshot=auto on a module whose CHECKPOINT_SNAP is refused: the freeze instead. */
Test(backup, auto_falls_back_when_the_module_refuses)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_FULL);
	struct blktrack_backup_result res;

	o.snapshot = BLKTRACK_SNAPSHOT_AUTO;
	fake_kernel_fail(fk, BLKTRACK_IOC_CHECKPOINT_SNAP, 1, EOPNOTSUPP);
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_str_eq(res.snapshot, "freeze");
	cr_expect(strstr(fake_kernel_log(fk), "CHECKPOINT_SNAP:-95 CHECKPOINT STATUS"), "%s",
		  fake_kernel_log(fk));
	expect_restore(res.id, model);
	vwrite(9, 9);
	expect_recovered();
}

Test(backup, auto_on_a_module_without_snapshots)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_FULL);
	struct blktrack_backup_result res;

	old_module();
	o.snapshot = BLKTRACK_SNAPSHOT_AUTO;
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_str_eq(res.snapshot, "freeze");
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT_SNAP), 0);
	expect_restore(res.id, model);
}

/* ---- every abort path ----------------------------------------------------- */

/* A backup that must fail with @err and @failure; then everything recovered. */
static void expect_failure(struct blktrack_backup_opts *o, int err,
			   enum blktrack_failure failure, const char *msg)
{
	struct blktrack_backup_result res;
	int got = run(o, &res);

	cr_assert_eq(got, err, "backup: %d, expected %d: %s", got, err, blktrack_get_error(ctx));
	cr_expect_eq(res.failure, failure, "failure %d, expected %d", res.failure, failure);
	if (msg)
		cr_expect(strstr(blktrack_get_error(ctx), msg), "%s", blktrack_get_error(ctx));
}

static void fails(enum blktrack_backup_type type, int err, enum blktrack_failure failure,
		  const char *msg)
{
	struct blktrack_backup_opts o = opts(type);

	expect_failure(&o, err, failure, msg);
}

Test(backup_abort, not_a_volume)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_FULL);
	char other[160];

	snprintf(other, sizeof(other), "%s/other.img", top);
	cr_assert_eq(close(open(other, O_WRONLY | O_CREAT, 0600)), 0);
	o.device = other;
	expect_failure(&o, -ENOTBLK, BLKTRACK_FAIL_ERROR, "not a block device");
	cr_expect_str_eq(fake_kernel_log(fk), "ATTACH", "the kernel was asked nothing");
	expect_repo_clean();
	expect_restore(run_ok(BLKTRACK_BACKUP_FULL), model);
}

Test(backup_abort, not_attached)
{
	cr_assert_eq(blktrack_detach(ctx, dev), 0);
	fails(BLKTRACK_BACKUP_FULL, -ENOENT, BLKTRACK_FAIL_ERROR, "is not attached");
	expect_repo_clean();
}

Test(backup_abort, writers_directory_refused)
{
	full_then_writes();
	writer("10-log", NULL);
	cr_assert_eq(chmod(wdir, 0770), 0);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -EPERM, BLKTRACK_FAIL_ERROR,
	      "writable by group or others: refused");
	cr_expect_str_eq(writer_log(), "", "no writer ran");
	cr_expect(!logged("CHECKPOINT"), "%s", fake_kernel_log(fk));
	cr_assert_eq(chmod(wdir, 0700), 0);
	no_writers();
	expect_recovered();
}

Test(backup_abort, writer_vetoes_prepare_backup)
{
	full_then_writes();
	writer("10-veto", "prepare-backup");
	writer("20-log", NULL);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ECANCELED, BLKTRACK_FAIL_WRITER,
	      "writer 10-veto prepare-backup");
	/* The event stops at the veto; abort goes to every writer. */
	cr_expect_str_eq(writer_log(), "identify identify prepare-backup abort abort ");
	cr_expect(!logged("CHECKPOINT"), "%s", fake_kernel_log(fk));
	no_writers();
	expect_recovered();
}

Test(backup_abort, writer_vetoes_freeze)
{
	full_then_writes();
	writer("10-veto", "freeze");
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ECANCELED, BLKTRACK_FAIL_WRITER,
	      "writer 10-veto freeze");
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze thaw abort ");
	cr_expect(!logged("CHECKPOINT"), "%s", fake_kernel_log(fk));
	no_writers();
	expect_recovered();
}

Test(backup_abort, checkpoint_fails)
{
	full_then_writes();
	writer("10-log", NULL);
	fake_kernel_fail(fk, BLKTRACK_IOC_CHECKPOINT, 1, EIO);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -EIO, BLKTRACK_FAIL_ERROR, NULL);
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze thaw abort ");
	cr_expect(logged("CHECKPOINT") && !logged("ABORT"), "nothing to abort: %s",
		  fake_kernel_log(fk));
	expect_recovered();
}

Test(backup_abort, cow_refused_by_the_module)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);

	full_then_writes();
	o.snapshot = BLKTRACK_SNAPSHOT_COW;
	fake_kernel_fail(fk, BLKTRACK_IOC_CHECKPOINT_SNAP, 1, EOPNOTSUPP);
	expect_failure(&o, -EOPNOTSUPP, BLKTRACK_FAIL_ERROR, "--snapshot=cow");
	cr_expect(!logged("CHECKPOINT"), "%s", fake_kernel_log(fk));
	cr_expect(logged("CHECKPOINT_SNAP"), "%s", fake_kernel_log(fk));
	expect_recovered();
}

Test(backup_abort, cow_on_a_module_without_snapshots)
{
	struct blktrack_backup_opts o;

	old_module();
	o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	full_then_writes();
	o.snapshot = BLKTRACK_SNAPSHOT_COW;
	expect_failure(&o, -EOPNOTSUPP, BLKTRACK_FAIL_ERROR, "the module has no snapshots");
	cr_expect(!logged("CHECKPOINT") && !logged("CHECKPOINT_SNAP"), "%s",
		  fake_kernel_log(fk));
	expect_recovered();
}

Test(backup_abort, writer_fails_post_snapshot)
{
	full_then_writes();
	writer("10-fail", "post-snapshot");
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ECANCELED, BLKTRACK_FAIL_WRITER,
	      "writer 10-fail post-snapshot");
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze post-snapshot thaw abort ");
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	no_writers();
	expect_recovered();
}

Test(backup_abort, read_extents_fails)
{
	full_then_writes();
	fake_kernel_fail(fk, BLKTRACK_IOC_READ_EXTENTS, 1, EIO);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -EIO, BLKTRACK_FAIL_ERROR, NULL);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	expect_recovered();
}

/* repo_fault_hook: the @nth catalog write from now fails at @step with @err. */
static const char *cat_step;
static int cat_err, cat_nth, cat_writes;

static int catalog_fault(const char *step, const char *name)
{
	if (strcmp(name, "catalog"))
		return 0;
	if (!strcmp(step, "open"))
		cat_writes++;
	return cat_writes == cat_nth && !strcmp(step, cat_step) ? -cat_err : 0;
}

static void catalog_fails(int nth, const char *step, int err)
{
	cat_nth = nth;
	cat_step = step;
	cat_err = err;
	cat_writes = 0;
	repo_fault_hook = catalog_fault;
}

/* (a): the pending entry cannot be written. */
Test(backup_abort, repo_full_at_begin)
{
	full_then_writes();
	catalog_fails(1, "write", ENOSPC);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ENOSPC, BLKTRACK_FAIL_ERROR, "catalog");
	repo_fault_hook = NULL;
	cr_expect_eq(cat_writes, 1, "catalog writes: %d", cat_writes);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	expect_recovered();
}

/* (b) on a full filesystem: the backup file cannot grow (EFBIG). */
Test(backup_abort, repo_full_while_writing)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct rlimit old, lim;

	full_then_writes();
	vwrite(200, 100);
	o.no_compress = true;
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 256 << 10;	/* the catalog fits, 140 blocks do not */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	expect_failure(&o, -EFBIG, BLKTRACK_FAIL_ERROR, NULL);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	expect_recovered();
}

/* Shared with a child: its backup's outcome. */
struct child_out {
	int err;
	enum blktrack_failure failure;
	char msg[512];
};

static struct child_out *child_out(void)
{
	struct child_out *out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(out, MAP_FAILED);
	return out;
}

/* Root writes anywhere: give up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. */
static int drop_dac_override(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[0].effective &= ~((1U << CAP_DAC_OVERRIDE) | (1U << CAP_DAC_READ_SEARCH));
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static void backup_read_only(void *arg)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	struct child_out *out = arg;

	if (drop_dac_override())
		_exit(2);
	out->err = blktrack_backup(ctx, &o, &res);
	out->failure = res.failure;
	snprintf(out->msg, sizeof(out->msg), "%s", blktrack_get_error(ctx));
}

/* (b) in a read-only backups/ (a child without root's DAC override). */
Test(backup_abort, repo_read_only)
{
	struct child_out *out = child_out();
	char backups[160];
	int status;

	full_then_writes();
	snprintf(backups, sizeof(backups), "%s/backups", repo_dir);
	cr_assert_eq(chmod(backups, 0500), 0);
	status = fake_kernel_run_child(fk, backup_read_only, out);
	cr_assert_eq(chmod(backups, 0700), 0);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "child status %#x", status);
	cr_expect_eq(out->err, -EACCES, "%d: %s", out->err, out->msg);
	cr_expect_eq(out->failure, BLKTRACK_FAIL_ERROR);
	cr_expect(strstr(out->msg, "backups"), "%s", out->msg);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	expect_recovered();
}

/* cow: a store too small for what is rewritten before it is read. */
Test(backup_abort, snapshot_lost_during_the_read)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);

	run_ok(BLKTRACK_BACKUP_FULL);
	vwrite_scattered(1, 20);
	o.snapshot = BLKTRACK_SNAPSHOT_COW;
	o.snapshot_store = 2 * BS;
	o.progress = during_read;
	during = W_LATE_BLOCKS;
	expect_failure(&o, -EOVERFLOW, BLKTRACK_FAIL_ERROR, "the snapshot was lost");
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	expect_recovered();
}

Test(backup_abort, verify_writer_rejects)
{
	full_then_writes();
	setenv("BLKTRACK_TEST_VERIFY_MISMATCH", "1", 1);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -EBADE, BLKTRACK_FAIL_WRITER, "writer verify");
	unsetenv("BLKTRACK_TEST_VERIFY_MISMATCH");
	expect_recovered();
}

/*
 * --verify-source: a block changed behind the module's back after it was
 * read. The backup is rejected; that write is in no map (the module never
 * saw it), so a full backup, not an incremental, brings the repository back
 * to the volume.
 */
Test(backup_abort, verify_source_rejects)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);

	full_then_writes();
	vwrite(1, 1);
	o.verify_source = true;
	o.progress = during_read;
	during = W_UNTRACKED;
	expect_failure(&o, -EBADE, BLKTRACK_FAIL_WRITER, "differs from");
	expect_kernel_lost_nothing();
	expect_repo_clean();
	memset(changed, 0, sizeof(changed));
	expect_restore(run_ok(BLKTRACK_BACKUP_FULL), model);
	expect_repo_clean();
}

Test(backup_abort, writer_fails_thaw)
{
	full_then_writes();
	writer("10-fail", "thaw");
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ECANCELED, BLKTRACK_FAIL_WRITER,
	      "writer 10-fail thaw");
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze post-snapshot thaw abort ");
	no_writers();
	expect_recovered();
}

Test(backup_abort, strict_rejects_a_fuzzy_read)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);

	run_ok(BLKTRACK_BACKUP_FULL);
	vwrite_scattered(1, 20);
	o.strict = true;
	o.progress = during_read;
	during = W_LATE_BLOCKS;
	expect_failure(&o, -EBADE, BLKTRACK_FAIL_FUZZY, "rewritten during the read");
	expect_recovered();
}

/*
 * New media under the read: the backup is dropped; the next one resyncs
 * (tracking lost) and stores what differs, and its COMMIT makes tracking
 * trusted again.
 */
Test(backup_abort, media_changed_during_the_read)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	struct blktrack_status st;
	bool want[NB];

	full_then_writes();
	o.progress = during_read;
	during = W_MEDIA;
	expect_failure(&o, -ESTALE, BLKTRACK_FAIL_INVALID, "media changed");
	expect_kernel_lost_nothing();
	expect_repo_clean();
	o.progress = NULL;
	memcpy(want, changed, sizeof(want));
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect(res.fell_back);
	cr_expect_eq(res.type, BLKTRACK_BACKUP_RESYNC);
	expect_delta(res.id, want);	/* the blocks that differ: those written */
	expect_restore(res.id, model);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.state, BLKTRACK_STATE_TRACKING);
	vwrite(33, 3);
	expect_recovered();
}

Test(backup_abort, writer_rejects_backup_complete)
{
	full_then_writes();
	writer("10-reject", "backup-complete");
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ECANCELED, BLKTRACK_FAIL_WRITER,
	      "writer 10-reject backup-complete");
	cr_expect_str_eq(writer_log(), "identify prepare-backup freeze post-snapshot thaw "
			 "backup-complete id=2 abort ");
	no_writers();
	expect_recovered();
	/* The rejected backup's id is never given again. */
	cr_expect_eq(ids[nids - 1], 3);
}

/* A stamp of two lines: the backup is rejected, nothing is lost, no stamp kept. */
Test(backup_abort, writer_stamp_malformed)
{
	full_then_writes();
	stamp_writer("10-db", "two\\nlines\\n");
	fails(BLKTRACK_BACKUP_INCREMENTAL, -EINVAL, BLKTRACK_FAIL_WRITER,
	      "writer 10-db: its stamp (BLKTRACK_WRITER_STAMP_FILE) is not one line");
	cr_expect_str_eq(writer_log(), "prev=none ");
	no_writers();
	expect_recovered();
}

/* (c) fails before its rename: the catalog still says pending; abandoned. */
Test(backup_abort, catalog_commit_fails)
{
	full_then_writes();
	catalog_fails(2, "rename", ENOSPC);
	fails(BLKTRACK_BACKUP_INCREMENTAL, -ENOSPC, BLKTRACK_FAIL_ERROR, "catalog");
	repo_fault_hook = NULL;
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_COMMIT), 1, "the full's only");
	expect_recovered();
}

/*
 * (c) fails after its rename (the directory's fsync): the entry is
 * committed for every reader but maybe not durable; the kernel is ABORTed,
 * so the next backup finds a committed backup the kernel never committed
 * and resyncs (doc/REPOSITORY.md, "A failed catalog commit").
 */
Test(backup_abort, catalog_commit_not_durable)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	uint8_t *then = malloc(SIZE);
	bool scratch[NB];

	full_then_writes();
	memcpy(then, model, SIZE);
	catalog_fails(2, "fsync-dir", EIO);
	cr_assert_eq(run(&o, &res), -EIO);
	repo_fault_hook = NULL;
	cr_expect(strstr(blktrack_get_error(ctx), "catalog"), "%s", blktrack_get_error(ctx));
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_ABORT), 1);
	cr_expect_eq(fake_kernel_map(fk, dev, FAKE_PENDING, scratch, NB), -ENODATA);
	/* Its changes went back to the active map all the same ... */
	expect_map(FAKE_ACTIVE, changed, "active map");
	/* ... and the backup is committed for every reader. */
	ids[nids++] = 2;
	expect_repo_clean();
	expect_restore(2, then);
	free(then);
	memset(changed, 0, sizeof(changed));
	vwrite(7, 1);
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect(res.fell_back);
	cr_expect_eq(res.type, BLKTRACK_BACKUP_RESYNC);
	expect_restore(res.id, model);
	expect_repo_clean();
}

/* The kernel COMMIT fails after (c): the backup stands, the next run COMMITs. */
static void commit_fails_then_recovered(void)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	uint8_t *then = malloc(SIZE);
	bool want[NB];
	int err;

	memcpy(then, model, SIZE);
	err = run(&o, &res);
	unsetenv("BLKTRACK_TEST_COMMIT_FAIL");
	cr_assert_eq(err, -EIO, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.id, 2);
	cr_expect(strstr(blktrack_get_error(ctx), "the next backup finishes it"), "%s",
		  blktrack_get_error(ctx));
	/* Still pending in the kernel: what the backup holds, and after it the rest. */
	expect_map(FAKE_PENDING, pre, "pending map");
	expect_map(FAKE_ACTIVE, changed, "active map");
	expect_repo_clean();
	expect_restore(2, then);
	free(then);
	vwrite(300, 2);
	memcpy(want, changed, sizeof(want));
	cr_assert_eq(run(&o, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_str_eq(res.recovery, "commit");
	cr_expect(!res.fell_back, "the chain goes on");
	expect_delta(res.id, want);
	expect_restore(res.id, model);
	expect_repo_clean();
}

Test(backup_abort, kernel_commit_fails)
{
	full_then_writes();
	setenv("BLKTRACK_TEST_COMMIT_FAIL", "1", 1);
	commit_fails_then_recovered();
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_COMMIT), 3, "full, recovery, last");
}

Test(backup_abort, kernel_commit_fails_in_the_kernel)
{
	full_then_writes();
	fake_kernel_fail(fk, BLKTRACK_IOC_COMMIT, 1, EIO);
	commit_fails_then_recovered();
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_COMMIT), 4);
}

/* ---- a requester killed at each crash point ------------------------------ */

static void backup_and_crash(void *point)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;

	setenv("BLKTRACK_TEST_CRASH_AT", point, 1);
	blktrack_backup(ctx, &o, &res);
	_exit(3);	/* not killed: the crash point was never reached */
}

static bool exists(const char *fmt, uint64_t id)
{
	char name[64], path[200];

	snprintf(name, sizeof(name), fmt, (unsigned long long)id);
	snprintf(path, sizeof(path), "%s/%s", repo_dir, name);
	return !access(path, F_OK);
}

/*
 * Kill the requester at @point; the kernel's checkpoint outlives it, holding
 * what the dead backup was taking. The next backup's recovery does @recovery.
 */
static void crash(const char *point, const char *recovery)
{
	struct blktrack_backup_opts o = opts(BLKTRACK_BACKUP_INCREMENTAL);
	struct blktrack_backup_result res;
	bool held[NB], want[NB];
	uint64_t b;
	int status;

	full_then_writes();
	memcpy(held, changed, sizeof(held));
	status = fake_kernel_run_child(fk, backup_and_crash, (void *)point);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: status %#x",
		  point, status);
	/* What the dead requester left: its checkpoint, pending, holds the writes. */
	expect_map(FAKE_PENDING, held, "pending map");
	if (!strcmp(recovery, "commit")) {
		cr_assert(exists("backups/%llu.bkt", 2));
		ids[nids++] = 2;
		memset(changed, 0, sizeof(changed));
	} else if (!strcmp(point, "during-write")) {
		cr_expect(exists("backups/%llu.bkt.tmp", 2), "the half-written file");
	}
	vwrite(500, 5);
	for (b = 0; b < NB; b++)
		want[b] = changed[b];
	cr_assert_eq(run(&o, &res), 0, "%s: %s", point, blktrack_get_error(ctx));
	cr_expect_str_eq(res.recovery, recovery);
	cr_expect(!res.fell_back);
	expect_delta(res.id, want);
	expect_repo_clean();
	expect_restore(res.id, model);
	cr_expect(!exists("backups/%llu.bkt.tmp", 2));
}

Test(backup_crash, crash_after_checkpoint)
{
	crash("after-checkpoint", "abort");
}

Test(backup_crash, crash_during_write)
{
	crash("during-write", "abort");
}

Test(backup_crash, crash_after_catalog)
{
	crash("after-catalog", "commit");
}

/* ---- verify ------------------------------------------------------------- */

static int verify(uint64_t id, const char *against, struct blktrack_restore_result *res)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .backup_id = id,
					   .against = against };

	return blktrack_verify(ctx, &o, res);
}

Test(verify, a_chain_and_the_volume_it_came_from)
{
	struct blktrack_restore_result res;
	uint64_t id;

	full_then_writes();
	id = run_ok(BLKTRACK_BACKUP_INCREMENTAL);
	cr_assert_eq(verify(id, NULL, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.members, 2);
	cr_expect_eq(res.volume_size, SIZE);
	cr_assert_eq(verify(id, vol, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.differ_bytes, 0);
	cr_expect_eq(res.bytes, SIZE);

	/* Two blocks changed since: the first named, both counted. */
	vwrite(70, 1);
	vwrite(400, 1);
	cr_expect_eq(verify(id, vol, &res), -EBADE);
	cr_expect_eq(res.failure, BLKTRACK_FAIL_MISMATCH);
	cr_expect_eq(res.differ_bytes, 2 * BS);
	cr_expect_eq(res.first_diff, 70 * BS);
	/* The backup still restores what it held; the next one, the volume now. */
	expect_restore(run_ok(BLKTRACK_BACKUP_INCREMENTAL), model);
}

Test(verify, a_damaged_member_is_named)
{
	struct blktrack_restore_result res;
	char path[160];
	uint64_t id;

	full_then_writes();
	id = run_ok(BLKTRACK_BACKUP_INCREMENTAL);
	snprintf(path, sizeof(path), "%s/backups/1.bkt", repo_dir);
	unit_flip_bits(path, 200000, 0x40);
	cr_expect_lt(verify(id, NULL, &res), 0);
	cr_expect_eq(res.failure, BLKTRACK_FAIL_CORRUPT);
	cr_expect(strstr(res.file, "backups/1.bkt"), "%s", res.file);
}
