// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack copy (doc/REPOSITORY.md, "Copies"): real chains made by
 * blktrack_backup() over the fake kernel into one repository, copied into
 * another; every backup restored from the copy and compared bit for bit
 * with the volume the test kept at that backup; an incremental taken into
 * the copy chains on it; a damaged source file, diverged repositories and
 * bad arguments refused with their exact errors and nothing half-copied; a
 * copy killed at every catalog step and finished by the next one.
 *
 * Linked with the whole library and the fake (make unit: build/unit-tests-lib).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "fake_kernel.h"
#include "libblktrack.h"
#include "repo/repo.h"
#include "unit.h"

#define BS	4096U
#define NB	256U			/* 1 MiB */
#define SIZE	((uint64_t)NB * BS)
#define MAX_IDS	12

static char top[64], vol[128], src[128], dst[128], locks[128], target[128], wdir[128];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static dev_t dev;
static uint8_t *model;			/* the volume as the test wrote it */
static uint8_t *at[MAX_IDS + 1];	/* the volume at backup id i */
static uint32_t gen = 1;

static void vwrite(uint64_t first, uint64_t n)
{
	gen++;
	for (uint64_t b = first; b < first + n; b++)
		unit_fill_block(model + b * BS, BS, b, gen);
	cr_assert_eq(fake_kernel_write(fk, dev, first * BS, n * BS, model + first * BS), 0);
}

static void init_repo(const char *dir)
{
	struct blktrack_ctx *plain = blktrack_new();

	cr_assert_eq(blktrack_repo_init(plain, dir), 0, "%s", blktrack_get_error(plain));
	blktrack_unref(plain);
}

static void setup(void)
{
	int fd;

	snprintf(top, sizeof(top), "/tmp/bt-copy.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(vol, sizeof(vol), "%s/volume.img", top);
	snprintf(src, sizeof(src), "%s/src", top);
	snprintf(dst, sizeof(dst), "%s/dst", top);
	snprintf(locks, sizeof(locks), "%s/locks", top);
	snprintf(target, sizeof(target), "%s/restored.img", top);
	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	cr_assert_eq(mkdir(wdir, 0700), 0);
	model = calloc(1, SIZE);
	cr_assert(model);
	for (uint64_t b = 0; b < NB; b += 2)
		unit_fill_block(model + b * BS, BS, b, 0);
	fd = open(vol, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, model, SIZE, 0), (ssize_t)SIZE);
	close(fd);
	init_repo(src);
	init_repo(dst);
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

	repo_fault_hook = NULL;
	blktrack_unref(ctx);
	fake_kernel_free(fk);
	free(model);
	for (size_t i = 0; i <= MAX_IDS; i++) {
		free(at[i]);
		at[i] = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(copy, .init = setup, .fini = teardown, .timeout = 120);

static uint64_t backup_into(const char *repo, enum blktrack_backup_type type)
{
	struct blktrack_backup_opts o = {
		.device = vol, .repo = repo, .type = type, .lock_dir = locks,
		.writers_dir = wdir, .on_invalid = BLKTRACK_ON_INVALID_RESYNC,
	};
	struct blktrack_backup_result res;

	cr_assert_eq(blktrack_backup(ctx, &o, &res), 0, "backup: %s", blktrack_get_error(ctx));
	cr_assert_leq(res.id, MAX_IDS);
	free(at[res.id]);
	at[res.id] = malloc(SIZE);
	memcpy(at[res.id], model, SIZE);
	return res.id;
}

/* A backup into @repo that must fail: its error. */
static int backup_into_fails(const char *repo)
{
	struct blktrack_backup_opts o = {
		.device = vol, .repo = repo, .lock_dir = locks, .writers_dir = wdir,
	};
	struct blktrack_backup_result res;

	return blktrack_backup(ctx, &o, &res);
}

/* 1 full, 2 incr, 3 incr, 4 differential, 5 incr, 6 incr, into the source. */
static void six_backups(void)
{
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_FULL), 1);
	vwrite(10, 20);
	vwrite(255, 1);
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_INCREMENTAL), 2);
	vwrite(20, 20);
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_INCREMENTAL), 3);
	vwrite(35, 3);
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_DIFFERENTIAL), 4);
	vwrite(0, 4);
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_INCREMENTAL), 5);
	vwrite(200, 30);
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_INCREMENTAL), 6);
}

static int copy(uint64_t id, struct blktrack_copy_result *res)
{
	struct blktrack_copy_opts o = { .from = src, .to = dst, .backup_id = id };

	return blktrack_copy(ctx, &o, res);
}

static void expect_restore(const char *repo, uint64_t id)
{
	struct blktrack_restore_opts o = { .repo = repo, .target = target,
					   .backup_id = id, .force = true };
	struct blktrack_restore_result res;
	uint8_t *got = malloc(SIZE);
	int fd;

	unlink(target);
	cr_assert_eq(blktrack_restore(ctx, &o, &res), 0, "restore %llu from %s: %s",
		     (unsigned long long)id, repo, blktrack_get_error(ctx));
	fd = open(target, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, got, SIZE, 0), (ssize_t)SIZE);
	close(fd);
	cr_assert(!memcmp(got, at[id], SIZE), "backup %llu of %s restores other bytes",
		  (unsigned long long)id, repo);
	free(got);
}

static void collect(void *data, const char *problem)
{
	fprintf(stderr, "check: %s\n", problem);
	(*(unsigned int *)data)++;
}

static void expect_check_clean(const char *repo)
{
	struct blktrack_check_result res;
	unsigned int lines = 0;

	cr_assert_eq(blktrack_repo_check(ctx, repo, false, collect, &lines, &res), 0);
	cr_assert_eq(res.problems, 0, "check of %s found %u problems", repo, res.problems);
}

/* "ID:STATE ..." of @repo's catalog. */
static const char *catalog(const char *repo)
{
	static char s[256];
	struct repo *r;
	size_t n = 0;

	cr_assert_eq(repo_open(repo, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	s[0] = 0;
	for (size_t i = 0; i < repo_count(r); i++)
		n += snprintf(s + n, sizeof(s) - n, "%s%llu:%s", i ? " " : "",
			      (unsigned long long)repo_entry_at(r, i)->id,
			      repo_state_name(repo_entry_at(r, i)->state));
	repo_close(r);
	return s;
}

/* The files of @repo's backups/, deltas/ and hashes/ as one line. */
static const char *files(const char *repo)
{
	static char s[1024];
	char cmd[300];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cd '%s' && (ls backups; ls deltas; ls hashes) | tr '\\n' ' '",
		 repo);
	f = popen(cmd, "r");
	n = fread(s, 1, sizeof(s) - 1, f);
	s[n] = 0;
	pclose(f);
	return s;
}

Test(copy, every_backup_restores_from_the_copy)
{
	struct blktrack_copy_result res;
	struct repo *a, *b;

	six_backups();
	cr_assert_eq(copy(0, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 6);
	cr_expect_eq(res.present, 0);
	cr_expect_str_eq(catalog(dst), "1:committed 2:committed 3:committed 4:committed "
			 "5:committed 6:committed");
	/* The same entries: ids, types, parents, stamps, checksums, sizes. */
	cr_assert_eq(repo_open(src, REPO_RDONLY, &a), 0);
	cr_assert_eq(repo_open(dst, REPO_RDONLY, &b), 0);
	for (size_t i = 0; i < 6; i++) {
		const struct repo_entry *x = repo_entry_at(a, i), *y = repo_entry_at(b, i);

		cr_expect_eq(x->type, y->type);
		cr_expect_eq(x->parent, y->parent);
		cr_expect(repo_stamp_equal(&x->to, &y->to));
		cr_expect_eq(x->has_from, y->has_from);
		cr_expect_eq(x->time, y->time);
		cr_expect_eq(x->stored_bytes, y->stored_bytes);
		cr_expect_eq(x->changed_bytes, y->changed_bytes);
		cr_expect_eq(x->delta_sum, y->delta_sum);
		cr_expect_eq(x->has_hashes_sum, y->has_hashes_sum);
		cr_expect_eq(x->hashes_sum, y->hashes_sum);
	}
	repo_close(a);
	repo_close(b);
	cr_expect_str_eq(files(dst), files(src));
	for (uint64_t id = 1; id <= 6; id++)
		expect_restore(dst, id);
	expect_check_clean(dst);
	/* Again: nothing left to copy. */
	cr_assert_eq(copy(0, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 0);
	cr_expect_eq(res.present, 6);
}

Test(copy, an_incremental_into_the_copy_continues_its_chain)
{
	struct blktrack_copy_result res;
	struct repo *r;

	six_backups();
	cr_assert_eq(copy(0, &res), 0, "%s", blktrack_get_error(ctx));
	vwrite(100, 7);
	cr_assert_eq(backup_into(dst, BLKTRACK_BACKUP_INCREMENTAL), 7);
	cr_assert_eq(repo_open(dst, REPO_RDONLY, &r), 0);
	cr_expect_eq(repo_find(r, 7)->type, REPO_INCREMENTAL, "a %s",
		     repo_type_name(repo_find(r, 7)->type));
	cr_expect_eq(repo_find(r, 7)->parent, 6);
	cr_expect_eq(repo_find(r, 7)->changed_bytes, 7 * BS, "only the 7 blocks written");
	repo_close(r);
	expect_restore(dst, 7);
	expect_check_clean(dst);
}

Test(copy, one_chain_then_the_rest)
{
	struct blktrack_copy_result res;

	six_backups();
	cr_assert_eq(copy(3, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 3);
	cr_expect_str_eq(catalog(dst), "1:committed 2:committed 3:committed");
	expect_restore(dst, 3);
	cr_assert_eq(copy(4, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 1, "the differential alone: its full is there");
	cr_expect_eq(res.present, 1);
	cr_assert_eq(copy(0, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 2);
	cr_expect_eq(res.present, 4);
	for (uint64_t id = 1; id <= 6; id++)
		expect_restore(dst, id);
	expect_check_clean(dst);
}

Test(copy, prunes_on_either_end)
{
	struct blktrack_prune_opts po = { .keep_last = 2 };
	struct blktrack_prune_result pr;
	struct blktrack_copy_result res;

	six_backups();
	cr_assert_eq(copy(0, &res), 0, "%s", blktrack_get_error(ctx));
	/* The source merges 5 and 6 into fulls: the same points, not copied again. */
	po.repo = src;
	cr_assert_eq(blktrack_repo_prune(ctx, &po, &pr), 0, "%s", blktrack_get_error(ctx));
	blktrack_prune_result_free(&pr);
	vwrite(50, 2);
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_INCREMENTAL), 8);	/* 7: the merge's file */
	cr_assert_eq(copy(0, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 1);
	cr_expect_eq(res.present, 2);
	po.repo = dst;
	cr_assert_eq(blktrack_repo_prune(ctx, &po, &pr), 0, "%s", blktrack_get_error(ctx));
	blktrack_prune_result_free(&pr);
	expect_restore(dst, 6);
	expect_restore(dst, 8);
	expect_check_clean(dst);
	expect_check_clean(src);
}

Test(copy, diverged_repositories_are_refused)
{
	struct blktrack_copy_result res;
	char before[256];

	six_backups();
	cr_assert_eq(copy(3, &res), 0, "%s", blktrack_get_error(ctx));
	/* A backup taken into the copy: its 4 is not the source's. */
	vwrite(60, 1);
	cr_assert_eq(backup_into(dst, BLKTRACK_BACKUP_INCREMENTAL), 4);
	snprintf(before, sizeof(before), "%s", catalog(dst));
	cr_expect_eq(copy(0, &res), -EEXIST);
	cr_expect(strstr(blktrack_get_error(ctx), "diverged"), "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 0);
	cr_expect_str_eq(catalog(dst), before);
	/* What the source's 3 restores needs nothing of 4: still asked for alone. */
	cr_expect_eq(copy(3, &res), 0, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.present, 3);
}

Test(copy, a_damaged_source_file_is_refused_and_nothing_half_copied)
{
	struct blktrack_copy_result res;
	char path[300];
	unsigned char byte;
	int fd;

	six_backups();
	snprintf(path, sizeof(path), "%s/backups/3.bkt", src);
	fd = open(path, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &byte, 1, 5000), 1);
	byte ^= 0x10;
	cr_assert_eq(pwrite(fd, &byte, 1, 5000), 1);
	close(fd);
	cr_expect_eq(copy(0, &res), -EBADMSG, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.failure, BLKTRACK_FAIL_CORRUPT);
	cr_expect(strstr(blktrack_get_error(ctx), "3.bkt"), "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.copied, 2);
	cr_expect_str_eq(catalog(dst), "1:committed 2:committed");
	/* No hash file: the source keeps its newest base's only (6.bh). */
	cr_expect_str_eq(files(dst), "1.bkt 2.bkt 1.set 2.set ");
	expect_check_clean(dst);
	/* A damaged delta map: the same, nothing of backup 1 in the copy. */
	snprintf(path, sizeof(path), "rm -rf '%s'", dst);
	cr_assert_eq(system(path), 0);
	init_repo(dst);
	snprintf(path, sizeof(path), "%s/deltas/1.set", src);
	fd = open(path, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "x", 1, 0), 1);
	close(fd);
	res.failure = BLKTRACK_FAIL_NONE;
	cr_expect_eq(copy(0, &res), -EBADMSG, "%s", blktrack_get_error(ctx));
	cr_expect_eq(res.failure, BLKTRACK_FAIL_CORRUPT);
	cr_expect_str_eq(catalog(dst), "");
	cr_expect_str_eq(files(dst), "");
}

Test(copy, bad_arguments_are_refused)
{
	struct blktrack_copy_opts o = { .from = src, .to = src };
	struct blktrack_copy_result res;
	char none[160];

	six_backups();
	cr_expect_eq(blktrack_copy(ctx, &o, &res), -EINVAL);
	cr_expect(strstr(blktrack_get_error(ctx), "the same repository"), "%s",
		  blktrack_get_error(ctx));
	o.to = NULL;
	cr_expect_eq(blktrack_copy(ctx, &o, &res), -EINVAL);
	snprintf(none, sizeof(none), "%s/none", top);
	cr_assert_eq(mkdir(none, 0700), 0);
	o.to = none;
	cr_expect_eq(blktrack_copy(ctx, &o, &res), -ENOENT, "not a repository: %s",
		     blktrack_get_error(ctx));
	o.from = none;
	o.to = dst;
	cr_expect_eq(blktrack_copy(ctx, &o, &res), -ENOENT);
	cr_expect_eq(copy(99, &res), -ENOENT);
	cr_expect(strstr(blktrack_get_error(ctx), "no backup 99"), "%s", blktrack_get_error(ctx));
	cr_expect_str_eq(catalog(dst), "");
	cr_expect_str_eq(files(dst), "");
}

static int kill_at, steps;

/* repo_fault_hook: the copier dies at its @kill_at-th catalog step. */
static int die_at_step(const char *step, const char *name)
{
	(void)step;
	if (!strcmp(name, "catalog") && ++steps == kill_at)
		raise(SIGKILL);
	return 0;
}

/*
 * Killed before and after each step of every catalog write (begin and
 * commit of each backup: 2 writes x 5 steps x 6 backups): the next copy
 * finishes, and the copy holds every backup exactly.
 */
Test(copy, a_copy_killed_at_any_step_is_finished_by_the_next)
{
	struct blktrack_copy_result res;
	char cmd[300];

	six_backups();
	for (kill_at = 1; kill_at <= 60; kill_at++) {
		pid_t pid;
		int status;

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dst);
		cr_assert_eq(system(cmd), 0);
		init_repo(dst);
		pid = fork();
		cr_assert(pid >= 0);
		if (!pid) {
			steps = 0;
			repo_fault_hook = die_at_step;
			_exit(copy(0, &res) ? 1 : 2);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "step %d: status %#x", kill_at, status);
		cr_assert_eq(copy(0, &res), 0, "step %d: %s", kill_at, blktrack_get_error(ctx));
		cr_expect_str_eq(catalog(dst), "1:committed 2:committed 3:committed 4:committed "
				 "5:committed 6:committed", "step %d", kill_at);
		cr_expect_str_eq(files(dst), files(src), "step %d", kill_at);
		for (uint64_t id = 1; id <= 6; id++)
			expect_restore(dst, id);
		expect_check_clean(dst);
	}
}

/* 32 random bytes in @path, for BLKTRACK_KEY_FILE. */
static void key_file(const char *path)
{
	unsigned char k[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	for (int i = 0; i < 32; i++)
		k[i] = (unsigned char)(random() >> 3);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, k, 32), 32);
	close(fd);
}

/* Whether @needle is anywhere in the files under @dir. */
static bool found_in(const char *dir, const char *needle)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "grep -rqF '%s' '%s'", needle, dir);
	return system(cmd) == 0;
}

/*
 * An encrypted repository (doc/REPOSITORY.md, "Encryption"): backups taken
 * into it (the writer, the verify writer reading back, the hash files) and
 * copied into it from a plain one (encrypted on the way) restore bit for bit;
 * the volume's id is in no file of it; another key or none is refused with
 * nothing changed; a flipped byte is detected.
 */
Test(copy, an_encrypted_repository)
{
	struct blktrack_copy_result res;
	char key[160], other[160], enc[160], path[300], before[256];
	unsigned char byte;
	int fd;

	snprintf(key, sizeof(key), "%s/key", top);
	snprintf(other, sizeof(other), "%s/other", top);
	snprintf(enc, sizeof(enc), "%s/enc", top);
	key_file(key);
	key_file(other);
	setenv("BLKTRACK_KEY_FILE", key, 1);
	cr_assert_eq(blktrack_repo_create(ctx, enc, BLKTRACK_REPO_ENCRYPTED), 0, "%s",
		     blktrack_get_error(ctx));
	cr_assert_eq(backup_into(enc, BLKTRACK_BACKUP_FULL), 1);
	vwrite(10, 20);
	cr_assert_eq(backup_into(enc, BLKTRACK_BACKUP_INCREMENTAL), 2);
	vwrite(200, 3);
	cr_assert_eq(backup_into(enc, BLKTRACK_BACKUP_RESYNC), 3);
	for (uint64_t id = 1; id <= 3; id++)
		expect_restore(enc, id);
	expect_check_clean(enc);
	cr_expect(!found_in(enc, "uuid:"), "a volume id in the clear");
	cr_expect(!found_in(enc, "incremental"), "the catalog in the clear");

	/* Another key, or none: refused, nothing changed. */
	snprintf(before, sizeof(before), "%s", files(enc));
	setenv("BLKTRACK_KEY_FILE", other, 1);
	cr_expect_eq(backup_into_fails(enc), -EKEYREJECTED, "%s", blktrack_get_error(ctx));
	unsetenv("BLKTRACK_KEY_FILE");
	cr_expect_eq(backup_into_fails(enc), -ENOKEY, "%s", blktrack_get_error(ctx));
	setenv("BLKTRACK_KEY_FILE", key, 1);
	cr_expect_str_eq(files(enc), before);

	/* A plain repository copied into an encrypted one. */
	unsetenv("BLKTRACK_KEY_FILE");
	cr_assert_eq(backup_into(src, BLKTRACK_BACKUP_FULL), 1);	/* at[1] is its now */
	setenv("BLKTRACK_KEY_FILE", key, 1);
	snprintf(path, sizeof(path), "%s/enc2", top);
	cr_assert_eq(blktrack_repo_create(ctx, path, BLKTRACK_REPO_ENCRYPTED), 0);
	{
		struct blktrack_copy_opts o = { .from = src, .to = path };

		cr_expect_eq(blktrack_copy(ctx, &o, &res), 0, "%s", blktrack_get_error(ctx));
	}
	expect_restore(path, 1);

	/* A flipped byte of an encrypted backup file. */
	snprintf(path, sizeof(path), "%s/backups/2.bkt", enc);
	fd = open(path, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &byte, 1, 300), 1);
	byte ^= 1;
	cr_assert_eq(pwrite(fd, &byte, 1, 300), 1);
	close(fd);
	{
		struct blktrack_restore_opts o = { .repo = enc, .target = target,
						   .backup_id = 2, .force = true };
		struct blktrack_restore_result rr;

		unlink(target);
		cr_expect_eq(blktrack_restore(ctx, &o, &rr), -EBADMSG, "%s",
			     blktrack_get_error(ctx));
		cr_expect_eq(rr.failure, BLKTRACK_FAIL_CORRUPT);
	}
	unsetenv("BLKTRACK_KEY_FILE");
}
