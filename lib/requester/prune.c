// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack prune and delete (doc/REPOSITORY.md,
 * "Retention"). The plan: the keep rules (repo/retention.c) pick the
 * backups to keep per volume; a kept backup whose chain holds backups not
 * kept is rewritten with them folded in (merge.c); the rest go. Then the
 * whole plan is one commit of the repository (repo_merge_begin ...
 * repo_replace): a crash leaves the repository before or after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/retention.h"
#include "requester/requester.h"

struct prune {
	struct blktrack_ctx *ctx;
	const struct blktrack_prune_opts *o;
	struct blktrack_prune_result *res;
	struct repo *r;
	struct fold *folds;
	size_t nfolds;
	uint64_t *drop;
	size_t ndrop;
};

static struct blktrack_prune_item *item_of(const struct blktrack_prune_result *res,
					   uint64_t id)
{
	size_t lo = 0, hi = res->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (res->items[mid].id == id)
			return &res->items[mid];
		if (res->items[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool is_base_type(enum repo_type t)
{
	return t == REPO_FULL || t == REPO_INCREMENTAL || t == REPO_RESYNC;
}

/* The keep rules over the backups of one volume: @idx[0..n) of res->items, in id order. */
static int keep_volume(struct prune *p, const size_t *idx, size_t n)
{
	const struct blktrack_prune_opts *o = p->o;
	struct retention_rules k = { o->keep_last, o->keep_daily, o->keep_weekly,
				     o->keep_monthly };
	int64_t *times = malloc((n + 1) * sizeof(*times));
	unsigned int *why = malloc((n + 1) * sizeof(*why));
	size_t i, newest_base = n;
	int err = -ENOMEM;

	if (!times || !why)
		goto out;
	for (i = 0; i < n; i++)
		times[i] = p->res->items[idx[i]].time;
	err = retention_select(times, n, &k, why);
	if (err)
		goto out;
	for (i = 0; i < n; i++) {
		const struct repo_entry *e = repo_find(p->r, p->res->items[idx[i]].id);

		if (is_base_type(e->type))
			newest_base = i;
	}
	/* The next backup is composed from the newest base and the deltas after it. */
	for (i = newest_base == n ? 0 : newest_base; newest_base < n && i < n; i++)
		why[i] |= BLKTRACK_KEEP_NEWEST;
	for (i = 0; i < n; i++) {
		struct blktrack_prune_item *it = &p->res->items[idx[i]];

		if (o->delete_id)
			it->why = why[i] & BLKTRACK_KEEP_NEWEST;
		else
			it->why = why[i];	/* RETAIN_* are BLKTRACK_KEEP_* */
		if (o->delete_id && it->id != o->delete_id)
			it->why |= BLKTRACK_KEEP_ASKED;
	}
out:
	free(times);
	free(why);
	return err;
}

/* Every committed backup, in id order, with why it is kept (0: it is not). */
static int plan_keep(struct prune *p)
{
	struct blktrack_prune_result *res = p->res;
	size_t i, j, n, *idx;
	int err = 0;

	res->items = calloc(repo_count(p->r) + 1, sizeof(*res->items));
	idx = malloc((repo_count(p->r) + 1) * sizeof(*idx));
	if (!res->items || !idx) {
		free(idx);
		return -ENOMEM;
	}
	for (i = 0; i < repo_count(p->r); i++) {
		const struct repo_entry *e = repo_entry_at(p->r, i);
		struct blktrack_prune_item *it = &res->items[res->n];

		if (e->state != REPO_COMMITTED)
			continue;
		it->id = e->id;
		it->time = e->time;
		snprintf(it->volume_id, sizeof(it->volume_id), "%s", e->to.volume_id);
		snprintf(it->type, sizeof(it->type), "%s", repo_type_name(e->type));
		it->action = BLKTRACK_PRUNE_DELETE;
		res->n++;
	}
	/* Volume by volume: the first backup of each not yet seen starts one. */
	for (i = 0; i < res->n && !err; i++) {
		for (j = 0; j < i && strcmp(res->items[j].volume_id, res->items[i].volume_id); j++)
			;
		if (j < i)
			continue;
		for (n = 0, j = i; j < res->n; j++)
			if (!strcmp(res->items[j].volume_id, res->items[i].volume_id))
				idx[n++] = j;
		err = keep_volume(p, idx, n);
	}
	free(idx);
	return err;
}

/* Kept backup @it: the members of its chain not kept, folded into it. */
static int plan_fold(struct prune *p, struct blktrack_prune_item *it)
{
	struct blktrack_prune_item *m;
	struct fold *f;
	uint64_t *ids;
	size_t n, k, j;
	int err;

	err = repo_chain(p->r, it->id, &ids, &n);
	if (err)
		return blktrack_set_error(p->ctx, err, "backup %" PRIu64 " is kept, but its "
					  "chain cannot be merged: %s; nothing was changed",
					  it->id, repo_error(p->r));
	/* From the nearest kept member on (none: from the full). */
	for (j = n - 1; j > 0 && !item_of(p->res, ids[j - 1])->why; j--)
		;
	if (j == n - 1) {
		free(ids);
		return 0;
	}
	f = &p->folds[p->nfolds++];
	f->ctx = p->ctx;
	f->r = p->r;
	f->n = n - j;
	f->members = calloc(f->n, sizeof(*f->members));
	it->folded = calloc(f->n, sizeof(*it->folded));
	if (!f->members || !it->folded) {
		free(ids);
		return -ENOMEM;
	}
	for (k = 0; k < f->n; k++)
		f->members[k] = repo_find(p->r, ids[j + k]);
	f->target = f->members[f->n - 1];
	f->type = j ? f->target->type : REPO_FULL;
	for (k = 0; k + 1 < f->n; k++) {
		it->folded[it->nfolded++] = ids[j + k];
		m = item_of(p->res, ids[j + k]);
		p->res->replaced_bytes += repo_find(p->r, m->id)->stored_bytes;
	}
	p->res->replaced_bytes += f->target->stored_bytes;
	it->action = BLKTRACK_PRUNE_MERGE;
	it->new_parent = j ? ids[j - 1] : 0;
	snprintf(it->new_type, sizeof(it->new_type), "%s", repo_type_name(f->type));
	free(ids);
	return 0;
}

static int plan(struct prune *p)
{
	struct blktrack_prune_result *res = p->res;
	struct blktrack_prune_item *del = NULL;
	size_t i;
	int err = plan_keep(p);

	if (err)
		return err;
	if (p->o->delete_id) {
		del = item_of(res, p->o->delete_id);
		if (!del)
			return blktrack_set_error(p->ctx, -ENOENT, "%s: backup %" PRIu64 " is not "
						  "a committed backup of the repository",
						  p->o->repo, p->o->delete_id);
		res->refused = del->why != 0;
		if (del->why)
			return blktrack_set_error(p->ctx, -EBUSY, "%s: backup %" PRIu64 " is the "
						  "newest full, incremental or resync of volume %s, "
						  "or after it: the next backup is made from it; "
						  "nothing was changed", p->o->repo, del->id,
						  del->volume_id);
	}
	p->folds = calloc(res->n + 1, sizeof(*p->folds));
	p->drop = calloc(res->n + 1, sizeof(*p->drop));
	if (!p->folds || !p->drop)
		return -ENOMEM;
	for (i = 0; i < res->n && !err; i++) {
		struct blktrack_prune_item *it = &res->items[i];

		if (it->why) {
			it->action = BLKTRACK_PRUNE_KEEP;
			err = plan_fold(p, it);
		}
		else
			p->drop[p->ndrop++] = it->id;
	}
	for (i = 0; i < res->n; i++) {
		res->kept += res->items[i].action == BLKTRACK_PRUNE_KEEP;
		res->merged += res->items[i].action == BLKTRACK_PRUNE_MERGE;
		res->deleted += res->items[i].action == BLKTRACK_PRUNE_DELETE;
	}
	return err;
}

/* (m1) and (m2): each fold's new file written and installed. */
static int write_folds(struct prune *p, char (*files)[REPO_NAME_MAX])
{
	uint64_t *ids = calloc(p->nfolds + 1, sizeof(*ids));
	struct repo_file *out;
	size_t i;
	int err;

	if (!ids)
		return -ENOMEM;
	for (i = 0; i < p->nfolds; i++)
		ids[i] = p->folds[i].target->id;
	err = repo_merge_begin(p->r, ids, p->nfolds, files);
	free(ids);
	if (err)
		return blktrack_set_error(p->ctx, err, "%s", repo_error(p->r));
	crash_at("merge-begun");
	for (i = 0; i < p->nfolds && !err; i++) {
		err = repo_merge_create(p->r, files[i], &out);
		if (err)
			return blktrack_set_error(p->ctx, err, "%s", repo_error(p->r));
		err = fold_write(&p->folds[i], out);
		p->res->read_bytes += p->folds[i].read;
		p->res->written_bytes += p->folds[i].written;
		if (err) {
			repo_file_close(out);
			break;
		}
		err = repo_merge_install(p->r, files[i], out);
		if (err)
			blktrack_set_error(p->ctx, err, "%s", repo_error(p->r));
		if (!err && i == 0)
			crash_at("merge-one-written");
	}
	return err;
}

/* The catalog entry of each fold's target as it becomes. */
static void folded_entry(const struct fold *f, const char *file, struct repo_entry *ne)
{
	const struct repo_entry *first = f->members[0];

	*ne = *f->target;
	snprintf(ne->file, sizeof(ne->file), "%s", file);
	ne->type = f->type;
	ne->stored_bytes = f->written;
	ne->parent = f->type == REPO_FULL ? 0 : first->parent;
	ne->has_from = f->type != REPO_FULL;
	if (ne->has_from)
		ne->from = first->from;
}

static int execute(struct prune *p)
{
	char (*files)[REPO_NAME_MAX] = calloc(p->nfolds + 1, sizeof(*files));
	struct repo_entry *ne = calloc(p->nfolds + 1, sizeof(*ne));
	size_t i;
	int err = files && ne ? 0 : -ENOMEM;

	if (!err && p->nfolds)
		err = write_folds(p, files);
	if (err) {
		/* Before the commit: the new files go, the old chains stand. */
		repo_empty_trash(p->r, NULL);
		goto out;
	}
	crash_at("merge-written");
	for (i = 0; i < p->nfolds; i++)
		folded_entry(&p->folds[i], files[i], &ne[i]);
	for (i = 0; i < p->ndrop; i++)
		p->res->freed_bytes += repo_find(p->r, p->drop[i])->stored_bytes;
	for (i = 0; i < p->nfolds; i++)
		p->res->freed_bytes += p->folds[i].target->stored_bytes;
	err = repo_replace(p->r, ne, p->nfolds, p->drop, p->ndrop);
	if (err) {
		/*
		 * Committed or not, maybe not durably: deleting either the old
		 * or the new files could break the catalog a power cut leaves.
		 * The trash list on disk tells the next recovery which go.
		 */
		blktrack_set_error(p->ctx, err, "%s", repo_error(p->r));
		goto out;
	}
	crash_at("prune-committed");
	err = repo_empty_trash(p->r, NULL);
	if (err)
		blktrack_set_error(p->ctx, err, "the prune is committed, but deleting the old "
				   "files failed (the next prune, delete or backup finishes it): "
				   "%s", repo_error(p->r));
out:
	free(files);
	free(ne);
	return err;
}

static int prune_open(struct prune *p)
{
	struct repo_recovery rec;
	int err;

	if (p->o->dry_run)
		err = repo_open(p->o->repo, REPO_RDONLY, &p->r);
	else
		err = repo_open_wait(p->o->repo, 0, p->o->lock_wait, &p->r);
	if (!err && !p->o->dry_run)
		err = repo_recover(p->r, NULL, &rec);
	if (err)
		return blktrack_set_error(p->ctx, err, "%s", p->r ? repo_error(p->r) :
					  strerror(-err));
	return 0;
}

BLKTRACK_EXPORT int blktrack_repo_prune(struct blktrack_ctx *ctx,
					const struct blktrack_prune_opts *o,
					struct blktrack_prune_result *res)
{
	struct prune p = { .ctx = ctx, .o = o, .res = res };
	double t0 = now();
	size_t i;
	int err;

	memset(res, 0, sizeof(*res));
	if (!o->repo || (!o->delete_id && !o->keep_last && !o->keep_daily &&
			 !o->keep_weekly && !o->keep_monthly))
		return blktrack_set_error(ctx, -EINVAL, "prune: no keep rule given (--keep-last, "
					  "--keep-daily, --keep-weekly or --keep-monthly): "
					  "nothing would be kept but the newest backups");
	err = prune_open(&p);
	if (!err)
		err = plan(&p);
	if (!err && !o->dry_run && (p.nfolds || p.ndrop))
		err = execute(&p);
	for (i = 0; i < p.nfolds; i++)
		free(p.folds[i].members);
	free(p.folds);
	free(p.drop);
	repo_close(p.r);
	res->seconds = now() - t0;
	return err;
}

BLKTRACK_EXPORT void blktrack_prune_result_free(struct blktrack_prune_result *res)
{
	size_t i;

	for (i = 0; i < res->n; i++)
		free(res->items[i].folded);
	free(res->items);
	res->items = NULL;
	res->n = 0;
}
