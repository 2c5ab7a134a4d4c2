// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack_restore() over repositories built without a kernel (repo.c and
 * bfile.c called directly): a restore onto a larger file leaves exactly
 * the volume; a file target is written under a temporary name with its
 * first MiB last, and renamed at the end, so that the target never holds a
 * half restore; without a backup id, the newest backup of the one volume,
 * and a refusal naming the volumes when there are several.
 *
 * Linked with the whole library (make unit: build/unit-tests-lib).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "format/bfile.h"
#include "format/blockset.h"
#include "libblktrack.h"
#include "repo/repo.h"

#define BS	4096U
#define NB	512U			/* 2 MiB: more than the first MiB held back */
#define SIZE	((uint64_t)NB * BS)

static char top[128], repo_dir[160], target[200];

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/bt-restore.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", top);
	snprintf(target, sizeof(target), "%s/t/volume.img", top);
	*strrchr(target, '/') = 0;
	cr_assert_eq(mkdir(target, 0755), 0);
	target[strlen(target)] = '/';
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

/* Block @b of a volume written with @seed: never all zero. */
static void block_fill(uint8_t *buf, uint64_t b, int seed)
{
	size_t i;

	for (i = 0; i < BS; i++)
		buf[i] = (uint8_t)(b * 7 + i / 512 + seed) | 1;
}

static void to_bstamp(const struct repo_stamp *s, struct bfile_stamp *o)
{
	memcpy(o->generation, s->generation, 16);
	o->epoch = s->epoch;
	o->size = s->size;
	o->block_size = s->block_size;
}

/* A committed full backup of volume @vol (the next epoch), content @seed. */
static uint64_t add_full(const char *vol, int seed)
{
	struct repo_entry e = { .type = REPO_FULL };
	struct bfile_writer *w = NULL;
	struct bfile_header h;
	struct bfile_stats st;
	struct blockset *delta;
	struct repo *r;
	uint8_t buf[BS];
	uint64_t id, b;
	size_t i;
	struct repo_file *rf;
	int err;

	/* The first backup initialises the repository (REPO_CREATE is init). */
	err = repo_open(repo_dir, 0, &r);
	if (err == -ENOENT) {
		repo_close(r);
		err = repo_open(repo_dir, REPO_CREATE, &r);
	}
	cr_assert_eq(err, 0, "%s", repo_error(r));
	snprintf(e.to.volume_id, sizeof(e.to.volume_id), "%s", vol);
	memset(e.to.generation, vol[strlen(vol) - 1], 16);
	for (i = 0; i < repo_count(r); i++)
		if (!strcmp(repo_entry_at(r, i)->to.volume_id, vol))
			e.to.epoch = repo_entry_at(r, i)->to.epoch;
	e.to.epoch++;
	e.to.size = SIZE;
	e.to.block_size = BS;
	cr_assert_eq(blockset_new(&delta), 0);
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	cr_assert_eq(repo_backup_create(r, id, &rf), 0, "%s", repo_error(r));
	cr_assert_eq(bfile_header_init(&h, BFILE_TYPE_FULL), 0);
	snprintf(h.volume_id, sizeof(h.volume_id), "%s", vol);
	h.volume_size = SIZE;
	h.block_size = BS;
	to_bstamp(&e.to, &h.to);
	cr_assert_eq(bfile_writer_open_fn(repo_file_write, rf, &h, &w), 0);
	for (b = 0; b < NB; b++) {
		block_fill(buf, b, seed);
		cr_assert_eq(bfile_write_data(w, b * BS, buf, BS), 0);
	}
	cr_assert_eq(bfile_writer_finish(w, &st), 0);
	cr_assert_eq(repo_backup_install(r, id, rf), 0, "%s", repo_error(r));
	cr_assert_eq(repo_commit(r, id, st.stream_bytes), 0, "%s", repo_error(r));
	blockset_free(delta);
	repo_close(r);
	return id;
}

/* The target holds exactly the volume of @seed. */
static void check_target(int seed)
{
	uint8_t want[BS], got[BS];
	struct stat sb;
	uint64_t b;
	int fd = open(target, O_RDONLY);

	cr_assert(fd >= 0, "%s: %s", target, strerror(errno));
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq((uint64_t)sb.st_size, SIZE, "%s has %lld bytes, the volume %llu", target,
		     (long long)sb.st_size, (unsigned long long)SIZE);
	for (b = 0; b < NB; b++) {
		block_fill(want, b, seed);
		cr_assert_eq(pread(fd, got, BS, b * BS), BS);
		cr_assert_eq(memcmp(want, got, BS), 0, "block %llu differs", (unsigned long long)b);
	}
	close(fd);
}

static int restore(uint64_t id, struct blktrack_restore_result *res, char *err_msg, size_t len,
		   blktrack_progress_fn fn, void *data)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .backup_id = id, .target = target,
					   .progress = fn, .progress_data = data };
	struct blktrack_ctx *ctx = blktrack_new();
	int err;

	cr_assert(ctx);
	err = blktrack_restore(ctx, &o, res);
	snprintf(err_msg, len, "%s", blktrack_get_error(ctx));
	blktrack_unref(ctx);
	return err;
}

static void fill_file(const char *path, uint64_t size, int byte)
{
	char buf[BS];
	uint64_t off;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0);
	memset(buf, byte, BS);
	for (off = 0; off < size; off += BS)
		cr_assert_eq(pwrite(fd, buf, BS, off), BS);
	close(fd);
}

Test(restore, onto_a_larger_file_leaves_exactly_the_volume, .init = setup, .fini = teardown,
     .timeout = 30)
{
	struct blktrack_restore_result res;
	char msg[1024];
	uint64_t id = add_full("uuid:vol-a", 1);

	fill_file(target, SIZE + 3 * BS + 100, 0xaa);
	cr_assert_eq(restore(id, &res, msg, sizeof(msg), NULL, NULL), 0, "%s", msg);
	check_target(1);
}

/* What the restore's progress calls saw of the target and its temporary. */
struct watch {
	unsigned int calls, temps;
	bool target_changed, head_written, tail_seen;
};

static void watch_progress(void *data, const char *what, uint64_t done, uint64_t total)
{
	struct watch *wt = data;
	char dir[200], path[460];
	uint8_t buf[BS], want[BS];
	struct dirent *de;
	DIR *d;
	int fd;

	wt->calls++;
	fd = open(target, O_RDONLY);
	if (fd >= 0) {
		/* Still the old file: its first block is 0xaa. */
		memset(want, 0xaa, BS);
		if (pread(fd, buf, BS, 0) != BS || memcmp(buf, want, BS))
			wt->target_changed = true;
		close(fd);
	}
	snprintf(dir, sizeof(dir), "%s", target);
	*strrchr(dir, '/') = 0;
	d = opendir(dir);
	cr_assert(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "volume.img"))
			continue;
		wt->temps++;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		cr_assert(fd >= 0);
		memset(want, 0, BS);
		if (pread(fd, buf, BS, 0) == BS && memcmp(buf, want, BS))
			wt->head_written = true;
		block_fill(want, NB - 1, 1);
		if (pread(fd, buf, BS, (NB - 1) * (uint64_t)BS) == BS && !memcmp(buf, want, BS))
			wt->tail_seen = true;
		close(fd);
	}
	closedir(d);
}

Test(restore, file_target_written_aside_first_mib_last, .init = setup, .fini = teardown,
     .timeout = 30)
{
	struct blktrack_restore_result res;
	struct watch wt = { 0 };
	char msg[1024];
	uint64_t id = add_full("uuid:vol-a", 1);

	fill_file(target, 2 * BS, 0xaa);
	cr_assert_eq(restore(id, &res, msg, sizeof(msg), watch_progress, &wt), 0, "%s", msg);
	cr_assert_gt(wt.calls, 0);
	cr_assert(!wt.target_changed, "the target was written before the restore ended");
	cr_assert_gt(wt.temps, 0, "no temporary file beside the target");
	cr_assert(!wt.head_written, "the first block was written before the end");
	cr_assert(wt.tail_seen, "the temporary file did not get the volume's last block");
	check_target(1);
	/* Nothing left beside it. */
	wt.temps = 0;
	watch_progress(&wt, "after", 0, 0);
	cr_assert_eq(wt.temps, 0, "a temporary file is left");
}

Test(restore, default_backup_is_the_one_volumes_newest, .init = setup, .fini = teardown,
     .timeout = 30)
{
	struct blktrack_restore_result res;
	char msg[1024];

	add_full("uuid:vol-a", 1);
	add_full("uuid:vol-a", 2);
	cr_assert_eq(restore(0, &res, msg, sizeof(msg), NULL, NULL), 0, "%s", msg);
	cr_assert_eq(res.backup_id, 2);
	check_target(2);

	/* A second volume: no guess, the volumes named, the target untouched. */
	cr_assert_eq(unlink(target), 0);
	add_full("uuid:vol-b", 3);
	cr_assert_eq(restore(0, &res, msg, sizeof(msg), NULL, NULL), -EINVAL);
	cr_assert(strstr(msg, "uuid:vol-a") && strstr(msg, "uuid:vol-b") &&
		  strstr(msg, "--backup"), "%s", msg);
	cr_assert_neq(access(target, F_OK), 0, "the target was created");
	cr_assert_eq(restore(2, &res, msg, sizeof(msg), NULL, NULL), 0, "%s", msg);
	check_target(2);
}

/* ---- writers in a restore (doc/WRITERS.md, "Restores") --------------------- */

/* A writer logging each event with what it is told, failing @fail_at. */
static void restore_writer(const char *wdir, const char *fail_at)
{
	char path[300];
	FILE *f;

	cr_assert_eq(mkdir(wdir, 0700), 0);
	snprintf(path, sizeof(path), "%s/10-db", wdir);
	f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\n"
		"echo \"$1 id=$BLKTRACK_BACKUP_ID type=$BLKTRACK_BACKUP_TYPE"
		" more=$BLKTRACK_MORE_RESTORES target=${BLKTRACK_RESTORE_TARGET##*/}\""
		" >>\"$0.log\"\n"
		"[ \"$1\" = '%s' ] && exit 5\n"
		"exit 0\n", fail_at);
	fclose(f);
	cr_assert_eq(chmod(path, 0700), 0);
}

static int restore_with(uint64_t id, const char *wdir, bool more,
			struct blktrack_restore_result *res, char *msg, size_t len)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .backup_id = id, .target = target,
					   .writers_dir = wdir, .writer_timeout = 10,
					   .more_restores = more };
	struct blktrack_ctx *ctx = blktrack_new();
	int err;

	cr_assert(ctx);
	err = blktrack_restore(ctx, &o, res);
	snprintf(msg, len, "%s", blktrack_get_error(ctx));
	blktrack_unref(ctx);
	return err;
}

static const char *wlog(const char *wdir)
{
	static char text[1024];
	char path[300];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/10-db.log", wdir);
	f = fopen(path, "r");
	cr_assert(f, "no writer log");
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	unlink(path);
	return text;
}

Test(restore, writers_told_pre_and_post_restore, .init = setup, .fini = teardown, .timeout = 30)
{
	struct blktrack_restore_result res;
	char wdir[200], msg[1024];
	uint64_t id = add_full("uuid:vol-a", 3);

	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	restore_writer(wdir, "-");
	cr_assert_eq(restore_with(id, wdir, true, &res, msg, sizeof(msg)), 0, "%s", msg);
	check_target(3);
	cr_expect_eq(res.writers, 1);
	cr_expect_str_eq(wlog(wdir), "pre-restore id=1 type=full more=1 target=volume.img\n"
			 "post-restore id=1 type=full more=1 target=volume.img\n");
	cr_assert_eq(restore_with(id, wdir, false, &res, msg, sizeof(msg)), 0, "%s", msg);
	cr_expect_str_eq(wlog(wdir), "pre-restore id=1 type=full more=0 target=volume.img\n"
			 "post-restore id=1 type=full more=0 target=volume.img\n");
}

/* A veto at pre-restore: the target as it was, nothing beside it, exit 8. */
Test(restore, pre_restore_veto_leaves_the_target, .init = setup, .fini = teardown, .timeout = 30)
{
	struct blktrack_restore_result res;
	char wdir[200], msg[1024], cmd[300];
	uint64_t id = add_full("uuid:vol-a", 3);
	uint8_t buf[BS];
	int fd;

	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	restore_writer(wdir, "pre-restore");
	fill_file(target, 2 * BS, 0xaa);
	cr_assert_lt(restore_with(id, wdir, false, &res, msg, sizeof(msg)), 0);
	cr_expect_eq(res.failure, BLKTRACK_FAIL_WRITER);
	cr_expect(strstr(msg, "vetoed, nothing written"), "%s", msg);
	cr_expect(!res.partial);
	cr_expect_str_eq(wlog(wdir), "pre-restore id=1 type=full more=0 target=volume.img\n"
			 "abort id=1 type=full more=0 target=volume.img\n");
	fd = open(target, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, buf, BS, 0), BS);
	cr_expect_eq(buf[0], 0xaa);
	cr_expect_eq(lseek(fd, 0, SEEK_END), 2 * BS);
	close(fd);
	*strrchr(target, '/') = 0;	/* its directory: the target alone */
	snprintf(cmd, sizeof(cmd), "[ $(ls -A '%s' | wc -l) = 1 ]", target);
	target[strlen(target)] = '/';
	cr_expect_eq(system(cmd), 0, "a file was left beside the target");
}

/* A writer failing post-restore: the target is whole, the failure is the writer's. */
Test(restore, post_restore_failure_is_the_writers, .init = setup, .fini = teardown, .timeout = 30)
{
	struct blktrack_restore_result res;
	char wdir[200], msg[1024];
	uint64_t id = add_full("uuid:vol-a", 4);

	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	restore_writer(wdir, "post-restore");
	cr_assert_lt(restore_with(id, wdir, false, &res, msg, sizeof(msg)), 0);
	cr_expect_eq(res.failure, BLKTRACK_FAIL_WRITER);
	cr_expect(!res.partial);
	check_target(4);
	cr_expect_str_eq(wlog(wdir), "pre-restore id=1 type=full more=0 target=volume.img\n"
			 "post-restore id=1 type=full more=0 target=volume.img\n"
			 "abort id=1 type=full more=0 target=volume.img\n");
}
