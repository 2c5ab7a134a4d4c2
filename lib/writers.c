// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the writer runner (doc/WRITERS.md) and the helpers of the
 * built-in filesystem writer.
 *
 * A writer is an executable of the writers directory, run as `WRITER EVENT`
 * in its own process group, stdin /dev/null, stdout and stderr into a pipe
 * that we copy to our stderr line by line with the writer's name in front.
 * Each run has a deadline: past it the whole process group gets SIGKILL and
 * the run counts as a failure.
 *
 * Section banners: the writers directory / one run / the filesystem writer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
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

#include "writers.h"

struct writer {
	char *name;
	char *path;
};

struct writers {
	struct writer *w;
	size_t n;
	unsigned int timeout;
};

/* ---- the writers directory ---------------------------------------------- */

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int writers_load(const char *dir, bool must_exist, unsigned int timeout,
		 struct writers **out, char *msg, size_t len)
{
	struct dirent **names = NULL;
	struct writers *w;
	int i, n, err = 0;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->timeout = timeout ? timeout : WRITERS_DEFAULT_TIMEOUT;
	n = scandir(dir, &names, NULL, by_name);
	if (n < 0) {
		err = -errno;
		if (err == -ENOENT && !must_exist) {
			*out = w;
			return 0;
		}
		snprintf(msg, len, "writers directory %s: %s", dir, strerror(-err));
		free(w);
		return err;
	}
	w->w = calloc(n ? n : 1, sizeof(*w->w));
	if (!w->w)
		err = -ENOMEM;
	for (i = 0; i < n; i++) {
		struct stat st;
		char *path;

		if (!err && names[i]->d_name[0] != '.' &&
		    asprintf(&path, "%s/%s", dir, names[i]->d_name) >= 0) {
			if (!stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK)) {
				w->w[w->n].path = path;
				w->w[w->n].name = strdup(names[i]->d_name);
				if (!w->w[w->n++].name)
					err = -ENOMEM;
			} else {
				free(path);
			}
		}
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
	for (i = 0; i < w->n; i++) {
		free(w->w[i].name);
		free(w->w[i].path);
	}
	free(w->w);
	free(w);
}

size_t writers_count(const struct writers *w)
{
	return w ? w->n : 0;
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

static void child(const struct writer *wr, const char *event, const struct writers_env *e,
		  int out)
{
	char id[32];
	int fd;

	setpgid(0, 0);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	signal(SIGPIPE, SIG_DFL);
	setenv("BLKTRACK_EVENT", event, 1);
	setenv("BLKTRACK_WRITER", wr->name, 1);
#define ENV(var, val) do { if (val) setenv(var, val, 1); else unsetenv(var); } while (0)
	ENV("BLKTRACK_DEVICE", e->device);
	ENV("BLKTRACK_VOLUME_ID", e->volume_id);
	ENV("BLKTRACK_BACKUP_TYPE", e->backup_type);
	ENV("BLKTRACK_PREV_STAMP", e->prev_stamp);
	ENV("BLKTRACK_NEW_STAMP", e->new_stamp);
	ENV("BLKTRACK_BACKUP_FILE", e->backup_file);
	ENV("BLKTRACK_REPO", e->repo);
#undef ENV
	if (e->backup_id) {
		snprintf(id, sizeof(id), "%" PRIu64, e->backup_id);
		setenv("BLKTRACK_BACKUP_ID", id, 1);
	} else {
		unsetenv("BLKTRACK_BACKUP_ID");
	}
	execl(wr->path, wr->path, event, (char *)NULL);
	fprintf(stderr, "cannot run %s: %s\n", wr->path, strerror(errno));
	_exit(127);
}

static int run_one(const struct writers *w, const struct writer *wr, const char *event,
		   const struct writers_env *e, char *msg, size_t len)
{
	double deadline = mono() + w->timeout;
	char buf[4096];
	size_t fill = 0;
	bool exited = false, timed_out = false;
	int pfd[2], status = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(pfd[0]);
		close(pfd[1]);
		snprintf(msg, len, "writer %s: fork: %s", wr->name, strerror(-err));
		return err;
	}
	if (!pid)
		child(wr, event, e, pfd[1]);
	setpgid(pid, pid);	/* also in the child: whoever runs first */
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);

	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		ssize_t r;

		if (!exited) {
			pid_t got = waitpid(pid, &status, WNOHANG);

			if (got == pid)
				exited = true;
		}
		if (!exited && mono() >= deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			exited = timed_out = true;
		}
		poll(&p, 1, exited ? 0 : 100);
		r = read(pfd[0], buf + fill, sizeof(buf) - 1 - fill);
		if (r > 0) {
			fill += r;
			flush_lines(wr->name, buf, &fill, fill == sizeof(buf) - 1);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		/* EOF, or nothing more now and the writer is gone: a child it
		 * left behind may hold the pipe, we do not wait for it. */
		if (r == 0 || exited)
			break;
	}
	flush_lines(wr->name, buf, &fill, true);
	close(pfd[0]);
	if (!exited)
		waitpid(pid, &status, 0);

	if (timed_out) {
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

/* ---- the filesystem writer ---------------------------------------------- */

/* Undo mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

int fs_mount_state(dev_t dev, char *out, size_t len, bool *rw)
{
	char *line = NULL, mnt[4096], opts[256];
	size_t cap = 0;
	unsigned int maj, min;
	int err = -ENOENT;
	FILE *f;

	if (rw)
		*rw = false;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		const char *sep;

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE SUPEROPTS */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3)
			continue;
		if (makedev(maj, min) != dev)
			continue;
		/* The superblock's options: a filesystem is rw or ro for all its mounts. */
		sep = strstr(line, " - ");
		if (rw && sep && sscanf(sep, " - %*s %*s %255s", opts) == 1 &&
		    !strncmp(opts, "rw", 2))
			*rw = true;
		if (err == 0)
			continue;
		unescape(mnt);
		if (strlen(mnt) >= len) {
			err = -ENAMETOOLONG;
			continue;
		}
		strcpy(out, mnt);
		err = 0;
	}
	free(line);
	fclose(f);
	return err;
}

int fs_mount_point(dev_t dev, char *out, size_t len)
{
	return fs_mount_state(dev, out, len, NULL);
}

int fs_freeze(const char *path, int *fd)
{
	int err;

	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (!ioctl(*fd, FIFREEZE, 0))
		return 0;
	err = errno == ENOTTY || errno == EINVAL ? -EOPNOTSUPP : -errno;
	close(*fd);
	*fd = -1;
	return err;
}

int fs_thaw(int fd)
{
	int err = ioctl(fd, FITHAW, 0) ? -errno : 0;

	close(fd);
	return err;
}
