// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the writer runner (doc/WRITERS.md); the built-in
 * filesystem writer's helpers are in fs.c.
 *
 * Writers run as root, so they are chosen as run-parts and cron choose
 * theirs: the writers directory is opened once and must belong to root (or
 * to us) and be writable by nobody else; in it, only regular files with a
 * plain name ([A-Za-z0-9_-]+), of the same owner and modes, run. Anything
 * else is skipped with a notice on stderr. Since nobody else can change the
 * directory, what we checked is what runs: each writer is started with
 * posix_spawn() as ./NAME from the directory's descriptor (fchdir, no path
 * lookup outside it), in its own process group, stdin /dev/null, stdout and
 * stderr into a pipe that we copy to our stderr line by line with the
 * writer's name in front, and an environment without the loader's LD_*
 * variables and our own (test hooks, BLKTRACK_MODULE). Each run has a
 * deadline: past it the process group gets SIGTERM, then SIGKILL after
 * WRITERS_KILL_GRACE seconds, and the run counts as a failure.
 *
 * Section banners: the writers directory / one run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "repo/repo.h"
#include "requester/writers.h"

extern char **environ;

struct writer {
	char *name;
};

struct writers {
	int dirfd;		/* the writers directory, checked; -1: none */
	char *dir;
	struct writer *w;
	size_t n;
	unsigned int timeout;
};

/* ---- the writers directory ---------------------------------------------- */

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* run-parts' rule: no dots, so no *.dpkg-old, foo~ or dot files. */
static bool plain_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '_' && *s != '-')
			return false;
	return true;
}

/*
 * Why a file or directory that runs as root is not safe (NULL: it is):
 * another owner than root or us (us: the unit tests, an unprivileged
 * caller running its own writers), or writable by group or others.
 */
static const char *unsafe(const struct stat *st, char *buf, size_t len)
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(buf, len, "owned by uid %u, not by root", (unsigned int)st->st_uid);
		return buf;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "writable by group or others";
	return NULL;
}

/* Why entry @name of the directory @dirfd must not run (NULL: it may). */
static const char *skip_reason(int dirfd, const char *name, char *buf, size_t len)
{
	const char *why;
	struct stat st;

	if (!plain_name(name))
		return "its name is not made of letters, digits, '_' and '-' only";
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		snprintf(buf, len, "cannot stat: %s", strerror(errno));
		return buf;
	}
	if (S_ISLNK(st.st_mode))
		return "a symbolic link";
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	why = unsafe(&st, buf, len);
	if (why)
		return why;
	if (!(st.st_mode & S_IXUSR))
		return "not executable";
	return NULL;
}

/* The directory must be as safe as its writers: nobody else can swap one. */
static int open_dir(const char *dir, int *fd, char *msg, size_t len)
{
	const char *why;
	char buf[64];
	struct stat st;
	int err;

	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		err = -errno;
		snprintf(msg, len, "writers directory %s: %s", dir, strerror(-err));
		return err;
	}
	why = fstat(*fd, &st) ? strerror(errno) : unsafe(&st, buf, sizeof(buf));
	if (!why)
		return 0;
	snprintf(msg, len, "writers directory %s: %s: refused", dir, why);
	close(*fd);
	*fd = -1;
	return -EPERM;
}

int writers_load(const char *dir, bool must_exist, unsigned int timeout,
		 struct writers **out, char *msg, size_t len)
{
	struct dirent **names = NULL;
	struct writers *w;
	int i, n, err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->timeout = timeout ? timeout : WRITERS_DEFAULT_TIMEOUT;
	err = open_dir(dir, &w->dirfd, msg, len);
	if (err == -ENOENT && !must_exist) {
		if (len)
			msg[0] = 0;	/* not an error: no writer */
		*out = w;
		return 0;
	}
	if (err) {
		free(w);
		return err;
	}
	w->dir = strdup(dir);
	n = scandirat(w->dirfd, ".", &names, NULL, by_name);
	if (n < 0) {
		err = -errno;
		snprintf(msg, len, "writers directory %s: %s", dir, strerror(-err));
	} else if (!w->dir || !(w->w = calloc(n ? n : 1, sizeof(*w->w)))) {
		err = -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name, *why;
		char buf[128];

		if (err || !strcmp(name, ".") || !strcmp(name, ".."))
			goto next;
		why = skip_reason(w->dirfd, name, buf, sizeof(buf));
		if (why)
			fprintf(stderr, "blktrack: writers directory %s: %s: skipped: %s\n",
				dir, name, why);
		else if (!(w->w[w->n++].name = strdup(name)))
			err = -ENOMEM;
next:
		free(names[i]);
	}
	free(names);
	if (err) {
		writers_free(w);
		return err;
	}
	*out = w;
	return 0;
}

void writers_free(struct writers *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->n; i++)
		free(w->w[i].name);
	free(w->w);
	free(w->dir);
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w);
}

size_t writers_count(const struct writers *w)
{
	return w ? w->n : 0;
}

const char *writers_name(const struct writers *w, size_t i)
{
	return w->w[i].name;
}

/* ---- one run ------------------------------------------------------------ */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copy complete lines of @buf (@*fill bytes) to stderr; keep the rest. */
static void flush_lines(const char *name, char *buf, size_t *fill, bool all)
{
	size_t start = 0, i;

	for (i = 0; i < *fill; i++) {
		if (buf[i] != '\n')
			continue;
		fprintf(stderr, "blktrack: writer %s: %.*s\n", name, (int)(i - start), buf + start);
		start = i + 1;
	}
	if (all && start < *fill) {
		fprintf(stderr, "blktrack: writer %s: %.*s\n", name, (int)(*fill - start),
			buf + start);
		start = *fill;
	}
	memmove(buf, buf + start, *fill - start);
	*fill -= start;
}

#define ENV_OWN	17	/* the BLKTRACK_* variables we set, at most */

/* @name's line of @stamps ("NAME\tSTAMP\n" lines) into @out, or NULL. */
static const char *stamp_of(const char *stamps, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);
	const char *p, *nl;

	for (p = stamps; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (!strncmp(p, name, n) && p[n] == '\t') {
			snprintf(out, len, "%.*s", (int)((nl ? nl : p + strlen(p)) - p - n - 1),
				 p + n + 1);
			return out;
		}
	}
	return NULL;
}

/*
 * The writer's environment: ours, minus the loader's LD_* and anything of
 * blktrack's own (BLKTRACK_TEST_* hooks, BLKTRACK_MODULE, a context left
 * by a caller that is itself a writer), plus the event's BLKTRACK_*. The
 * first ENV_OWN entries are ours to free (env_free).
 */
static char **env_build(const char *name, const char *event, const struct writers_env *e)
{
	const char *vars[ENV_OWN][2] = {
		{ "BLKTRACK_EVENT", event }, { "BLKTRACK_WRITER", name },
		{ "BLKTRACK_DEVICE", e->device }, { "BLKTRACK_VOLUME_ID", e->volume_id },
		{ "BLKTRACK_BACKUP_TYPE", e->backup_type },
		{ "BLKTRACK_PREV_STAMP", e->prev_stamp }, { "BLKTRACK_NEW_STAMP", e->new_stamp },
		{ "BLKTRACK_BACKUP_FILE", e->backup_file }, { "BLKTRACK_REPO", e->repo },
		{ "BLKTRACK_FILE", e->file },
		{ "BLKTRACK_RESTORE_TARGET", e->restore_target },
		{ "BLKTRACK_MORE_RESTORES", e->more_restores },
		{ "BLKTRACK_SET_MEMBERS", e->set_members },
		{ "BLKTRACK_RANGES_FILE", NULL },
		{ "BLKTRACK_PREV_WRITER_STAMP", NULL }, { "BLKTRACK_WRITER_STAMP_FILE", NULL },
	};
	size_t n = 0, k = ENV_OWN, i;
	char **v, id[32], prev[REPO_WRITER_STAMP_LEN + 1], file[PATH_MAX], ranges[PATH_MAX];

	/* Backup stamps (doc/WRITERS.md): the writer's own, and where to leave the next. */
	vars[ENV_OWN - 3][1] = stamp_of(e->prev_writer_stamps, name, prev, sizeof(prev));
	if (e->stamp_dir && !strcmp(event, "backup-complete") &&
	    snprintf(file, sizeof(file), "%s/%s", e->stamp_dir, name) < (int)sizeof(file))
		vars[ENV_OWN - 2][1] = file;
	if (e->ranges_dir && !strcmp(event, "post-snapshot") &&
	    snprintf(ranges, sizeof(ranges), "%s/%s", e->ranges_dir, name) < (int)sizeof(ranges))
		vars[ENV_OWN - 4][1] = ranges;

	if (e->backup_id) {
		snprintf(id, sizeof(id), "%" PRIu64, e->backup_id);
		vars[ENV_OWN - 1][0] = "BLKTRACK_BACKUP_ID";
		vars[ENV_OWN - 1][1] = id;
	}
	while (environ[n])
		n++;
	v = calloc(ENV_OWN + n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < ENV_OWN; i++)
		if (vars[i][1] && asprintf(&v[i], "%s=%s", vars[i][0], vars[i][1]) < 0) {
			v[i] = NULL;
			goto fail;
		}
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_", 3) && strncmp(environ[i], "BLKTRACK_", 9))
			v[k++] = environ[i];
	/* Close the gaps of the variables not set, keeping ours first. */
	for (i = n = 0; i < k; i++)
		if (v[i])
			v[n++] = v[i];
	v[n] = NULL;
	return v;
fail:
	for (i = 0; i < ENV_OWN; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static void env_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i] && !strncmp(v[i], "BLKTRACK_", 9); i++)
		free(v[i]);
	free(v);
}

/*
 * Start writer @name as `./NAME EVENT` from the writers directory, its
 * output into @out. posix_spawn: nothing that is not async-signal-safe
 * runs between fork and exec.
 */
static int spawn(const struct writers *w, const char *name, const char *event,
		 const struct writers_env *e, int out, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char rel[NAME_MAX + 3], *argv[3], **envp;
	sigset_t all, none;
	int err;

	snprintf(rel, sizeof(rel), "./%s", name);
	argv[0] = rel;
	argv[1] = (char *)event;
	argv[2] = NULL;
	envp = env_build(name, event, e);
	if (!envp)
		return -ENOMEM;
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	err = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0) ||
	      posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO) ||
	      posix_spawn_file_actions_adddup2(&fa, out, STDERR_FILENO) ||
	      posix_spawn_file_actions_addfchdir_np(&fa, w->dirfd) ||
	      posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETSIGMASK) ||
	      posix_spawnattr_setpgroup(&attr, 0) ||
	      posix_spawnattr_setsigdefault(&attr, &all) ||
	      posix_spawnattr_setsigmask(&attr, &none) ? ENOMEM : 0;
	if (!err)
		err = posix_spawn(pid, rel, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	env_free(envp);
	return -err;
}

/* Whether @pid has exited, without reaping it: its process group id stays
 * its own (not reused) until waitpid(). */
static bool has_exited(pid_t pid)
{
	siginfo_t si = { 0 };

	return !waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid;
}

/* Past *@deadline: SIGTERM to the group, then SIGKILL after the grace. */
static void enforce_deadline(pid_t pid, double *deadline, int *sent)
{
	if (mono() < *deadline || *sent == SIGKILL)
		return;
	*sent = *sent ? SIGKILL : SIGTERM;
	kill(-pid, *sent);
	*deadline += WRITERS_KILL_GRACE;
}

static int run_one(const struct writers *w, const struct writer *wr, const char *event,
		   const struct writers_env *e, char *msg, size_t len)
{
	double deadline = mono() + w->timeout;
	char buf[4096];
	size_t fill = 0;
	bool exited = false, eof = false;
	int pfd[2], status = 0, sent = 0, err;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(stderr);
	err = spawn(w, wr->name, event, e, pfd[1], &pid);
	close(pfd[1]);
	if (err) {
		close(pfd[0]);
		snprintf(msg, len, "writer %s %s: cannot run %s/%s: %s", wr->name, event,
			 w->dir, wr->name, strerror(-err));
		return err;
	}
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);

	for (;;) {
		struct pollfd p = { .fd = eof ? -1 : pfd[0], .events = POLLIN };
		ssize_t r;

		if (!exited)
			exited = has_exited(pid);
		if (!exited)
			enforce_deadline(pid, &deadline, &sent);
		if (exited && eof)
			break;
		poll(&p, 1, exited ? 0 : 100);
		if (eof)
			continue;
		r = read(pfd[0], buf + fill, sizeof(buf) - 1 - fill);
		if (r > 0) {
			fill += r;
			flush_lines(wr->name, buf, &fill, fill == sizeof(buf) - 1);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		eof = r == 0;
		/* Nothing more now and the writer is gone: a child it left
		 * behind may hold the pipe, we do not wait for it. */
		if (exited)
			break;
	}
	flush_lines(wr->name, buf, &fill, true);
	close(pfd[0]);
	if (sent)	/* what is left of its group, before the leader is reaped */
		kill(-pid, SIGKILL);
	waitpid(pid, &status, 0);

	if (sent) {
		snprintf(msg, len, "writer %s %s: no answer in %u s, killed", wr->name, event,
			 w->timeout);
		return -ETIME;
	}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	if (WIFEXITED(status))
		snprintf(msg, len, "writer %s %s: exit %d", wr->name, event, WEXITSTATUS(status));
	else
		snprintf(msg, len, "writer %s %s: killed by signal %d", wr->name, event,
			 WTERMSIG(status));
	return -ECANCELED;
}

int writers_event(struct writers *w, const char *event, const struct writers_env *env,
		  bool stop, char *msg, size_t len)
{
	char scratch[256];
	size_t i;
	int err, first = 0;

	for (i = 0; w && i < w->n; i++) {
		err = first ? run_one(w, &w->w[i], event, env, scratch, sizeof(scratch)) :
			      run_one(w, &w->w[i], event, env, msg, len);
		if (err && !first)
			first = err;
		if (err && stop)
			break;
	}
	return first;
}

int writers_stamps(const struct writers *w, const char *dir, char *out, size_t len,
		   char *msg, size_t mlen)
{
	size_t used = 0;

	out[0] = 0;
	for (size_t i = 0; w && i < w->n; i++) {
		char path[PATH_MAX], stamp[REPO_WRITER_STAMP_LEN + 2];
		const char *name = w->w[i].name;
		size_t n;
		FILE *f;
		int k;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "re");
		if (!f && errno == ENOENT)
			continue;	/* this writer keeps no stamp */
		if (!f) {
			snprintf(msg, mlen, "writer %s: its stamp %s: %s", name, path,
				 strerror(errno));
			return -errno;
		}
		n = fread(stamp, 1, sizeof(stamp), f);
		fclose(f);
		if (n && stamp[n - 1] == '\n')
			n--;		/* one line, its newline or not */
		if (!n)
			continue;
		if (!repo_stamp_ok(name, strlen(name), stamp, n)) {
			snprintf(msg, mlen, "writer %s: its stamp (BLKTRACK_WRITER_STAMP_FILE) is "
				 "not one line of 1 to %d printable characters: rejected", name,
				 REPO_WRITER_STAMP_LEN);
			return -EINVAL;
		}
		k = snprintf(out + used, len - used, "%s\t%.*s\n", name, (int)n, stamp);
		if (k < 0 || (size_t)k >= len - used) {
			snprintf(msg, mlen, "the writers' stamps take more than %zu bytes", len - 1);
			return -E2BIG;
		}
		used += k;
	}
	return 0;
}
