// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack check and check --rebuild (issue 13, point 2): a repository of
 * three real backups (full, incremental, differential: repo API and bfile
 * writer) loses or damages its catalog, or holds a truncated backup file;
 * check reports it, the rebuild gives back the same entries and chains, and
 * restore works again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "format/bfile.h"
#include "format/blockset.h"
#include "libblktrack.h"
#include "repo/repo.h"
#include "unit.h"

#define BS	4096U
#define NB	64U
#define SIZE	((uint64_t)NB * BS)
#define VOL	"uuid:check-volume"

static char top[128], repo_dir[160], target[200];
static uint8_t file_ids[8][BFILE_ID_LEN];	/* bfile id of catalog id i */
static bool leave_pending;			/* add_backup: stop before the commit */

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/bt-check.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", top);
	snprintf(target, sizeof(target), "%s/volume.img", top);
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

/* Block @b as backup @seed wrote it: never all zero. */
static void block_fill(uint8_t *buf, uint64_t b, int seed)
{
	size_t i;

	for (i = 0; i < BS; i++)
		buf[i] = (uint8_t)(b * 7 + i / 512 + seed * 31) | 1;
}

static void to_bstamp(const struct repo_stamp *s, struct bfile_stamp *o)
{
	memcpy(o->generation, s->generation, 16);
	o->epoch = s->epoch;
	o->size = s->size;
	o->block_size = s->block_size;
}

/*
 * A committed backup of @type on @parent (0 for the full) storing blocks
 * [@first, @first + @count) of content @seed (the full: every block).
 */
static uint64_t add_backup(enum repo_type type, uint64_t parent, uint64_t first,
			   uint64_t count, int seed)
{
	struct repo_entry e = { .type = type, .parent = parent };
	struct bfile_writer *w = NULL;
	struct bfile_header h;
	struct bfile_stats st;
	struct blockset *delta;
	struct repo *r;
	uint8_t buf[BS];
	uint64_t id, b, epoch = 0;
	size_t i;
	struct repo_file *rf;
	int err;

	err = repo_open(repo_dir, 0, &r);
	if (err == -ENOENT) {
		repo_close(r);
		err = repo_open(repo_dir, REPO_CREATE, &r);
	}
	cr_assert_eq(err, 0, "%s", repo_error(r));
	for (i = 0; i < repo_count(r); i++)
		epoch = repo_entry_at(r, i)->to.epoch;
	snprintf(e.to.volume_id, sizeof(e.to.volume_id), "%s", VOL);
	memset(e.to.generation, 0x5a, 16);
	e.to.epoch = epoch + 1;
	e.to.size = SIZE;
	e.to.block_size = BS;
	if (parent) {
		e.has_from = true;
		e.from = repo_find(r, parent)->to;
	}
	cr_assert_eq(blockset_new(&delta), 0);
	cr_assert_eq(blockset_add_range(delta, first, count), 0);
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	cr_assert_eq(repo_backup_create(r, id, &rf), 0, "%s", repo_error(r));
	cr_assert_eq(bfile_header_init(&h, type + 1), 0);
	snprintf(h.volume_id, sizeof(h.volume_id), "%s", VOL);
	h.volume_size = SIZE;
	h.block_size = BS;
	h.ctime_ns = (uint64_t)(1700000000 + id) * 1000000000u;
	to_bstamp(&e.to, &h.to);
	if (parent) {
		to_bstamp(&e.from, &h.from);
		memcpy(h.parent_id, file_ids[parent], BFILE_ID_LEN);
	}
	memcpy(file_ids[id], h.id, BFILE_ID_LEN);
	cr_assert_eq(bfile_writer_open_fn(repo_file_write, rf, &h, &w), 0);
	for (b = first; b < first + count; b++) {
		block_fill(buf, b, seed);
		cr_assert_eq(bfile_write_data(w, b * BS, buf, BS), 0);
	}
	cr_assert_eq(bfile_writer_finish(w, &st), 0);
	cr_assert_eq(repo_backup_install(r, id, rf), 0, "%s", repo_error(r));
	if (!leave_pending)
		cr_assert_eq(repo_commit(r, id, st.stream_bytes), 0, "%s", repo_error(r));
	blockset_free(delta);
	repo_close(r);
	return id;
}

/* Full (seed 1), incremental (blocks 0-9, seed 2), differential (0-9, 20-29, seed 3). */
static void three_backups(void)
{
	cr_assert_eq(add_backup(REPO_FULL, 0, 0, NB, 1), 1);
	cr_assert_eq(add_backup(REPO_INCREMENTAL, 1, 0, 10, 2), 2);
	cr_assert_eq(add_backup(REPO_DIFFERENTIAL, 1, 0, 30, 3), 3);
}

static size_t snapshot(struct repo_entry out[8], uint64_t *next_id)
{
	struct repo *r;
	size_t i, n;

	cr_assert_eq(repo_open(repo_dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	n = repo_count(r);
	cr_assert(n <= 8);
	for (i = 0; i < n; i++)
		out[i] = *repo_entry_at(r, i);
	if (next_id) {
		/* the next backup's id: begin on a copy is not needed, count files */
		*next_id = n ? out[n - 1].id + 1 : 1;
	}
	repo_close(r);
	return n;
}

struct lines {
	unsigned int n;
	char text[4096];
};

static void collect(void *data, const char *problem)
{
	struct lines *l = data;
	size_t len = strlen(l->text);

	l->n++;
	snprintf(l->text + len, sizeof(l->text) - len, "%s\n", problem);
}

static int check(bool rebuild, struct lines *l, struct blktrack_check_result *res)
{
	struct blktrack_ctx *ctx = blktrack_new();
	int err;

	cr_assert(ctx);
	memset(l, 0, sizeof(*l));
	err = blktrack_repo_check(ctx, repo_dir, rebuild, collect, l, res);
	if (err)
		snprintf(l->text + strlen(l->text), sizeof(l->text) - strlen(l->text),
			 "error: %s\n", blktrack_get_error(ctx));
	blktrack_unref(ctx);
	return err;
}

/* Restore backup @id into the target; 0 or -errno. */
static int restore(uint64_t id, char *msg, size_t len)
{
	struct blktrack_restore_opts o = { .repo = repo_dir, .backup_id = id, .target = target };
	struct blktrack_restore_result res;
	struct blktrack_ctx *ctx = blktrack_new();
	int err;

	cr_assert(ctx);
	err = blktrack_restore(ctx, &o, &res);
	snprintf(msg, len, "%s", blktrack_get_error(ctx));
	blktrack_unref(ctx);
	return err;
}

/* The target holds blocks [lo, hi) of @seed, the rest of the full's seed 1. */
static void check_target(uint64_t lo, uint64_t hi, int seed)
{
	uint8_t want[BS], got[BS];
	uint64_t b;
	int fd = open(target, O_RDONLY);

	cr_assert(fd >= 0, "%s: %s", target, strerror(errno));
	for (b = 0; b < NB; b++) {
		block_fill(want, b, b >= lo && b < hi ? seed : 1);
		cr_assert_eq(pread(fd, got, BS, b * BS), BS);
		cr_assert_eq(memcmp(want, got, BS), 0, "block %llu differs", (unsigned long long)b);
	}
	close(fd);
}

static void same_entries(const struct repo_entry *a, size_t na,
			 const struct repo_entry *b, size_t nb)
{
	size_t i;

	cr_assert_eq(na, nb, "%zu entries before, %zu after the rebuild", na, nb);
	for (i = 0; i < na; i++) {
		cr_expect_eq(a[i].id, b[i].id);
		cr_expect_eq(a[i].type, b[i].type, "backup %llu", (unsigned long long)a[i].id);
		cr_expect_eq(b[i].state, REPO_COMMITTED);
		cr_expect_eq(a[i].parent, b[i].parent, "backup %llu: parent %llu, rebuilt %llu",
			     (unsigned long long)a[i].id, (unsigned long long)a[i].parent,
			     (unsigned long long)b[i].parent);
		cr_expect(repo_stamp_equal(&a[i].to, &b[i].to), "backup %llu: to stamp",
			  (unsigned long long)a[i].id);
		cr_expect_eq(a[i].has_from, b[i].has_from);
		if (a[i].has_from)
			cr_expect(repo_stamp_equal(&a[i].from, &b[i].from));
		cr_expect_str_eq(a[i].file, b[i].file);
		cr_expect_str_eq(a[i].delta, b[i].delta);
		cr_expect_eq(a[i].stored_bytes, b[i].stored_bytes);
		cr_expect_eq(a[i].changed_bytes, b[i].changed_bytes);
		cr_expect_eq(a[i].has_delta_sum, b[i].has_delta_sum);
		cr_expect_eq(a[i].delta_sum, b[i].delta_sum);
	}
}

static void chains_resolve(void)
{
	char msg[512];

	cr_assert_eq(restore(2, msg, sizeof(msg)), 0, "%s", msg);
	check_target(0, 10, 2);
	cr_assert_eq(restore(3, msg, sizeof(msg)), 0, "%s", msg);
	check_target(0, 30, 3);
	cr_assert_eq(restore(1, msg, sizeof(msg)), 0, "%s", msg);
	check_target(0, 0, 1);
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", repo_dir, name);
}

Test(check, sound_repository_passes_and_rebuild_refuses, .init = setup, .fini = teardown)
{
	struct blktrack_check_result res;
	struct lines l;

	three_backups();
	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect_eq(res.problems, 0, "%s", l.text);
	cr_expect_eq(res.entries, 3);
	cr_expect_eq(check(true, &l, &res), -EALREADY, "%s", l.text);
	cr_expect_eq(res.rebuilt, false);
}

Test(check, catalog_deleted_rebuilt_with_the_same_entries, .init = setup, .fini = teardown)
{
	struct repo_entry before[8], after[8];
	struct blktrack_check_result res;
	size_t nb, na;
	struct lines l;
	char path[256], msg[512];
	struct repo *r;
	int err;

	three_backups();
	nb = snapshot(before, NULL);
	path_of(path, sizeof(path), "catalog");
	cr_assert_eq(unlink(path), 0);

	err = repo_open(repo_dir, 0, &r);
	cr_expect_eq(err, -EUCLEAN);
	cr_expect(strstr(repo_error(r), "blktrack check --repo"), "%s", repo_error(r));
	cr_expect(strstr(repo_error(r), "--rebuild"), "%s", repo_error(r));
	repo_close(r);

	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect(res.problems > 0);
	cr_expect(strstr(l.text, "catalog: missing"), "%s", l.text);

	cr_assert_eq(check(true, &l, &res), 0, "%s", l.text);
	cr_expect(res.rebuilt);
	cr_expect_eq(res.entries, 3);
	cr_expect_eq(res.left_out, 0);
	cr_expect_str_eq(res.aside, "");
	na = snapshot(after, NULL);
	same_entries(before, nb, after, na);

	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect_eq(res.problems, 0, "after the rebuild: %s", l.text);
	chains_resolve();

	/* backup works again: the next id follows the highest. */
	cr_expect_eq(add_backup(REPO_INCREMENTAL, 2, 40, 5, 4), 4);
	cr_assert_eq(restore(4, msg, sizeof(msg)), 0, "%s", msg);
}

Test(check, flipped_catalog_bit_reported_and_rebuilt_aside, .init = setup, .fini = teardown)
{
	struct repo_entry before[8], after[8];
	struct blktrack_check_result res;
	struct stat sb;
	struct lines l;
	char path[256], aside[400];
	size_t nb, na;

	three_backups();
	nb = snapshot(before, NULL);
	path_of(path, sizeof(path), "catalog");
	unit_flip_bits(path, 100, 0x04);

	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect(res.problems > 0);
	cr_expect(strstr(l.text, "checksum"), "%s", l.text);

	cr_assert_eq(check(true, &l, &res), 0, "%s", l.text);
	cr_expect(res.rebuilt);
	cr_assert(!strncmp(res.aside, "catalog.damaged-", 16), "%s", res.aside);
	snprintf(aside, sizeof(aside), "%s/%s", repo_dir, res.aside);
	cr_expect_eq(stat(aside, &sb), 0, "%s kept aside", aside);
	na = snapshot(after, NULL);
	same_entries(before, nb, after, na);
	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect_eq(res.problems, 0, "after the rebuild: %s", l.text);
	chains_resolve();

	/* Damaged again within the second: the first one kept aside stays. */
	unit_flip_bits(path, 100, 0x04);
	cr_assert_eq(check(true, &l, &res), 0, "%s", l.text);
	cr_expect(res.rebuilt);
	cr_expect_eq(stat(aside, &sb), 0, "%s kept aside", aside);
	snprintf(aside, sizeof(aside), "%s/%s", repo_dir, res.aside);
	cr_expect_eq(stat(aside, &sb), 0, "%s kept aside", aside);
}

Test(check, truncated_backup_reported_and_left_out, .init = setup, .fini = teardown)
{
	struct blktrack_check_result res;
	struct repo_entry after[8];
	struct stat sb;
	struct lines l;
	char path[256], msg[512];
	size_t na;

	three_backups();
	path_of(path, sizeof(path), "backups/3.bkt");
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(truncate(path, sb.st_size - 20), 0);

	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect(res.problems > 0);
	cr_expect(strstr(l.text, "backups/3.bkt"), "%s", l.text);

	cr_assert_eq(check(true, &l, &res), 0, "%s", l.text);
	cr_expect(res.rebuilt);
	cr_expect_eq(res.left_out, 1);
	cr_expect_eq(res.entries, 2);
	cr_expect(strstr(l.text, "backups/3.bkt"), "%s", l.text);
	cr_expect_eq(stat(path, &sb), 0, "the damaged file is left in place");
	na = snapshot(after, NULL);
	cr_assert_eq(na, 2);
	cr_expect_eq(after[0].id, 1);
	cr_expect_eq(after[1].id, 2);
	cr_expect_eq(after[1].parent, 1);
	cr_assert_eq(restore(2, msg, sizeof(msg)), 0, "%s", msg);
	check_target(0, 10, 2);
	/* the next id stays above the file left in place */
	cr_expect_eq(add_backup(REPO_INCREMENTAL, 2, 40, 5, 4), 4);
}

/* A complete file of a backup interrupted before its commit is never entered. */
Test(check, pending_backup_not_entered_as_committed, .init = setup, .fini = teardown)
{
	struct blktrack_check_result res;
	struct repo_entry after[8];
	struct lines l;
	size_t na;

	three_backups();
	leave_pending = true;
	cr_assert_eq(add_backup(REPO_INCREMENTAL, 2, 40, 5, 4), 4);
	leave_pending = false;
	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect(strstr(l.text, "backup 4: pending"), "%s", l.text);
	cr_assert_eq(check(true, &l, &res), 0, "%s", l.text);
	cr_expect(strstr(l.text, "backups/4.bkt"), "%s", l.text);
	na = snapshot(after, NULL);
	cr_assert_eq(na, 4, "%s", l.text);
	cr_expect_eq(after[3].state, REPO_PENDING, "the pending backup was entered as committed");
	/* Recovery then drops it with its files, as after any interrupted backup. */
	{
		struct repo_recovery rec;
		struct repo *r;
		char path[256];
		struct stat sb;

		cr_assert_eq(repo_open(repo_dir, 0, &r), 0, "%s", repo_error(r));
		cr_assert_eq(repo_recover(r, NULL, &rec), 0, "%s", repo_error(r));
		cr_expect_eq(rec.dropped, 1);
		repo_close(r);
		path_of(path, sizeof(path), "backups/4.bkt");
		cr_expect_neq(stat(path, &sb), 0, "%s left behind", path);
	}
	cr_assert_eq(check(false, &l, &res), 0, "%s", l.text);
	cr_expect_eq(res.problems, 0, "%s", l.text);
}
