// SPDX-License-Identifier: GPL-2.0
/*
 * stress-backup DEV REPO STOP_FILE INTERVAL_MS REJECT_WRITERS_DIR
 *
 * The backup side of tests/vm/0990-stress.sh: until STOP_FILE exists (the
 * test creates it when its writers are done), and for at least 10 cycles,
 * start a cycle every INTERVAL_MS (at once when the previous one took
 * longer). Cycle n (from 1) is
 *
 *	n % 10 == 3: blktrack_backup() with REJECT_WRITERS_DIR, whose writer
 *		     rejects at backup-complete: it must fail with
 *		     BLKTRACK_FAIL_WRITER (the requester ABORTs the checkpoint);
 *	n % 10 == 8: CHECKPOINT, READ_EXTENTS of the pending map, ABORT, with
 *		     the library's ioctl calls alone;
 *	otherwise:   an incremental blktrack_backup() into REPO (checkpoint,
 *		     read, commit), without filesystem freeze or verify.
 *
 * So every fifth cycle aborts, both kinds within the first 8 cycles (while
 * the writers still run, however slow the machine). After each cycle the kernel's status must
 * show no pending map, TRACKING, and an epoch that grew by exactly one per
 * committed backup and 2^32 per abort. A backup must never fall back to a
 * resync or a full (a checkpoint after aborts still follows the chain).
 * Prints a line per cycle (what, how long, how many bytes changed), then a
 * summary line; exits 1 on the first unexpected result.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libblktrack.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	double d = t - now();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* @err < 0: a library call failed (its message is printed); 0: a check. */
static int die(struct blktrack_ctx *ctx, unsigned long n, const char *what, int err)
{
	if (err < 0)
		fprintf(stderr, "stress-backup: cycle %lu: %s: %s\n", n, what,
			ctx ? blktrack_get_error(ctx) : strerror(-err));
	else
		fprintf(stderr, "stress-backup: cycle %lu: %s\n", n, what);
	return 1;
}

/* CHECKPOINT, READ_EXTENTS (pending), ABORT: the map merges back. */
static int raw_abort(struct blktrack_ctx *ctx, dev_t dev, uint64_t *bytes)
{
	struct blktrack_extent *ext;
	struct blktrack_ckpt ck;
	size_t n, i;
	int err;

	err = blktrack_checkpoint(ctx, &dev, 1, &ck);
	if (err)
		return err;
	err = blktrack_read_extents(ctx, dev, 0, &ck.stamp, &ext, &n);
	if (err) {
		blktrack_abort(ctx, dev, &ck.stamp);
		return err;
	}
	*bytes = 0;
	for (i = 0; i < n; i++)
		*bytes += ext[i].length;
	free(ext);
	return blktrack_abort(ctx, dev, &ck.stamp);
}

int main(int argc, char **argv)
{
	unsigned long n = 0, committed = 0, rejected = 0, aborted = 0;
	uint64_t changed = 0, stored = 0, abort_bytes = 0, epoch0, want;
	double t0, next, interval, t, longest = 0;
	struct blktrack_ctx *ctx;
	struct blktrack_status st;
	dev_t dev;
	int err;

	if (argc != 6) {
		fprintf(stderr, "usage: stress-backup DEV REPO STOP_FILE INTERVAL_MS "
			"REJECT_WRITERS_DIR\n");
		return 2;
	}
	interval = atof(argv[4]) / 1000;
	ctx = blktrack_new();
	if (!ctx)
		return die(NULL, 0, "blktrack_new", -ENOMEM);
	err = blktrack_open(ctx);
	if (err)
		return die(ctx, 0, "blktrack_open", err);
	err = blktrack_dev_from_path(argv[1], &dev);
	if (err)
		return die(ctx, 0, argv[1], err);
	err = blktrack_status(ctx, dev, &st);
	if (err)
		return die(ctx, 0, "status", err);
	epoch0 = st.stamp.epoch;

	t0 = now();
	for (next = t0; access(argv[3], F_OK) || n < 10; n++) {
		struct blktrack_backup_opts o = {
			.device = argv[1],
			.repo = argv[2],
			.type = BLKTRACK_BACKUP_INCREMENTAL,
			.on_invalid = BLKTRACK_ON_INVALID_FAIL,
			.no_fs_freeze = true,
			.no_verify = true,
		};
		struct blktrack_backup_result res;
		unsigned long c = n + 1;
		const char *kind = "committed";
		uint64_t bytes = 0;

		sleep_until(next);
		t = now();
		if (c % 10 == 8) {
			kind = "checkpoint/read/abort";
			err = raw_abort(ctx, dev, &bytes);
			if (err)
				return die(ctx, c, "checkpoint/read/abort", err);
			abort_bytes += bytes;
			aborted++;
		} else if (c % 10 == 3) {
			kind = "rejected";
			o.writers_dir = argv[5];
			err = blktrack_backup(ctx, &o, &res);
			if (!err || res.failure != BLKTRACK_FAIL_WRITER)
				return die(ctx, c, "the rejected backup did not fail as a "
					   "writer's rejection", err);
			rejected++;
		} else {
			err = blktrack_backup(ctx, &o, &res);
			if (err)
				return die(ctx, c, "backup", err);
			if (res.fell_back || res.type != BLKTRACK_BACKUP_INCREMENTAL)
				return die(ctx, c, "the backup fell back: tracking was lost", 0);
			bytes = res.changed_bytes;
			changed += bytes;
			stored += res.stored_bytes;
			committed++;
		}
		t = now() - t;
		printf("cycle %lu: %s, %.0f ms, %" PRIu64 " bytes\n", c, kind, t * 1000, bytes);
		if (t > longest)
			longest = t;

		err = blktrack_status(ctx, dev, &st);
		if (err)
			return die(ctx, c, "status", err);
		if (st.flags & BLKTRACK_STATUS_PENDING)
			return die(ctx, c, "a checkpoint is still pending", 0);
		if (st.state != BLKTRACK_STATE_TRACKING)
			return die(ctx, c, "the volume is not TRACKING", 0);
		/* COMMIT adds 1, ABORT BLKTRACK_EPOCH_ABORT (doc/ABI.md). */
		want = epoch0 + committed + (aborted + rejected) * BLKTRACK_EPOCH_ABORT;
		if (st.stamp.epoch != want) {
			fprintf(stderr, "stress-backup: cycle %lu: epoch %" PRIu64
				", wanted %" PRIu64 "\n", c, (uint64_t)st.stamp.epoch, want);
			return 1;
		}
		next += interval;
		if (next < now())
			next = now();
	}
	t = now() - t0;
	printf("stress-backup: %lu cycles in %.1f s (%.0f ms each, longest %.0f ms): "
	       "%lu committed (%" PRIu64 " changed bytes, %" PRIu64 " stored), "
	       "%lu rejected, %lu aborted (%" PRIu64 " bytes merged back)\n",
	       n, t, n ? t * 1000 / n : 0.0, longest * 1000, committed, changed, stored,
	       rejected, aborted, abort_bytes);
	blktrack_unref(ctx);
	return 0;
}
