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

BLKTRACK_EXPORT int blktrack_backup(struct blktrack_ctx *ctx,
				    const struct blktrack_backup_opts *o,
				    struct blktrack_backup_result *res)
{
	struct backup b = { .ctx = ctx, .o = o, .vol_fd = -1, .fs_fd = -1, .store_fd = -1,
			    .hp_fd = -1, .hw_fd = -1, .rh_lock = PTHREAD_MUTEX_INITIALIZER };
	struct follow verify = { 0 };
	struct blockset *delta = NULL, *want = NULL;
	struct blktrack_extent *ext = NULL;
	const struct repo_entry *parent = NULL;
	struct repo *r = NULL;
	struct blktrack_volume_id vid;
	struct blktrack_status st;
	struct blktrack_ckpt ck;
	struct repo_stamp rs;
	struct repo_entry ent;
	struct bfile_header h;
	struct bfile_stats stats;
	enum blktrack_backup_type type = o->type;
	bool streaming = o->output_fd > 0, checkpointed = false, committed = false;
	uint64_t id = 0, base = 0;
	double t0 = now();
	size_t n = 0;
	dev_t dev;
	int fd = -1, lock_fd = -1, err;

	memset(res, 0, sizeof(*res));
	res->failure = BLKTRACK_FAIL_ERROR;
	res->recovery = "none";
	res->freeze = "none";
	res->snapshot = "none";
	if (!o->device || (!o->repo && !streaming) || type > BLKTRACK_BACKUP_RESYNC ||
	    o->on_invalid > BLKTRACK_ON_INVALID_RESYNC || o->snapshot > BLKTRACK_SNAPSHOT_NONE)
		return blktrack_set_error(ctx, -EINVAL, "backup: invalid options");
	if (!o->repo && type == BLKTRACK_BACKUP_AUTO)
		type = BLKTRACK_BACKUP_COPY;
	if (!o->repo && type != BLKTRACK_BACKUP_FULL && type != BLKTRACK_BACKUP_COPY)
		return blktrack_set_error(ctx, -EINVAL, "an incremental, differential or "
					  "resync needs the repository that holds its base (--repo)");

	err = blktrack_dev_from_path(o->device, &dev);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: %s", o->device, err == -ENOTBLK ?
					  "not a block device" : strerror(-err));
	err = blktrack_volume_identify(o->device, &vid);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: cannot identify the volume: %s",
					  o->device, strerror(-err));
	if (strlen(vid.id_type) + 1 + strlen(vid.id) >= BFILE_VOLUME_ID_LEN)
		return blktrack_set_error(ctx, -ENAMETOOLONG, "%s: volume id %s:%s is too long",
					  o->device, vid.id_type, vid.id);
	err = persistent_volume_id(&vid, res->volume_id, BFILE_VOLUME_ID_LEN);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: volume id %s:%s: %s", o->device,
					  vid.id_type, vid.id, strerror(-err));
	if (!blktrack_volume_id_stable(&vid))
		blktrack_log_cond(ctx, LOG_NOTICE, "%s: no stable identity (no filesystem or "
				  "partition UUID, no WWN or serial, no dm or md UUID): "
				  "the repository knows it as %s for this boot only; "
				  "after a reboot it is a new volume (a full backup)\n",
				  o->device, res->volume_id);
	err = blktrack_open(ctx);
	if (err < 0)
		return err;
	err = blktrack_status(ctx, dev, &st);
	if (err == -ENOENT)
		return blktrack_set_error(ctx, err, "%s is not attached (blktrack attach %s)",
					  o->device, o->device);
	if (err < 0)
		return err;

	/*
	 * One owner per kernel checkpoint (issue 13, point 3): from recovery
	 * to COMMIT or ABORT, no other requester of this volume (another
	 * repository, another cron job) checkpoints, recovers or commits.
	 */
	err = vollock_acquire(o->lock_dir ? o->lock_dir : VOLLOCK_DIR, res->volume_id,
			      o->lock_wait, &lock_fd, b.msg, sizeof(b.msg));
	if (err) {
		blktrack_set_error(ctx, err, "%s", b.msg);
		b.msg[0] = 0;
		return err;
	}
	/* What recovery sees must be what holds now, not before the wait. */
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		goto out_close;

	if (o->repo) {
		struct repo_kernel_state ks = { .attached = true };
		struct repo_recovery rec;

		/* Never REPO_CREATE: a repository is made by blktrack init only. */
		err = repo_open_wait(o->repo, 0, o->lock_wait < 0 ? REPO_WAIT_FOREVER :
				     (unsigned int)o->lock_wait, &r);
		if (err) {
			blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
			goto out_close;
		}
		snprintf(ks.volume_id, sizeof(ks.volume_id), "%s", res->volume_id);
		ks.pending = st.flags & BLKTRACK_STATUS_PENDING;
		ks.stamp = st.stamp;
		err = repo_recover(r, &ks, &rec);
		if (err) {
			blktrack_set_error(ctx, err, "%s", repo_error(r));
			goto out_close;
		}
		if (rec.action == REPO_ACTION_ABORT) {
			err = blktrack_abort(ctx, dev, &rec.stamp);
			res->recovery = "abort";
		} else if (rec.action == REPO_ACTION_COMMIT) {
			err = blktrack_commit(ctx, dev, &rec.stamp);
			res->recovery = "commit";
		}
		if (err < 0)
			goto out_close;
		if (rec.action != REPO_ACTION_NONE) {
			warning(ctx, "recovery: %s of the pending checkpoint, %u entries "
				"dropped", res->recovery, rec.dropped);
			err = blktrack_status(ctx, dev, &st);
			if (err < 0)
				goto out_close;
		}
		if (type == BLKTRACK_BACKUP_AUTO)
			type = repo_base(r, REPO_INCREMENTAL, res->volume_id, &base) ?
			       BLKTRACK_BACKUP_FULL : BLKTRACK_BACKUP_INCREMENTAL;
	}

	/* Before the freeze: a store in a directory of a frozen file system would wait. */
	if (o->snapshot_store_path &&
	    (o->snapshot == BLKTRACK_SNAPSHOT_AUTO || o->snapshot == BLKTRACK_SNAPSHOT_COW)) {
		err = store_open(o->snapshot_store_path, dev, o->force, &b.store_fd, b.msg, sizeof(b.msg));
		if (err) {
			blktrack_set_error(ctx, err, "%s", b.msg);
			goto out_close;
		}
	}

	/* Writers: identify, prepare-backup, freeze (doc/WRITERS.md). */
	err = writers_load(o->writers_dir ? o->writers_dir : WRITERS_DEFAULT_DIR,
			   o->writers_dir != NULL, o->writer_timeout, &b.wr, b.msg, sizeof(b.msg));
	if (err) {
		blktrack_set_error(ctx, err, "%s", b.msg[0] ? b.msg : strerror(-err));
		goto out_close;
	}
	res->writers = writers_count(b.wr);
	stamp_str(st.stamp.generation, st.stamp.epoch, b.prev_stamp, sizeof(b.prev_stamp));
	b.env.device = o->device;
	b.env.volume_id = res->volume_id;
	b.env.backup_type = type_env[type == BLKTRACK_BACKUP_AUTO ? BLKTRACK_BACKUP_FULL : type];
	b.env.prev_stamp = b.prev_stamp;
	b.env.repo = o->repo;
	if (fs_mount_point(dev, res->mount_point, sizeof(res->mount_point)))
		res->mount_point[0] = 0;
	if (wevent(&b, res, "identify", false)) {
		warning(ctx, "%s (identify failed: ignored)", b.msg);
		res->failure = BLKTRACK_FAIL_ERROR;
		b.msg[0] = 0;
	}
	err = wevent(&b, res, "prepare-backup", true);
	if (err)
		goto out_abort;
	b.freeze_sent = true;
	err = wevent(&b, res, "freeze", true);
	if (err)
		goto out_abort;
	if (!o->no_fs_freeze && res->mount_point[0]) {
		/* Tests: BLKTRACK_TEST_FIFREEZE_UNSUPPORTED=1, a filesystem without freeze. */
		if (test_hook("BLKTRACK_TEST_FIFREEZE_UNSUPPORTED"))
			err = -EOPNOTSUPP;
		else
			err = fs_freeze(res->mount_point, &b.fs_fd);
		b.frozen_at = now();
		if (!err) {
			res->freeze = "held";
		} else if (err == -EBUSY) {
			res->freeze = "external";
			info(ctx, "%s is frozen already: it stays so", res->mount_point);
		} else if (err == -EOPNOTSUPP) {
			warning(ctx, "%s cannot freeze: the read is fuzzy", res->mount_point);
		} else {
			snprintf(b.msg, sizeof(b.msg), "writer filesystem: FIFREEZE %s: %s",
				 res->mount_point, strerror(-err));
			res->failure = BLKTRACK_FAIL_WRITER;
			goto out_abort;
		}
	}

	err = flush_device(&b);
	if (err)
		goto out_abort;
	err = exact_checkpoint(&b, &st, res);
	if (err)
		goto out_abort;
	err = checkpoint(&b, res, dev, &ck);
	if (err < 0)
		goto out_abort;
	checkpointed = true;
	/* The checkpoint took the volume's size now: a resize shows here. */
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		goto out_abort;
	crash_at("after-checkpoint");
	stamp_str(ck.stamp.generation, ck.stamp.epoch + 1, b.new_stamp, sizeof(b.new_stamp));
	b.env.new_stamp = b.new_stamp;

	/* Thaw now when asked to, or when holding the freeze through the read
	 * would block our own writes (the output on the frozen filesystem). */
	if (b.fs_fd >= 0 && !o->thaw_early) {
		struct stat sb;

		if ((o->repo && !stat(o->repo, &sb) && sb.st_dev == dev) ||
		    (streaming && !fstat(o->output_fd, &sb) && sb.st_dev == dev)) {
			info(ctx, "the output is on %s: thawing right after the checkpoint",
			     res->mount_point);
			res->freeze = "thaw-early";
		}
	}
	if (o->thaw_early || b.cow || o->snapshot == BLKTRACK_SNAPSHOT_NONE ||
	    !strcmp(res->freeze, "thaw-early")) {
		if (b.fs_fd >= 0)
			res->freeze = "thaw-early";
		err = thaw(&b, res);
		if (err)
			goto out_abort;
	}
	err = wevent(&b, res, "post-snapshot", true);
	if (err)
		goto out_abort;

	b.size = st.dev_size;
	b.block_size = st.block_size;
	err = blktrack_read_extents(ctx, dev, 0, &ck.stamp, &ext, &n);
	if (err < 0) {
		snprintf(b.msg, sizeof(b.msg), "%s", blktrack_get_error(ctx));
		goto out_abort;
	}
	err = blockset_from_extents(ext, n, st.block_size, &delta);
	if (err)
		goto out_errno;

	memset(&rs, 0, sizeof(rs));
	snprintf(rs.volume_id, sizeof(rs.volume_id), "%s", res->volume_id);
	memcpy(rs.generation, ck.stamp.generation, 16);
	rs.epoch = ck.stamp.epoch;
	rs.size = st.dev_size;
	rs.block_size = st.block_size;

	if (st.state != BLKTRACK_STATE_TRACKING &&
	    (type == BLKTRACK_BACKUP_INCREMENTAL || type == BLKTRACK_BACKUP_DIFFERENTIAL)) {
		err = -ESTALE;
		snprintf(b.msg, sizeof(b.msg), "%s: tracking is invalid (%s)", o->device,
			 blktrack_reason_name(st.reason));
	} else if (type == BLKTRACK_BACKUP_RESYNC) {
		err = 0;		/* its set comes from the hashes */
	} else if (r) {
		err = repo_compose(r, repo_type_of(type), &rs, delta, &want, &base);
		if (err)
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
		if (err == -EBADMSG)
			err = -ESTALE;	/* an unusable delta: as a gap (doc/REPOSITORY.md) */
	} else {
		err = whole_volume(st.dev_size, st.block_size, &want);
		if (err)
			snprintf(b.msg, sizeof(b.msg), "%s", strerror(-err));
	}
	if (err == -ESTALE) {
		if (o->on_invalid == BLKTRACK_ON_INVALID_FAIL) {
			res->failure = BLKTRACK_FAIL_INVALID;
			goto out_abort;
		}
		res->fell_back = true;
		snprintf(res->fell_back_why, sizeof(res->fell_back_why), "%s", b.msg);
		type = o->on_invalid == BLKTRACK_ON_INVALID_FULL ? BLKTRACK_BACKUP_FULL :
		       BLKTRACK_BACKUP_RESYNC;
		warning(ctx, "%s; taking a %s backup", b.msg, type_env[type]);
		b.msg[0] = 0;
		err = 0;
	}
	if (type == BLKTRACK_BACKUP_RESYNC) {
		/* The newest base, whose hashes must be there and intact. */
		err = repo_base(r, REPO_RESYNC, res->volume_id, &base);
		if (!err) {
			err = hash_open_parent(&b, r, base, true);
			if (err)
				warning(ctx, "backup %" PRIu64 " has no usable block hashes (%s): "
					"taking a full backup", base, err == -ESTALE ?
					"another volume size or block size" : strerror(-err));
		}
		if (!err)
			err = whole_volume(st.dev_size, st.block_size, &want);
		if (!err)
			err = blockset_new(&b.stored);
		if (err == -ENOMEM)
			goto out_errno;
		if (err) {
			type = BLKTRACK_BACKUP_FULL;
			base = 0;
		}
		err = 0;
	}
	if (type == BLKTRACK_BACKUP_FULL && !want) {
		err = repo_compose(r, REPO_FULL, &rs, delta, &want, &base);
		if (err)
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
	}
	if (err == -ENOENT && r) {
		snprintf(b.msg, sizeof(b.msg), "%s (take a full backup: --type full)",
			 repo_error(r));
		goto out_abort;
	}
	if (err)
		goto out_abort;
	res->type = type;
	res->parent = base;
	b.env.backup_type = type_env[type];

	bfile_header_init(&h, repo_type_of(type) + 1);
	if (o->no_compress)
		h.compression = BFILE_COMP_NONE;
	/* Ids fit (lib/kernel/volid.h: VOLID_MAX); a longer one would fail every restore's check. */
	snprintf(h.volume_id, sizeof(h.volume_id), "%.*s", (int)sizeof(h.volume_id) - 1,
		 res->volume_id);
	h.volume_size = st.dev_size;
	h.block_size = st.block_size;
	rs.epoch++;
	to_bstamp(&rs, &h.to);
	rs.epoch--;
	if (base) {
		char path[4096];
		struct bfile_header ph;

		parent = repo_find(r, base);
		to_bstamp(&parent->to, &h.from);
		snprintf(path, sizeof(path), "%s/%s", repo_path(r), parent->file);
		err = read_header(path, &ph, b.msg, sizeof(b.msg));
		if (err) {
			res->failure = BLKTRACK_FAIL_CORRUPT;
			goto out_abort;
		}
		memcpy(h.parent_id, ph.id, BFILE_ID_LEN);
	}

	if (streaming) {
		fd = o->output_fd;
		snprintf(res->file, sizeof(res->file), "-");
	} else {
		memset(&ent, 0, sizeof(ent));
		ent.type = repo_type_of(type);
		ent.has_from = parent;
		if (parent)
			ent.from = parent->to;
		ent.parent = base;
		ent.to = rs;
		ent.to.epoch++;
		err = repo_begin(r, &ent, delta, &id);
		if (!err)
			err = repo_backup_create(r, id, &fd);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
		snprintf(res->file, sizeof(res->file), "%s/%s", repo_path(r),
			 repo_find(r, id)->file);
		b.env.backup_id = id;
		err = hash_start(&b, r, type, base, id);
		if (err)
			goto out_abort;
	}
	b.env.backup_file = res->file;

	b.vol_fd = open_volume(o->device);
	if (b.vol_fd < 0) {
		err = -errno;
		snprintf(b.msg, sizeof(b.msg), "%s: %s", o->device, strerror(-err));
		goto out_abort;
	}
	b.buf_len = st.block_size > CHUNK_BYTES ? st.block_size : CHUNK_BYTES;
	if (posix_memalign(&b.buf, ALIGN, b.buf_len)) {
		err = -ENOMEM;
		goto out_errno;
	}
	b.total = blockset_cardinality(want) * st.block_size;
	if (b.total > st.dev_size)
		b.total = st.dev_size;
	err = bfile_writer_open(fd, &h, &b.w);
	if (err) {
		snprintf(b.msg, sizeof(b.msg), "%s: %s", res->file,
			 b.w ? bfile_writer_error(b.w) : strerror(-err));
		goto out_abort;
	}
	if (!streaming && !o->no_verify && !o->verify_source) {
		err = follow_start(&verify, &b, fd);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "writer verify: %s", strerror(-err));
			goto out_abort;
		}
	}
	if (b.cow && type != BLKTRACK_BACKUP_RESYNC) {
		err = snap_release_rest(&b, want);
		if (err)
			goto out_abort;
	}
	err = read_volume(&b, want, type == BLKTRACK_BACKUP_RESYNC);
	if (err)
		goto out_abort;
	snap_figures(&b, res);
	crash_at("during-write");	/* nothing to store: before the file is finished */
	err = bfile_writer_finish(b.w, &stats);
	b.w = NULL;
	if (err) {
		snprintf(b.msg, sizeof(b.msg), "%s: %s", res->file, strerror(-err));
		goto out_abort;
	}
	if (type == BLKTRACK_BACKUP_RESYNC) {
		/* What the resync found changed is its delta (doc/REPOSITORY.md). */
		err = repo_set_delta(r, id, b.stored);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
	}
	if (!streaming) {
		err = hash_finish(&b, r, id, &res->hashes);
		if (err)
			goto out_abort;
	}
	res->volume_size = st.dev_size;
	res->changed_bytes = blockset_cardinality(b.stored ? b.stored : delta) * st.block_size;
	if (res->changed_bytes > st.dev_size)
		res->changed_bytes = st.dev_size;
	res->covered_bytes = stats.data_bytes + stats.zero_bytes;
	res->data_bytes = stats.data_bytes;
	res->stored_bytes = stats.stream_bytes;

	/*
	 * Blocks rewritten while we read them (a thawed or unfrozen volume);
	 * a snapshot that held gave every block as it was at the checkpoint.
	 */
	if (!b.cow) {
		err = rewritten_during_read(&b, dev, want, &res->rewritten_bytes);
		if (err)
			goto out_abort;
	}
	if (!streaming) {
		err = repo_backup_install(r, id, fd);
		fd = -1;
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
		if (!o->no_verify) {
			if (o->verify_source) {
				err = verify_against_source(&b, dev, res->file);
			} else {
				err = follow_stop(&verify);
				if (err)
					snprintf(b.msg, sizeof(b.msg), "writer verify: %s%s%s%s",
						 res->file, err == -EBADE ? " " : ": ",
						 verify.msg, err == -EBADE ? ": rejected" : "");
			}
			if (err) {
				res->failure = BLKTRACK_FAIL_WRITER;
				goto out_abort;
			}
			res->verified = true;
		}
	}
	err = thaw(&b, res);
	if (err)
		goto out_abort;
	if (o->strict && res->rewritten_bytes) {
		err = -EBADE;
		res->failure = BLKTRACK_FAIL_FUZZY;
		snprintf(b.msg, sizeof(b.msg), "%" PRIu64 " bytes of the backup were rewritten "
			 "during the read (--strict): rejected", res->rewritten_bytes);
		goto out_abort;
	}
	err = same_media(&b, dev, st.diskseq, res);
	if (err)
		goto out_abort;
	err = wevent(&b, res, "backup-complete", false);
	if (err)
		goto out_abort;

	if (streaming) {
		/* A stream is in no catalog: it moves no base. */
		err = blktrack_abort(ctx, dev, &ck.stamp);
		if (err < 0)
			goto out_close;
		checkpointed = false;
	} else {
		err = repo_commit(r, id, stats.stream_bytes);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
		committed = true;
		res->id = id;
		crash_at("after-catalog");
		/* Tests: BLKTRACK_TEST_COMMIT_FAIL=1, a COMMIT that fails (and is not sent). */
		if (test_hook("BLKTRACK_TEST_COMMIT_FAIL"))
			err = blktrack_set_error(ctx, -EIO, "BLKTRACK_TEST_COMMIT_FAIL");
		else
			err = blktrack_commit(ctx, dev, &ck.stamp);
		if (err < 0) {
			/* The context's message is the buffer set_error writes. */
			snprintf(b.msg, sizeof(b.msg), "%s", blktrack_get_error(ctx));
			if (err == -ESTALE || err == -ENODATA)
				/* Someone else aborted (or committed) our checkpoint. */
				blktrack_set_error(ctx, err, "backup %" PRIu64 " is committed in "
						   "the repository, but the kernel COMMIT failed: "
						   "the checkpoint is no longer this backup's (%s: "
						   "another program aborted or committed it, 'blktrack "
						   "abort'?). Nothing is lost: the next backup aborts "
						   "any other pending checkpoint and resyncs", id,
						   strerror(-err));
			else
				blktrack_set_error(ctx, err, "backup %" PRIu64 " is committed in "
						   "the repository, but the kernel COMMIT failed "
						   "(%s); the next backup finishes it", id, b.msg);
			goto out_close;
		}
		checkpointed = false;
	}
	res->failure = BLKTRACK_FAIL_NONE;
	res->seconds = now() - t0;
	err = 0;
	goto out_close;

out_errno:
	snprintf(b.msg, sizeof(b.msg), "%s", strerror(-err));
out_abort:
	follow_stop(&verify);
	if (!b.msg[0])
		snprintf(b.msg, sizeof(b.msg), "%s", blktrack_get_error(ctx));
	if (b.w)
		bfile_writer_abort(b.w);
	b.w = NULL;
	if (id && !committed) {
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (repo_abandon(r, id) < 0)
			snprintf(b.msg + strlen(b.msg), sizeof(b.msg) - strlen(b.msg),
				 " (and the repository keeps pending backup %" PRIu64
				 " until the next backup removes it: %s)", id, repo_error(r));
	}
	if (checkpointed && !committed && blktrack_abort(ctx, dev, &ck.stamp) < 0)
		strncat(b.msg, " (and the kernel ABORT failed: the next backup repairs it)",
			sizeof(b.msg) - strlen(b.msg) - 1);
	if (b.fs_fd >= 0 || b.freeze_sent) {
		enum blktrack_failure f = res->failure;
		char keep[8192];

		memcpy(keep, b.msg, sizeof(keep));
		/* The first failure stays the cause; a failed thaw is added to it. */
		if (thaw(&b, res)) {
			snprintf(keep + strlen(keep), sizeof(keep) - strlen(keep),
				 " (and then %s)", b.msg);
			if (!b.msg[0] || strncmp(b.msg, "writer filesystem:", 18))
				crit(ctx, "thaw after a failure: %s", b.msg);
		}
		memcpy(b.msg, keep, sizeof(keep));
		res->failure = f;
	}
	blktrack_set_error(ctx, err, "%s", b.msg);
	if (b.events) {
		char scratch[256];

		writers_event(b.wr, "abort", &b.env, false, scratch, sizeof(scratch));
	}
out_close:
	follow_stop(&verify);
	if (fd >= 0 && !streaming)
		close(fd);
	if (b.vol_fd >= 0)
		close(b.vol_fd);
	if (b.store_fd >= 0)
		close(b.store_fd);
	free(b.buf);
	free(ext);
	blockset_free(delta);
	blockset_free(want);
	blockset_free(b.stored);
	free(b.rh);
	blockhash_reader_free(b.hp);
	blockhash_writer_abort(b.hw);
	if (b.hp_fd >= 0)
		close(b.hp_fd);
	if (b.hw_fd >= 0)
		close(b.hw_fd);
	repo_close(r);
	writers_free(b.wr);
	vollock_release(lock_fd);
	return err;
}
