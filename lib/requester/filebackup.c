// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: per-file backups (blktrack backup --file,
 * doc/FILES.md). A file on a tracked volume is backed up as a volume of its
 * own, its chain in the repository named "file:HASH": the same phases as a
 * volume's backup (backup.c), with these steps in them:
 *
 *	file_open       the file and the block device under it
 *	file_chain      the chain's id, from the volume's id and the path
 *	file_sync       its dirty pages written before the freeze
 *	file_map        its extent map at the checkpoint (FIEMAP)
 *	file_delta      the volume's changed blocks mapped onto the file, and
 *	                every range placed otherwise than at the last backup
 *	file_read       the file's bytes at the checkpoint: through the
 *	                snapshot by the map, or from the file while it is frozen
 *
 * Each backup file of the chain carries the map it was taken with (FMAP
 * records, doc/FORMAT.md): the next backup compares its own with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "format/filemap.h"
#include "requester/requester.h"

/* Bytes of the file read through the snapshot at once: bounced, under SNAP_READ_MAX. */
#define SNAP_PIECE_MAX	(BLKTRACK_SNAP_READ_MAX / 2)

int file_open(struct backup *b)
{
	const struct blktrack_backup_opts *o = b->o;
	struct stat st;
	int err;

	if (!realpath(o->file, b->file_path))
		return blktrack_set_error(b->ctx, -errno, "%s: %s", o->file, strerror(errno));
	if (strlen(b->file_path) >= REPO_PATH_MAX)
		return blktrack_set_error(b->ctx, -ENAMETOOLONG, "%s: a path of %zu bytes: "
					  "the repository keeps %d at most", b->file_path,
					  strlen(b->file_path), REPO_PATH_MAX - 1);
	b->file_fd = open(b->file_path, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (b->file_fd < 0 && errno == EPERM)
		b->file_fd = open(b->file_path, O_RDONLY | O_CLOEXEC);
	if (b->file_fd < 0 || fstat(b->file_fd, &st))
		return blktrack_set_error(b->ctx, -errno, "%s: %s", o->file, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return blktrack_set_error(b->ctx, -EINVAL, "%s: not a regular file", o->file);
	err = fs_block_device(st.st_dev, b->dev_path, sizeof(b->dev_path));
	if (err == -ENODEV)
		return blktrack_set_error(b->ctx, err, "%s: its filesystem is on no block "
					  "device (tmpfs, NFS, btrfs...): blktrack tracks "
					  "block devices", o->file);
	if (err)
		return blktrack_set_error(b->ctx, err, "%s: its block device: %s", o->file,
					  strerror(-err));
	b->fo = *o;
	b->fo.device = b->dev_path;
	b->o = &b->fo;
	b->env.file = b->file_path;
	return 0;
}

int file_chain(struct backup *b)
{
	XXH3_state_t *h = XXH3_createState();

	if (!h)
		return blktrack_set_error(b->ctx, -ENOMEM, "%s", strerror(ENOMEM));
	XXH3_64bits_reset(h);
	XXH3_64bits_update(h, b->volume_id, strlen(b->volume_id) + 1);
	XXH3_64bits_update(h, b->file_path, strlen(b->file_path));
	snprintf(b->res->volume_id, sizeof(b->res->volume_id), "file:%016" PRIx64,
		 (uint64_t)XXH3_64bits_digest(h));
	XXH3_freeState(h);
	return 0;
}

int file_sync(struct backup *b)
{
	if (!fsync(b->file_fd))
		return 0;
	snprintf(b->msg, sizeof(b->msg), "%s: fsync: %s", b->file_path, strerror(errno));
	return -errno;
}

int file_map(struct backup *b)
{
	char why[256];
	int err = fs_file_map(b->file_fd, &b->fmap, why, sizeof(why));

	if (err == -EOPNOTSUPP)
		snprintf(b->msg, sizeof(b->msg), "%s: the filesystem gives no extent map "
			 "(FIEMAP): its changes cannot be told from the volume's", b->file_path);
	else if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: FIEMAP: %s", b->file_path, strerror(-err));
	if (err)
		return err;
	b->has_fmap = true;
	if (!b->fmap.trusted && b->cow) {
		/* The snapshot is read by the map: a byte it cannot place cannot be read. */
		snprintf(b->msg, sizeof(b->msg), "%s: %s: it cannot be read through the "
			 "snapshot (--snapshot freeze reads the frozen file)", b->file_path, why);
		return -EOPNOTSUPP;
	}
	if (!b->fmap.trusted) {
		snprintf(b->res->whole_file_why, sizeof(b->res->whole_file_why), "%s", why);
		warning(b->ctx, "%s: %s: this backup and the next hold the whole file",
			b->file_path, why);
	}
	if (!strcmp(b->res->freeze, "none"))
		warning(b->ctx, "%s: mapped without a filesystem freeze: exact only if the "
			"writers held the file quiet", b->file_path);
	return 0;
}

/* The map of the chain's newest backup: 0, or -ENOENT when there is none to use. */
static int last_map(struct backup *b, struct filemap *prev)
{
	const struct repo_entry *e = NULL;
	struct repo_file *file;
	char why[256];
	int err;

	for (size_t i = repo_count(b->r); i-- > 0 && !e;) {
		e = repo_entry_at(b->r, i);
		if (e->state != REPO_COMMITTED || strcmp(e->to.volume_id, b->res->volume_id))
			e = NULL;
	}
	if (!e)
		return -ENOENT;
	err = repo_file_open(b->r, e->file, &file);
	if (err) {
		snprintf(why, sizeof(why), "%s", repo_error(b->r));
	} else {
		err = filemap_read_records(repo_file_read, file, prev, why, sizeof(why));
		repo_file_close(file);
	}
	if (err)
		warning(b->ctx, "%s: the extent map of backup %" PRIu64 " is unusable (%s): "
			"this backup holds the whole file", b->file_path, e->id, why);
	return err;
}

int file_delta(struct backup *b)
{
	struct filemap prev;
	bool have = b->r && !last_map(b, &prev);
	int err;

	b->vol_delta = b->delta;
	b->delta = NULL;
	err = filemap_changed(&b->fmap, have ? &prev : NULL, b->vol_delta, b->st.block_size,
			      &b->delta);
	if (have)
		filemap_free(&prev);
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: its changed blocks: %s", b->file_path,
			 strerror(-err));
	return err;
}

int file_want(struct backup *b)
{
	int err;

	blockset_free(b->vol_want);
	b->vol_want = NULL;
	err = filemap_volume_blocks(&b->fmap, b->want, b->st.block_size, &b->vol_want);
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: %s", b->file_path, strerror(-err));
	return err;
}

int file_write_map(struct backup *b)
{
	int err = filemap_write_records(b->w, &b->fmap, b->h.record_max);

	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: %s", b->res->file,
			 bfile_writer_error(b->w));
	return err;
}

/*
 * Volume bytes [@phys, @phys + @n) from the snapshot, which reads whole
 * tracking blocks: an extent need not start or end on one (4 KiB
 * filesystem blocks under 64 KiB tracking, the file's partial last block).
 * Blocks are kept once read: two pieces of the file, or two files sharing
 * blocks, may need one block twice (the rest was released, and the
 * snapshot goes at the COMMIT or ABORT).
 */
static int snap_bytes(struct backup *b, uint8_t *buf, uint64_t n, uint64_t phys)
{
	uint64_t bs = b->st.block_size, a0 = phys / bs * bs;
	uint64_t a1 = (phys + n + bs - 1) / bs * bs;
	uint8_t *bounce;
	int err;

	if (a1 > b->st.dev_size)
		a1 = b->st.dev_size;
	if (a0 == phys && a1 == phys + n)
		return blktrack_snap_read(b->ctx, b->dev, &b->stamp, phys, n, buf,
					  BLKTRACK_SNAP_READ_KEEP);
	bounce = malloc(a1 - a0);
	if (!bounce)
		return -ENOMEM;
	err = blktrack_snap_read(b->ctx, b->dev, &b->stamp, a0, a1 - a0, bounce,
				 BLKTRACK_SNAP_READ_KEEP);
	if (!err)
		memcpy(buf, bounce + (phys - a0), n);
	free(bounce);
	return err;
}

/* Bytes [@off, @off + @len) of the file as they were at the checkpoint, from the snapshot. */
static int snap_file_read(struct backup *b, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t phys, n;
	int err = 0;

	while (!err && len) {
		/* At most a SNAP_READ's worth with the bounce's two blocks around it. */
		filemap_piece(&b->fmap, off, len < SNAP_PIECE_MAX ? len : SNAP_PIECE_MAX, &phys, &n);
		if (phys == UINT64_MAX)
			memset(buf, 0, n);
		else
			err = snap_bytes(b, buf, n, phys);
		buf += n;
		off += n;
		len -= n;
	}
	return err;
}

int file_read(void *rdata, void *buf, size_t len, uint64_t off)
{
	struct backup *b = rdata;
	int err;

	if (b->cow)
		return snap_file_read(b, buf, len, off);
	err = fd_pread_all(b->file_fd, buf, len, off);
	return err == -ENODATA ? -ESTALE : err;	/* -ESTALE: it shrank since its map */
}

static bool same_map(const struct filemap *a, const struct filemap *b)
{
	if (a->size != b->size || a->n != b->n || a->trusted != b->trusted)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->ext[i].logical != b->ext[i].logical ||
		    a->ext[i].physical != b->ext[i].physical ||
		    a->ext[i].length != b->ext[i].length || a->ext[i].flags != b->ext[i].flags)
			return false;
	return true;
}

int file_moved_during_read(struct backup *b, uint64_t *bytes)
{
	struct filemap now;
	char why[256];
	int err;

	if (b->cow)
		return 0;	/* the snapshot gave every byte as it was */
	err = fs_file_map(b->file_fd, &now, why, sizeof(why));
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "%s: FIEMAP: %s", b->file_path, strerror(-err));
		return err;
	}
	if (!same_map(&now, &b->fmap))
		*bytes = b->fmap.size;	/* placed otherwise: any byte may be newer */
	filemap_free(&now);
	return 0;
}
