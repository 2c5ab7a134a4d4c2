// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: writers naming ranges (doc/WRITERS.md,
 * "Ranges"). At post-snapshot each writer may leave lines in its
 * BLKTRACK_RANGES_FILE:
 *
 *	add PATH                      exclude PATH
 *	add START LENGTH PATH         exclude START LENGTH PATH
 *
 * PATH is a member of the set (its device, or its file for a per-file
 * backup: bytes of the member), or a regular file on a member volume (the
 * bytes of that file, placed by its extents). An added block is backed up
 * whether it changed or not; an excluded one is not read, and the backup
 * file records it (EXCL records) so that a restore says it holds older
 * contents there. An addition wins over an exclusion.
 *
 * Exclusion never drops a block that is not the writer's: only whole
 * blocks inside the range are excluded; a file's extents must all be
 * placed and none shared with another file; a file's block written since
 * the checkpoint (its allocation may have moved onto a block that held
 * other data at the checkpoint) stays in the backup.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "requester/requester.h"

#define RANGES_FILE_MAX	(1U << 20)	/* bytes of one writer's ranges file */

/* One line, resolved: the member it is of, and the byte range in its terms. */
struct wline {
	bool add;
	uint64_t start, len;		/* len UINT64_MAX: to the end */
	char path[PATH_MAX];
	struct backup *m;		/* the member whose blocks it names */
	bool on_volume;			/* a file on m's volume, placed by its extents */
};

/* The member bytes [start, start + len) as blocks: outward to add, inward to exclude. */
static int byte_blocks(struct blockset *s, uint64_t start, uint64_t len, uint64_t size,
		       uint32_t bs, bool add)
{
	uint64_t end = len >= size || start + len < start || start + len > size ?
		       size : start + len;
	uint64_t first, last;

	if (start >= end)
		return 0;
	first = add ? start / bs : (start + bs - 1) / bs;
	/* The member's partial last block is whole when the range reaches the end. */
	last = add || end == size ? (end + bs - 1) / bs : end / bs;
	return last > first ? blockset_add_range(s, first, last - first) : 0;
}

/* A file on member @m's volume: the volume blocks of its bytes in @l's range. */
static int file_blocks(struct backup *m, const struct wline *l, struct blockset *s,
		       char *msg, size_t len)
{
	uint32_t bs = m->st.block_size;
	struct blockset *written = NULL;
	struct filemap fm;
	char why[256];
	int fd, err;

	fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, len, "%s: %s", l->path, strerror(errno));
		return -errno;
	}
	err = fs_file_map(fd, &fm, why, sizeof(why));
	/*
	 * Its data written out after the map: a block the file took since the
	 * checkpoint (it may have held another file's data then) is then in
	 * the active map, whatever the filesystem's allocation policy.
	 */
	if (!err && !l->add && fdatasync(fd))
		err = -errno;
	if (!err && fs_file_unplaceable(fd, why, sizeof(why)))
		fm.trusted = false;
	close(fd);
	if (err) {
		snprintf(msg, len, "%s: FIEMAP: %s", l->path, strerror(-err));
		return err;
	}
	if (!fm.trusted || (!l->add && fm.shared)) {
		snprintf(msg, len, "%s: %s: its blocks cannot be %s", l->path,
			 fm.trusted ? "it shares extents with another file" : why,
			 l->add ? "placed" : "excluded");
		filemap_free(&fm);
		return -EINVAL;
	}
	for (size_t i = 0; !err && i < fm.n; i++) {
		const struct fext *e = &fm.ext[i];
		uint64_t a = e->logical > l->start ? e->logical : l->start;
		uint64_t b = l->len == UINT64_MAX || l->start + l->len < l->start ||
			     l->start + l->len > e->logical + e->length ?
			     e->logical + e->length : l->start + l->len;

		if (a >= b || (!l->add && (e->flags & FILEMAP_UNWRITTEN)))
			continue;	/* outside, or zeros that hold nothing to exclude */
		err = byte_blocks(s, e->physical + (a - e->logical), b - a, m->st.dev_size, bs,
				  l->add);
	}
	filemap_free(&fm);
	if (!err && !l->add)
		err = active_set(m, m->dev, &written);
	if (!err && written)
		err = blockset_andnot(s, written);
	blockset_free(written);
	if (err && !msg[0])
		snprintf(msg, len, "%s: %s", l->path, strerror(-err));
	return err;
}

/* The member @l->path names: a member itself, or a file on a member volume. */
static int resolve(struct bset *s, struct wline *l, char *msg, size_t len)
{
	char real[PATH_MAX];
	struct stat st;
	dev_t dev;
	size_t i;

	/* A device, as the context's kernel names it. */
	for (i = 0; !kernel_dev_from_path(s->ctx, l->path, &dev) && i < s->n; i++)
		if (!s->m[i].file && s->m[i].dev == dev) {
			l->m = &s->m[i];
			return 0;
		}
	if (stat(l->path, &st) || (S_ISREG(st.st_mode) && !realpath(l->path, real))) {
		snprintf(msg, len, "%s: %s", l->path, strerror(errno));
		return -errno;
	}
	for (i = 0; S_ISREG(st.st_mode) && i < s->n; i++)
		if (s->m[i].file && !strcmp(s->m[i].file_path, real)) {
			l->m = &s->m[i];
			return 0;
		}
	for (i = 0; S_ISREG(st.st_mode) && i < s->n; i++)
		if (!s->m[i].file && s->m[i].dev == st.st_dev) {
			l->m = &s->m[i];
			l->on_volume = true;
			snprintf(l->path, sizeof(l->path), "%s", real);
			return 0;
		}
	snprintf(msg, len, "%s: neither a member of the backup nor a regular file on a "
		 "member volume", l->path);
	return -ENOENT;
}

/* "add|exclude [START LENGTH] PATH" into @l; -EINVAL for anything else. */
static int parse(char *line, struct wline *l)
{
	char *p = line, *end;

	memset(l, 0, sizeof(*l));
	if (!strncmp(p, "add ", 4)) {
		l->add = true;
		p += 4;
	} else if (!strncmp(p, "exclude ", 8)) {
		p += 8;
	} else {
		return -EINVAL;
	}
	l->len = UINT64_MAX;
	if (*p != '/') {
		errno = 0;
		l->start = isdigit((unsigned char)*p) ? strtoull(p, &end, 10) : 0;
		if (!isdigit((unsigned char)*p) || errno || *end != ' ')
			return -EINVAL;
		p = end + 1;
		l->len = isdigit((unsigned char)*p) ? strtoull(p, &end, 10) : 0;
		if (!isdigit((unsigned char)*p) || errno || *end != ' ' || !l->len)
			return -EINVAL;
		p = end + 1;
	}
	if (*p != '/' || strlen(p) >= sizeof(l->path))
		return -EINVAL;
	strcpy(l->path, p);
	return 0;
}

/* The member's sets, made on first use. */
static int member_sets(struct backup *m)
{
	int err = m->radd ? 0 : blockset_new(&m->radd);

	if (!err && !m->rexcl)
		err = blockset_new(&m->rexcl);
	return err;
}

/* One line of writer @name: its blocks into *@add or *@excl of its member. */
static int one_line(struct bset *s, char *text, unsigned int no, const char *name,
		    struct blockset **add, struct blockset **excl, char *msg, size_t len)
{
	struct wline l;
	struct backup *m;
	size_t k;
	int err;

	if (parse(text, &l)) {
		snprintf(msg, len, "writer %s: its ranges, line %u: not 'add|exclude [START "
			 "LENGTH] /PATH': rejected", name, no);
		return -EINVAL;
	}
	err = resolve(s, &l, msg, len);
	m = l.m;
	k = m ? (size_t)(m - s->m) : 0;
	if (!err)
		err = member_sets(m);
	if (!err && !add[k])
		err = blockset_new(&add[k]);
	if (!err && !excl[k])
		err = blockset_new(&excl[k]);
	if (err)
		goto out;
	if (l.on_volume)
		err = file_blocks(m, &l, l.add ? add[k] : excl[k], msg, len);
	else
		err = byte_blocks(l.add ? add[k] : excl[k], l.start, l.len,
				  m->file ? m->fmap.size : m->st.dev_size, m->st.block_size, l.add);
out:
	if (err && msg[0] && strncmp(msg, "writer ", 7)) {
		char why[512];

		snprintf(why, sizeof(why), "%s", msg);
		snprintf(msg, len, "writer %s: its ranges, line %u: %s", name, no, why);
	}
	return err;
}

/* Writer @name's file (none: nothing named) into its members; its tallies. */
static int one_writer(struct bset *s, const char *dir, const char *name, char *msg,
		      size_t len, uint64_t *added, uint64_t *excluded)
{
	struct blockset *add[BLKTRACK_SET_MAX] = { 0 }, *excl[BLKTRACK_SET_MAX] = { 0 };
	char path[PATH_MAX], *text = NULL, *line, *next;
	unsigned int no = 0;
	size_t n = 0, i;
	int err = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	text = malloc(RANGES_FILE_MAX + 1);
	if (text)
		n = fread(text, 1, RANGES_FILE_MAX + 1, f);
	fclose(f);
	if (!text)
		return -ENOMEM;
	if (n > RANGES_FILE_MAX) {
		snprintf(msg, len, "writer %s: its ranges take more than %u bytes: rejected",
			 name, RANGES_FILE_MAX);
		err = -E2BIG;
	}
	text[n < RANGES_FILE_MAX ? n : RANGES_FILE_MAX] = 0;
	for (line = text; !err && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		no++;
		if (*line && *line != '#')
			err = one_line(s, line, no, name, add, excl, msg, len);
	}
	for (i = 0; i < s->n; i++) {
		uint32_t bs = s->m[i].st.block_size;

		if (!err && add[i]) {
			*added += blockset_cardinality(add[i]) * bs;
			*excluded += blockset_cardinality(excl[i]) * bs;
			err = blockset_or(s->m[i].radd, add[i]);
			if (!err)
				err = blockset_or(s->m[i].rexcl, excl[i]);
		}
		blockset_free(add[i]);
		blockset_free(excl[i]);
	}
	free(text);
	return err;
}

/*
 * post-snapshot, each writer given a file to name ranges in
 * (BLKTRACK_RANGES_FILE); what they named goes to each member's radd and
 * rexcl, the tallies to every member's result.
 */
int post_snapshot(struct bset *s)
{
	struct backup *lead = &s->m[0];
	struct blktrack_backup_result *res = lead->res;
	size_t i, used = 0;
	int err = writer_dir(lead);

	lead->env.ranges_dir = lead->stamp_dir[0] ? lead->stamp_dir : NULL;
	if (!err)
		err = wevent(lead, res, "post-snapshot", true);
	for (i = 0; !err && lead->env.ranges_dir && i < writers_count(lead->wr); i++) {
		const char *name = writers_name(lead->wr, i);
		uint64_t added = 0, excluded = 0;
		int k;

		err = one_writer(s, lead->stamp_dir, name, lead->msg, sizeof(lead->msg),
				 &added, &excluded);
		if (err) {
			res->failure = BLKTRACK_FAIL_WRITER;
			if (!lead->msg[0])
				snprintf(lead->msg, sizeof(lead->msg), "writer %s: its ranges: %s",
					 name, strerror(-err));
		} else if (added || excluded) {
			k = snprintf(res->writer_ranges + used, sizeof(res->writer_ranges) - used,
				     "%s\t%" PRIu64 "\t%" PRIu64 "\n", name, added, excluded);
			if (k > 0 && (size_t)k < sizeof(res->writer_ranges) - used)
				used += k;
		}
	}
	lead->env.ranges_dir = NULL;
	writer_stamps_clean(lead);
	for (i = 1; !err && i < s->n; i++)
		memcpy(s->m[i].res->writer_ranges, res->writer_ranges, sizeof(res->writer_ranges));
	return err;
}

/*
 * Compose: the added blocks to read, the excluded ones not to (an addition
 * wins); b->excluded, what this backup file records as not held.
 */
int ranges_apply(struct backup *b)
{
	uint64_t nblocks = b->size / b->block_size + !!(b->size % b->block_size);
	struct blockset *was = NULL, *dropped = NULL;
	int err;

	if (!b->radd)
		return 0;
	if (b->type == BLKTRACK_BACKUP_RESYNC) {
		/* It reads and compares the whole member: nothing is left out. */
		if (blockset_cardinality(b->rexcl))
			warning(b->ctx, "%s: a resync reads every block: the writers' exclusions "
				"do not apply", b->file ? b->file_path : b->o->device);
		return 0;
	}
	/* Past the end (a file that shrank since it was named): nothing. */
	blockset_remove_range(b->radd, nblocks, BLOCKSET_MAX_BLOCKS);
	blockset_remove_range(b->rexcl, nblocks, BLOCKSET_MAX_BLOCKS);
	err = blockset_andnot(b->rexcl, b->radd);
	if (!err)
		err = blockset_copy(b->want, &was);
	if (!err)
		err = blockset_or(b->want, b->radd);
	if (!err)
		err = blockset_andnot(b->want, b->rexcl);
	if (!err)
		err = blockset_copy(was, &dropped);
	if (!err)
		err = blockset_andnot(dropped, b->want);	/* to read, now excluded */
	if (!err) {
		uint64_t kept = blockset_cardinality(was) - blockset_cardinality(dropped);

		b->res->excluded_bytes = blockset_cardinality(dropped) * b->block_size;
		b->res->added_bytes = (blockset_cardinality(b->want) - kept) * b->block_size;
	}
	blockset_free(was);
	blockset_free(dropped);
	if (!err && blockset_cardinality(b->rexcl)) {
		b->excluded = b->rexcl;
		b->rexcl = NULL;
	}
	if (err)
		snprintf(b->msg, sizeof(b->msg), "the writers' ranges: %s", strerror(-err));
	return err;
}

/* The EXCL record: the blocks this backup does not hold because a writer said so. */
int ranges_write(struct backup *b)
{
	void *buf;
	size_t len;
	int err;

	if (!b->excluded)
		return 0;
	err = blockset_serialize(b->excluded, &buf, &len);
	if (err)
		return err;
	if (len > BFILE_EXT_PAYLOAD_MAX) {
		snprintf(b->msg, sizeof(b->msg), "the writers excluded %" PRIu64 " ranges: more "
			 "than a backup file records", blockset_cardinality(b->excluded));
		err = -E2BIG;
	} else {
		err = bfile_write_extension(b->w, BFILE_TAG_EXCL, BFILE_REC_SKIPPABLE, 0, buf,
					    len);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "%s: %s", b->res->file,
				 bfile_writer_error(b->w));
	}
	free(buf);
	return err;
}

/* A member's EXCL record, read back: its blocks into *@into. */
int excl_record(struct chain *c, const struct member *m, const struct bfile_record *rec,
		struct blockset **into)
{
	struct blockset *s = NULL;
	int err = blockset_deserialize(rec->data, rec->stored_len, &s);

	if (!err && *into)
		err = blockset_or(*into, s);
	if (!err && !*into) {
		*into = s;
		s = NULL;
	}
	blockset_free(s);
	if (err)
		return chain_fail(c, err == -ENOMEM ? BLKTRACK_FAIL_ERROR : BLKTRACK_FAIL_CORRUPT,
				  m->path, err, "%s (backup %" PRIu64 "): its EXCL record is "
				  "damaged", m->path, m->e->id);
	return 0;
}
