// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: reading a chain of backups: the files from a
 * full to the one asked for, opened and checked against the catalog, their
 * records in order.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include "requester/requester.h"

int chain_fail(struct chain *c, enum blktrack_failure f, const char *file,
	       int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->res->failure = f;
	if (file)
		snprintf(c->res->file, sizeof(c->res->file), "%s", file);
	return blktrack_set_error(c->ctx, err, "%s", msg);
}

/*
 * No backup id: the newest committed backup, when every committed backup is
 * of one volume. With several volumes, which one is meant is not guessed.
 */
static int newest_of_one_volume(struct chain *c, uint64_t *id)
{
	const struct repo_entry *e, *newest = NULL;
	char list[768] = "";
	size_t i, j, used = 0;
	bool several = false;

	for (i = repo_count(c->r); i-- > 0;) {
		e = repo_entry_at(c->r, i);
		if (e->state != REPO_COMMITTED)
			continue;
		if (!newest)
			newest = e;
		several |= strcmp(e->to.volume_id, newest->to.volume_id) != 0;
		/* One line per volume, at its newest backup (the first seen). */
		for (j = repo_count(c->r); j-- > i + 1;)
			if (repo_entry_at(c->r, j)->state == REPO_COMMITTED &&
			    !strcmp(repo_entry_at(c->r, j)->to.volume_id, e->to.volume_id))
				break;
		if (j == i && used < sizeof(list))
			used += snprintf(list + used, sizeof(list) - used, "%s%s (newest backup %"
					 PRIu64 ")", used ? ", " : "", e->to.volume_id, e->id);
	}
	if (!newest)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -ENOENT,
				  "%s: no committed backup", c->o->repo);
	if (several)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -EINVAL,
				  "%s holds backups of several volumes: %s; say which with "
				  "--backup ID (blktrack list)", c->o->repo, list);
	*id = newest->id;
	return 0;
}

/*
 * --file PATH: the newest committed backup of that file (doc/FILES.md), or
 * with a backup id, that it is one of the file's. The path is compared as
 * the backup wrote it: absolute, symbolic links resolved (the file itself
 * may be gone: its directory is resolved then).
 */
static int of_file(struct chain *c, uint64_t *id)
{
	const char *f = c->o->file, *slash = strrchr(f, '/');
	char path[PATH_MAX + 256], dir[PATH_MAX];
	const struct repo_entry *e;

	if (!realpath(f, path)) {
		/* Gone: its directory resolved, and its name after it. */
		if (!slash)
			snprintf(path, sizeof(path), ".");
		else if (slash == f)
			snprintf(path, sizeof(path), "/");
		else
			snprintf(path, sizeof(path), "%.*s", (int)(slash - f), f);
		if (!realpath(path, dir))
			return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -errno, "%s: %s", path,
					  strerror(errno));
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "",
			 slash ? slash + 1 : f);
	}
	for (size_t i = repo_count(c->r); i-- > 0;) {
		e = repo_entry_at(c->r, i);
		if (e->state != REPO_COMMITTED || strcmp(e->path, path) || (*id && e->id != *id))
			continue;
		*id = e->id;
		return 0;
	}
	if (*id)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -EINVAL, "backup %" PRIu64
				  " of %s is not one of %s (blktrack list)", *id, c->o->repo, path);
	return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -ENOENT, "%s: no committed backup "
			  "of the file %s", c->o->repo, path);
}

int chain_open(struct chain *c)
{
	const struct blktrack_restore_opts *o = c->o;
	uint64_t *ids = NULL, id = o->backup_id;
	size_t i;
	int err;

	err = repo_open(o->repo, REPO_RDONLY, &c->r);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s",
				  c->r ? repo_error(c->r) : strerror(-err));
	if (o->file) {
		err = of_file(c, &id);
		if (err)
			return err;
	} else if (!id) {
		err = newest_of_one_volume(c, &id);
		if (err)
			return err;
	}
	c->res->backup_id = id;
	err = repo_chain(c->r, id, &ids, &c->n);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CHAIN, NULL, err, "chain of backup %" PRIu64
				  " is broken: %s", id, repo_error(c->r));
	c->m = calloc(c->n, sizeof(*c->m));
	if (!c->m) {
		free(ids);
		return -ENOMEM;
	}
	for (i = 0; i < c->n; i++) {
		struct stat sb;

		c->m[i].e = repo_find(c->r, ids[i]);
		snprintf(c->m[i].path, sizeof(c->m[i].path), "%s/%s", repo_path(c->r),
			 c->m[i].e->file);
		if (!stat(c->m[i].path, &sb))
			c->m[i].file_size = sb.st_size;
		c->total += c->m[i].file_size;
	}
	free(ids);
	c->res->members = c->n;
	c->res->volume_size = c->m[c->n - 1].e->to.size;
	return 0;
}

void chain_close(struct chain *c)
{
	blockset_free(c->excluded);
	c->excluded = NULL;
	free(c->m);
	repo_close(c->r);
}

/*
 * Why header @h is not the file of catalog entry @e, the member after the
 * one whose header is @prev (NULL: the first), or NULL when it is.
 */
const char *member_foreign(const struct bfile_header *h, const struct repo_entry *e,
			   const struct bfile_header *prev)
{
	if (strcmp(h->volume_id, e->to.volume_id))
		return "its volume id is not the catalog's";
	if (h->type != (uint32_t)e->type + 1)
		return "its type is not the catalog's";
	if (!bstamp_matches(&h->to, &e->to) || h->volume_size != e->to.size ||
	    h->block_size != e->to.block_size)
		return "its stamp is not the catalog's";
	if (e->has_from && !bstamp_matches(&h->from, &e->from))
		return "its from-stamp is not the catalog's";
	if (prev && memcmp(h->parent_id, prev->id, BFILE_ID_LEN))
		return "its parent is not the previous backup of the chain";
	return NULL;
}

/*
 * Read member @k in full, checking its header against the catalog and the
 * chain (the parent's id), and every record; @fn sees each record.
 */
/*
 * What the point's content lacks (doc/WRITERS.md, "Ranges"): a member's
 * data replaces what the writers excluded before it; its own exclusions
 * (its EXCL records) are added after it.
 */
static int excluded_fold(struct chain *c, const struct member *m, const struct bfile_record *rec,
			 struct blockset **mine)
{
	uint32_t bs = m->h.block_size;

	if (rec->tag == BFILE_TAG_EXCL)
		return excl_record(c, m, rec, mine);
	if (c->excluded)
		blockset_remove_range(c->excluded, rec->offset / bs,
				      (rec->offset % bs + rec->length + bs - 1) / bs);
	return 0;
}

int member_read(struct chain *c, size_t k, record_fn fn, void *data)
{
	struct member *m = &c->m[k];
	const struct repo_entry *e = m->e;
	struct bfile_reader *rd = NULL;
	struct blockset *mine = NULL;
	struct bfile_record rec;
	struct repo_file *file;
	const char *why = NULL;
	int err;

	if (!k) {
		blockset_free(c->excluded);
		c->excluded = NULL;
	}

	err = repo_file_open(c->r, e->file, &file);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CHAIN, m->path, err, "%s (backup %" PRIu64
				  ")", repo_error(c->r), e->id);
	err = bfile_reader_open_fn(repo_file_read, file, &m->h, &rd);
	if (err) {
		chain_fail(c, err == -ENOMEM ? BLKTRACK_FAIL_ERROR : BLKTRACK_FAIL_CORRUPT,
			   m->path, err, "%s (backup %" PRIu64 "): %s", m->path, e->id,
			   rd ? bfile_reader_error(rd) : strerror(-err));
		goto out;
	}
	why = member_foreign(&m->h, e, k ? &c->m[k - 1].h : NULL);
	if (why) {
		err = chain_fail(c, BLKTRACK_FAIL_CORRUPT, m->path, -EBADMSG,
				 "%s (backup %" PRIu64 "): a foreign file: %s", m->path,
				 e->id, why);
		goto out;
	}
	bfile_reader_deliver(rd, BFILE_TAG_EXCL);
	while ((err = bfile_read_record(rd, &rec)) > 0) {
		err = excluded_fold(c, m, &rec, &mine);
		if (err)
			goto out;
		if (rec.tag == BFILE_TAG_EXCL)
			continue;
		if (fn) {
			err = fn(c, m, &rec, data);
			if (err)
				goto out;
		}
		c->res->bytes += fn ? 0 : rec.length;
		progress(c->o->progress, c->o->progress_data, "read",
			 c->before + rec.file_offset, c->total);
	}
	if (err)
		chain_fail(c, err == -ENOMEM || err == -EIO ? BLKTRACK_FAIL_ERROR :
			   BLKTRACK_FAIL_CORRUPT, m->path, err, "%s (backup %" PRIu64 "): %s",
			   m->path, e->id, bfile_reader_error(rd));
	if (!err && mine && c->excluded) {
		err = blockset_or(c->excluded, mine);
	} else if (!err && mine) {
		c->excluded = mine;
		mine = NULL;
	}
	if (!err && k == c->n - 1)
		c->res->excluded_bytes = c->excluded ?
			blockset_cardinality(c->excluded) * m->h.block_size : 0;
	if (c->res->excluded_bytes > m->h.volume_size)
		c->res->excluded_bytes = m->h.volume_size;	/* a partial last block */
out:
	blockset_free(mine);
	c->before += m->file_size;
	bfile_reader_free(rd);
	repo_file_close(file);
	return err;
}

/* Read and check every member, oldest first. */
int chain_check(struct chain *c)
{
	size_t k;
	int err;

	c->before = 0;
	c->res->bytes = 0;
	for (k = 0; k < c->n; k++) {
		err = member_read(c, k, NULL, NULL);
		if (err)
			return err;
	}
	return 0;
}
