// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack_verify(), the `verify` command: a
 * repository's chains read whole and checked (records, delta maps, block
 * hash files), optionally against a device.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>

#include "requester/requester.h"

/*
 * Compare with a device without restoring: walk the chain newest first; a
 * block is compared against the newest member that holds it, and marked
 * covered so that older members skip it.
 */
struct compare {
	int fd;
	const char *path;
	struct blockset *covered;
	void *buf;
	void *zeros;
};

static int compare_run(struct chain *c, struct compare *cmp, const struct bfile_record *rec,
		       uint64_t bs, uint64_t first, uint64_t count)
{
	uint64_t off = first * bs, end = (first + count) * bs, rec_end = rec->offset + rec->length;
	int err;

	if (end > rec_end)
		end = rec_end;
	while (off < end) {
		size_t len = end - off < CHUNK_BYTES ? end - off : CHUNK_BYTES, i;
		const char *want = rec->data ? (const char *)rec->data + (off - rec->offset) :
				   cmp->zeros;

		err = fd_pread_all(cmp->fd, cmp->buf, len, off);
		if (err)
			return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: read at %" PRIu64
					  ": %s", cmp->path, off, strerror(-err));
		if (memcmp(cmp->buf, want, len)) {
			for (i = 0; i < len; i += bs) {
				size_t l = len - i < bs ? len - i : bs;

				if (memcmp((char *)cmp->buf + i, want + i, l)) {
					if (!c->res->differ_bytes)
						c->res->first_diff = off + i;
					c->res->differ_bytes += l;
				}
			}
		}
		c->res->bytes += len;
		off += len;
	}
	return 0;
}

static int compare_record(struct chain *c, struct member *m, const struct bfile_record *rec,
			  void *data)
{
	struct compare *cmp = data;
	uint64_t bs = m->h.block_size, b, first = rec->offset / bs;
	uint64_t last = (rec->offset + rec->length + bs - 1) / bs, run = 0;
	int err;

	for (b = first; b <= last; b++) {
		if (b < last && !blockset_contains(cmp->covered, b)) {
			run++;
			continue;
		}
		if (run) {
			err = compare_run(c, cmp, rec, bs, b - run, run);
			if (err)
				return err;
			run = 0;
		}
	}
	return blockset_add_range(cmp->covered, first, last - first);
}

/*
 * The delta maps and block hash files later backups use, whole (issue 13,
 * point 2): the deltas of the committed backups since each volume's newest
 * full (a composition reads no other), and every hash file there is (only
 * the newest base keeps one). They shape later backups, not restores, but
 * damage there is damage in the repository: exit 4, naming the file. A
 * hash file must be sound, its entry's, of its volume's size and block size.
 */
static int check_side_entry(struct chain *c, const struct repo_entry *e, bool old)
{
	char path[4096], name[REPO_NAME_MAX];
	struct blockset *d;
	uint64_t size;
	struct repo_file *file;
	uint32_t bs;
	int err;

	if (!old) {
		err = repo_load_delta(c->r, e->id, &d);
		if (err) {
			snprintf(path, sizeof(path), "%s/%s", repo_path(c->r), e->delta);
			return chain_fail(c, BLKTRACK_FAIL_CORRUPT, path, err == -ENOMEM ? err :
					  -EBADMSG, "%s (the next backups of volume %s resync "
					  "until a full backup)", repo_error(c->r),
					  e->to.volume_id);
		}
		blockset_free(d);
	}
	err = repo_hashes_open(c->r, e->id, &file);
	if (err == -ENOENT)
		return 0;
	repo_hashes_name(e->id, name);
	snprintf(path, sizeof(path), "%s/%s", repo_path(c->r), name);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CORRUPT, path, -EBADMSG, "%s",
				  repo_error(c->r));
	err = blockhash_check_fn(repo_file_read, file, &size, &bs);
	repo_file_close(file);
	if (!err && (size != e->to.size || bs != e->to.block_size))
		err = -ESTALE;
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CORRUPT, path, -EBADMSG,
				  "%s (block hashes of backup %" PRIu64 "): %s", path,
				  e->id, err == -ESTALE ? "of another volume size or block "
				  "size" : err == -EBADMSG ? "corrupt" : strerror(-err));
	return 0;
}

/* @vol is among the @nf volumes whose newest full was seen. */
static bool full_seen(const char **fulls, size_t nf, const char *vol)
{
	size_t k;

	for (k = 0; k < nf; k++)
		if (!strcmp(fulls[k], vol))
			return true;
	return false;
}

static int check_side_files(struct chain *c)
{
	size_t i = repo_count(c->r), nf = 0;
	const char **fulls = calloc(i + 1, sizeof(*fulls));
	int err = 0;

	if (!fulls)
		return -ENOMEM;
	while (i-- > 0 && !err) {
		const struct repo_entry *e = repo_entry_at(c->r, i);
		bool seen;

		if (e->state != REPO_COMMITTED)
			continue;
		seen = full_seen(fulls, nf, e->to.volume_id);
		err = check_side_entry(c, e, seen);
		if (e->type == REPO_FULL && !seen)
			fulls[nf++] = e->to.volume_id;
	}
	free(fulls);
	return err;
}

BLKTRACK_EXPORT int blktrack_verify(struct blktrack_ctx *ctx,
				    const struct blktrack_restore_opts *o,
				    struct blktrack_restore_result *res)
{
	struct chain c = { .ctx = ctx, .o = o, .res = res };
	struct compare cmp = { .fd = -1, .path = o->against };
	double t0 = now();
	uint64_t size;
	size_t k;
	int err;

	memset(res, 0, sizeof(*res));
	res->failure = BLKTRACK_FAIL_ERROR;
	if (!o->repo)
		return blktrack_set_error(ctx, -EINVAL, "verify: invalid options");
	err = chain_open(&c);
	if (!err)
		err = chain_check(&c);
	if (!err)
		err = check_side_files(&c);
	if (err || !o->against)
		goto done;

	cmp.fd = open_volume(o->against);
	if (cmp.fd < 0 || (err = fd_size(cmp.fd, &size)) < 0) {
		err = chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, cmp.fd < 0 ? -errno : err,
				 "%s: %s", o->against, strerror(cmp.fd < 0 ? errno : -err));
		goto done;
	}
	if (size != res->volume_size) {
		err = chain_fail(&c, BLKTRACK_FAIL_MISMATCH, NULL, -EBADE, "%s has %" PRIu64
				 " bytes, the backup %" PRIu64, o->against, size,
				 res->volume_size);
		goto done;
	}
	err = blockset_new(&cmp.covered);
	/* What the writers excluded is not the point's: not compared (reported instead). */
	if (!err && c.excluded)
		err = blockset_or(cmp.covered, c.excluded);
	if (!err && (posix_memalign(&cmp.buf, ALIGN, CHUNK_BYTES) ||
		     !(cmp.zeros = calloc(1, CHUNK_BYTES))))
		err = -ENOMEM;
	if (err)
		goto done;
	res->bytes = 0;
	c.before = 0;
	for (k = c.n; k-- > 0;) {
		err = member_read(&c, k, compare_record, &cmp);
		if (err)
			goto done;
	}
	if (res->differ_bytes) {
		err = chain_fail(&c, BLKTRACK_FAIL_MISMATCH, NULL, -EBADE,
				 "%s differs from backup %" PRIu64 ": %" PRIu64
				 " bytes, the first in the block at offset %" PRIu64, o->against,
				 res->backup_id, res->differ_bytes, res->first_diff);
		goto done;
	}
	if (res->bytes + res->excluded_bytes < res->volume_size) {
		err = chain_fail(&c, BLKTRACK_FAIL_CORRUPT, c.m[0].path, -EBADMSG,
				 "the chain of backup %" PRIu64 " covers %" PRIu64 " of %"
				 PRIu64 " bytes", res->backup_id, res->bytes, res->volume_size);
		goto done;
	}
done:
	if (!err) {
		res->failure = BLKTRACK_FAIL_NONE;
		res->seconds = now() - t0;
	}
	if (cmp.fd >= 0)
		close(cmp.fd);
	blockset_free(cmp.covered);
	free(cmp.buf);
	free(cmp.zeros);
	chain_close(&c);
	return err;
}
