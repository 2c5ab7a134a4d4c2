// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: blktrack_backup(): one backup, from the
 * repository's recovery to COMMIT (the two-phase protocol below).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include "requester/requester.h"

_Static_assert(BLKTRACK_WRITER_STAMPS_MAX == REPO_WRITER_STAMPS_MAX,
	       "a backup's writer stamps fit its catalog entry");

static int whole_volume(uint64_t size, uint32_t bs, struct blockset **out)
{
	int err = blockset_new(out);

	if (!err)
		err = blockset_add_range(*out, 0, size / bs + !!(size % bs));
	return err;
}

/*
 * The volume id a repository keeps: "TYPE:ID". A device number is valid for
 * this boot only (two equal disks may swap numbers at the next): it carries
 * the boot id, so that after a reboot the volume is a new one, never the
 * continuation of whichever disk had its number before.
 */
static int persistent_volume_id(const struct blktrack_volume_id *vid, char *out,
				size_t len)
{
	char boot[64] = "", *p, *q;
	FILE *f;
	int n;

	if (blktrack_volume_id_stable(vid)) {
		n = snprintf(out, len, "%s:%s", vid->id_type, vid->id);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return -errno;
	if (!fgets(boot, sizeof(boot), f))
		boot[0] = 0;
	fclose(f);
	for (p = q = boot; *p; p++)	/* the hex digits, without dashes */
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
			*q++ = *p;
	*q = 0;
	if (q - boot < 12)
		return -EIO;
	n = snprintf(out, len, "%s:%s@boot-%.12s", vid->id_type, vid->id, boot);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ==== the phases ==========================================================
 *
 * Each phase starts where the one before it ended (expect()) and moves
 * b->phase forward as soon as it holds something that a failure must undo;
 * backup_unwind() undoes exactly that and backup_release() frees what was
 * built. A phase that fails leaves its message in b->msg, or in the
 * context's error when b->msg is empty.
 */

static const char *const phase_names[] = {
	[BACKUP_NEW] = "new", [BACKUP_OPEN] = "open", [BACKUP_PREPARED] = "prepared",
	[BACKUP_FROZEN] = "frozen", [BACKUP_CHECKPOINTED] = "checkpointed",
	[BACKUP_COMPOSED] = "composed", [BACKUP_BEGUN] = "begun",
	[BACKUP_WRITTEN] = "written", [BACKUP_CHECKED] = "checked",
	[BACKUP_COMMITTED] = "committed", [BACKUP_DONE] = "done",
};

static int expect(struct backup *b, enum backup_phase p)
{
	if (b->phase == p)
		return 0;
	snprintf(b->msg, sizeof(b->msg), "internal error: a backup phase after '%s' "
		 "called at '%s'", phase_names[p], phase_names[b->phase]);
	return -EPROTO;
}

/* The options alone, before anything is opened. */
int backup_check_options(struct backup *b)
{
	const struct blktrack_backup_opts *o = b->o;

	if ((!o->device && !o->file) || (!o->repo && !b->streaming) ||
	    o->type > BLKTRACK_BACKUP_RESYNC ||
	    o->on_invalid > BLKTRACK_ON_INVALID_RESYNC || o->snapshot > BLKTRACK_SNAPSHOT_NONE)
		return blktrack_set_error(b->ctx, -EINVAL, "backup: invalid options");
	if (o->file && o->verify_source)
		return blktrack_set_error(b->ctx, -EINVAL, "--verify-source reads a volume "
					  "again, not a file (--file): the verify writer "
					  "checks a per-file backup");
	if (!o->repo && b->type == BLKTRACK_BACKUP_AUTO)
		b->type = BLKTRACK_BACKUP_COPY;
	if (!o->repo && b->type != BLKTRACK_BACKUP_FULL && b->type != BLKTRACK_BACKUP_COPY)
		return blktrack_set_error(b->ctx, -EINVAL, "an incremental, differential or "
					  "resync needs the repository that holds its base (--repo)");
	return 0;
}

/* The device, its number and the id the repository knows it by. */
static int identify(struct backup *b)
{
	const char *dev_path = b->o->device;
	struct blktrack_ctx *ctx = b->ctx;
	struct blktrack_volume_id vid;
	char *vol_id = b->res->volume_id;
	int err;

	err = kernel_dev_from_path(ctx, dev_path, &b->dev);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: %s", dev_path, err == -ENOTBLK ?
					  "not a block device" : strerror(-err));
	err = kernel_volume_identify(ctx, dev_path, &vid);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: cannot identify the volume: %s",
					  dev_path, strerror(-err));
	if (strlen(vid.id_type) + 1 + strlen(vid.id) >= BFILE_VOLUME_ID_LEN)
		return blktrack_set_error(ctx, -ENAMETOOLONG, "%s: volume id %s:%s is too long",
					  dev_path, vid.id_type, vid.id);
	err = persistent_volume_id(&vid, vol_id, BFILE_VOLUME_ID_LEN);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: volume id %s:%s: %s", dev_path,
					  vid.id_type, vid.id, strerror(-err));
	if (!blktrack_volume_id_stable(&vid))
		blktrack_log_cond(ctx, LOG_NOTICE, "%s: no stable identity (no filesystem or "
				  "partition UUID, no WWN or serial, no dm or md UUID): "
				  "the repository knows it as %s for this boot only; "
				  "after a reboot it is a new volume (a full backup)\n",
				  dev_path, vol_id);
	snprintf(b->volume_id, sizeof(b->volume_id), "%s", vol_id);
	return b->file ? file_chain(b) : 0;
}

/* Repair what a crashed requester left: its catalog, the kernel's checkpoint. */
static int recover(struct backup *b)
{
	struct blktrack_backup_result *res = b->res;
	struct repo_kernel_state ks = { .attached = true };
	struct blktrack_ctx *ctx = b->ctx;
	const struct blktrack_backup_opts *o = b->o;
	struct repo_recovery rec;
	int err;

	if (!b->lead) {
		b->r = b->set->m[0].r;	/* the lead's, opened before */
	} else {
		/* Never REPO_CREATE: a repository is made by blktrack init only. */
		err = repo_open_wait(o->repo, 0, o->lock_wait < 0 ? REPO_WAIT_FOREVER :
				     (unsigned int)o->lock_wait, &b->r);
		if (err)
			return blktrack_set_error(ctx, err, "%s",
						  b->r ? repo_error(b->r) : strerror(-err));
	}
	if (b->vol != b)
		return 0;		/* its volume's member recovered it */
	snprintf(ks.volume_id, sizeof(ks.volume_id), "%s", res->volume_id);
	ks.pending = b->st.flags & BLKTRACK_STATUS_PENDING;
	ks.stamp = b->st.stamp;
	err = repo_recover(b->r, &ks, &rec);
	if (err)
		return blktrack_set_error(ctx, err, "%s", repo_error(b->r));
	if (rec.action == REPO_ACTION_ABORT) {
		err = blktrack_abort(ctx, b->dev, &rec.stamp);
		res->recovery = "abort";
	} else if (rec.action == REPO_ACTION_COMMIT) {
		err = blktrack_commit(ctx, b->dev, &rec.stamp);
		res->recovery = "commit";
	}
	if (err < 0 || rec.action == REPO_ACTION_NONE)
		return err;
	warning(ctx, "recovery: %s of the pending checkpoint, %u entries dropped",
		res->recovery, rec.dropped);
	return blktrack_status(ctx, b->dev, &b->st);
}

/* NEW: the device (a file's: the volume under it), its id, its state. */
int backup_identify(struct backup *b)
{
	int err = expect(b, BACKUP_NEW);

	if (!err && b->file)
		err = file_open(b);	/* b->o: the file's volume as device */
	if (!err)
		err = identify(b);
	if (!err)
		err = blktrack_open(b->ctx);
	if (err)
		return err;
	err = blktrack_status(b->ctx, b->dev, &b->st);
	if (err == -ENOENT)
		return blktrack_set_error(b->ctx, err, "%s is not attached (blktrack attach %s)",
					  b->o->device, b->o->device);
	return err < 0 ? err : 0;
}

/*
 * One owner per kernel checkpoint (issue 13, point 3): from recovery to
 * COMMIT or ABORT, no other requester of this volume (another repository,
 * another cron job) checkpoints, recovers or commits. A set's members on
 * one volume share its first member's lock.
 */
int backup_lock(struct backup *b)
{
	const struct blktrack_backup_opts *o = b->o;

	if (b->vol != b)
		return 0;
	return vollock_acquire(o->lock_dir ? o->lock_dir : VOLLOCK_DIR, b->volume_id,
			       o->lock_wait, &b->lock_fd, b->msg, sizeof(b->msg));
}

/* NEW -> OPEN: locked; the repository recovered; the type decided. */
int backup_open(struct backup *b)
{
	int err = expect(b, BACKUP_NEW);

	/* What recovery sees must be what holds now, not before the wait. */
	if (!err)
		err = blktrack_status(b->ctx, b->dev, &b->st);
	if (err < 0)
		return err;
	if (b->o->repo)
		err = recover(b);
	if (err)
		return err;
	if (b->type == BLKTRACK_BACKUP_AUTO)
		b->type = repo_base(b->r, REPO_INCREMENTAL, b->res->volume_id, &b->base) ?
			  BLKTRACK_BACKUP_FULL : BLKTRACK_BACKUP_INCREMENTAL;
	b->phase = BACKUP_OPEN;
	return 0;
}

/*
 * OPEN -> PREPARED: the snapshot store, the writers, identify and
 * prepare-backup: the lead's, once for its set.
 */
int backup_prepare(struct backup *b)
{
	const struct blktrack_backup_opts *o = b->o;
	struct blktrack_backup_result *res = b->res;
	int err = expect(b, BACKUP_OPEN);

	if (err)
		return err;
	/* Before the freeze: a store in a directory of a frozen file system would wait. */
	if (b->lead && o->snapshot_store_path &&
	    (o->snapshot == BLKTRACK_SNAPSHOT_AUTO || o->snapshot == BLKTRACK_SNAPSHOT_COW)) {
		dev_t devs[BLKTRACK_SET_MAX];

		for (size_t i = 0; i < b->set->n; i++)
			devs[i] = b->set->m[i].dev;	/* a store on none of them */
		err = store_open(o->snapshot_store_path, devs, b->set->n, o->force, &b->store_fd,
				 b->msg, sizeof(b->msg));
		if (err)
			return err;
	}
	/* Writers: identify, prepare-backup, freeze (doc/WRITERS.md). */
	if (b->lead)
		err = writers_load(o->writers_dir ? o->writers_dir : WRITERS_DEFAULT_DIR,
				   o->writers_dir != NULL, o->writer_timeout, &b->wr, b->msg,
				   sizeof(b->msg));
	if (err) {
		if (!b->msg[0])
			snprintf(b->msg, sizeof(b->msg), "%s", strerror(-err));
		return err;
	}
	res->writers = writers_count(b->set->m[0].wr);
	stamp_str(b->st.stamp.generation, b->st.stamp.epoch, b->prev_stamp,
		  sizeof(b->prev_stamp));
	b->env.device = o->device;
	b->env.volume_id = b->volume_id;
	b->env.backup_type = type_env[b->type == BLKTRACK_BACKUP_AUTO ?
				      BLKTRACK_BACKUP_FULL : b->type];
	b->env.prev_stamp = b->prev_stamp;
	b->env.repo = o->repo;
	b->env.set_members = b->set->members;
	writer_stamps_prev(b);
	if (fs_mount_point(b->dev, res->mount_point, sizeof(res->mount_point)))
		res->mount_point[0] = 0;
	b->phase = BACKUP_PREPARED;
	if (!b->lead)
		return 0;
	if (wevent(b, res, "identify", false)) {
		warning(b->ctx, "%s (identify failed: ignored)", b->msg);
		res->failure = BLKTRACK_FAIL_ERROR;
		b->msg[0] = 0;
	}
	return wevent(b, res, "prepare-backup", true);
}

/* PREPARED -> FROZEN: the writers' freeze (the lead's event), a file's pages written. */
int backup_freeze(struct backup *b)
{
	int err = expect(b, BACKUP_PREPARED);

	if (err)
		return err;
	b->phase = BACKUP_FROZEN;
	if (b->lead) {
		b->freeze_sent = true;
		err = wevent(b, b->res, "freeze", true);
	}
	if (!err && b->file)
		err = file_sync(b);
	return err;
}

/*
 * The filesystem's freeze (FIFREEZE), after every member's freeze above
 * (a file's pages cannot be written on a frozen filesystem); once per
 * filesystem of a set.
 */
int backup_fs_freeze(struct backup *b)
{
	struct blktrack_backup_result *res = b->res;
	const struct backup *m;
	int err;

	if (b->o->no_fs_freeze || !res->mount_point[0])
		return 0;
	for (m = b->set->m; m < b; m++)
		if (!strcmp(m->res->mount_point, res->mount_point)) {
			res->freeze = m->res->freeze;	/* frozen by that member */
			return 0;
		}
	/* Tests: BLKTRACK_TEST_FIFREEZE_UNSUPPORTED=1, a filesystem without freeze. */
	if (test_hook("BLKTRACK_TEST_FIFREEZE_UNSUPPORTED"))
		err = -EOPNOTSUPP;
	else
		err = fs_freeze(res->mount_point, &b->fs_fd);
	b->frozen_at = now();
	if (!err) {
		res->freeze = "held";
	} else if (err == -EBUSY) {
		res->freeze = "external";
		info(b->ctx, "%s is frozen already: it stays so", res->mount_point);
	} else if (err == -EOPNOTSUPP) {
		warning(b->ctx, "%s cannot freeze: the read is fuzzy", res->mount_point);
	} else {
		snprintf(b->msg, sizeof(b->msg), "writer filesystem: FIFREEZE %s: %s",
			 res->mount_point, strerror(-err));
		res->failure = BLKTRACK_FAIL_WRITER;
		return err;
	}
	return 0;
}

/*
 * Whether the read must not hold this member's freeze: the output on its
 * frozen filesystem would block our own writes. (A snapshot, --thaw-early
 * or --snapshot none thaw the whole set: backupset.c.)
 */
bool backup_thaw_early(struct backup *b)
{
	const struct blktrack_backup_opts *o = b->o;
	struct stat sb;

	if (b->fs_fd >= 0 && !o->thaw_early &&
	    ((o->repo && !stat(o->repo, &sb) && sb.st_dev == b->dev) ||
	     (b->streaming && !fstat(o->output_fd, &sb) && sb.st_dev == b->dev))) {
		info(b->ctx, "the output is on %s: thawing right after the checkpoint",
		     b->res->mount_point);
		return true;
	}
	return false;
}

/* CHECKPOINTED (by the set's checkpoint()): the volume now, a file's map, the stamp. */
int backup_checkpointed(struct backup *b)
{
	int err;

	/* The checkpoint took the volume's size now: a resize shows here. */
	err = blktrack_status(b->ctx, b->dev, &b->st);
	if (err < 0)
		return err;
	crash_at("after-checkpoint");
	if (b->file) {
		err = file_map(b);	/* the writers and the freeze hold it quiet */
		if (err)
			return err;
	}
	stamp_str(b->ck.stamp.generation, b->ck.stamp.epoch + 1, b->new_stamp,
		  sizeof(b->new_stamp));
	b->env.new_stamp = b->new_stamp;
	b->block_size = b->st.block_size;
	return 0;
}

/*
 * The blocks to read for b->type: from the repository's deltas, the whole
 * volume (a copy to a stream), or nothing yet (a resync: its hashes decide).
 * -ESTALE: the deltas have a gap (tracking lost, an unusable delta).
 */
static int compose_set(struct backup *b)
{
	enum blktrack_backup_type t = b->type;
	int err = 0;

	if (b->st.state != BLKTRACK_STATE_TRACKING &&
	    (t == BLKTRACK_BACKUP_INCREMENTAL || t == BLKTRACK_BACKUP_DIFFERENTIAL)) {
		err = -ESTALE;
		snprintf(b->msg, sizeof(b->msg), "%s: tracking is invalid (%s)", b->o->device,
			 blktrack_reason_name(b->st.reason));
	} else if (t == BLKTRACK_BACKUP_RESYNC) {
		err = 0;		/* its set comes from the hashes */
	} else if (b->r) {
		err = repo_compose(b->r, repo_type_of(t), &b->rs, b->delta, &b->want, &b->base);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "%s", repo_error(b->r));
		if (err == -EBADMSG)
			err = -ESTALE;	/* an unusable delta: as a gap (doc/REPOSITORY.md) */
	} else {
		err = whole_volume(b->size, b->st.block_size, &b->want);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "%s", strerror(-err));
	}
	if (err != -ESTALE)
		return err;
	if (b->o->on_invalid == BLKTRACK_ON_INVALID_FAIL) {
		b->res->failure = BLKTRACK_FAIL_INVALID;
		return err;
	}
	b->res->fell_back = true;
	snprintf(b->res->fell_back_why, sizeof(b->res->fell_back_why), "%.*s",
		 (int)sizeof(b->res->fell_back_why) - 1, b->msg);
	b->type = b->o->on_invalid == BLKTRACK_ON_INVALID_FULL ? BLKTRACK_BACKUP_FULL :
		  BLKTRACK_BACKUP_RESYNC;
	warning(b->ctx, "%s; taking a %s backup", b->msg, type_env[b->type]);
	b->msg[0] = 0;
	return 0;
}

/*
 * A resync reads the whole volume and stores the blocks whose hash differs
 * from the newest base's; without usable hashes it becomes a full backup.
 */
static int compose_resync(struct backup *b)
{
	int err = repo_base(b->r, REPO_RESYNC, b->res->volume_id, &b->base);

	if (!err) {
		err = hash_open_parent(b, b->r, b->base, true);
		if (err)
			warning(b->ctx, "backup %" PRIu64 " has no usable block hashes (%s): "
				"taking a full backup", b->base, err == -ESTALE ?
				"another volume size or block size" : strerror(-err));
	}
	if (!err)
		err = whole_volume(b->size, b->st.block_size, &b->want);
	if (!err)
		err = blockset_new(&b->stored);
	if (err == -ENOMEM) {
		snprintf(b->msg, sizeof(b->msg), "%s", strerror(-err));
		return err;
	}
	if (err) {
		b->type = BLKTRACK_BACKUP_FULL;
		b->base = 0;
	}
	return 0;
}

/* The new file's header: its stamps, and its parent's id read from the parent. */
static int compose_header(struct backup *b)
{
	struct bfile_header *h = &b->h, ph;
	const struct repo_entry *parent;
	int err;

	bfile_header_init(h, repo_type_of(b->type) + 1);
	if (b->o->no_compress)
		h->compression = BFILE_COMP_NONE;
	/* Ids fit (lib/kernel/volid.h: VOLID_MAX); a longer one would fail every restore's check. */
	snprintf(h->volume_id, sizeof(h->volume_id), "%.*s", (int)sizeof(h->volume_id) - 1,
		 b->res->volume_id);
	h->volume_size = b->size;
	h->block_size = b->st.block_size;
	b->rs.epoch++;
	to_bstamp(&b->rs, &h->to);
	b->rs.epoch--;
	if (!b->base)
		return 0;
	parent = repo_find(b->r, b->base);
	to_bstamp(&parent->to, &h->from);
	err = read_header(b->r, parent->file, &ph, b->msg, sizeof(b->msg));
	if (err) {
		b->res->failure = BLKTRACK_FAIL_CORRUPT;
		return err;
	}
	memcpy(h->parent_id, ph.id, BFILE_ID_LEN);
	return 0;
}

/* CHECKPOINTED -> COMPOSED: the pending map, the final type, the blocks, the header. */
int backup_compose(struct backup *b)
{
	struct blktrack_extent *ext = NULL;
	size_t n = 0;
	int err = expect(b, BACKUP_CHECKPOINTED);

	if (err)
		return err;
	b->size = b->file ? b->fmap.size : b->st.dev_size;
	b->block_size = b->st.block_size;
	err = blktrack_read_extents(b->ctx, b->dev, 0, &b->ck.stamp, &ext, &n);
	if (err < 0) {
		snprintf(b->msg, sizeof(b->msg), "%s", blktrack_get_error(b->ctx));
		return err;
	}
	err = blockset_from_extents(ext, n, b->st.block_size, &b->delta);
	free(ext);
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "%s", strerror(-err));
		return err;
	}
	if (b->file) {
		err = file_delta(b);	/* b->delta: the file's blocks from here on */
		if (err)
			return err;
	}
	snprintf(b->rs.volume_id, sizeof(b->rs.volume_id), "%s", b->res->volume_id);
	memcpy(b->rs.generation, b->ck.stamp.generation, 16);
	b->rs.epoch = b->ck.stamp.epoch;
	b->rs.size = b->size;
	b->rs.block_size = b->st.block_size;

	err = compose_set(b);
	if (!err && b->type == BLKTRACK_BACKUP_RESYNC)
		err = compose_resync(b);
	if (!err && b->type == BLKTRACK_BACKUP_FULL && !b->want) {
		err = repo_compose(b->r, REPO_FULL, &b->rs, b->delta, &b->want, &b->base);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "%s", repo_error(b->r));
	}
	if (err == -ENOENT && b->r)
		snprintf(b->msg, sizeof(b->msg), "%s (take a full backup: --type full)",
			 repo_error(b->r));
	if (err)
		return err;
	b->res->type = b->type;
	b->res->parent = b->base;
	b->env.backup_type = type_env[b->type];
	err = ranges_apply(b);		/* what the writers added and excluded */
	if (!err && b->file)
		err = file_want(b);
	if (!err)
		err = compose_header(b);
	if (!err)
		b->phase = BACKUP_COMPOSED;
	return err;
}

/* The repository's pending entry, and the file it names (a stream: the fd). */
static int begin_file(struct backup *b)
{
	const struct repo_entry *parent = b->base ? repo_find(b->r, b->base) : NULL;
	struct repo_entry ent = {
		.type = repo_type_of(b->type),
		.has_from = parent != NULL,
		.parent = b->base,
		.to = b->rs,
	};
	int err;

	if (b->streaming) {
		b->out_fd = b->o->output_fd;
		snprintf(b->res->file, sizeof(b->res->file), "-");
		return 0;
	}
	if (parent)
		ent.from = parent->to;
	ent.to.epoch++;
	if (b->file)		/* file_open() checked its length */
		memcpy(ent.path, b->file_path, strlen(b->file_path) + 1);
	err = repo_begin(b->r, &ent, b->delta, &b->id);
	if (!err) {
		b->phase = BACKUP_BEGUN;
		err = repo_backup_create(b->r, b->id, &b->out);
	}
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "%s", repo_error(b->r));
		return err;
	}
	snprintf(b->res->file, sizeof(b->res->file), "%s/%s", repo_path(b->r),
		 repo_find(b->r, b->id)->file);
	b->env.backup_id = b->id;
	return hash_start(b, b->r, b->type, b->base, b->id);
}

/* COMPOSED -> BEGUN: the pending entry, the file, the volume open, the writer. */
int backup_begin(struct backup *b)
{
	const struct blktrack_backup_opts *o = b->o;
	const char *file = b->res->file;
	int err = expect(b, BACKUP_COMPOSED);

	if (!err)
		err = begin_file(b);
	if (err)
		return err;
	b->phase = BACKUP_BEGUN;
	b->env.backup_file = file;
	b->vol_fd = open_volume(o->device);
	if (b->vol_fd < 0) {
		err = -errno;
		snprintf(b->msg, sizeof(b->msg), "%s: %s", o->device, strerror(-err));
		return err;
	}
	b->buf_len = b->st.block_size > CHUNK_BYTES ? b->st.block_size : CHUNK_BYTES;
	if (posix_memalign(&b->buf, ALIGN, b->buf_len)) {
		snprintf(b->msg, sizeof(b->msg), "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	b->total = blockset_cardinality(b->want) * b->st.block_size;
	if (b->total > b->size)
		b->total = b->size;
	err = b->streaming ? bfile_writer_open(b->out_fd, &b->h, &b->w) :
	      bfile_writer_open_fn(repo_file_write, b->out, &b->h, &b->w);
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "%s: %s", file,
			 b->w ? bfile_writer_error(b->w) : strerror(-err));
		return err;
	}
	err = b->file ? file_write_map(b) : 0;
	if (!err)
		err = ranges_write(b);
	if (err)
		return err;
	if (!b->streaming && !o->no_verify && !o->verify_source) {
		err = follow_start(&b->follower, b, b->out);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "writer verify: %s", strerror(-err));
	}
	return err;
}

/* The figures of the result, from the finished stream. */
static void count_bytes(struct backup *b)
{
	struct blktrack_backup_result *res = b->res;
	uint64_t vol_size = b->size;

	res->volume_size = vol_size;
	res->changed_bytes = blockset_cardinality(b->stored ? b->stored : b->delta) *
			     b->st.block_size;
	if (res->changed_bytes > vol_size)
		res->changed_bytes = vol_size;
	res->covered_bytes = b->stats.data_bytes + b->stats.zero_bytes;
	res->data_bytes = b->stats.data_bytes;
	res->stored_bytes = b->stats.stream_bytes;
}

/*
 * The volume blocks the members on b's volume read: a file's lie where its
 * map says, a volume's are its want (a resync's: all). NULL: all of them.
 */
static int volume_reads(struct backup *b, struct blockset **own, const struct blockset **out)
{
	const struct backup *m;
	int err = 0;

	*own = NULL;
	*out = b->file ? b->vol_want : b->type == BLKTRACK_BACKUP_RESYNC ? NULL : b->want;
	for (m = b + 1; m < b->set->m + b->set->n && !err; m++) {
		if (m->vol != b)
			continue;
		if (!*own)
			err = blockset_copy(*out, own);
		if (!err)
			err = blockset_or(*own, m->vol_want);
		*out = *own;
	}
	return err;
}

/* BEGUN -> WRITTEN: the blocks read and written, the file finished and installed. */
int backup_write(struct backup *b)
{
	bool resync = b->type == BLKTRACK_BACKUP_RESYNC;
	const struct blockset *reads = NULL;
	struct blockset *own = NULL;
	int err = expect(b, BACKUP_BEGUN);

	/* The first member on the volume releases what none of them reads. */
	if (!err && b->cow && b->vol == b)
		err = volume_reads(b, &own, &reads);
	if (!err && reads)
		err = snap_release_rest(b, reads);
	blockset_free(own);
	if (!err)
		err = read_volume(b, b->want, resync);
	if (err)
		return err;
	snap_figures(b, b->res);
	crash_at("during-write");	/* nothing to store: before the file is finished */
	err = bfile_writer_finish(b->w, &b->stats);
	b->w = NULL;
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "%s: %s", b->res->file, strerror(-err));
		return err;
	}
	/* What the resync found changed is its delta (doc/REPOSITORY.md). */
	if (resync) {
		err = repo_set_delta(b->r, b->id, b->stored);
		if (err) {
			snprintf(b->msg, sizeof(b->msg), "%s", repo_error(b->r));
			return err;
		}
	}
	if (!b->streaming) {
		err = hash_finish(b, b->r, b->id, &b->res->hashes);
		if (err)
			return err;
	}
	count_bytes(b);
	/*
	 * Blocks rewritten while we read them (a thawed or unfrozen volume);
	 * a snapshot that held gave every block as it was at the checkpoint.
	 */
	if (!b->cow) {
		/* A thawed file's writes read from the page cache reach the map only so. */
		if (b->file && strcmp(b->res->freeze, "held") && fsync(b->file_fd))
			warning(b->ctx, "%s: fsync: %s", b->file_path, strerror(errno));
		err = rewritten_during_read(b, b->dev, b->file ? b->vol_want : b->want,
					    &b->res->rewritten_bytes);
		if (!err && b->file)
			err = file_moved_during_read(b, &b->res->rewritten_bytes);
		if (err)
			return err;
	}
	if (!b->streaming) {
		err = repo_backup_install(b->r, b->id, b->out);
		b->out = NULL;
		if (err) {
			snprintf(b->msg, sizeof(b->msg), "%s", repo_error(b->r));
			return err;
		}
	}
	b->phase = BACKUP_WRITTEN;
	return 0;
}

/* The new file checked: by the follower, or against the volume (--verify-source). */
static int verify_file(struct backup *b)
{
	const char *file = b->res->file;
	struct follow *f = &b->follower;
	int err;

	if (b->streaming || b->o->no_verify)
		return 0;
	if (b->o->verify_source) {
		err = verify_against_source(b, b->dev, file);
	} else {
		err = follow_stop(f);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "writer verify: %s%s%s%s", file,
				 err == -EBADE ? " " : ": ", f->msg,
				 err == -EBADE ? ": rejected" : "");
	}
	if (err) {
		b->res->failure = BLKTRACK_FAIL_WRITER;
		return err;
	}
	b->res->verified = true;
	return 0;
}

/* WRITTEN: the file verified (then backupset.c thaws the set). */
int backup_verify(struct backup *b)
{
	int err = expect(b, BACKUP_WRITTEN);

	return err ? err : verify_file(b);
}

/* WRITTEN -> CHECKED, thawed: exact enough, on the same media. */
int backup_checked(struct backup *b)
{
	struct blktrack_backup_result *res = b->res;
	int err;

	if (b->o->strict && res->rewritten_bytes) {
		res->failure = BLKTRACK_FAIL_FUZZY;
		snprintf(b->msg, sizeof(b->msg), "%" PRIu64 " bytes of the backup were rewritten "
			 "during the read (--strict): rejected", res->rewritten_bytes);
		return -EBADE;
	}
	err = same_media(b, b->dev, b->st.diskseq, res);
	if (!err)
		b->phase = BACKUP_CHECKED;
	return err;
}

/* The catalog has the backup, the kernel's COMMIT failed: say what that means. */
static int commit_failed(struct backup *b, int err)
{
	char why[sizeof(b->ctx->errmsg)];

	snprintf(why, sizeof(why), "%s", blktrack_get_error(b->ctx));
	if (err == -ESTALE || err == -ENODATA)
		/* Someone else aborted (or committed) our checkpoint. */
		return blktrack_set_error(b->ctx, err, "backup %" PRIu64 " is committed in "
					  "the repository, but the kernel COMMIT failed: "
					  "the checkpoint is no longer this backup's (%s: "
					  "another program aborted or committed it, 'blktrack "
					  "abort'?). Nothing is lost: the next backup aborts "
					  "any other pending checkpoint and resyncs", b->id,
					  strerror(-err));
	return blktrack_set_error(b->ctx, err, "backup %" PRIu64 " is committed in "
				  "the repository, but the kernel COMMIT failed "
				  "(%s); the next backup finishes it", b->id, why);
}

/* COMMITTED -> DONE: the kernel's COMMIT (d), by the first member on the volume. */
int backup_commit_kernel(struct backup *b)
{
	int err;

	if (b->vol != b) {
		b->phase = BACKUP_DONE;
		return 0;
	}
	/* Tests: BLKTRACK_TEST_COMMIT_FAIL=1, a COMMIT that fails (and is not sent). */
	if (test_hook("BLKTRACK_TEST_COMMIT_FAIL"))
		err = blktrack_set_error(b->ctx, -EIO, "BLKTRACK_TEST_COMMIT_FAIL");
	else
		err = blktrack_commit(b->ctx, b->dev, &b->ck.stamp);
	if (err < 0)
		return commit_failed(b, err);
	b->phase = BACKUP_DONE;
	return 0;
}

/* Thaw after a failure: the first failure stays the cause, a failed thaw is added. */
static void thaw_after_failure(struct backup *b)
{
	enum blktrack_failure f = b->res->failure;
	char keep[sizeof(b->msg)];

	if (b->fs_fd < 0 && !b->freeze_sent)
		return;
	memcpy(keep, b->msg, sizeof(keep));
	if (thaw(b, b->res)) {
		strncat(keep, " (and then ", sizeof(keep) - strlen(keep) - 1);
		strncat(keep, b->msg, sizeof(keep) - strlen(keep) - 1);
		strncat(keep, ")", sizeof(keep) - strlen(keep) - 1);
		if (!b->msg[0] || strncmp(b->msg, "writer filesystem:", 18))
			crit(b->ctx, "thaw after a failure: %s", b->msg);
	}
	memcpy(b->msg, keep, sizeof(keep));
	b->res->failure = f;
}

/*
 * Undo what the phase reached, newest first: the follower stopped, the
 * file abandoned (b) -> (a) -> nothing, the checkpoint ABORTed (the kernel
 * merges the pending map back: nothing is lost), the freeze thawed, the
 * writers told abort. From COMMITTED on the backup stands; only the error
 * is said.
 */
void backup_unwind(struct backup *b)
{
	struct blktrack_ctx *ctx = b->ctx;

	follow_stop(&b->follower);
	if (b->phase >= BACKUP_COMMITTED)
		return;			/* the error is the one the phase set */
	if (b->w)
		bfile_writer_abort(b->w);
	b->w = NULL;
	if (b->id) {
		repo_file_close(b->out);
		b->out = NULL;
		if (repo_abandon(b->r, b->id) < 0)
			snprintf(b->msg + strlen(b->msg), sizeof(b->msg) - strlen(b->msg),
				 " (and the repository keeps pending backup %" PRIu64
				 " until the next backup removes it: %s)", b->id, repo_error(b->r));
	}
	if (b->phase >= BACKUP_CHECKPOINTED && b->vol == b &&
	    blktrack_abort(ctx, b->dev, &b->ck.stamp) < 0)
		strncat(b->msg, " (and the kernel ABORT failed: the next backup repairs it)",
			sizeof(b->msg) - strlen(b->msg) - 1);
	if (b->phase >= BACKUP_FROZEN)
		thaw_after_failure(b);
}

/* Free what was built, whatever the phase. */
void backup_release(struct backup *b)
{
	follow_stop(&b->follower);
	if (b->w)
		bfile_writer_abort(b->w);
	repo_file_close(b->out);
	if (b->vol_fd >= 0)
		close(b->vol_fd);
	if (b->store_fd >= 0)
		close(b->store_fd);
	free(b->buf);
	blockset_free(b->delta);
	blockset_free(b->want);
	blockset_free(b->stored);
	blockset_free(b->vol_delta);
	blockset_free(b->vol_want);
	blockset_free(b->radd);
	blockset_free(b->rexcl);
	blockset_free(b->excluded);
	filemap_free(&b->fmap);
	if (b->file_fd >= 0)
		close(b->file_fd);
	free(b->rh);
	blockhash_reader_free(b->hp);
	blockhash_writer_abort(b->hw);
	repo_file_close(b->hp_file);
	repo_file_close(b->hw_file);
	writer_stamps_clean(b);
	if (b->lead) {
		repo_close(b->r);
		writers_free(b->wr);
	}
	vollock_release(b->lock_fd);
}
