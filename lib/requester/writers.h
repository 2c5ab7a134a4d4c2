/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internal: the writer runner (doc/WRITERS.md) and the built-in
 * filesystem writer's helpers.
 *
 * Typical use:
 *
 *	writers_load(dir, must_exist, timeout, &w, msg, len);
 *	writers_event(w, "prepare-backup", &env, true, msg, len);   veto?
 *	...
 *	writers_free(w);
 */
#ifndef BLKTRACK_WRITERS_H
#define BLKTRACK_WRITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WRITERS_DEFAULT_DIR	"/etc/blktrack/writers.d"
#define WRITERS_DEFAULT_TIMEOUT	60
/* Seconds between the SIGTERM at the time limit and the SIGKILL. */
#define WRITERS_KILL_GRACE	5

/* The context of an event, as BLKTRACK_* environment variables; NULL or 0:
 * not known yet (the variable is not set). */
struct writers_env {
	const char *device;
	const char *volume_id;
	const char *backup_type;
	const char *prev_stamp;		/* "GENERATION:EPOCH" */
	const char *new_stamp;
	const char *backup_file;
	const char *repo;
	const char *file;		/* a per-file backup's file, or NULL */
	const char *set_members;	/* a backup set's devices and files, a line each */
	uint64_t backup_id;
	/* Backup stamps: the base's ("NAME\tSTAMP\n" lines), where to leave the next. */
	const char *prev_writer_stamps;
	const char *stamp_dir;		/* backup-complete: DIR/NAME */
	const char *ranges_dir;		/* post-snapshot: DIR/NAME (doc/WRITERS.md, "Ranges") */
	/* Restores: the target, and "1" when more restores of the chain follow. */
	const char *restore_target;
	const char *more_restores;
};

struct writers;

/*
 * The writers of @dir in name order: regular files named [A-Za-z0-9_-]+,
 * owned by root or the euid, executable by their owner and not writable by
 * group or others. Any other entry is skipped with a notice on stderr
 * naming it and why. -EPERM when @dir itself is not owned by root or the
 * euid, or is writable by group or others. A missing @dir is no writer
 * unless @must_exist. @timeout: seconds per event and writer.
 */
int writers_load(const char *dir, bool must_exist, unsigned int timeout,
		 struct writers **out, char *msg, size_t len);
void writers_free(struct writers *w);
size_t writers_count(const struct writers *w);
/* The name of writer @i (< writers_count()), in the order they run. */
const char *writers_name(const struct writers *w, size_t i);

/*
 * Run every writer as `./NAME EVENT` in the writers directory, in name
 * order, with the environment of the caller minus LD_* and BLKTRACK_*,
 * plus the event's BLKTRACK_* (@env); their output goes to stderr, each
 * line prefixed with "writer NAME: ". Returns 0, or -ECANCELED when a
 * writer exited non-zero or was killed, -ETIME when it ran out of time (its
 * process group gets SIGTERM, then SIGKILL WRITERS_KILL_GRACE s later), or
 * another -errno when it could not run; @msg names the writer. With @stop, the first failure ends the event;
 * otherwise every writer sees it and the first failure is returned.
 */
int writers_event(struct writers *w, const char *event, const struct writers_env *env,
		  bool stop, char *msg, size_t len);

/*
 * The stamps the writers left in @dir at backup-complete (DIR/NAME, one line
 * each; none: no stamp) as "NAME\tSTAMP\n" lines in writer order. -EINVAL
 * for a stamp that is not one line of printable characters, -E2BIG when
 * they do not fit in @len; @msg says which writer.
 */
int writers_stamps(const struct writers *w, const char *dir, char *out, size_t len,
		   char *msg, size_t mlen);

#endif /* BLKTRACK_WRITERS_H */
