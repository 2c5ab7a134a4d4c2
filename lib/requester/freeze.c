// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: freezing and the writers' events around a
 * backup (doc/WRITERS.md): delivery, and the thaw that must never be
 * silent.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>

#include "requester/requester.h"

const char *const type_env[] = {
	[BLKTRACK_BACKUP_FULL] = "full",
	[BLKTRACK_BACKUP_INCREMENTAL] = "incremental",
	[BLKTRACK_BACKUP_DIFFERENTIAL] = "differential",
	[BLKTRACK_BACKUP_COPY] = "copy",
	[BLKTRACK_BACKUP_RESYNC] = "resync",
};

void stamp_str(const uint8_t gen[16], uint64_t epoch, char *out, size_t len)
{
	char g[BLKTRACK_UUID_STR_LEN];

	blktrack_uuid_unparse(gen, g);
	snprintf(out, len, "%s:%" PRIu64, g, epoch);
}

/* Deliver @event to the external writers; a failure is the writers'. */
int wevent(struct backup *b, struct blktrack_backup_result *res, const char *event,
	   bool stop)
{
	int err;

	b->events = true;
	err = writers_event(b->wr, event, &b->env, stop, b->msg, sizeof(b->msg));
	if (err)
		res->failure = BLKTRACK_FAIL_WRITER;
	return err;
}

/* Tests: BLKTRACK_TEST_FITHAW_FAIL=1 fails FITHAW (and leaves the filesystem frozen). */
static int fs_thaw_or_test(int fd)
{
	if (test_hook("BLKTRACK_TEST_FITHAW_FAIL")) {
		close(fd);
		return -EIO;
	}
	return fs_thaw(fd);
}

/*
 * A filesystem left frozen stops every writer on it: the message says so
 * and how to thaw it, at LOG_CRIT (shown even with -q), and the call fails.
 */
int thaw(struct backup *b, struct blktrack_backup_result *res)
{
	int err = 0;

	if (b->fs_fd >= 0) {
		err = fs_thaw_or_test(b->fs_fd);
		b->fs_fd = -1;
		res->freeze_seconds = now() - b->frozen_at;
		if (err) {
			snprintf(b->msg, sizeof(b->msg),
				 "writer filesystem: FITHAW %s: %s: the filesystem may be "
				 "left FROZEN (thaw it with fsfreeze -u)",
				 res->mount_point, strerror(-err));
			res->failure = BLKTRACK_FAIL_WRITER;
			crit(b->ctx, "%s", b->msg);
		}
	}
	if (b->freeze_sent) {
		b->freeze_sent = false;
		if (err) {
			char scratch[256];

			writers_event(b->wr, "thaw", &b->env, false, scratch, sizeof(scratch));
		} else {
			err = wevent(b, res, "thaw", false);
		}
	}
	return err;
}
