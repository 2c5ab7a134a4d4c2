// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: freezing and the writers' events around a
 * backup (doc/WRITERS.md): delivery, and the thaw that must never be
 * silent.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
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

/* ---- writer backup stamps (doc/WRITERS.md, "Backup stamps") ------------ */

void writer_stamps_prev(struct backup *b)
{
	uint64_t base;

	b->prev_writer_stamps[0] = 0;
	b->env.prev_writer_stamps = b->prev_writer_stamps;
	if (!b->r || b->type == BLKTRACK_BACKUP_FULL || b->type == BLKTRACK_BACKUP_COPY ||
	    repo_base(b->r, repo_type_of(b->type), b->res->volume_id, &base))
		return;		/* a full has no previous backup to speak of */
	snprintf(b->prev_writer_stamps, sizeof(b->prev_writer_stamps), "%s",
		 repo_find(b->r, base)->writer_stamps);
}

void writer_stamps_clean(struct backup *b)
{
	char path[PATH_MAX + 256];
	DIR *d;
	struct dirent *de;

	if (!b->stamp_dir[0])
		return;
	d = opendir(b->stamp_dir);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", b->stamp_dir, de->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(b->stamp_dir);
	b->stamp_dir[0] = 0;
	b->env.stamp_dir = NULL;
}

/*
 * A directory of our own beside the volumes' locks for the files the
 * writers leave at an event (b->stamp_dir, "" without writers), removed by
 * writer_stamps_clean().
 */
int writer_dir(struct backup *b)
{
	const char *dir = b->o->lock_dir ? b->o->lock_dir : VOLLOCK_DIR;
	int err;

	if (!writers_count(b->wr))
		return 0;
	snprintf(b->stamp_dir, sizeof(b->stamp_dir), "%s/writers.XXXXXX", dir);
	if (mkdtemp(b->stamp_dir))
		return 0;
	err = -errno;
	snprintf(b->msg, sizeof(b->msg), "%s: %s", b->stamp_dir, strerror(errno));
	b->stamp_dir[0] = 0;
	return err;
}

/*
 * backup-complete, each writer given a file to leave its stamp in
 * (BLKTRACK_WRITER_STAMP_FILE, in writer_dir()); the stamps then go with
 * the pending entry.
 */
int backup_complete(struct backup *b, struct blktrack_backup_result *res)
{
	int err = writer_dir(b);

	if (err)
		return err;
	b->env.stamp_dir = b->stamp_dir[0] ? b->stamp_dir : NULL;
	err = wevent(b, res, "backup-complete", false);
	if (!err && b->stamp_dir[0])
		err = writers_stamps(b->wr, b->stamp_dir, res->writer_stamps,
				     sizeof(res->writer_stamps), b->msg, sizeof(b->msg));
	if (err)
		res->failure = BLKTRACK_FAIL_WRITER;
	/* A set's stamps are the set's: every member keeps them. */
	for (size_t i = 0; !err && res->writer_stamps[0] && i < b->set->n; i++) {
		struct backup *m = &b->set->m[i];

		memcpy(m->res->writer_stamps, res->writer_stamps, sizeof(res->writer_stamps));
		if (b->r && m->id)
			err = repo_set_writer_stamps(b->r, m->id, res->writer_stamps);
		if (err)
			snprintf(b->msg, sizeof(b->msg), "%s", repo_error(b->r));
	}
	writer_stamps_clean(b);
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
