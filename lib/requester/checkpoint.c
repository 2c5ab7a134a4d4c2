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

/* Each member its volume's checkpoint ck[k] (k: its volume's place in the call). */
static void distribute(struct bset *s, const struct blktrack_ckpt *ck, bool cow)
{
	const struct blktrack_backup_opts *o = s->m[0].o;
	size_t i, k, owners = 0;

	for (i = 0; i < s->n; i++) {
		struct backup *b = &s->m[i];

		if (b->vol == b)
			owners++;
		for (k = 0; k < owners; k++)
			if (ck[k].dev == b->dev)
				break;
		b->ck = ck[k];
		b->phase = BACKUP_CHECKPOINTED;
		if (!cow)
			continue;
		b->cow = true;
		b->stamp = ck[k].stamp;
		b->res->snapshot = "cow";
		b->res->snapshot_store = o->snapshot_store_path ?: "memory";
	}
}

/*
 * The set's checkpoint: its volumes at one instant (the members on one
 * volume share its), with a copy-before-write snapshot of each whole volume
 * when the mode asks for one and the module can (BLKTRACK_FEATURE_SNAPSHOT).
 * Every member CHECKPOINTED when it returns 0.
 */
int checkpoint(struct bset *s)
{
	struct backup *lead = &s->m[0];
	const struct blktrack_backup_opts *o = lead->o;
	enum blktrack_snapshot_mode mode = o->snapshot;
	struct blktrack_ckpt ck[BLKTRACK_SET_MAX];
	dev_t devs[BLKTRACK_SET_MAX];
	uint64_t features = 0;
	size_t i, n = 0;
	int err;

	for (i = 0; i < s->n; i++) {
		s->m[i].res->snapshot = mode == BLKTRACK_SNAPSHOT_NONE ? "none" : "freeze";
		if (s->m[i].vol == &s->m[i])
			devs[n++] = s->m[i].dev;
	}
	if (mode == BLKTRACK_SNAPSHOT_AUTO || mode == BLKTRACK_SNAPSHOT_COW) {
		err = blktrack_version(s->ctx, NULL, &features);
		if (err < 0)
			return err;
		if (!(features & BLKTRACK_FEATURE_SNAPSHOT) && mode == BLKTRACK_SNAPSHOT_COW)
			return blktrack_set_error(s->ctx, -EOPNOTSUPP, "--snapshot=cow: the "
						  "module has no snapshots (an older blktrack.ko)");
	}
	if (features & BLKTRACK_FEATURE_SNAPSHOT) {
		/* The whole volumes; what the backup will not read is released. */
		err = kernel_checkpoint_snap(s->ctx, devs, n, BLKTRACK_SNAP_ALL,
					     o->snapshot_store, lead->store_fd, ck);
		if (lead->store_fd >= 0) {
			close(lead->store_fd);	/* the module has its own reference */
			lead->store_fd = -1;
		}
		if (!err) {
			distribute(s, ck, true);
			return 0;
		}
		if (err == -EOPNOTSUPP && mode == BLKTRACK_SNAPSHOT_COW) {
			char why[512];	/* the context's message, overwritten below */

			snprintf(why, sizeof(why), "%s", blktrack_get_error(s->ctx));
			return blktrack_set_error(s->ctx, err, "--snapshot=cow: %s; --snapshot=auto "
						  "would hold the freeze through the read instead",
						  why);
		}
		if (err != -EOPNOTSUPP)
			return err;
		info(s->ctx, "%s: holding the freeze through the read instead",
		     blktrack_get_error(s->ctx));
	}
	err = blktrack_checkpoint(s->ctx, devs, n, ck);
	if (!err)
		distribute(s, ck, false);
	return err;
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
	if (!(st->flags & BLKTRACK_STATUS_UNCOVERED) || !strcmp(res->freeze, "held") ||
	    !strcmp(res->freeze, "external"))
		return 0;
	snprintf(b->msg, sizeof(b->msg), "%s: some writes complete on disks below that the "
		 "module cannot map back (completions: partial) and no freeze is held: a write "
		 "in flight at the checkpoint could be missed; back it up with its filesystem "
		 "mounted (frozen), or freeze it before (fsfreeze)", b->o->device);
	return -EXDEV;
}
