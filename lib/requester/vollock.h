/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vollock: one owner per kernel checkpoint (issue 13, point 3).
 *
 * A requester holds an flock() on LOCKDIR/VOLUME-ID.lock from its crash
 * recovery to its COMMIT or ABORT, so two requesters of one volume (two
 * repositories, two cron jobs) never interleave checkpoint, recovery and
 * commit. The file holds the holder's pid, for the message of the one that
 * finds it taken. The files are never removed (an unlink would race with a
 * waiter that has the old file open).
 *
 * Typical use:
 *	err = vollock_acquire(VOLLOCK_DIR, "uuid:...", 0, &fd, msg, sizeof(msg));
 *	... recovery, checkpoint, backup, COMMIT or ABORT ...
 *	vollock_release(fd);
 */
#ifndef BLKTRACK_VOLLOCK_H
#define BLKTRACK_VOLLOCK_H

#include <stddef.h>

#define VOLLOCK_DIR	"/run/blktrack"

/*
 * Lock volume @volume_id in directory @dir (created 0700 when missing; it
 * must be a directory of ours that group and others cannot write). @wait:
 * 0 fail at once, > 0 wait up to that many seconds, < 0 wait for ever.
 * Returns 0 with *@fd the lock, or -errno with a message in @msg: -EBUSY
 * (held by another process; the message names its pid), -ETIMEDOUT (still
 * held after @wait seconds), -EPERM (an unsafe @dir).
 */
int vollock_acquire(const char *dir, const char *volume_id, int wait, int *fd,
		    char *msg, size_t len);
void vollock_release(int fd);

#endif /* BLKTRACK_VOLLOCK_H */
