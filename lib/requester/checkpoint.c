// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: the checkpoint of a backup: the device's
 * cache written out first, exact (writes quiesced where completions are not
 * all seen), on the media it started on, with a copy-before-write snapshot
 * when the mode asks for one.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>

#include "requester/requester.h"

/*
 * The checkpoint, with a copy-before-write snapshot of the whole volume when
 * the mode asks for one and the module can (BLKTRACK_FEATURE_SNAPSHOT).
 */
int checkpoint(struct backup *b, struct blktrack_backup_result *res, dev_t dev,
	       struct blktrack_ckpt *ck)
{
	enum blktrack_snapshot_mode mode = b->o->snapshot;
	uint64_t features = 0;
	int err;

	b->dev = dev;
	res->snapshot = mode == BLKTRACK_SNAPSHOT_NONE ? "none" : "freeze";
	if (mode == BLKTRACK_SNAPSHOT_AUTO || mode == BLKTRACK_SNAPSHOT_COW) {
		err = blktrack_version(b->ctx, NULL, &features);
		if (err < 0)
			return err;
		if (!(features & BLKTRACK_FEATURE_SNAPSHOT) && mode == BLKTRACK_SNAPSHOT_COW)
			return blktrack_set_error(b->ctx, -EOPNOTSUPP, "--snapshot=cow: the "
						  "module has no snapshots (an older blktrack.ko)");
	}
	if (features & BLKTRACK_FEATURE_SNAPSHOT) {
		/* The whole volume; what the backup will not read is released. */
		err = blktrack_checkpoint_snap(b->ctx, dev, BLKTRACK_SNAP_ALL,
					       b->o->snapshot_store, b->store_fd, ck);
		if (b->store_fd >= 0) {
			close(b->store_fd);	/* the module has its own reference */
			b->store_fd = -1;
		}
		if (!err) {
			b->cow = true;
			b->stamp = ck->stamp;
			res->snapshot = "cow";
			res->snapshot_store = b->o->snapshot_store_path ?: "memory";
			return 0;
		}
		if (err == -EOPNOTSUPP && mode == BLKTRACK_SNAPSHOT_COW) {
			char why[512];	/* the context's message, overwritten below */

			snprintf(why, sizeof(why), "%s", blktrack_get_error(b->ctx));
			return blktrack_set_error(b->ctx, err, "--snapshot=cow: %s; --snapshot=auto "
						  "would hold the freeze through the read instead",
						  why);
		}
		if (err != -EOPNOTSUPP)
			return err;
		info(b->ctx, "%s: holding the freeze through the read instead",
		     blktrack_get_error(b->ctx));
	}
	return blktrack_checkpoint(b->ctx, &dev, 1, ck);
}

/*
 * The disk must still hold the media the checkpoint saw (STATUS's diskseq):
 * new media under the read (a loop device given another file, a changed
 * disc) means the backup read other content than its map describes.
 */
int same_media(struct backup *b, dev_t dev, uint64_t diskseq,
	       struct blktrack_backup_result *res)
{
	struct blktrack_status st;
	int err = blktrack_status(b->ctx, dev, &st);

	if (err < 0)
		return err;
	if (st.diskseq == diskseq)
		return 0;
	res->failure = BLKTRACK_FAIL_INVALID;
	snprintf(b->msg, sizeof(b->msg), "%s: the disk's media changed during the backup "
		 "(%s): nothing is kept; the next backup resyncs", b->o->device,
		 blktrack_reason_name(st.reason));
	return -ESTALE;
}

/*
 * Buffered writes to the device itself (an application writing a raw volume,
 * no filesystem to freeze) wait in the device's page cache, where no probe
 * sees them until writeback: write them out before the checkpoint, as
 * FIFREEZE does for a filesystem, or the backup misses what was written
 * before it (tests/vm/0957-buffered.sh; the 0990 wrong restore).
 */
int flush_device(struct backup *b)
{
	int fd = open(b->o->device, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0 || fsync(fd))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: cannot write out its page cache: %s",
			 b->o->device, strerror(-err));
	return err;
}

/*
 * A volume some of whose writes complete where the module cannot see them
 * (STATUS UNCOVERED) has an exact checkpoint only with its writes quiesced:
 * a frozen filesystem. Otherwise a write in flight at the checkpoint could
 * be in no map: refuse rather than read fuzzily.
 */
int exact_checkpoint(struct backup *b, const struct blktrack_status *st,
		     struct blktrack_backup_result *res)
{
	if (!(st->flags & BLKTRACK_STATUS_UNCOVERED) || b->fs_fd >= 0 ||
	    !strcmp(res->freeze, "external"))
		return 0;
	snprintf(b->msg, sizeof(b->msg), "%s: some writes complete on disks below that the "
		 "module cannot map back (completions: partial) and no freeze is held: a write "
		 "in flight at the checkpoint could be missed; back it up with its filesystem "
		 "mounted (frozen), or freeze it before (fsfreeze)", b->o->device);
	return -EXDEV;
}
