// SPDX-License-Identifier: GPL-2.0
/*
 * lib/repo/repo.c without a kernel: a fake kernel (active and pending bool maps,
 * generation, epoch) drives random sequences of full, incremental,
 * differential and copy backups, aborted ones and module reloads; the set
 * each backup gets is checked against a model of when each block was last
 * written and when each base was taken, and every backup's restore chain
 * is replayed against the volume's content at that point. Then the catalog:
 * modes, the lock, versions, broken chains, and recovery from each crash
 * point of the two-phase protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "format/blockhash.h"
#include "format/blockset.h"
#include "repo/repo.h"

#define NB	300		/* blocks of the fake volume */
#define BS	4096
#define VOL	"uuid:test-volume"

static char dir[128];

static void rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	cr_assert_eq(system(cmd), 0);
}

/* tmpfs when there is one: the protocol fsyncs a lot. */
static void setup_dir(void)
{
	const char *base = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";

	snprintf(dir, sizeof(dir), "%s/blktrack-repo-XXXXXX", base);
	cr_assert(mkdtemp(dir));
	strcat(dir, "/repo");
}

static void teardown_dir(void)
{
	char *slash = strrchr(dir, '/');

	*slash = '\0';
	rm_rf(dir);
}

static uint64_t rnd_state;

static uint64_t rnd_below(uint64_t n)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return (rnd_state * UINT64_C(2685821657736338717)) % n;
}

/* ---- the fake kernel ---------------------------------------------------- */

struct fkern {
	uint8_t gen[16];
	uint64_t epoch;
	bool active[NB], pending[NB];
	bool has_pending;
};

static void fk_attach(struct fkern *k, uint8_t seed)
{
	memset(k, 0, sizeof(*k));
	memset(k->gen, seed, 16);
	k->gen[0] = 0xa0;
}

static void fk_write(struct fkern *k, uint64_t b)
{
	k->active[b] = true;
}

static struct repo_stamp fk_checkpoint(struct fkern *k, struct blockset **delta)
{
	struct repo_stamp s = { .volume_id = VOL, .epoch = k->epoch,
				.size = NB * BS, .block_size = BS };
	int b;

	cr_assert(!k->has_pending);
	memcpy(s.generation, k->gen, 16);
	memcpy(k->pending, k->active, sizeof(k->active));
	memset(k->active, 0, sizeof(k->active));
	k->has_pending = true;
	cr_assert_eq(blockset_new(delta), 0);
	for (b = 0; b < NB; b++)
		if (k->pending[b])
			blockset_add_range(*delta, b, 1);
	return s;
}

static void fk_commit(struct fkern *k)
{
	cr_assert(k->has_pending);
	k->has_pending = false;
	k->epoch++;
}

static void fk_abort(struct fkern *k)
{
	int b;

	cr_assert(k->has_pending);
	for (b = 0; b < NB; b++)
		k->active[b] |= k->pending[b];
	k->has_pending = false;
	k->epoch += BLKTRACK_EPOCH_ABORT;	/* the aborted stamp never comes back */
}

static struct repo_kernel_state fk_state(const struct fkern *k)
{
	struct repo_kernel_state ks = { .volume_id = VOL, .attached = true,
					.pending = k->has_pending };

	memcpy(ks.stamp.generation, k->gen, 16);
	ks.stamp.epoch = k->epoch;
	return ks;
}

/* ---- the model and the stored data ------------------------------------- */

#define MAX_BACKUPS 400

struct stored {
	bool committed;
	bool has[NB];		/* blocks this backup stores */
	uint32_t data[NB];	/* their content */
	uint32_t point[NB];	/* the whole volume at its checkpoint */
};

struct sim {
	struct repo *r;
	struct fkern k;
	uint32_t content[NB];	/* the volume */
	uint32_t version;
	uint64_t t;		/* logical time, one tick per write */
	uint64_t last_write[NB];
	bool have_full, have_inc;
	uint64_t t_full, t_inc;	/* checkpoint times of the last bases */
	bool gap;		/* tracking lost since the last full/resync */
	struct stored *b[MAX_BACKUPS + 1];
	int backups, aborted, resyncs, stales;
};

static void sim_writes(struct sim *s)
{
	int n = rnd_below(25), i;

	while (n--) {
		uint64_t b = rnd_below(NB), len = rnd_below(4) ? 1 : rnd_below(20);

		for (i = 0; i < (int)len && b + i < NB; i++) {
			s->content[b + i] = ++s->version;
			s->last_write[b + i] = ++s->t;
			fk_write(&s->k, b + i);
		}
	}
}

static void write_backup_file(struct sim *s, uint64_t id)
{
	char text[32];
	struct repo_file *rf;
	int len;

	cr_assert_eq(repo_backup_create(s->r, id, &rf), 0, "%s", repo_error(s->r));
	len = snprintf(text, sizeof(text), "backup %lu\n", (unsigned long)id);
	cr_assert_eq(repo_file_write(rf, text, len), 0);
	cr_assert_eq(repo_backup_install(s->r, id, rf), 0, "%s", repo_error(s->r));
}

/* The expected set of a composed backup, from write times alone. */
static bool model_wants(const struct sim *s, enum repo_type type, int b)
{
	switch (type) {
	case REPO_INCREMENTAL:
		return s->last_write[b] > s->t_inc;
	case REPO_DIFFERENTIAL:
		return s->last_write[b] > s->t_full;
	default:
		return true;
	}
}

static void one_backup(struct sim *s, enum repo_type type)
{
	struct repo_entry e = { 0 };
	struct blockset *delta, *want;
	struct repo_stamp ck;
	struct stored *st;
	uint64_t base = 0, id, t_ck = s->t;
	int ret, b, abort_at = rnd_below(6) ? 0 : 1 + rnd_below(3);
	bool expect_base = type == REPO_DIFFERENTIAL ? s->have_full : s->have_inc;

	ck = fk_checkpoint(&s->k, &delta);
	ret = repo_compose(s->r, type, &ck, delta, &want, &base);
	if (type == REPO_INCREMENTAL || type == REPO_DIFFERENTIAL) {
		if (!expect_base) {
			cr_assert_eq(ret, -ENOENT, "%s: %d %s", repo_type_name(type), ret,
				     repo_error(s->r));
			type = REPO_FULL;
			ret = repo_compose(s->r, type, &ck, delta, &want, &base);
		} else if (s->gap) {
			cr_assert_eq(ret, -ESTALE, "%d %s", ret, repo_error(s->r));
			s->stales++;
			/* what --on-invalid=resync does: compare with the base */
			type = REPO_RESYNC;
			cr_assert_eq(repo_base(s->r, type, VOL, &base), 0);
			cr_assert_eq(blockset_new(&want), 0);
			for (b = 0; b < NB; b++)
				if (s->content[b] != s->b[base]->point[b])
					blockset_add_range(want, b, 1);
			ret = 0;
		}
	}
	cr_assert_eq(ret, 0, "%s: %s", repo_type_name(type), repo_error(s->r));
	if (type != REPO_RESYNC)
		for (b = 0; b < NB; b++)
			cr_assert_eq(blockset_contains(want, b), model_wants(s, type, b),
				     "%s block %d: last write %lu, full %lu, inc %lu",
				     repo_type_name(type), b, (unsigned long)s->last_write[b],
				     (unsigned long)s->t_full, (unsigned long)s->t_inc);

	if (abort_at == 1) {		/* vetoed before anything was recorded */
		fk_abort(&s->k);
		s->aborted++;
		goto out;
	}
	e.type = type;
	e.to = ck;
	e.to.epoch++;
	e.parent = base;
	if (base) {
		e.has_from = true;
		e.from = repo_find(s->r, base)->to;
	}
	/* a resync's delta is the set it stores (doc/REPOSITORY.md) */
	cr_assert_eq(repo_begin(s->r, &e, type == REPO_RESYNC ? want : delta, &id), 0,
		     "%s", repo_error(s->r));
	cr_assert_leq(id, MAX_BACKUPS);
	if (abort_at == 2) {		/* failed while writing */
		cr_assert_eq(repo_abandon(s->r, id), 0);
		fk_abort(&s->k);
		s->aborted++;
		goto out;
	}
	write_backup_file(s, id);
	if (abort_at == 3) {		/* a writer rejected at backup-complete */
		cr_assert_eq(repo_abandon(s->r, id), 0);
		fk_abort(&s->k);
		s->aborted++;
		goto out;
	}
	st = calloc(1, sizeof(*st));
	for (b = 0; b < NB; b++) {
		st->has[b] = blockset_contains(want, b);
		st->data[b] = s->content[b];
		st->point[b] = s->content[b];
	}
	cr_assert_eq(repo_commit(s->r, id, 100), 0, "%s", repo_error(s->r));
	fk_commit(&s->k);
	st->committed = true;
	s->b[id] = st;
	s->backups++;
	switch (type) {
	case REPO_FULL:
		s->have_full = s->have_inc = true;
		s->t_full = s->t_inc = t_ck;
		s->gap = false;
		break;
	case REPO_RESYNC:
		s->resyncs++;
		s->gap = false;
		/* fall through */
	case REPO_INCREMENTAL:
		s->t_inc = t_ck;
		break;
	default:
		break;
	}
out:
	blockset_free(delta);
	blockset_free(want);
}

/* Replay the chain of every committed backup; compare with its point. */
static void check_restores(struct sim *s)
{
	size_t i, n, j;
	uint64_t *ids;
	uint32_t vol[NB];
	int b;

	for (i = 0; i < repo_count(s->r); i++) {
		const struct repo_entry *e = repo_entry_at(s->r, i);

		cr_assert_eq(repo_chain(s->r, e->id, &ids, &n), 0, "%lu: %s",
			     (unsigned long)e->id, repo_error(s->r));
		cr_assert_eq(ids[n - 1], e->id);
		memset(vol, 0, sizeof(vol));
		for (j = 0; j < n; j++) {
			const struct repo_entry *m = repo_find(s->r, ids[j]);

			cr_assert_eq(j == 0, m->type == REPO_FULL || m->type == REPO_COPY);
			if (e->type == REPO_DIFFERENTIAL)
				cr_assert_leq(n, 2);
			for (b = 0; b < NB; b++)
				if (s->b[ids[j]]->has[b])
					vol[b] = s->b[ids[j]]->data[b];
		}
		cr_assert_eq(memcmp(vol, s->b[e->id]->point, sizeof(vol)), 0,
			     "restore of backup %lu (%s, chain of %zu) differs",
			     (unsigned long)e->id, repo_type_name(e->type), n);
		free(ids);
	}
}

static void simulate(uint64_t seed, int steps)
{
	static const enum repo_type types[] = {
		REPO_FULL, REPO_INCREMENTAL, REPO_INCREMENTAL, REPO_INCREMENTAL,
		REPO_DIFFERENTIAL, REPO_DIFFERENTIAL, REPO_COPY,
	};
	struct sim *s = calloc(1, sizeof(*s));
	int i, reloads = 0;

	rnd_state = seed;
	setup_dir();
	cr_assert_eq(repo_open(dir, REPO_CREATE, &s->r), 0, "%s", repo_error(s->r));
	fk_attach(&s->k, 1);
	for (i = 0; i < steps; i++) {
		sim_writes(s);
		if (!rnd_below(25) && s->have_full) {
			/* module reload: a new generation, tracking lost */
			fk_attach(&s->k, 2 + reloads++);
			s->gap = true;
			sim_writes(s);
		}
		one_backup(s, types[rnd_below(7)]);
		if (rnd_below(10) == 0) {	/* reopen: the catalog on disk */
			repo_close(s->r);
			cr_assert_eq(repo_open(dir, 0, &s->r), 0, "%s", repo_error(s->r));
		}
	}
	check_restores(s);
	cr_log_info("seed %lu: %d backups, %d aborted, %d stale, %d resyncs",
		    (unsigned long)seed, s->backups, s->aborted, s->stales, s->resyncs);
	cr_assert_gt(s->aborted, 0);
	repo_close(s->r);
	for (i = 0; i <= MAX_BACKUPS; i++)
		free(s->b[i]);
	free(s);
	teardown_dir();
}

Test(repo, composition_vs_model_1, .timeout = 30) { simulate(1, 150); }
Test(repo, composition_vs_model_2, .timeout = 30) { simulate(0xdeadbeef, 150); }
Test(repo, composition_vs_model_3, .timeout = 30) { simulate(42, 150); }
Test(repo, composition_vs_model_4, .timeout = 30) { simulate(7777, 150); }

/* The fixed example of issue 3: an incremental after a differential
 * includes the blocks the differential already took. */
Test(repo, incremental_after_differential, .init = setup_dir, .fini = teardown_dir)
{
	struct sim *s = calloc(1, sizeof(*s));

	cr_assert_eq(repo_open(dir, REPO_CREATE, &s->r), 0);
	fk_attach(&s->k, 1);
	rnd_state = 3;
	while (!s->backups)		/* one_backup() aborts at random */
		one_backup(s, REPO_FULL);
	s->content[5] = ++s->version;
	s->last_write[5] = ++s->t;
	fk_write(&s->k, 5);
	{
		struct blockset *delta, *want;
		struct repo_stamp ck = fk_checkpoint(&s->k, &delta);
		struct repo_entry e = { .type = REPO_DIFFERENTIAL, .to = ck };
		uint64_t base, id;

		cr_assert_eq(repo_compose(s->r, REPO_DIFFERENTIAL, &ck, delta, &want, &base), 0);
		cr_expect_eq(blockset_cardinality(want), 1);
		e.to.epoch++;
		e.parent = base;
		e.has_from = true;
		e.from = repo_find(s->r, base)->to;
		cr_assert_eq(repo_begin(s->r, &e, delta, &id), 0);
		write_backup_file(s, id);
		cr_assert_eq(repo_commit(s->r, id, 1), 0);
		fk_commit(&s->k);
		blockset_free(delta);
		blockset_free(want);
	}
	fk_write(&s->k, 9);
	{
		struct blockset *delta, *want;
		struct repo_stamp ck = fk_checkpoint(&s->k, &delta);
		uint64_t base;

		cr_assert_eq(repo_compose(s->r, REPO_INCREMENTAL, &ck, delta, &want, &base), 0);
		cr_expect_eq(blockset_cardinality(want), 2);
		cr_expect(blockset_contains(want, 5));
		cr_expect(blockset_contains(want, 9));
		cr_expect_eq(repo_find(s->r, base)->type, REPO_FULL);
		cr_assert_eq(repo_compose(s->r, REPO_FULL, &ck, delta, &want, &base), 0);
		blockset_free(delta);
		blockset_free(want);
		cr_assert_eq(repo_compose(s->r, REPO_COPY, &ck, NULL, &want, &base), 0);
		cr_expect_eq(blockset_cardinality(want), NB);
		cr_expect_eq(base, 0);
		blockset_free(want);
	}
	repo_close(s->r);
	free(s);
}

/* ---- the catalog -------------------------------------------------------- */

static mode_t mode_of(const char *name)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	cr_assert_eq(stat(p, &st), 0, "%s", p);
	return st.st_mode & 07777;
}

static bool exists(const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return !access(p, F_OK);
}

/* One backup of @k up to step @upto: 1 = (a), 2 = (b), 3 = (c), 4 = (d). */
static uint64_t protocol(struct repo *r, struct fkern *k, enum repo_type type,
			 int upto, struct repo_stamp *ckp)
{
	struct repo_entry e = { .type = type };
	struct blockset *delta, *want;
	struct repo_stamp ck;
	uint64_t base, id = 0;

	fk_write(k, 3);
	ck = fk_checkpoint(k, &delta);
	if (ckp)
		*ckp = ck;
	cr_assert_eq(repo_compose(r, type, &ck, delta, &want, &base), 0, "%s", repo_error(r));
	if (upto < 1)
		goto out;
	e.to = ck;
	e.to.epoch++;
	e.parent = base;
	if (base) {
		e.has_from = true;
		e.from = repo_find(r, base)->to;
	}
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	if (upto >= 2) {
		struct repo_file *rf;

		cr_assert_eq(repo_backup_create(r, id, &rf), 0);
		cr_assert_eq(repo_file_write(rf, "data", 4), 0);
		cr_assert_eq(repo_backup_install(r, id, rf), 0);
	}
	if (upto >= 3)
		cr_assert_eq(repo_commit(r, id, 4), 0, "%s", repo_error(r));
	if (upto >= 4)
		fk_commit(k);
out:
	blockset_free(delta);
	blockset_free(want);
	return id;
}

Test(repo, modes_and_layout, .init = setup_dir, .fini = teardown_dir)
{
	struct repo *r;
	struct fkern k;
	mode_t old = umask(0);
	struct repo_file *rf;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	protocol(r, &k, REPO_FULL, 4, NULL);
	fk_write(&k, 1);
	protocol(r, &k, REPO_INCREMENTAL, 1, NULL);
	cr_assert_eq(repo_backup_create(r, 2, &rf), 0);
	umask(old);
	cr_expect_eq(mode_of(""), 0700);
	cr_expect_eq(mode_of("backups"), 0700);
	cr_expect_eq(mode_of("deltas"), 0700);
	cr_expect_eq(mode_of("catalog"), 0600);
	cr_expect_eq(mode_of("lock"), 0600);
	cr_expect_eq(mode_of("backups/1.bkt"), 0600);
	cr_expect_eq(mode_of("backups/2.bkt.tmp"), 0600);
	cr_expect_eq(mode_of(repo_entry_at(r, 0)->delta), 0600);
	cr_expect_eq(mode_of(repo_entry_at(r, 1)->delta), 0600);
	cr_expect(!exists("catalog.tmp"));
	repo_file_close(rf);
	repo_close(r);
}

Test(repo, lock_excludes_a_second_requester, .init = setup_dir, .fini = teardown_dir)
{
	struct repo *r, *r2, *r3;

	cr_expect_eq(repo_open(dir, 0, &r), -ENOENT);
	repo_close(r);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	cr_expect_eq(repo_open(dir, 0, &r2), -EBUSY);
	cr_expect(strstr(repo_error(r2), "in use"));
	repo_close(r2);
	repo_close(r);
	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r2), 0);
	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r3), 0, "readers share");
	cr_expect_eq(repo_abandon(r2, 1), -EROFS);
	repo_close(r2);
	repo_close(r3);
}

/* list, verify and restore read while a backup writes: readers take no lock. */
Test(repo, readers_run_beside_a_writer, .init = setup_dir, .fini = teardown_dir)
{
	struct repo *r, *r2, *w;
	struct fkern k;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r2), 0, "%s", repo_error(r2));
	cr_expect_eq(repo_count(r2), 1);
	repo_close(r2);
	repo_close(r);
	/* And a writer is not kept out by a reader. */
	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r2), 0);
	cr_expect_eq(repo_open(dir, 0, &w), 0, "%s", repo_error(w));
	repo_close(w);
	repo_close(r2);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* backup --wait: the lock is waited for, for so many seconds at most. */
Test(repo, wait_for_the_lock, .init = setup_dir, .fini = teardown_dir, .timeout = 30)
{
	struct repo *r, *r2;
	int pfd[2], status;
	double t0, el;
	pid_t pid;
	char c;

	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	t0 = mono_now();
	cr_expect_eq(repo_open_wait(dir, 0, 1, &r2), -EBUSY);
	el = mono_now() - t0;
	cr_expect(el >= 0.9 && el < 5, "waited %.2f s for 1", el);
	cr_expect(strstr(repo_error(r2), "in use"), "%s", repo_error(r2));
	repo_close(r2);
	repo_close(r);

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		close(pfd[0]);
		if (repo_open(dir, 0, &r))
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		usleep(500000);
		repo_close(r);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], &c, 1), 1, "the child holds the lock");
	close(pfd[0]);
	t0 = mono_now();
	cr_expect_eq(repo_open_wait(dir, 0, 10, &r2), 0, "%s", repo_error(r2));
	el = mono_now() - t0;
	cr_expect(el > 0.05 && el < 5, "got the lock after %.2f s", el);
	repo_close(r2);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && !WEXITSTATUS(status));
}

/* ---- symbolic links and the directory's owner and mode ------------------ */

static char outside[160];

/* A file beside the repository, that a planted link points to. */
static void make_outside(void)
{
	int fd;

	snprintf(outside, sizeof(outside), "%.*s/outside", (int)(strrchr(dir, '/') - dir), dir);
	fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "keep me", 7), 7);
	close(fd);
}

static void expect_outside_untouched(void)
{
	char buf[32] = "";
	int fd = open(outside, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_expect(n == 7 && !memcmp(buf, "keep me", 7), "outside file now holds %zd bytes: %s",
		  n, buf);
}

static void plant_link(const char *name, const char *to)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	cr_assert_eq(symlink(to, p), 0, "%s: %s", p, strerror(errno));
}

Test(repo, symlinked_catalog_is_refused, .init = setup_dir, .fini = teardown_dir)
{
	char cat[256], cmd[512];
	struct repo *r;

	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	repo_close(r);
	make_outside();
	/* A valid catalog outside: following the link would read it happily. */
	snprintf(cat, sizeof(cat), "%s.catalog", outside);
	snprintf(cmd, sizeof(cmd), "cp '%s/catalog' '%s'", dir, cat);
	cr_assert_eq(system(cmd), 0);
	plant_link("catalog", cat);
	cr_expect_eq(repo_open(dir, 0, &r), -ELOOP, "%s", repo_error(r));
	cr_expect(strstr(repo_error(r), "symbolic link"), "%s", repo_error(r));
	repo_close(r);
	cr_expect_eq(repo_open(dir, REPO_RDONLY, &r), -ELOOP);
	repo_close(r);
}

Test(repo, symlinked_tmp_files_touch_nothing_outside, .init = setup_dir,
     .fini = teardown_dir)
{
	struct repo_entry e = { .type = REPO_FULL };
	struct blockset *delta, *want;
	struct repo_stamp ck;
	struct repo *r;
	struct fkern k;
	uint64_t base, id;
	struct repo_file *rf = NULL;

	fk_attach(&k, 1);
	make_outside();
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	fk_write(&k, 3);
	ck = fk_checkpoint(&k, &delta);
	cr_assert_eq(repo_compose(r, REPO_FULL, &ck, delta, &want, &base), 0);
	e.to = ck;
	e.to.epoch++;
	/* The catalog's tmp file: the catalog is written there, then renamed. */
	plant_link("catalog.tmp", outside);
	cr_expect_eq(repo_begin(r, &e, delta, &id), -ELOOP, "%s", repo_error(r));
	expect_outside_untouched();
	cr_assert_eq(unlink(strcat(strcpy((char[256]){ 0 }, dir), "/catalog.tmp")), 0);
	/* A backup file's tmp name. */
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	plant_link("backups/1.bkt.tmp", outside);
	cr_expect_eq(repo_backup_create(r, id, &rf), -ELOOP, "%s", repo_error(r));
	if (rf)
		repo_file_close(rf);
	expect_outside_untouched();
	/* A backup's hashes, read by the next resync. */
	plant_link("hashes/1.bh", outside);
	cr_expect_eq(repo_hashes_open(r, id, &rf), -ELOOP);
	cr_expect_eq(repo_file_open(r, "hashes/1.bh", &rf), -ELOOP);
	blockset_free(delta);
	blockset_free(want);
	repo_close(r);
}

Test(repo, symlinked_subdirectory_is_refused, .init = setup_dir, .fini = teardown_dir)
{
	char p[256], q[256];
	struct repo *r;

	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	repo_close(r);
	make_outside();
	snprintf(p, sizeof(p), "%s/backups", dir);
	snprintf(q, sizeof(q), "%s.d", outside);
	cr_assert_eq(rename(p, q), 0);
	cr_assert_eq(symlink(q, p), 0);
	cr_expect_eq(repo_open(dir, 0, &r), -ELOOP, "%s", repo_error(r));
	repo_close(r);
}

Test(repo, open_directory_is_refused, .init = setup_dir, .fini = teardown_dir)
{
	static const mode_t modes[] = { 0777, 0770, 0702 };
	struct repo *r;
	unsigned int i;

	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	repo_close(r);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(chmod(dir, modes[i]), 0);
		cr_expect_eq(repo_open(dir, 0, &r), -EPERM, "mode %o", modes[i]);
		cr_expect(strstr(repo_error(r), "writable by"), "%s", repo_error(r));
		repo_close(r);
		cr_expect_eq(repo_open(dir, REPO_RDONLY, &r), -EPERM, "mode %o", modes[i]);
		repo_close(r);
	}
	cr_assert_eq(chmod(dir, 0755), 0);
	cr_expect_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	repo_close(r);
}

Test(repo, foreign_directory_is_refused, .init = setup_dir, .fini = teardown_dir)
{
	struct repo *r;

	if (geteuid())
		cr_skip_test("chown to another uid needs root");
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	repo_close(r);
	cr_assert_eq(chown(dir, 4242, (gid_t)-1), 0);
	cr_expect_eq(repo_open(dir, 0, &r), -EPERM, "%s", repo_error(r));
	cr_expect(strstr(repo_error(r), "owned by uid 4242"), "%s", repo_error(r));
	repo_close(r);
	cr_expect_eq(repo_open(dir, REPO_CREATE, &r), -EPERM, "init over it");
	repo_close(r);
}

/* Write @root as a version 2 catalog: JSON, then its checksum line. */
static void write_catalog(struct json_object *root)
{
	static const char sum[] = ",\n  \"xxh3\": \"0000000000000000\"\n}\n";
	const char *t;
	char p[256], *text;
	size_t n;
	FILE *f;

	json_object_object_del(root, "xxh3");
	t = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	n = strrchr(t, '}') - t;
	while (n && (t[n - 1] == '\n' || t[n - 1] == ' '))
		n--;
	text = malloc(n + sizeof(sum));
	cr_assert(text);
	memcpy(text, t, n);
	memcpy(text + n, sum, sizeof(sum));
	n += sizeof(sum) - 1;
	repo_catalog_seal(text, n);
	snprintf(p, sizeof(p), "%s/catalog", dir);
	f = fopen(p, "w");
	cr_assert(f);
	cr_assert_eq(fwrite(text, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
	free(text);
}

static void edit_catalog(void (*fn)(struct json_object *root))
{
	char p[256];
	struct json_object *root;

	snprintf(p, sizeof(p), "%s/catalog", dir);
	root = json_object_from_file(p);
	cr_assert(root);
	fn(root);
	write_catalog(root);
	json_object_put(root);
}

static void set_version_3(struct json_object *root)
{
	json_object_object_add(root, "version", json_object_new_int(3));
}

/* Version 1: the same JSON without the checksum line. */
static void set_version_1(struct json_object *root)
{
	char p[256];

	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_del(root, "xxh3");
	snprintf(p, sizeof(p), "%s/catalog", dir);
	cr_assert_eq(json_object_to_file(p, root), 0);
}

Test(repo, catalog_round_trip_and_versions, .init = setup_dir, .fini = teardown_dir)
{
	struct repo *r;
	struct fkern k;
	struct repo_entry saved[3];
	char p[256];
	size_t i;
	FILE *f;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	protocol(r, &k, REPO_DIFFERENTIAL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 1, NULL);	/* stays pending */
	cr_assert_eq(repo_count(r), 3);
	memcpy(saved, repo_entry_at(r, 0), sizeof(saved));
	repo_close(r);
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_assert_eq(repo_count(r), 3);
	for (i = 0; i < 3; i++)
		cr_expect_eq(memcmp(repo_entry_at(r, i), &saved[i], sizeof(saved[i])), 0,
			     "entry %zu", i);
	cr_expect_eq(saved[1].parent, 1);
	cr_expect_eq(saved[2].state, REPO_PENDING);
	cr_expect(saved[1].has_from && !saved[0].has_from);
	cr_expect_str_eq(saved[1].file, "backups/2.bkt");
	cr_expect_eq(saved[1].to.epoch, 2);
	repo_close(r);

	/* A version 1 catalog is read, and written as version 2 at the next update. */
	{
		char p1[256];
		struct json_object *root;

		snprintf(p1, sizeof(p1), "%s/catalog", dir);
		root = json_object_from_file(p1);
		cr_assert(root);
		set_version_1(root);
		json_object_put(root);
	}
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_assert_eq(repo_count(r), 3);
	for (i = 0; i < 3; i++)
		cr_expect_eq(memcmp(repo_entry_at(r, i), &saved[i], sizeof(saved[i])), 0,
			     "version 1, entry %zu", i);
	cr_assert_eq(repo_abandon(r, 3), 0, "%s", repo_error(r));
	repo_close(r);
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_expect_eq(repo_count(r), 2);
	repo_close(r);
	{
		struct json_object *root, *v;

		snprintf(p, sizeof(p), "%s/catalog", dir);
		root = json_object_from_file(p);
		cr_assert(root);
		cr_expect(json_object_object_get_ex(root, "version", &v) &&
			  json_object_get_int(v) == 2);
		cr_expect(json_object_object_get_ex(root, "xxh3", &v));
		json_object_put(root);
	}

	edit_catalog(set_version_3);
	cr_expect_eq(repo_open(dir, 0, &r), -EPROTONOSUPPORT);
	cr_expect(strstr(repo_error(r), "version 3"), "%s", repo_error(r));
	repo_close(r);

	snprintf(p, sizeof(p), "%s/catalog", dir);
	f = fopen(p, "w");
	fputs("{\"format\": \"blktrack-catalog\", \"version\": 1, \"next_id\": ", f);
	fclose(f);
	cr_expect_eq(repo_open(dir, 0, &r), -EBADMSG);
	repo_close(r);
}

static void drop_parent_of_3(struct json_object *root)
{
	struct json_object *arr, *e;

	json_object_object_get_ex(root, "backups", &arr);
	e = json_object_array_get_idx(arr, 2);
	json_object_object_add(e, "parent", json_object_new_uint64(2));	/* a differential */
}

static void gap_in_3(struct json_object *root)
{
	struct json_object *arr, *e, *from;

	json_object_object_get_ex(root, "backups", &arr);
	e = json_object_array_get_idx(arr, 2);
	json_object_object_get_ex(e, "from", &from);
	json_object_object_add(from, "epoch", json_object_new_uint64(7));
}

static void chain_refused(int err, const char *msg)
{
	struct repo *r;
	uint64_t *ids;
	size_t n;

	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_expect_eq(repo_chain(r, 4, &ids, &n), err, "%s", repo_error(r));
	cr_expect(strstr(repo_error(r), msg), "'%s' lacks '%s'", repo_error(r), msg);
	repo_close(r);
}

/* full 1, differential 2, incremental 3, incremental 4 */
Test(repo, broken_chains_are_refused, .init = setup_dir, .fini = teardown_dir)
{
	struct repo *r;
	struct fkern k;
	uint64_t *ids;
	size_t n;
	char p[256];

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	protocol(r, &k, REPO_DIFFERENTIAL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 1, NULL);
	cr_assert_eq(repo_chain(r, 4, &ids, &n), 0);
	cr_assert_eq(n, 3);
	cr_expect(ids[0] == 1 && ids[1] == 3 && ids[2] == 4);
	free(ids);
	cr_assert_eq(repo_chain(r, 2, &ids, &n), 0);
	cr_expect(n == 2 && ids[0] == 1 && ids[1] == 2);
	free(ids);
	cr_expect_eq(repo_chain(r, 5, &ids, &n), -EINPROGRESS);
	cr_expect_eq(repo_chain(r, 9, &ids, &n), -ENOENT);
	repo_close(r);

	snprintf(p, sizeof(p), "%s/backups/3.bkt", dir);
	cr_assert_eq(unlink(p), 0);
	chain_refused(-ENOENT, "backups/3.bkt is missing");
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	edit_catalog(gap_in_3);
	chain_refused(-ESTALE, "backup 3 after 1");
	edit_catalog(drop_parent_of_3);
	chain_refused(-ENOLINK, "parent 2 (differential");
}

/* ---- crash recovery ----------------------------------------------------- */

enum crash_point {
	CRASH_AFTER_CHECKPOINT,		/* kernel pending, nothing recorded */
	CRASH_AFTER_A,			/* pending entry + delta */
	CRASH_DURING_B,			/* + backups/ID.bkt.tmp, partial */
	CRASH_AFTER_B,			/* + backups/ID.bkt complete */
	CRASH_AFTER_C,			/* committed, kernel commit lost */
	CRASH_AFTER_D,			/* all done */
	CRASH_DURING_CATALOG,		/* catalog.tmp left by a catalog update */
};

struct crash_case {
	enum crash_point at;
	enum repo_action action;
	bool keeps_backup;		/* the new backup survives */
};

/*
 * A requester process runs a full backup and an incremental up to the crash
 * point, then dies with _exit(): no cleanup, the lock released by the exit.
 * The parent plays the kernel: it gets the kernel state through a pipe.
 */
static void crash_run(const struct crash_case *c)
{
	struct repo_recovery rec;
	struct repo_kernel_state ks;
	struct fkern k;
	struct repo *r;
	int pfd[2], status;
	pid_t pid;

	setup_dir();
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		fk_attach(&k, 1);
		if (repo_open(dir, REPO_CREATE, &r))
			_exit(10);
		protocol(r, &k, REPO_FULL, 4, NULL);
		switch (c->at) {
		case CRASH_AFTER_CHECKPOINT:
			protocol(r, &k, REPO_INCREMENTAL, 0, NULL);
			break;
		case CRASH_AFTER_A:
			protocol(r, &k, REPO_INCREMENTAL, 1, NULL);
			break;
		case CRASH_DURING_B: {
			uint64_t id = protocol(r, &k, REPO_INCREMENTAL, 1, NULL);
			struct repo_file *rf;

			repo_backup_create(r, id, &rf);
			if (repo_file_write(rf, "da", 2))	/* no fsync, no rename */
				_exit(11);
			break;
		}
		case CRASH_AFTER_B:
			protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
			break;
		case CRASH_AFTER_C:
			protocol(r, &k, REPO_INCREMENTAL, 3, NULL);
			break;
		case CRASH_AFTER_D:
			protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
			break;
		case CRASH_DURING_CATALOG: {
			char p[256];
			FILE *f;

			protocol(r, &k, REPO_INCREMENTAL, 0, NULL);
			snprintf(p, sizeof(p), "%s/catalog.tmp", dir);
			f = fopen(p, "w");
			fputs("{\"format\": \"blktrack-cat", f);
			fclose(f);
			break;
		}
		}
		ks = fk_state(&k);
		if (write(pfd[1], &ks, sizeof(ks)) != sizeof(ks))
			_exit(12);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], &ks, sizeof(ks)), sizeof(ks));
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "child %d", status);

	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_assert_eq(repo_recover(r, &ks, &rec), 0, "%s", repo_error(r));
	cr_expect_eq(rec.action, c->action, "crash point %d: action %d", c->at, rec.action);
	if (rec.action != REPO_ACTION_NONE) {
		cr_expect_eq(memcmp(&rec.stamp, &ks.stamp, sizeof(ks.stamp)), 0);
		cr_expect_eq(rec.stamp.epoch, 1);
	}
	if (rec.action == REPO_ACTION_COMMIT)
		cr_expect_eq(rec.commit_id, 2);
	cr_expect_eq(repo_count(r), c->keeps_backup ? 2 : 1);
	cr_expect_eq(repo_entry_at(r, 0)->state, REPO_COMMITTED);
	cr_expect(exists("backups/1.bkt"));
	cr_expect(!exists("catalog.tmp"));
	cr_expect(!exists("backups/2.bkt.tmp"));
	cr_expect_eq(exists("backups/2.bkt"), c->keeps_backup);
	{
		/* only the deltas the catalog names are left */
		char p[256];
		char cmd[300];

		snprintf(p, sizeof(p), "%s/deltas", dir);
		snprintf(cmd, sizeof(cmd), "test $(ls '%s' | wc -l) -eq %d", p,
			 c->keeps_backup ? 2 : 1);
		cr_expect_eq(system(cmd), 0, "deltas left behind");
	}
	if (c->at == CRASH_AFTER_A || c->at == CRASH_DURING_B || c->at == CRASH_AFTER_B)
		cr_expect_eq(rec.dropped, 1);
	repo_close(r);

	/* A second recovery finds nothing to do; then the next backup works
	 * and, after an ABORT, still holds the aborted changes (block 3). */
	cr_assert_eq(repo_open(dir, 0, &r), 0);
	cr_assert_eq(repo_recover(r, &ks, &rec), 0);
	cr_expect_eq(rec.removed + rec.dropped, 0);
	repo_close(r);
	{
		struct fkern kk;
		struct blockset *delta, *want;
		struct repo_stamp ck;
		uint64_t base;

		fk_attach(&kk, 1);
		kk.epoch = ks.stamp.epoch;
		kk.has_pending = ks.pending;
		kk.pending[3] = ks.pending;
		if (c->action == REPO_ACTION_ABORT)
			fk_abort(&kk);
		else if (c->action == REPO_ACTION_COMMIT)
			fk_commit(&kk);
		cr_assert_eq(repo_open(dir, 0, &r), 0);
		ck = fk_checkpoint(&kk, &delta);
		cr_assert_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), 0,
			     "%s", repo_error(r));
		cr_expect_eq(blockset_contains(want, 3), !c->keeps_backup);
		blockset_free(delta);
		blockset_free(want);
		repo_close(r);
	}
	teardown_dir();
}

Test(repo, crash_after_checkpoint) {
	crash_run(&(struct crash_case){ CRASH_AFTER_CHECKPOINT, REPO_ACTION_ABORT, false });
}
Test(repo, crash_after_pending_entry) {
	crash_run(&(struct crash_case){ CRASH_AFTER_A, REPO_ACTION_ABORT, false });
}
Test(repo, crash_during_backup_write) {
	crash_run(&(struct crash_case){ CRASH_DURING_B, REPO_ACTION_ABORT, false });
}
Test(repo, crash_after_backup_write) {
	crash_run(&(struct crash_case){ CRASH_AFTER_B, REPO_ACTION_ABORT, false });
}
Test(repo, crash_after_catalog_commit) {
	crash_run(&(struct crash_case){ CRASH_AFTER_C, REPO_ACTION_COMMIT, true });
}
Test(repo, crash_after_kernel_commit) {
	crash_run(&(struct crash_case){ CRASH_AFTER_D, REPO_ACTION_NONE, true });
}
Test(repo, crash_during_catalog_update) {
	crash_run(&(struct crash_case){ CRASH_DURING_CATALOG, REPO_ACTION_ABORT, false });
}

Test(repo, recover_without_kernel_and_orphans, .init = setup_dir, .fini = teardown_dir)
{
	static const char *const orphans[] = {
		"backups/99.bkt", "backups/1.bkt.tmp", "deltas/x-1.set", "deltas/y.set.tmp",
	};
	struct repo_recovery rec;
	struct repo *r;
	struct fkern k;
	unsigned int i;
	char p[256];

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	for (i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, orphans[i]);
		cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	}
	snprintf(p, sizeof(p), "%s/backups/NOTES", dir);
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	cr_assert_eq(repo_recover(r, NULL, &rec), 0);
	cr_expect_eq(rec.action, REPO_ACTION_NONE);
	cr_expect_eq(rec.removed, 2, "only the tmp files");
	cr_expect(!exists(orphans[1]) && !exists(orphans[3]));
	/* Only a catalog that forgot them leaves such files: never deleted. */
	cr_expect(exists(orphans[0]) && exists(orphans[2]));
	cr_expect(exists("backups/NOTES"), "a file blktrack does not name is kept");
	cr_expect(exists("backups/1.bkt"));
	cr_expect(exists(repo_entry_at(r, 0)->delta));

	/* the kernel pending on another generation: nothing of ours, abort */
	{
		struct repo_kernel_state ks = fk_state(&k);

		ks.pending = true;
		ks.stamp.generation[3] ^= 1;
		cr_assert_eq(repo_recover(r, &ks, &rec), 0);
		cr_expect_eq(rec.action, REPO_ACTION_ABORT);
		ks.pending = false;
		cr_assert_eq(repo_recover(r, &ks, &rec), 0);
		cr_expect_eq(rec.action, REPO_ACTION_NONE);
	}
	repo_close(r);
}

/*
 * A begin killed between its delta's rename and the catalog's leaves
 * deltas/N.set of the next id alone: recovery removes it, else every later
 * begin is refused. Beside backups/N.bkt or N.G.bkt it is kept (an older
 * catalog).
 */
Test(repo, recover_removes_the_delta_of_an_unfinished_begin, .init = setup_dir,
     .fini = teardown_dir)
{
	struct repo_recovery rec;
	struct repo_entry e;
	struct blockset *d;
	struct repo *r;
	struct fkern k;
	uint64_t id;
	char p[256];

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	snprintf(p, sizeof(p), "%s/deltas/2.set", dir);
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(p, sizeof(p), "%s/deltas/3.set", dir);
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(p, sizeof(p), "%s/backups/3.bkt", dir);
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(p, sizeof(p), "%s/deltas/5.set", dir);
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(p, sizeof(p), "%s/backups/5.9.bkt", dir);	/* a merge's file */
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	cr_assert_eq(repo_recover(r, NULL, &rec), 0);
	cr_expect_eq(rec.removed, 1);
	cr_expect(!exists("deltas/2.set"));
	cr_expect(exists("deltas/3.set") && exists("backups/3.bkt"));
	cr_expect(exists("deltas/5.set") && exists("backups/5.9.bkt"));
	cr_expect(exists(repo_entry_at(r, 0)->delta));
	memset(&e, 0, sizeof(e));
	e.type = REPO_INCREMENTAL;
	e.to = repo_entry_at(r, 0)->to;
	e.to.epoch++;
	cr_assert_eq(blockset_new(&d), 0);
	cr_expect_eq(repo_begin(r, &e, d, &id), 0, "%s", repo_error(r));
	cr_expect_eq(id, 2);
	blockset_free(d);
	repo_close(r);
}

/* A checkpoint that does not follow the last backup is never composed. */
Test(repo, stale_checkpoint_is_refused, .init = setup_dir, .fini = teardown_dir)
{
	struct blockset *delta, *want;
	struct repo_stamp ck;
	struct repo *r;
	struct fkern k;
	uint64_t base;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	ck = fk_checkpoint(&k, &delta);
	ck.epoch = 0;			/* another program's commit was lost */
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -ESTALE);
	cr_expect(strstr(repo_error(r), "the new checkpoint"), "%s", repo_error(r));
	ck.epoch = 1;
	ck.block_size *= 2;		/* another tracking granularity */
	cr_expect_eq(repo_compose(r, REPO_DIFFERENTIAL, &ck, delta, &want, &base), -ESTALE);
	ck.block_size /= 2;
	ck.size += BS;			/* grown: the kernel's delta holds the new tail */
	cr_expect_eq(repo_compose(r, REPO_DIFFERENTIAL, &ck, delta, &want, &base), 0, "%s",
		     repo_error(r));
	blockset_free(want);
	ck.size -= BS;
	strcpy(ck.volume_id, "uuid:other");	/* no base for that volume */
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -ENOENT);
	cr_expect_eq(repo_compose(r, REPO_RESYNC, &ck, delta, &want, &base), -EINVAL);
	blockset_free(delta);
	repo_close(r);
}

/*
 * ABORT moves the epoch's high half (issue 13, point 3): a checkpoint taken
 * after aborts still follows the last committed point, and a commit nobody
 * recorded (the low half moved) is still a gap.
 */
Test(repo, a_checkpoint_after_aborts_follows, .init = setup_dir, .fini = teardown_dir)
{
	struct blockset *delta, *want;
	struct repo_stamp ck;
	struct repo *r;
	struct fkern k;
	uint64_t base;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	ck = fk_checkpoint(&k, &delta);
	blockset_free(delta);
	fk_abort(&k);
	ck = fk_checkpoint(&k, &delta);
	cr_assert_eq(ck.epoch, BLKTRACK_EPOCH_ABORT + 1);
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), 0, "%s",
		     repo_error(r));
	blockset_free(want);
	ck.epoch += 1;			/* someone else committed once */
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -ESTALE);
	ck.epoch = 0;			/* older than the last committed point */
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -ESTALE);
	ck.epoch = 1 + BLKTRACK_EPOCH_ABORT + (UINT64_C(1) << 32) * 7;
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), 0, "%s",
		     repo_error(r));
	blockset_free(want);
	blockset_free(delta);
	repo_close(r);
}

/*
 * A kernel COMMIT lost after the catalog commit, and the checkpoint's stamp
 * seen again (a module without FEATURE_ABORT_EPOCH aborted it, or a saved
 * state brought the stamp back): the next backups, a resync and then
 * incrementals, each get their own delta file (named by backup id), so the
 * old one blocks nothing (issue 13, point 3).
 */
Test(repo, a_lost_kernel_commit_blocks_no_later_backup, .init = setup_dir,
     .fini = teardown_dir)
{
	struct repo_entry e = { .type = REPO_RESYNC };
	struct blockset *delta, *want;
	struct repo_stamp ck, first;
	struct repo *r;
	struct fkern k;
	uint64_t id, base;
	struct repo_file *rf;
	int i;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 3, &first);	/* no kernel COMMIT */
	fk_abort(&k);
	k.epoch -= BLKTRACK_EPOCH_ABORT;		/* an older module */
	ck = fk_checkpoint(&k, &delta);
	cr_assert(!memcmp(&ck, &first, sizeof(ck)), "the same stamp again");
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -ESTALE);
	e.to = ck;
	e.to.epoch++;
	cr_assert_eq(repo_base(r, REPO_RESYNC, VOL, &base), 0);
	e.parent = base;
	e.has_from = true;
	e.from = repo_find(r, base)->to;
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	cr_expect_str_eq(repo_find(r, id)->delta, "deltas/3.set");
	cr_assert_eq(repo_backup_create(r, id, &rf), 0);
	cr_assert_eq(repo_file_write(rf, "data", 4), 0);
	cr_assert_eq(repo_backup_install(r, id, rf), 0);
	cr_assert_eq(repo_commit(r, id, 4), 0, "%s", repo_error(r));
	fk_commit(&k);
	blockset_free(delta);
	for (i = 0; i < 2; i++) {
		id = protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
		cr_expect_eq(repo_find(r, id)->state, REPO_COMMITTED);
	}
	cr_expect_str_eq(repo_find(r, 2)->delta, "deltas/2.set");
	repo_close(r);
}

/* ---- block hash files --------------------------------------------------- */

/* Give pending backup @id a (dummy) installed hash file. */
static void hashes_for(struct repo *r, uint64_t id)
{
	struct repo_file *rf;

	cr_assert_eq(repo_hashes_create(r, id, &rf), 0, "%s", repo_error(r));
	cr_assert_eq(repo_file_write(rf, "hash", 4), 0);
	cr_assert_eq(repo_hashes_install(r, id, rf), 0, "%s", repo_error(r));
}

Test(repo, hash_files_follow_the_newest_base, .init = setup_dir, .fini = teardown_dir)
{
	struct repo_recovery rec;
	struct repo *r;
	struct fkern k;
	uint64_t id;
	struct repo_file *rf;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	cr_expect_eq(mode_of("hashes"), 0700);

	/* A full with hashes, then a differential (not a base): both kept. */
	id = protocol(r, &k, REPO_FULL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0);
	fk_commit(&k);
	cr_expect_eq(mode_of("hashes/1.bh"), 0600);
	id = protocol(r, &k, REPO_DIFFERENTIAL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0);
	fk_commit(&k);
	cr_expect(exists("hashes/1.bh") && exists("hashes/2.bh"));
	cr_assert_eq(repo_hashes_open(r, 1, &rf), 0);
	repo_file_close(rf);
	cr_assert_eq(repo_hashes_open(r, 9, &rf), -ENOENT);

	/* An abandoned incremental takes its hash file (and tmp) with it. */
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_hashes_create(r, id, &rf), 0);	/* a stray tmp too */
	repo_file_close(rf);
	cr_assert_eq(repo_abandon(r, id), 0);
	fk_abort(&k);
	cr_expect(!exists("hashes/3.bh") && !exists("hashes/3.bh.tmp"));

	/* A crash leaves a pending entry's hashes: recovery removes them. */
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_recover(r, NULL, &rec), 0);
	cr_expect_eq(rec.dropped, 1);
	cr_expect(!exists("hashes/4.bh"));
	cr_expect(exists("hashes/1.bh"), "a committed backup's hashes are kept");
	fk_abort(&k);

	/* A committed incremental is the newest base: older hashes go. */
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0);
	cr_expect(exists("hashes/5.bh"));
	cr_expect(!exists("hashes/1.bh") && !exists("hashes/2.bh"));
	repo_close(r);
}

Test(repo, a_resync_delta_is_set_after_the_read, .init = setup_dir, .fini = teardown_dir)
{
	struct blockset *set, *got;
	struct repo *r;
	struct fkern k;
	uint64_t id;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	id = protocol(r, &k, REPO_FULL, 3, NULL);
	cr_assert_eq(repo_set_delta(r, id, NULL), -EINVAL, "only a pending backup");
	fk_commit(&k);
	id = protocol(r, &k, REPO_INCREMENTAL, 1, NULL);
	cr_assert_eq(blockset_new(&set), 0);
	cr_assert_eq(blockset_add_range(set, 10, 5), 0);
	cr_assert_eq(repo_set_delta(r, id, set), 0, "%s", repo_error(r));
	cr_expect_eq(repo_find(r, id)->changed_bytes, 5 * BS);
	cr_assert_eq(repo_load_delta(r, id, &got), 0);
	cr_expect_eq(blockset_cardinality(got), 5);
	cr_expect(blockset_contains(got, 14) && !blockset_contains(got, 15));
	blockset_free(set);
	blockset_free(got);
	repo_close(r);
}

/* A full of volume @vol at epoch @epoch, committed, with hashes. */
static uint64_t full_of(struct repo *r, const char *vol, uint64_t epoch)
{
	struct repo_entry e = { .type = REPO_FULL };
	struct blockset *delta;
	uint64_t id;
	struct repo_file *rf;

	snprintf(e.to.volume_id, sizeof(e.to.volume_id), "%s", vol);
	memset(e.to.generation, 0x3c, 16);
	e.to.epoch = epoch;
	e.to.size = NB * BS;
	e.to.block_size = BS;
	cr_assert_eq(blockset_new(&delta), 0);
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	blockset_free(delta);
	cr_assert_eq(repo_backup_create(r, id, &rf), 0);
	cr_assert_eq(repo_file_write(rf, "data", 4), 0);
	cr_assert_eq(repo_backup_install(r, id, rf), 0);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0, "%s", repo_error(r));
	return id;
}

static void touch(const char *name)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	cr_assert(fd >= 0, "%s", p);
	close(fd);
}

/*
 * The catalog is written one backup a line and looked up by binary
 * search, recovery's sweep by a sorted table, a commit's hash cleanup by
 * listing hashes/: strings that need escaping survive a round trip and read
 * as JSON; lookups with gaps in the ids (abandoned backups) find every
 * entry and no other; chains resolve across gaps; a commit removes the
 * older hashes of its volume only; the sweep removes exactly the orphans.
 */
Test(repo, catalog_text_lookups_and_sweep, .init = setup_dir, .fini = teardown_dir)
{
	static const char odd[] = "uuid:\"q\\/\n\x01\x1f\x7f \xc3\xa9 end";
	struct json_object *root, *arr, *x, *to, *vid;
	struct repo_entry saved;
	struct repo_recovery rec;
	struct repo *r;
	struct fkern k;
	uint64_t id, last = 0, *ids, *want;
	size_t n, i, nwant = 0;
	char p[256], nm[64];
	int present[200] = { 0 };

	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	id = full_of(r, odd, 1);
	memcpy(&saved, repo_find(r, id), sizeof(saved));
	repo_close(r);
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_assert_eq(memcmp(repo_find(r, id), &saved, sizeof(saved)), 0);
	snprintf(p, sizeof(p), "%s/catalog", dir);
	root = json_object_from_file(p);
	cr_assert(root, "the catalog is not JSON");
	cr_assert(json_object_object_get_ex(root, "backups", &arr));
	x = json_object_array_get_idx(arr, 0);
	cr_assert(json_object_object_get_ex(x, "to", &to));
	cr_assert(json_object_object_get_ex(to, "volume_id", &vid));
	cr_expect_str_eq(json_object_get_string(vid), odd);
	json_object_put(root);

	/* A chain of VOL with every third backup abandoned: gaps in the ids. */
	fk_attach(&k, 1);
	want = calloc(200, sizeof(*want));
	cr_assert(want);
	for (i = 0; i < 60; i++) {
		enum repo_type t = i ? REPO_INCREMENTAL : REPO_FULL;

		id = protocol(r, &k, t, 2, NULL);
		cr_assert_lt(id, 200);
		if (i % 3 == 2) {
			cr_assert_eq(repo_abandon(r, id), 0, "%s", repo_error(r));
			fk_abort(&k);
			continue;
		}
		cr_assert_eq(repo_commit(r, id, 4), 0, "%s", repo_error(r));
		fk_commit(&k);
		present[id] = 1;
		want[nwant++] = id;
		last = id;
	}
	repo_close(r);
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	for (id = 0; id < 200; id++) {
		const struct repo_entry *e = repo_find(r, id);

		if (id == 1)
			continue;	/* the odd volume's full */
		cr_expect_eq(e != NULL, present[id], "repo_find(%" PRIu64 ")", id);
		if (e)
			cr_expect_eq(e->id, id);
	}
	cr_assert_eq(repo_chain(r, last, &ids, &n), 0, "%s", repo_error(r));
	cr_assert_eq(n, nwant);
	for (i = 0; i < n; i++)
		cr_expect_eq(ids[i], want[i], "chain member %zu", i);
	free(ids);
	free(want);

	/* Hashes: the odd volume's survive VOL's commits; VOL keeps its newest. */
	cr_expect(exists("hashes/1.bh"));
	cr_expect(!exists("hashes/2.bh"));
	touch("hashes/999.bh");		/* an orphan: not the commit's business */
	touch("hashes/junk.bh");
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0);
	fk_commit(&k);
	cr_expect(exists("hashes/1.bh"), "another volume's hashes are kept");
	cr_expect(exists("hashes/999.bh") && exists("hashes/junk.bh"));
	for (i = 2; i < id; i++) {
		snprintf(nm, sizeof(nm), "hashes/%zu.bh", i);
		cr_expect(!exists(nm), "%s", nm);
	}

	/* The sweep: tmp files go; every other file stays, named or not. */
	touch("backups/998.bkt");
	touch("backups/998.bkt.tmp");
	touch("deltas/a0010101-0101-0101-0101-010101010101-77.set");
	touch("deltas/keep.txt");
	cr_assert_eq(repo_recover(r, NULL, &rec), 0, "%s", repo_error(r));
	cr_expect_eq(rec.dropped, 0);
	cr_expect_eq(rec.removed, 1, "removed %u", rec.removed);
	cr_expect(!exists("backups/998.bkt.tmp"));
	cr_expect(exists("hashes/999.bh") && exists("hashes/junk.bh"));
	cr_expect(exists("backups/998.bkt"));
	cr_expect(exists("deltas/a0010101-0101-0101-0101-010101010101-77.set"));
	cr_expect(exists("deltas/keep.txt"));
	for (i = 0; i < repo_count(r); i++) {
		const struct repo_entry *e = repo_entry_at(r, i);

		cr_expect(exists(e->file), "%s", e->file);
		cr_expect(exists(e->delta), "%s", e->delta);
	}
	cr_expect(exists("hashes/1.bh"));
	snprintf(nm, sizeof(nm), "hashes/%" PRIu64 ".bh", id);
	cr_expect(exists(nm), "%s", nm);
	repo_close(r);
}

/* ---- the catalog's checksum and names (issue 13) ---------------------- */

static void write_file(const char *name, const void *buf, size_t len)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert(f, "%s", p);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static char *read_whole(const char *name, size_t *len)
{
	char p[256], *buf;
	struct stat st;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	cr_assert(f, "%s", p);
	cr_assert_eq(fstat(fileno(f), &st), 0);
	buf = malloc(st.st_size + 1);
	cr_assert(buf);
	cr_assert_eq(fread(buf, 1, st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = st.st_size;
	return buf;
}

/* "ls -R" of the repository, one sorted string: what must not change. */
static char *listing(void)
{
	char cmd[300], *out = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "cd '%s' && find . | LC_ALL=C sort", dir);
	f = popen(cmd, "r");
	cr_assert(f);
	cr_assert_geq(getdelim(&out, &cap, '\0', f), 0);
	pclose(f);
	return out;
}

/* full 1 (hashes), differential 2, incremental 3 (hashes), all committed. */
static void three_backups(void)
{
	struct repo *r;
	struct fkern k;
	uint64_t id;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	id = protocol(r, &k, REPO_FULL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0);
	fk_commit(&k);
	protocol(r, &k, REPO_DIFFERENTIAL, 4, NULL);
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	hashes_for(r, id);
	cr_assert_eq(repo_commit(r, id, 4), 0);
	fk_commit(&k);
	repo_close(r);
}

Test(repo, catalog_bit_flips_are_detected, .init = setup_dir, .fini = teardown_dir,
     .timeout = 120)
{
	struct repo *r;
	struct fkern k;
	char *good, *bad, *before, *after;
	size_t len, n, bit;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	protocol(r, &k, REPO_FULL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
	protocol(r, &k, REPO_DIFFERENTIAL, 1, NULL);	/* one pending */
	repo_close(r);
	good = read_whole("catalog", &len);
	before = listing();
	bad = malloc(len);
	cr_assert(bad);
	for (bit = 0; bit < 8 * len; bit++) {
		char *got;
		int ret;

		memcpy(bad, good, len);
		bad[bit / 8] ^= 1 << (bit % 8);
		write_file("catalog", bad, len);
		ret = repo_open(dir, 0, &r);
		cr_assert_eq(ret, -EBADMSG, "bit %zu (byte %zu '%c'): %d %s", bit, bit / 8,
			     good[bit / 8], ret, repo_error(r));
		repo_close(r);
		got = read_whole("catalog", &n);
		cr_assert(n == len && !memcmp(got, bad, len), "bit %zu: catalog rewritten", bit);
		free(got);
	}
	write_file("catalog", good, len);
	after = listing();
	cr_expect_str_eq(after, before, "nothing written or removed");
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_expect_eq(repo_count(r), 3);
	repo_close(r);
	free(good);
	free(bad);
	free(before);
	free(after);
}

static void same_file_in_2(struct json_object *root)
{
	struct json_object *arr;

	json_object_object_get_ex(root, "backups", &arr);
	json_object_object_add(json_object_array_get_idx(arr, 1), "file",
			       json_object_new_string("backups/1.bkt"));
}

static void same_delta_in_3(struct json_object *root)
{
	struct json_object *arr, *d;

	json_object_object_get_ex(root, "backups", &arr);
	json_object_object_get_ex(json_object_array_get_idx(arr, 0), "delta", &d);
	json_object_object_add(json_object_array_get_idx(arr, 2), "delta",
			       json_object_get(d));
}

static void same_id_in_3(struct json_object *root)
{
	struct json_object *arr;

	json_object_object_get_ex(root, "backups", &arr);
	json_object_object_add(json_object_array_get_idx(arr, 2), "id",
			       json_object_new_uint64(2));
}

Test(repo, catalog_names_and_ids_are_unique, .init = setup_dir, .fini = teardown_dir)
{
	void (*const edits[])(struct json_object *) = {
		same_file_in_2, same_delta_in_3, same_id_in_3,
	};
	struct repo *r;
	char *good;
	size_t len, i;

	three_backups();
	good = read_whole("catalog", &len);
	for (i = 0; i < 3; i++) {
		edit_catalog(edits[i]);
		cr_expect_eq(repo_open(dir, REPO_RDONLY, &r), -EBADMSG, "edit %zu: %s", i,
			     repo_error(r));
		cr_expect(strstr(repo_error(r), i < 2 ? "two backups name" : "malformed"),
			  "%s", repo_error(r));
		repo_close(r);
		write_file("catalog", good, len);
	}
	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	repo_close(r);
	free(good);
}

/* ---- a failed commit on a full or failing disk (issue 13, point 6) ------- */

static const char *fault_step;
static int fault_errno;

/*
 * The catalog write fails at @fault_step: ENOSPC while backups/2.bkt holds
 * the room (a full disk stays full until something is deleted, also in the
 * next run), EIO for the rest of the run. Other steps and files succeed.
 */
static int full_disk(const char *step, const char *name)
{
	if (strcmp(name, "catalog") || strcmp(step, fault_step))
		return 0;
	if (fault_errno == ENOSPC && !exists("backups/2.bkt"))
		return 0;
	return -fault_errno;
}

static void commit_fails(const char *step, int err)
{
	struct repo_recovery rec;
	struct repo *r;
	struct fkern k;
	uint64_t id;
	size_t i;
	int ret;

	setup_dir();
	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	hashes_for(r, id);

	fault_step = step;
	fault_errno = err;
	repo_fault_hook = full_disk;
	cr_assert_eq(repo_commit(r, id, 4), -err, "%s", repo_error(r));
	/* What the requester does then: abandon, ABORT the kernel. */
	ret = repo_abandon(r, id);
	cr_log_info("%s %s: abandon %d %s", step, strerrorname_np(err), ret,
		    ret ? repo_error(r) : "");
	fk_abort(&k);
	repo_close(r);

	/* The next run: the disk still full; an I/O error gone. */
	if (err == EIO)
		repo_fault_hook = NULL;
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s %s: %s", step, strerrorname_np(err),
		     repo_error(r));
	ret = repo_recover(r, NULL, &rec);
	repo_fault_hook = NULL;
	cr_assert_eq(ret, 0, "%s %s: %s", step, strerrorname_np(err), repo_error(r));
	for (i = 0; i < repo_count(r); i++) {
		const struct repo_entry *e = repo_entry_at(r, i);

		cr_expect_eq(e->state, REPO_COMMITTED, "%s: backup %" PRIu64, step, e->id);
		cr_expect(exists(e->file) && exists(e->delta), "%s: %s", step, e->file);
	}
	cr_expect(exists("backups/1.bkt") && repo_find(r, 1));
	/* Backup 2 is either committed with all its files or gone with them. */
	cr_expect_eq(exists("backups/2.bkt"), repo_find(r, 2) != NULL, "%s", step);
	cr_expect_eq(exists("hashes/2.bh"), repo_find(r, 2) != NULL, "%s", step);
	cr_expect(!exists("catalog.tmp") && !exists("backups/2.bkt.tmp"));
	repo_close(r);
	teardown_dir();
}

Test(repo, a_failed_commit_is_recovered_on_a_full_disk, .timeout = 30)
{
	static const char *const steps[] = { "open", "write", "fsync", "rename", "fsync-dir" };
	size_t i;

	for (i = 0; i < 5; i++) {
		commit_fails(steps[i], ENOSPC);
		commit_fails(steps[i], EIO);
	}
}

/* ---- a repository is made on purpose (issue 13, point 1) -------------- */

Test(repo, init_only_in_a_missing_or_empty_directory, .init = setup_dir,
     .fini = teardown_dir)
{
	char p[300], *before;
	struct repo *r;

	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "missing: %s", repo_error(r));
	repo_close(r);
	before = listing();
	cr_expect_eq(repo_open(dir, REPO_CREATE, &r), -EEXIST, "over a repository");
	cr_expect(strstr(repo_error(r), "already a blktrack repository"), "%s",
		  repo_error(r));
	repo_close(r);
	rm_rf(dir);

	/* A directory with something else in it. */
	cr_assert_eq(mkdir(dir, 0700), 0);
	write_file("notes.txt", "x", 1);
	cr_expect_eq(repo_open(dir, REPO_CREATE, &r), -ENOTEMPTY);
	cr_expect(strstr(repo_error(r), "not empty"), "%s", repo_error(r));
	repo_close(r);
	cr_expect(!exists("lock") && !exists("catalog") && !exists("backups"));
	rm_rf(dir);

	/* Empty, or a new filesystem's lost+found; or what a killed init left. */
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(p, sizeof(p), "%s/lost+found", dir);
	cr_assert_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/backups", dir);
	cr_assert_eq(mkdir(p, 0700), 0);
	write_file("lock", "", 0);
	cr_expect_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	cr_expect_eq(repo_count(r), 0);
	repo_close(r);
	cr_expect(exists("catalog") && exists("deltas") && exists("hashes"));
	free(before);
}

/* backup, list, verify, restore: never create or touch anything in a non-repository. */
Test(repo, a_directory_that_is_not_a_repository_is_refused, .init = setup_dir,
     .fini = teardown_dir)
{
	static const unsigned int modes[] = { 0, REPO_RDONLY };
	struct repo *r;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		cr_expect_eq(repo_open(dir, modes[i], &r), -ENOENT, "missing");
		cr_expect(strstr(repo_error(r), "blktrack init"), "%s", repo_error(r));
		repo_close(r);
	}
	/* An unmounted mount point: an empty directory on the root filesystem. */
	cr_assert_eq(mkdir(dir, 0700), 0);
	for (i = 0; i < 2; i++) {
		char *l;

		cr_expect_eq(repo_open(dir, modes[i], &r), -ENOENT, "empty");
		cr_expect(strstr(repo_error(r), "not a blktrack repository") &&
			  strstr(repo_error(r), "blktrack init"), "%s", repo_error(r));
		repo_close(r);
		l = listing();
		cr_expect_str_eq(l, ".\n", "something was created");
		free(l);
	}
}

/*
 * The probe of issue 13: the catalog removed, then what a backup runs. Every
 * backup file survives and the backup is refused with EUCLEAN; before,
 * repo_open(REPO_CREATE) made an empty catalog and recovery then deleted
 * every file it did not name.
 */
Test(repo, catalog_removed_every_backup_survives, .init = setup_dir, .fini = teardown_dir)
{
	static const unsigned int modes[] = { 0, REPO_CREATE, REPO_RDONLY };
	char p[256], *before, *after;
	struct repo_recovery rec;
	struct repo *r;
	unsigned int i;
	int ret;

	three_backups();
	snprintf(p, sizeof(p), "%s/catalog", dir);
	cr_assert_eq(unlink(p), 0);
	before = listing();
	cr_assert(strstr(before, "./backups/3.bkt") && strstr(before, "./hashes/3.bh"));
	for (i = 0; i < 3; i++) {
		/* backup (REPO_CREATE was its call before init existed), list */
		ret = repo_open(dir, modes[i], &r);
		if (!ret && !(modes[i] & REPO_RDONLY))
			repo_recover(r, NULL, &rec);
		cr_expect_eq(ret, -EUCLEAN, "mode %u: %d %s", modes[i], ret, repo_error(r));
		cr_expect(strstr(repo_error(r), "no catalog") &&
			  strstr(repo_error(r), "nothing was changed"), "%s", repo_error(r));
		repo_close(r);
		after = listing();
		cr_expect_str_eq(after, before, "mode %u", modes[i]);
		free(after);
	}
	free(before);
}

/* A catalog older than its files (put back from a copy) never overwrites one. */
Test(repo, an_older_catalog_never_overwrites_a_backup, .init = setup_dir,
     .fini = teardown_dir)
{
	struct repo_entry e = { .type = REPO_FULL };
	struct blockset *delta;
	char *old, *b4;
	struct repo *r;
	struct fkern k;
	size_t len, n;
	uint64_t id;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	repo_close(r);
	old = read_whole("catalog", &len);
	cr_assert_eq(repo_open(dir, 0, &r), 0);
	protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
	repo_close(r);
	write_file("catalog", old, len);	/* next id 2 again */
	cr_assert_eq(repo_open(dir, 0, &r), 0);
	e.to = fk_checkpoint(&k, &delta);
	e.to.epoch++;
	cr_expect_eq(repo_begin(r, &e, delta, &id), -EUCLEAN, "%s", repo_error(r));
	cr_expect(strstr(repo_error(r), "backups/2.bkt exists"), "%s", repo_error(r));
	repo_close(r);
	b4 = read_whole("backups/2.bkt", &n);
	cr_expect(n == 4 && !memcmp(b4, "data", 4));
	blockset_free(delta);
	free(b4);
	free(old);
}

/* ---- delta and hash files bound to their entry (issue 13, point 2) ------- */

/* Give pending backup @id a real hash file whose hashes start at @seed. */
static void real_hashes_for(struct repo *r, uint64_t id, uint64_t seed)
{
	struct blockhash_writer *w;
	struct repo_file *rf;
	int b;

	cr_assert_eq(repo_hashes_create(r, id, &rf), 0, "%s", repo_error(r));
	cr_assert_eq(blockhash_writer_open_fn(repo_file_write, rf, NB * BS, BS, &w), 0);
	for (b = 0; b < NB; b++)
		cr_assert_eq(blockhash_put(w, seed + b), 0);
	cr_assert_eq(blockhash_writer_finish(w), 0);
	cr_assert_eq(repo_hashes_install(r, id, rf), 0, "%s", repo_error(r));
}

static char *hashes1;		/* backup 1's hash file, deleted by backup 2's commit */
static size_t hashes1_len;

/* Backups 1 (full) and 2 (incremental), each with its delta and hashes. */
static void two_bound_backups(void)
{
	struct repo *r;
	struct fkern k;
	uint64_t id;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0, "%s", repo_error(r));
	id = protocol(r, &k, REPO_FULL, 2, NULL);
	real_hashes_for(r, id, 100);
	cr_assert_eq(repo_commit(r, id, 4), 0, "%s", repo_error(r));
	fk_commit(&k);
	free(hashes1);
	hashes1 = read_whole("hashes/1.bh", &hashes1_len);
	fk_write(&k, 7);
	id = protocol(r, &k, REPO_INCREMENTAL, 2, NULL);
	real_hashes_for(r, id, 200);
	cr_assert_eq(repo_commit(r, id, 4), 0, "%s", repo_error(r));
	fk_commit(&k);
	repo_close(r);
}

/* What a backup reads of backup 2: its delta (compose) and its hashes. */
static int use_delta(void)
{
	struct blockset *acc;
	struct repo *r;
	int ret;

	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	ret = repo_load_delta(r, 2, &acc);
	if (!ret)
		blockset_free(acc);
	repo_close(r);
	return ret;
}

static int use_hashes(void)
{
	uint64_t size;
	uint32_t bs;
	struct repo *r;
	struct repo_file *rf;
	int ret;

	cr_assert_eq(repo_open(dir, REPO_RDONLY, &r), 0, "%s", repo_error(r));
	ret = repo_hashes_open(r, 2, &rf);
	if (!ret) {
		ret = blockhash_check_fn(repo_file_read, rf, &size, &bs);
		repo_file_close(rf);
	}
	repo_close(r);
	return ret;
}

Test(repo, a_sound_file_of_another_backup_is_refused, .init = setup_dir,
     .fini = teardown_dir)
{
	char *d1, *d2, *h2;
	size_t l1, l2, m2;

	two_bound_backups();
	cr_assert_eq(use_delta(), 0);
	cr_assert_eq(use_hashes(), 0);
	d1 = read_whole("deltas/1.set", &l1);
	d2 = read_whole("deltas/2.set", &l2);
	h2 = read_whole("hashes/2.bh", &m2);
	cr_assert(l1 != l2 || memcmp(d1, d2, l1), "the two deltas differ");
	/* Backup 1's files under backup 2's names: sound, but not its own. */
	write_file("deltas/2.set", d1, l1);
	cr_expect_eq(use_delta(), -ESTALE);
	write_file("deltas/2.set", d2, l2);
	cr_assert_eq(hashes1_len, m2);
	write_file("hashes/2.bh", hashes1, hashes1_len);
	cr_expect_eq(use_hashes(), -ESTALE);
	write_file("hashes/2.bh", h2, m2);
	cr_expect_eq(use_delta(), 0);
	cr_expect_eq(use_hashes(), 0);
	free(d1);
	free(d2);
	free(h2);
}

/* Every flipped bit of a delta or a hash file is refused before it is used. */
Test(repo, delta_and_hash_file_bit_flips_are_detected, .init = setup_dir,
     .fini = teardown_dir, .timeout = 120)
{
	static const char *const names[] = { "deltas/2.set", "hashes/2.bh" };
	int (*const use[])(void) = { use_delta, use_hashes };
	size_t len, bit;
	char *good, *bad;
	int f, ret;

	two_bound_backups();
	for (f = 0; f < 2; f++) {
		good = read_whole(names[f], &len);
		bad = malloc(len);
		cr_assert(bad);
		for (bit = 0; bit < 8 * len; bit++) {
			memcpy(bad, good, len);
			bad[bit / 8] ^= 1 << (bit % 8);
			write_file(names[f], bad, len);
			ret = use[f]();
			cr_assert(ret == -EBADMSG || ret == -ESTALE || ret == -EPROTONOSUPPORT,
				  "%s bit %zu: %d", names[f], bit, ret);
		}
		write_file(names[f], good, len);
		cr_expect_eq(use[f](), 0);
		free(good);
		free(bad);
	}
}

/* A corrupt delta is -EBADMSG at composition: the requester resyncs. */
Test(repo, a_corrupt_or_missing_delta_is_ebadmsg, .init = setup_dir, .fini = teardown_dir)
{
	struct blockset *delta, *want;
	struct repo_stamp ck;
	struct repo *r;
	struct fkern k;
	uint64_t base;
	char *good;
	size_t len;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	protocol(r, &k, REPO_INCREMENTAL, 4, NULL);
	protocol(r, &k, REPO_DIFFERENTIAL, 4, NULL);
	good = read_whole("deltas/3.set", &len);
	good[len / 2] ^= 1;
	write_file("deltas/3.set", good, len);
	ck = fk_checkpoint(&k, &delta);
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -EBADMSG);
	cr_expect(strstr(repo_error(r), "deltas/3.set"), "%s", repo_error(r));
	{
		char p[256];

		snprintf(p, sizeof(p), "%s/deltas/3.set", dir);
		cr_assert_eq(unlink(p), 0);
	}
	cr_expect_eq(repo_compose(r, REPO_INCREMENTAL, &ck, delta, &want, &base), -EBADMSG);
	blockset_free(delta);
	free(good);
	repo_close(r);
}

/* ---- per-file backups and writer stamps in the catalog ---------------------- */

static struct json_object *first_entry(struct json_object *root)
{
	struct json_object *arr;

	cr_assert(json_object_object_get_ex(root, "backups", &arr));
	return json_object_array_get_idx(arr, 0);
}

static void set_file_and_stamps(struct json_object *root)
{
	struct json_object *e = first_entry(root), *st = json_object_new_object();

	json_object_object_add(e, "source_file", json_object_new_string("/vm/a.img"));
	json_object_object_add(st, "10-db", json_object_new_string("lsn 42"));
	json_object_object_add(st, "20_hv", json_object_new_string("gen-7"));
	json_object_object_add(e, "writer_stamps", st);
}

static const char *bad_value;

static void set_bad_source_file(struct json_object *root)
{
	json_object_object_add(first_entry(root), "source_file",
			       json_object_new_string(bad_value));
}

static const char *bad_stamp;

static void set_bad_stamp(struct json_object *root)
{
	struct json_object *st = json_object_new_object();

	json_object_object_add(st, bad_value, json_object_new_string(bad_stamp));
	json_object_object_add(first_entry(root), "writer_stamps", st);
}

/*
 * An entry's source_file (doc/FILES.md) and writer_stamps (doc/WRITERS.md)
 * are read back as written; a relative path, a writer name the writers
 * directory could not hold, a stamp with a tab: the catalog is refused.
 */
Test(repo, catalog_source_file_and_writer_stamps, .init = setup_dir, .fini = teardown_dir)
{
	static const char *const bad_paths[] = { "vm/a.img", "" };
	/* A writer's name, its stamp: one of them bad. */
	static const char *const bad[][2] = {
		{ "a", "x\ty" }, { "a", "" }, { "bad name", "y" }, { "", "y" },
	};
	struct repo *r;
	struct fkern k;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	protocol(r, &k, REPO_FULL, 4, NULL);
	repo_close(r);
	edit_catalog(set_file_and_stamps);
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_expect_str_eq(repo_entry_at(r, 0)->path, "/vm/a.img");
	cr_expect_str_eq(repo_entry_at(r, 0)->writer_stamps, "10-db\tlsn 42\n20_hv\tgen-7\n");
	/* Only a pending backup takes stamps. */
	cr_assert_lt(repo_set_writer_stamps(r, 1, "a\ty\n"), 0);
	repo_close(r);
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(*bad_paths); i++) {
		bad_value = bad_paths[i];
		edit_catalog(set_bad_source_file);
		cr_expect_eq(repo_open(dir, REPO_RDONLY, &r), -EBADMSG, "source_file '%s'",
			     bad_value);
		repo_close(r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		bad_value = bad[i][0];
		bad_stamp = bad[i][1];
		edit_catalog(set_bad_stamp);
		cr_expect_eq(repo_open(dir, REPO_RDONLY, &r), -EBADMSG, "writer '%s' stamp '%s'",
			     bad_value, bad_stamp);
		repo_close(r);
	}
}

/* ---- backup sets --------------------------------------------------------- */

static uint64_t bad_set;

static void set_bad_set(struct json_object *root)
{
	json_object_object_add(first_entry(root), "set", json_object_new_uint64(bad_set));
}

/* A pending full of chain @vol at checkpoint @ck; with @file, its file installed. */
static uint64_t pending_member(struct repo *r, const struct repo_stamp *ck, const char *vol,
			       const struct blockset *delta, bool file)
{
	struct repo_entry e = { .type = REPO_FULL, .to = *ck };
	uint64_t id;
	struct repo_file *rf;

	snprintf(e.to.volume_id, sizeof(e.to.volume_id), "%s", vol);
	e.to.epoch++;
	cr_assert_eq(repo_begin(r, &e, delta, &id), 0, "%s", repo_error(r));
	if (file) {
		cr_assert_eq(repo_backup_create(r, id, &rf), 0);
		cr_assert_eq(repo_file_write(rf, "data", 4), 0);
		cr_assert_eq(repo_backup_install(r, id, rf), 0);
	}
	return id;
}

/*
 * repo_commit_set: every member by one catalog write, or none; each marked
 * with the set's id; repo_set_members lists them. Then the crash after that
 * write: the volume's pending checkpoint is committed by recovery although
 * no entry is of the volume's own chain (two files' chains, one checkpoint).
 */
Test(repo, a_set_commits_all_or_none, .init = setup_dir, .fini = teardown_dir)
{
	struct repo_kernel_state ks = { .volume_id = VOL, .attached = true, .pending = true };
	uint64_t ids[2], stored[2] = { 4, 4 }, *members;
	struct blockset *delta;
	struct repo_recovery rec;
	struct repo_stamp ck;
	struct repo *r;
	struct fkern k;
	size_t n;
	struct repo_file *rf;

	fk_attach(&k, 1);
	cr_assert_eq(repo_open(dir, REPO_CREATE, &r), 0);
	k.active[3] = true;
	ck = fk_checkpoint(&k, &delta);
	ids[0] = pending_member(r, &ck, "file:0000000000000001", delta, true);
	ids[1] = pending_member(r, &ck, "file:0000000000000002", delta, false);
	cr_expect_eq(repo_commit_set(r, ids, stored, 2), -ENOENT, "a member's file missing");
	cr_expect(strstr(repo_error(r), "is missing") && !strstr(repo_error(r), "durable"),
		  "%s", repo_error(r));
	cr_expect_eq(repo_find(r, ids[0])->state, REPO_PENDING, "none committed");
	cr_expect_eq(repo_find(r, ids[1])->state, REPO_PENDING);
	cr_assert_eq(repo_backup_create(r, ids[1], &rf), 0);
	cr_assert_eq(repo_file_write(rf, "data", 4), 0);
	cr_assert_eq(repo_backup_install(r, ids[1], rf), 0);
	cr_assert_eq(repo_commit_set(r, ids, stored, 2), 0, "%s", repo_error(r));
	blockset_free(delta);
	repo_close(r);

	/* The kernel's COMMIT never came: recovery finds the set's checkpoint. */
	cr_assert_eq(repo_open(dir, 0, &r), 0, "%s", repo_error(r));
	cr_expect_eq(repo_find(r, ids[0])->set, ids[0]);
	cr_expect_eq(repo_find(r, ids[1])->set, ids[0]);
	cr_expect_eq(repo_find(r, ids[1])->state, REPO_COMMITTED);
	cr_assert_eq(repo_set_members(r, ids[0], &members, &n), 0);
	cr_expect_eq(n, 2);
	cr_expect(members[0] == ids[0] && members[1] == ids[1]);
	free(members);
	cr_expect_eq(repo_set_members(r, ids[1], &members, &n), -ENOENT, "a set's id is its first");
	memcpy(ks.stamp.generation, ck.generation, 16);
	ks.stamp.epoch = ck.epoch;
	cr_assert_eq(repo_recover(r, &ks, &rec), 0, "%s", repo_error(r));
	cr_expect_eq(rec.action, REPO_ACTION_COMMIT);
	repo_close(r);
	/* A set's id is one of its members', the lowest: 0 or a later id is damage. */
	for (bad_set = 0; bad_set < 10; bad_set += 9) {
		edit_catalog(set_bad_set);
		cr_expect_eq(repo_open(dir, REPO_RDONLY, &r), -EBADMSG, "set %llu",
			     (unsigned long long)bad_set);
		repo_close(r);
	}
}
