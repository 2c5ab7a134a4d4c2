// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack_restore(): a chain written onto a
 * target (never a tracked volume), the newest copy of each block.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "requester/requester.h"

static int apply_record(struct chain *c, struct member *m, const struct bfile_record *rec,
			void *data)
{
	struct target *t = data;
	uint64_t off = rec->offset, left = rec->length, end = c->res->volume_size;
	int err;

	/* An older member of a volume that shrank since: what is past the end goes. */
	if (off >= end)
		return 0;
	if (left > end - off)
		left = end - off;
	err = target_write(t, off, rec->tag == BFILE_TAG_DATA ? rec->data : NULL, left);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: write at %" PRIu64
				  ": %s", t->path, rec->offset, strerror(-err));
	c->res->bytes += rec->length;
	return 0;
}

/*
 * Check the whole chain, then write it onto the target (lib/requester/target.h): a
 * file is replaced only once complete, a device gets its first MiB last.
 */
/*
 * A block device target that is a tracked volume, or its disk or a
 * partition of it, would be overwritten under the tracker, and O_EXCL does
 * not see the module's shared hold: refused (-EBUSY) unless --force.
 * Without the control device nothing is attached (and no module is loaded
 * to ask).
 */
static int target_untracked(struct blktrack_ctx *ctx, const char *path, char *msg,
			    size_t len)
{
	struct stat st;
	dev_t *devs;
	size_t n, i;
	int err = 0;

	if (stat(path, &st) || !S_ISBLK(st.st_mode) || access("/dev/" BLKTRACK_CTL_NAME, F_OK))
		return 0;
	if (blktrack_list(ctx, &devs, &n) < 0)
		return 0;
	for (i = 0; i < n && !err; i++) {
		if (devs_overlap(devs[i], st.st_rdev)) {
			snprintf(msg, len, "%s is (or holds) the tracked volume %u:%u: refused, "
				 "nothing written (detach it first, or --force)", path,
				 major(devs[i]), minor(devs[i]));
			err = -EBUSY;
		}
	}
	free(devs);
	return err;
}

/*
 * The writers' part in a restore (doc/WRITERS.md, "Restores"): pre-restore
 * before the target is opened (a veto: nothing written), post-restore once
 * it is complete (then a writer runs its recovery, unless more restores of
 * the chain follow), abort after a failure in between.
 */
struct restore_writers {
	struct writers *w;
	struct writers_env env;
	char type[16], more[2];
	bool told;			/* pre-restore went out: abort is owed on a failure */
};

static int restore_event(struct chain *c, struct restore_writers *rw, const char *event)
{
	char msg[1024];
	int err;

	if (c->o->no_writers)
		return 0;
	if (!rw->w) {
		const struct blktrack_restore_opts *o = c->o;
		const struct repo_entry *e = c->m[c->n - 1].e;

		err = writers_load(o->writers_dir ? o->writers_dir : WRITERS_DEFAULT_DIR,
				   o->writers_dir != NULL, o->writer_timeout, &rw->w, msg,
				   sizeof(msg));
		if (err)
			return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s", msg);
		c->res->writers = writers_count(rw->w);
		snprintf(rw->type, sizeof(rw->type), "%s", repo_type_name(e->type));
		snprintf(rw->more, sizeof(rw->more), "%d", o->more_restores);
		rw->env = (struct writers_env){
			.volume_id = e->to.volume_id, .backup_type = rw->type,
			.backup_id = e->id, .repo = o->repo, .file = e->path[0] ? e->path : NULL,
			.restore_target = o->target, .more_restores = rw->more,
		};
	}
	err = writers_event(rw->w, event, &rw->env, true, msg, sizeof(msg));
	rw->told |= !strcmp(event, "pre-restore");
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_WRITER, NULL, err, "%s%s", msg,
				  strcmp(event, "pre-restore") ? "" : ": vetoed, nothing written");
	return 0;
}

/*
 * The point a target holds (restore --onto): the id of the backup file
 * restored last (its header's 16 random bytes, in hex); "partial" while a
 * restore writes. A file keeps it in its extended attribute
 * user.blktrack.point. A block device has no place of its own for it:
 * POINT_DIR/MAJ:MIN keeps it with the state of the disk under it when the
 * restore ended (its diskseq, and the sectors ever written and discarded on
 * it): new media, a reboot (the record is in /run), or any write to the
 * disk since (a mount's journal replay, another tool, another partition)
 * make the point unknown: --onto then refuses, and a whole restore starts
 * again. A device being written has no record.
 */
#define POINT_XATTR	"user.blktrack.point"
#define POINT_PARTIAL	"partial"
#define POINT_DIR	VOLLOCK_DIR "/points"

/* "DISKSEQ WRITTEN DISCARDED" of the disk under block device @dev. */
static int disk_state(dev_t dev, char *out, size_t len)
{
	unsigned long long f[14] = { 0 }, seq = 0;
	dev_t disk = whole_disk(dev);
	char path[96];
	FILE *fs, *fq;
	int n = 0;

	/* The disk's: a partition has no diskseq of its own. */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/diskseq", major(disk), minor(disk));
	fq = fopen(path, "re");
	strcpy(path + strlen(path) - strlen("diskseq"), "stat");
	fs = fopen(path, "re");
	if (fq && fscanf(fq, "%llu", &seq) == 1 && fs)
		n = fscanf(fs, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
			   "%llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7],
			   &f[8], &f[9], &f[10], &f[11], &f[12], &f[13]);
	if (fq)
		fclose(fq);
	if (fs)
		fclose(fs);
	if (n < 7)
		return -ENODATA;
	snprintf(out, len, "%llu %llu %llu", seq, f[6], f[13]);
	return 0;
}

static void point_path(dev_t dev, char *out, size_t len)
{
	snprintf(out, len, POINT_DIR "/%u:%u", major(dev), minor(dev));
}

/* The point @t holds, "" for none known. */
static void point_get(struct target *t, char *out, size_t len)
{
	char path[128], state[96], line[192];
	ssize_t n;
	FILE *f;

	out[0] = 0;
	if (t->is_file) {
		n = fgetxattr(t->fd, POINT_XATTR, out, len - 1);
		out[n > 0 ? n : 0] = 0;
		return;
	}
	point_path(t->dev, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && !disk_state(t->dev, state, sizeof(state)) &&
	    !strncmp(line, state, strlen(state)) && line[strlen(state)] == ' ')
		snprintf(out, len, "%.*s", (int)strcspn(line + strlen(state) + 1, "\n"),
			 line + strlen(state) + 1);
	fclose(f);
}

/* Forget the point of block device @dev (it is about to be written): 0 or -errno. */
static int point_forget(dev_t dev)
{
	char path[128];

	point_path(dev, path, sizeof(path));
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

/* Record @hex as the point device target @t holds, with its disk's state now. */
static int point_set_device(struct target *t, const char *hex)
{
	char path[128], tmp[140], state[96];
	FILE *f;
	int err = disk_state(t->dev, state, sizeof(state));

	if (err)
		return err;
	if ((mkdir(VOLLOCK_DIR, 0700) && errno != EEXIST) ||
	    (mkdir(POINT_DIR, 0700) && errno != EEXIST))
		return -errno;
	point_path(t->dev, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	err = fprintf(f, "%s %s\n", state, hex) < 0 || fflush(f) || fsync(fileno(f)) ? -EIO : 0;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static void point_hex(const uint8_t id[BFILE_ID_LEN], char out[2 * BFILE_ID_LEN + 1])
{
	for (int i = 0; i < BFILE_ID_LEN; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

/*
 * Mark the target with the point it now holds, or with none while it is
 * written (@id NULL: a file's "partial", a device's record removed).
 */
static int point_mark(struct chain *c, struct target *t, const uint8_t *id)
{
	char hex[2 * BFILE_ID_LEN + 1] = POINT_PARTIAL;
	int err;

	if (id)
		point_hex(id, hex);
	if (!t->is_file && !id) {
		err = point_forget(t->dev);
		return err ? chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: removing the "
					"record of the point it held in " POINT_DIR ": %s",
					t->path, strerror(-err)) : 0;
	}
	if (!t->is_file) {
		/* No record: the point is unknown, which is safe. */
		err = point_set_device(t, hex);
		if (err)
			warning(c->ctx, "%s: cannot record the point it holds in " POINT_DIR
				" (%s): restore --onto will refuse it", t->path, strerror(-err));
		return 0;
	}
	if (!fsetxattr(t->fd, POINT_XATTR, hex, strlen(hex), 0))
		return 0;
	if (errno != ENOTSUP || t->in_place)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -errno, "%s: " POINT_XATTR ": %s",
				  t->path, strerror(errno));
	info(c->ctx, "%s: no extended attributes here: restore --onto cannot use it", t->path);
	return 0;
}

/*
 * restore --onto: the target must hold the point the last member applies
 * onto (its parent in the chain), else nothing is written (exit 3).
 */
static int onto_check(struct chain *c, struct target *t)
{
	char want[2 * BFILE_ID_LEN + 1], got[64] = "";

	if (c->n < 2)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -EINVAL, "backup %" PRIu64 " is a "
				  "%s: restore it whole, not --onto", c->m[0].e->id,
				  repo_type_name(c->m[0].e->type));
	point_hex(c->m[c->n - 2].h.id, want);
	point_get(t, got, sizeof(got));
	if (!strcmp(got, want))
		return 0;
	return chain_fail(c, BLKTRACK_FAIL_CHAIN, NULL, -ESTALE, "%s holds %s, not backup %"
			  PRIu64 " (%s) that backup %" PRIu64 " applies onto: refused, nothing "
			  "written", t->path, !got[0] ? "no point blktrack restored" :
			  !strcmp(got, POINT_PARTIAL) ? "a point half written (an --onto that "
			  "did not finish)" : "another point", c->m[c->n - 2].e->id, want,
			  c->m[c->n - 1].e->id);
}

BLKTRACK_EXPORT int blktrack_restore(struct blktrack_ctx *ctx,
				     const struct blktrack_restore_opts *o,
				     struct blktrack_restore_result *res)
{
	struct chain c = { .ctx = ctx, .o = o, .res = res };
	struct restore_writers rw = { 0 };
	struct target t = { .fd = -1 };
	struct stat st;
	double t0 = now();
	char msg[1024];
	size_t k;
	int err;

	memset(res, 0, sizeof(*res));
	res->failure = BLKTRACK_FAIL_ERROR;
	if (!o->repo || !o->target)
		return blktrack_set_error(ctx, -EINVAL, "restore: invalid options");
	err = chain_open(&c);
	if (!err)
		err = chain_check(&c);
	if (err)
		goto out;

	/* --onto: the point the target holds is checked before anyone is told. */
	err = o->onto ? target_open_onto(&t, o->target, res->volume_size, o->force, msg,
					 sizeof(msg)) : 0;
	if (err) {
		chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, err, "%s", msg);
		goto out;
	}
	err = o->onto ? onto_check(&c, &t) : 0;
	if (!err)
		err = restore_event(&c, &rw, "pre-restore");
	if (err)
		goto out;
	err = o->force ? 0 : target_untracked(ctx, o->target, msg, sizeof(msg));
	/* A device forgets its point before anything touches it (its first MiB is wiped). */
	if (!err && !o->onto && !stat(o->target, &st) && S_ISBLK(st.st_mode) &&
	    point_forget(st.st_rdev)) {
		err = -errno;
		snprintf(msg, sizeof(msg), "%s: removing the record of the point it held in "
			 POINT_DIR ": %s", o->target, strerror(errno));
	}
	if (!err && !o->onto)
		err = target_open(&t, o->target, res->volume_size, o->force, msg, sizeof(msg));
	if (err) {
		chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, err, "%s", msg);
		goto out;
	}
	/* Half written from here on (a new file stays aside until its rename). */
	err = o->onto || !t.is_file ? point_mark(&c, &t, NULL) : 0;
	if (err)
		goto out;
	c.before = 0;
	res->bytes = 0;
	res->partial = !t.is_file || o->onto;	/* a new file stays aside until the end */
	for (k = o->onto ? c.n - 1 : 0; k < c.n; k++) {
		err = member_read(&c, k, apply_record, &t);
		if (err)
			goto out;
	}
	err = target_finish(&t, msg, sizeof(msg));
	if (err) {
		chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, err, "%s", msg);
		goto out;
	}
	err = point_mark(&c, &t, c.m[c.n - 1].h.id);
	if (err)
		goto out;
	res->partial = false;
	/* Written whole: a writer's recovery failing now is its failure, not the copy's. */
	err = restore_event(&c, &rw, "post-restore");
	if (err)
		goto out;
	res->failure = BLKTRACK_FAIL_NONE;
	res->seconds = now() - t0;
out:
	if (err && rw.told)	/* a veto too: the writers that agreed prepared */
		writers_event(rw.w, "abort", &rw.env, false, msg, sizeof(msg));
	writers_free(rw.w);
	target_close(&t);
	chain_close(&c);
	return err;
}

/*
 * A backup set's members, each onto its target, in the set's order. Every
 * member's chain is read and checked before the first target is written;
 * the writers hear BLKTRACK_MORE_RESTORES=1 until the last, so that an
 * application spread over the volumes recovers once, at the end.
 */
/*
 * The set's targets, before any is written: each one once (two paths to
 * one file or device count once), no directory, no tracked volume.
 */
static int targets_check(struct blktrack_ctx *ctx, const struct blktrack_restore_opts *o,
			 const char *const *targets, size_t n)
{
	struct stat st[BLKTRACK_SET_MAX];
	bool exists[BLKTRACK_SET_MAX];
	char msg[1024];
	size_t i, j;

	for (i = 0; i < n; i++) {
		exists[i] = !stat(targets[i], &st[i]);
		if (exists[i] && S_ISDIR(st[i].st_mode))
			return blktrack_set_error(ctx, -EISDIR, "%s: a directory", targets[i]);
		for (j = 0; j < i; j++)
			if ((exists[i] && exists[j] && st[i].st_dev == st[j].st_dev &&
			     st[i].st_ino == st[j].st_ino && st[i].st_rdev == st[j].st_rdev) ||
			    !strcmp(targets[i], targets[j]))
				return blktrack_set_error(ctx, -EINVAL, "%s and %s: one target for "
							  "two members", targets[j], targets[i]);
		if (!o->force && target_untracked(ctx, targets[i], msg, sizeof(msg)))
			return blktrack_set_error(ctx, -EBUSY, "%s", msg);
	}
	return 0;
}

BLKTRACK_EXPORT int blktrack_restore_set(struct blktrack_ctx *ctx,
					 const struct blktrack_restore_opts *opts,
					 uint64_t set, const char *const *targets, size_t n,
					 struct blktrack_restore_result *res)
{
	struct blktrack_restore_opts o = *opts;
	uint64_t *ids = NULL;
	struct repo *r = NULL;
	size_t k = 0, i;
	int err;

	if (!n || n > BLKTRACK_SET_MAX)
		return blktrack_set_error(ctx, -EINVAL, "a set has 1 to %d members",
					  BLKTRACK_SET_MAX);
	memset(res, 0, n * sizeof(*res));
	for (i = 0; i < n; i++)
		res[i].failure = BLKTRACK_FAIL_ERROR;
	if (!opts->repo || opts->file || opts->onto)
		return blktrack_set_error(ctx, -EINVAL, "restore of a set: invalid options "
					  "(the repository; no file, no --onto)");
	err = targets_check(ctx, opts, targets, n);
	if (err)
		return err;
	err = repo_open(opts->repo, REPO_RDONLY, &r);
	if (!err)
		err = repo_set_members(r, set, &ids, &k);
	if (err) {
		res[0].failure = err == -ENOENT ? BLKTRACK_FAIL_CHAIN : BLKTRACK_FAIL_ERROR;
		err = blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
	} else if (k != n) {
		err = blktrack_set_error(ctx, -EINVAL, "set %" PRIu64 " has %zu members "
					 "(backups %" PRIu64 "...): give a target for each, in "
					 "their order", set, k, ids[0]);
	}
	repo_close(r);
	/* Every chain whole before anything is written. */
	for (i = 0; !err && i < n; i++) {
		o.backup_id = ids[i];
		err = blktrack_verify(ctx, &o, &res[i]);
	}
	for (i = 0; !err && i < n; i++) {
		o.backup_id = ids[i];
		o.target = targets[i];
		o.more_restores = opts->more_restores || i + 1 < n;
		err = blktrack_restore(ctx, &o, &res[i]);
		if (err && i) {
			char why[1024];

			snprintf(why, sizeof(why), "%s", blktrack_get_error(ctx));
			blktrack_set_error(ctx, err, "%s (set %" PRIu64 ": its first %zu members "
					   "were restored, this one and the rest not)", why, set, i);
		}
	}
	free(ids);
	return err;
}
