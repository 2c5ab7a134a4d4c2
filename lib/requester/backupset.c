// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack_backup_set() and blktrack_backup():
 * the phases of backup.c run for every member of a set in step, and what a
 * set does once for all (doc/REPOSITORY.md, "Backup sets"):
 *
 *	identify each; lock each volume (in volume id order: two sets never
 *	wait for each other); recover each volume
 *	the writers: identify, prepare-backup, freeze (once, the lead's)
 *	each file's pages written; each filesystem frozen (once)
 *	ONE CHECKPOINT of every volume (a snapshot of each with cow)
 *	thaw early (all), post-snapshot
 *	each composed, begun, written; each verified; thaw (all)
 *	backup-complete (once: the stamps kept by every member)
 *	ONE catalog write commits every member (c); COMMIT each volume (d)
 *
 * A failure anywhere before (c) unwinds every member: each pending entry
 * abandoned, each volume's checkpoint ABORTed (its changes merged back),
 * every filesystem thawed, the writers told abort. One backup is a set of
 * one member: the same path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "requester/requester.h"

typedef int (*phase_fn)(struct backup *b);

/* Run @phase on every member in order; *@failed: the one that failed. */
static int each(struct bset *s, phase_fn phase, size_t *failed)
{
	size_t i;
	int err;

	for (i = 0; i < s->n; i++) {
		err = phase(&s->m[i]);
		if (err) {
			*failed = i;
			return err;
		}
	}
	return 0;
}

/* The name of a member in messages: its file, or its device. */
static const char *member_name(const struct backup *b)
{
	return b->file ? b->file : b->o->device;
}

/*
 * Which member owns each volume (the first on it): files of one volume
 * share its checkpoint; a volume twice, or a volume and a file on it, or
 * a file twice, would be two backups of one thing at one instant.
 */
static int assign_volumes(struct bset *s, size_t *failed)
{
	size_t i, j;

	for (i = 0; i < s->n; i++) {
		struct backup *b = &s->m[i];

		b->vol = b;
		for (j = 0; j < i && b->vol == b; j++) {
			struct backup *o = &s->m[j];

			if (o->dev != b->dev && !strcmp(o->volume_id, b->volume_id)) {
				*failed = i;	/* clones: one lock, one chain for two disks */
				return blktrack_set_error(s->ctx, -EINVAL, "%s and %s: two devices "
							  "with one volume id (%s: a cloned "
							  "disk?) in one set", member_name(o),
							  member_name(b), b->volume_id);
			}
			if (o->dev != b->dev)
				continue;
			*failed = i;
			if (!b->file || !o->file)
				return blktrack_set_error(s->ctx, -EINVAL, "%s and %s: %s in one "
							  "set (its checkpoint is one)",
							  member_name(o), member_name(b),
							  b->file || o->file ? "a volume and a "
							  "file on it" : "one volume twice");
			if (!strcmp(o->res->volume_id, b->res->volume_id))
				return blktrack_set_error(s->ctx, -EINVAL, "%s: one file twice "
							  "in one set", b->file_path);
			b->vol = o->vol;
		}
	}
	return 0;
}

static int by_volume_id(const void *a, const void *b)
{
	const struct backup *x = *(struct backup *const *)a, *y = *(struct backup *const *)b;

	return strcmp(x->volume_id, y->volume_id);
}

/* NEW -> OPEN: identified, the volumes locked in one order, recovered. */
static int set_open(struct bset *s, size_t *failed)
{
	struct backup *order[BLKTRACK_SET_MAX];
	size_t i, n = 0;
	int err = each(s, backup_check_options, failed);

	if (!err)
		err = each(s, backup_identify, failed);
	if (!err)
		err = assign_volumes(s, failed);
	if (err)
		return err;
	for (i = 0; i < s->n; i++)
		if (s->m[i].vol == &s->m[i])
			order[n++] = &s->m[i];
	qsort(order, n, sizeof(*order), by_volume_id);
	for (i = 0; i < n; i++) {
		err = backup_lock(order[i]);
		if (err) {
			*failed = order[i] - s->m;
			return err;
		}
	}
	return each(s, backup_open, failed);
}

/* Thaw every member, the lead last: the writers' thaw follows the filesystems'. */
static int set_thaw(struct bset *s, size_t *failed)
{
	size_t i;
	int err = 0, e;

	for (i = s->n; i-- > 0;) {
		e = thaw(&s->m[i], s->m[i].res);
		if (e && !err) {
			err = e;
			*failed = i;
		}
	}
	return err;
}

static int flush_volume(struct backup *b)
{
	return b->vol == b ? flush_device(b) : 0;
}

static int exact(struct backup *b)
{
	return exact_checkpoint(b, &b->st, b->res);
}

/*
 * FROZEN -> CHECKPOINTED: caches written out, the set's one checkpoint,
 * each member's state; thawed at once when the read does not need the
 * freeze (a snapshot, --thaw-early, --snapshot none, the output on a
 * frozen filesystem); post-snapshot.
 */
static int set_checkpoint(struct bset *s, size_t *failed)
{
	const struct blktrack_backup_opts *o = s->m[0].o;
	bool early = o->thaw_early || o->snapshot == BLKTRACK_SNAPSHOT_NONE;
	size_t i;
	int err = each(s, flush_volume, failed);

	if (!err)
		err = each(s, exact, failed);
	if (err)
		return err;
	*failed = 0;
	err = checkpoint(s);
	if (!err)
		err = each(s, backup_checkpointed, failed);
	if (err)
		return err;
	early = early || s->m[0].cow;
	for (i = 0; i < s->n; i++)
		if (backup_thaw_early(&s->m[i])) {
			s->m[i].res->freeze = "thaw-early";
			early = true;
		}
	if (early) {
		for (i = 0; i < s->n; i++)
			if (s->m[i].fs_fd >= 0 || !strcmp(s->m[i].res->freeze, "held"))
				s->m[i].res->freeze = "thaw-early";
		err = set_thaw(s, failed);
	}
	if (!err) {
		*failed = 0;
		err = post_snapshot(s);		/* the writers may name ranges */
	}
	return err;
}

/* WRITTEN -> CHECKED: each verified, all thawed, each checked; backup-complete. */
static int set_check(struct bset *s, size_t *failed)
{
	int err = each(s, backup_verify, failed);

	if (!err)
		err = set_thaw(s, failed);
	if (!err)
		err = each(s, backup_checked, failed);
	if (err)
		return err;
	*failed = 0;
	return backup_complete(&s->m[0], s->m[0].res);
}

/* CHECKED -> DONE: one catalog write commits every member (c), then each volume (d). */
static int set_finish(struct bset *s, size_t *failed)
{
	struct backup *lead = &s->m[0];
	uint64_t ids[BLKTRACK_SET_MAX], stored[BLKTRACK_SET_MAX];
	size_t i;
	int err = 0, e;

	*failed = 0;
	if (lead->streaming) {
		/* A stream is in no catalog: it moves no base. */
		lead->phase = BACKUP_COMMITTED;
		err = blktrack_abort(s->ctx, lead->dev, &lead->ck.stamp);
		if (err < 0)
			return err;
		lead->phase = BACKUP_DONE;
		return 0;
	}
	for (i = 0; i < s->n; i++) {
		ids[i] = s->m[i].id;
		stored[i] = s->m[i].stats.stream_bytes;
	}
	err = repo_commit_set(lead->r, ids, stored, s->n);
	if (err) {
		snprintf(lead->msg, sizeof(lead->msg), "%s", repo_error(lead->r));
		return err;
	}
	for (i = 0; i < s->n; i++) {
		s->m[i].phase = BACKUP_COMMITTED;
		s->m[i].res->id = ids[i];
		s->m[i].res->set = s->n > 1 ? ids[0] : 0;
	}
	crash_at("after-catalog");
	/* Every volume's, whatever one's says: a failed one is finished by the next backup. */
	for (i = 0; i < s->n; i++) {
		e = backup_commit_kernel(&s->m[i]);
		if (e && !err) {
			err = e;
			*failed = i;
		}
	}
	return err;
}

/*
 * Undo every member (backup_unwind), the lead last so that the writers
 * hear thaw after every filesystem thawed; the failure's message is
 * the context's error, with what else went wrong on the way.
 */
static void set_unwind(struct bset *s, size_t k, int err)
{
	struct backup *f = &s->m[k], *lead = &s->m[0];
	char scratch[256];
	size_t i;

	if (f->phase >= BACKUP_COMMITTED) {
		for (i = 0; i < s->n; i++)
			follow_stop(&s->m[i].follower);
		return;			/* committed: the error is the one the phase set */
	}
	if (!f->msg[0])
		snprintf(f->msg, sizeof(f->msg), "%s", blktrack_get_error(s->ctx));
	for (i = s->n; i-- > 0;) {
		struct backup *b = &s->m[i];

		backup_unwind(b);
		if (b != f && b->msg[0])
			snprintf(f->msg + strlen(f->msg), sizeof(f->msg) - strlen(f->msg),
				 " (and %s: %s)", member_name(b), b->msg);
		b->res->failure = f->res->failure;
	}
	if (s->n > 1)
		blktrack_set_error(s->ctx, err, "%s: %s", member_name(f), f->msg);
	else
		blktrack_set_error(s->ctx, err, "%s", f->msg);
	if (lead->phase >= BACKUP_PREPARED)
		writers_event(lead->wr, "abort", &lead->env, false, scratch, sizeof(scratch));
}

static int set_run(struct bset *s, size_t *failed)
{
	int err = set_open(s, failed);

	if (!err)
		err = each(s, backup_prepare, failed);
	if (!err)
		err = each(s, backup_freeze, failed);
	if (!err)
		err = each(s, backup_fs_freeze, failed);
	if (!err)
		err = set_checkpoint(s, failed);
	if (!err)
		err = each(s, backup_compose, failed);
	if (!err)
		err = each(s, backup_begin, failed);
	if (!err)
		err = each(s, backup_write, failed);
	if (!err)
		err = set_check(s, failed);
	if (!err)
		err = set_finish(s, failed);
	return err;
}

/* BLKTRACK_SET_MEMBERS for the writers: a set's devices and files, a line each. */
static int members_env(struct bset *s, const struct blktrack_backup_opts *opts)
{
	size_t i, len = 1;
	char *p;

	if (s->n < 2)
		return 0;
	for (i = 0; i < s->n; i++)
		len += strlen(opts[i].file ?: opts[i].device ?: "") + 1;
	p = s->members = malloc(len);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		p += sprintf(p, "%s\n", opts[i].file ?: opts[i].device ?: "");
	return 0;
}

static int set_options(struct blktrack_ctx *ctx, const struct blktrack_backup_opts *opts,
		       size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (opts[i].output_fd > 0 || opts[0].output_fd > 0 || !opts[0].repo ||
		    !opts[i].repo || strcmp(opts[i].repo, opts[0].repo))
			return blktrack_set_error(ctx, -EINVAL, "a backup set goes to one "
						  "repository (not a stream)");
	return 0;
}

BLKTRACK_EXPORT int blktrack_backup_set(struct blktrack_ctx *ctx,
					const struct blktrack_backup_opts *opts, size_t n,
					struct blktrack_backup_result *res)
{
	struct bset s = { .ctx = ctx, .n = n };
	size_t i, failed = 0;
	double t0 = now();
	int err;

	if (!n || n > BLKTRACK_SET_MAX)
		return blktrack_set_error(ctx, -EINVAL, "a backup set has 1 to %d members",
					  BLKTRACK_SET_MAX);
	for (i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		res[i].failure = BLKTRACK_FAIL_ERROR;
		res[i].recovery = "none";
		res[i].freeze = "none";
		res[i].snapshot = "none";
	}
	err = set_options(ctx, opts, n);
	if (err)
		return err;
	s.m = calloc(n, sizeof(*s.m));
	if (!s.m || members_env(&s, opts)) {
		free(s.m);
		return blktrack_set_error(ctx, -ENOMEM, "%s", strerror(ENOMEM));
	}
	for (i = 0; i < n; i++) {
		const struct blktrack_backup_opts *o = &opts[i];

		s.m[i] = (struct backup) {
			.ctx = ctx, .set = &s, .lead = i == 0, .o = o, .res = &res[i],
			.type = o->type, .t0 = t0, .streaming = o->output_fd > 0, .lock_fd = -1,
			.out_fd = -1, .vol_fd = -1, .fs_fd = -1, .store_fd = -1,
			.rh_lock = PTHREAD_MUTEX_INITIALIZER, .file = o->file,
			.file_fd = -1,
		};
		s.m[i].vol = &s.m[i];
	}
	err = set_run(&s, &failed);
	if (err)
		set_unwind(&s, failed, err);
	for (i = 0; i < n; i++) {
		if (!err) {
			res[i].failure = BLKTRACK_FAIL_NONE;
			res[i].seconds = now() - t0;
		}
		backup_release(&s.m[i]);
	}
	free(s.members);
	free(s.m);
	return err;
}

BLKTRACK_EXPORT int blktrack_backup(struct blktrack_ctx *ctx,
				    const struct blktrack_backup_opts *o,
				    struct blktrack_backup_result *res)
{
	return blktrack_backup_set(ctx, o, 1, res);
}
