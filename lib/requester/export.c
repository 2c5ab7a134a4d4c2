// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack_export(): a point in a format QEMU
 * reads. raw is a restore. qcow2 is one image per member of the point's
 * chain, each an overlay on the one before (QEMU's backing chain): the
 * members are applied in order to a scratch raw copy (an unnamed file in
 * the output's directory), and after each, the clusters its records touch
 * are written, as they now read, into that member's image
 * (lib/format/qcow2.c). For OUT = DIR/NAME.qcow2 and a chain 1, 4, 7:
 * DIR/NAME.1.qcow2 <- DIR/NAME.4.qcow2 <- OUT, the backing names relative.
 * rbd-diff is the point's own backup alone, as the RBD diff stream `rbd
 * import-diff` applies onto the snapshot of its parent (lib/format/rbddiff.c),
 * written as its records are read: the chain's order is the snapshots'.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "format/qcow2.h"
#include "format/rbddiff.h"
#include "requester/requester.h"

struct export {
	struct chain c;
	const struct blktrack_export_opts *o;
	int raw;			/* the scratch copy of the point so far */
	struct blockset *touched;	/* the clusters of the member being applied */
	uint8_t *buf;			/* one cluster */
	char dir[PATH_MAX], stem[NAME_MAX + 1];
	char prev[NAME_MAX + 32];	/* the image written last: the next one's backing */
	/* rbd-diff */
	struct rbddiff_writer *rw;
	int out;			/* OUT.tmp, or standard output */
	char tmp[PATH_MAX + 8];		/* "": nothing of ours to remove */
};

/* record_fn: a member's record onto the scratch copy, its clusters noted. */
static int apply(struct chain *c, struct member *m, const struct bfile_record *rec, void *data)
{
	struct export *x = data;
	uint64_t first = rec->offset / QCOW2_CLUSTER_SIZE;
	uint64_t last = (rec->offset + rec->length - 1) / QCOW2_CLUSTER_SIZE;
	int err;

	(void)m;
	if (rec->tag == BFILE_TAG_DATA)
		err = fd_pwrite_all(x->raw, rec->data, rec->length, rec->offset);
	else if (fallocate(x->raw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			   (off_t)rec->offset, (off_t)rec->length))
		err = -errno;
	else
		err = 0;
	if (!err)
		err = blockset_add_range(x->touched, first, last - first + 1);
	if (err)
		chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "the scratch copy: %s",
			   strerror(-err));
	return err;
}

struct member_image {
	struct export *x;
	struct qcow2_writer *w;
	bool base;			/* no backing file: zeros need no cluster */
};

/* blockset_extent_fn: the clusters as they read now into the member's image. */
static int write_clusters(void *data, uint64_t first, uint64_t count)
{
	struct member_image *mi = data;
	struct export *x = mi->x;
	int err = 0;

	for (uint64_t i = first; !err && i < first + count; i++) {
		ssize_t n = pread(x->raw, x->buf, QCOW2_CLUSTER_SIZE, (off_t)(i * QCOW2_CLUSTER_SIZE));
		size_t k;

		if (n < 0)
			return -errno;
		memset(x->buf + n, 0, QCOW2_CLUSTER_SIZE - (size_t)n);
		for (k = 0; k < QCOW2_CLUSTER_SIZE && !x->buf[k]; k++)
			;
		if (k < QCOW2_CLUSTER_SIZE)
			err = qcow2_write_cluster(mi->w, i, x->buf);
		else if (!mi->base)
			err = qcow2_write_cluster(mi->w, i, NULL);
	}
	return err;
}

/* Member @k's image: NAME.ID.qcow2 beside the output, the output for the last. */
static int member_image(struct export *x, size_t k)
{
	struct member *m = &x->c.m[k];
	struct member_image mi = { .x = x, .base = k == 0 };
	char name[NAME_MAX + 32], path[PATH_MAX + NAME_MAX + 64], tmp[sizeof(path) + 8];
	int fd, err;

	if (k + 1 == x->c.n)
		snprintf(name, sizeof(name), "%s", strrchr(x->o->output, '/') ?
			 strrchr(x->o->output, '/') + 1 : x->o->output);
	else
		snprintf(name, sizeof(name), "%s.%" PRIu64 ".qcow2", x->stem, m->e->id);
	snprintf(path, sizeof(path), "%s/%s", x->dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return chain_fail(&x->c, BLKTRACK_FAIL_ERROR, NULL, -errno, "%s: %s", tmp,
				  strerror(errno));
	err = qcow2_writer_open(fd, m->h.volume_size, k ? x->prev : NULL, &mi.w);
	if (!err)
		err = blockset_for_each_extent(x->touched, write_clusters, &mi);
	if (mi.w) {
		int ferr = qcow2_writer_finish(mi.w);

		err = err ? err : ferr;
	}
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return chain_fail(&x->c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: %s", path,
				  strerror(-err));
	}
	snprintf(x->prev, sizeof(x->prev), "%s", name);
	return 0;
}

/* The chain, member by member: applied to the scratch copy, then its image. */
static int export_qcow2(struct export *x, struct blktrack_export_result *res)
{
	const char *slash = strrchr(x->o->output, '/'), *base = slash ? slash + 1 : x->o->output;
	size_t stem_len = strlen(base);
	int err = 0;

	if (!slash)
		snprintf(x->dir, sizeof(x->dir), ".");
	else if (slash == x->o->output)
		snprintf(x->dir, sizeof(x->dir), "/");
	else
		snprintf(x->dir, sizeof(x->dir), "%.*s", (int)(slash - x->o->output),
			 x->o->output);
	if (stem_len > 6 && !strcmp(base + stem_len - 6, ".qcow2"))
		stem_len -= 6;
	snprintf(x->stem, sizeof(x->stem), "%.*s", (int)stem_len, base);
	x->raw = open(x->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	x->buf = malloc(QCOW2_CLUSTER_SIZE);
	if (x->raw < 0 || !x->buf)
		return chain_fail(&x->c, BLKTRACK_FAIL_ERROR, NULL, x->raw < 0 ? -errno : -ENOMEM,
				  "%s: a scratch file: %s", x->dir, strerror(x->raw < 0 ? errno :
				  ENOMEM));
	for (size_t k = 0; !err && k < x->c.n; k++) {
		err = blockset_new(&x->touched);
		if (!err)
			err = member_read(&x->c, k, apply, x);
		if (!err && ftruncate(x->raw, (off_t)x->c.m[k].h.volume_size))
			err = -errno;
		if (!err)
			err = member_image(x, k);
		blockset_free(x->touched);
		x->touched = NULL;
		res->images += !err;
	}
	return err;
}

/* ---- rbd-diff: one backup against its parent's snapshot ------------------ */

/* The snapshot a backup is to rbd (doc/FILES.md, "Exports"). */
static void rbd_snap_name(uint64_t id, char *out, size_t len)
{
	snprintf(out, len, "blktrack-%" PRIu64, id);
}

static int rbd_fail(struct export *x, int err)
{
	const char *out = strcmp(x->o->output, "-") ? x->o->output : "standard output";

	return chain_fail(&x->c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: %s", out, strerror(-err));
}

/* record_fn: the point's DATA and ZERO records, in its order, into the stream. */
static int rbd_record(struct chain *c, struct member *m, const struct bfile_record *rec,
		      void *data)
{
	struct export *x = data;
	int err;

	(void)c;
	(void)m;
	if (rec->tag == BFILE_TAG_DATA)
		err = rbddiff_write(x->rw, rec->offset, rec->length, rec->data);
	else
		err = rbddiff_zero(x->rw, rec->offset, rec->length);
	return err ? rbd_fail(x, err) : 0;
}

/* Standard output for "-"; else OUT.tmp, OUT only once complete. */
static int rbd_open(struct export *x)
{
	if (!strcmp(x->o->output, "-")) {
		x->out = STDOUT_FILENO;
		return 0;
	}
	snprintf(x->tmp, sizeof(x->tmp), "%s.tmp", x->o->output);
	x->out = open(x->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (x->out >= 0)
		return 0;
	x->tmp[0] = '\0';
	return chain_fail(&x->c, BLKTRACK_FAIL_ERROR, NULL, -errno, "%s.tmp: %s",
			  x->o->output, strerror(errno));
}

/* A complete file fsynced and renamed to OUT; after a failure, removed. */
static int rbd_close(struct export *x, int err)
{
	if (!x->tmp[0])
		return err;
	if (!err && fsync(x->out))
		err = rbd_fail(x, -errno);
	close(x->out);
	if (!err && rename(x->tmp, x->o->output))
		err = rbd_fail(x, -errno);
	if (err)
		unlink(x->tmp);
	return err;
}

/*
 * The last member's records between the names of its parent (none for the
 * chain's first: a full or a copy) and its own. Version 1: the one `rbd
 * import-diff` reads (Ceph's Import.cc, do_import_diff(): format 1).
 */
static int rbd_stream(struct export *x, struct blktrack_export_result *res)
{
	struct chain *c = &x->c;
	struct member *m = &c->m[c->n - 1];
	char from[32], to[32];
	int err;

	if (c->n > 1) {
		res->parent_id = c->m[c->n - 2].e->id;
		rbd_snap_name(res->parent_id, from, sizeof(from));
	}
	rbd_snap_name(m->e->id, to, sizeof(to));
	err = rbddiff_begin(x->out, RBDDIFF_V1, c->n > 1 ? from : NULL, to,
			    m->h.volume_size, &x->rw);
	if (err)
		return rbd_fail(x, err);
	c->before = c->total - m->file_size;	/* only the last is read again */
	err = member_read(c, c->n - 1, rbd_record, x);
	if (err)
		return err;
	err = rbddiff_end(x->rw);
	x->rw = NULL;
	return err ? rbd_fail(x, err) : 0;
}

static int export_rbd_diff(struct export *x, struct blktrack_export_result *res)
{
	int err = rbd_open(x);

	if (!err)
		err = rbd_stream(x, res);
	rbddiff_abort(x->rw);
	x->rw = NULL;
	err = rbd_close(x, err);
	res->images = !err;
	return err;
}

BLKTRACK_EXPORT int blktrack_export(struct blktrack_ctx *ctx,
				    const struct blktrack_export_opts *o,
				    struct blktrack_export_result *res)
{
	struct blktrack_restore_opts ro = {
		.repo = o->repo, .backup_id = o->backup_id, .file = o->file,
		.target = o->output, .progress = o->progress, .progress_data = o->progress_data,
		.no_writers = true,
	};
	struct blktrack_restore_result rr;
	struct export x = { .c = { .ctx = ctx, .o = &ro, .res = &rr }, .o = o, .raw = -1,
			    .out = -1 };
	double t0 = now();
	int err;

	memset(res, 0, sizeof(*res));
	memset(&rr, 0, sizeof(rr));
	if (!o->repo || !o->output || o->format > BLKTRACK_EXPORT_RBD_DIFF)
		return blktrack_set_error(ctx, -EINVAL, "export: invalid options");
	if (o->format == BLKTRACK_EXPORT_RAW) {
		err = blktrack_restore(ctx, &ro, &rr);
		res->images = !err;
	} else {
		err = chain_open(&x.c);
		if (!err)
			err = chain_check(&x.c);	/* every member read whole first */
		x.c.before = 0;
		if (!err && o->format == BLKTRACK_EXPORT_QCOW2)
			err = export_qcow2(&x, res);
		else if (!err)
			err = export_rbd_diff(&x, res);
		chain_close(&x.c);
		if (x.raw >= 0)
			close(x.raw);
		free(x.buf);
	}
	res->failure = err ? rr.failure : BLKTRACK_FAIL_NONE;
	res->backup_id = rr.backup_id;
	res->members = rr.members;
	res->volume_size = rr.volume_size;
	res->excluded_bytes = rr.excluded_bytes;
	res->seconds = now() - t0;
	return err;
}
