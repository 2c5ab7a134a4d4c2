// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vollock: the per-volume requester lock (vollock.h, doc/REPOSITORY.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/fdio.h"
#include "requester/vollock.h"

/* "uuid:1234-ab" -> "uuid%3a1234-ab.lock": distinct ids, distinct names. */
static int lock_name(const char *id, char *out, size_t len)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789._-";
	size_t k = 0;

	if (!*id || *id == '.')
		return -EINVAL;
	for (; *id; id++) {
		if (k + 8 > len)
			return -ENAMETOOLONG;
		if (strchr(ok, *id))
			out[k++] = *id;
		else
			k += snprintf(out + k, len - k, "%%%02x", (unsigned char)*id);
	}
	snprintf(out + k, len - k, ".lock");
	return 0;
}

static int open_dir(const char *dir, char *msg, size_t len)
{
	struct stat sb;
	int dfd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(msg, len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		snprintf(msg, len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if (fstat(dfd, &sb) || sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		snprintf(msg, len, "%s: not a directory of uid %u that only it can write: "
			 "refused as the lock directory", dir, (unsigned int)geteuid());
		close(dfd);
		return -EPERM;
	}
	return dfd;
}

/* The pid the holder wrote, or 0. */
static long holder_pid(int fd)
{
	char buf[32] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	return n > 0 ? strtol(buf, NULL, 10) : 0;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int vollock_acquire(const char *dir, const char *volume_id, int wait, int *fd,
		    char *msg, size_t len)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	double deadline = mono() + (wait > 0 ? wait : 0);
	char name[256], pid[32];
	int dfd, lfd, ret;
	long holder;

	*fd = -1;
	ret = lock_name(volume_id, name, sizeof(name));
	if (ret) {
		snprintf(msg, len, "volume id %s: no lock file name for it", volume_id);
		return ret;
	}
	dfd = open_dir(dir, msg, len);
	if (dfd < 0)
		return dfd;
	lfd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	close(dfd);
	if (lfd < 0) {
		ret = -errno;
		snprintf(msg, len, "%s/%s: %s", dir, name, strerror(errno));
		return ret;
	}
	while (flock(lfd, LOCK_EX | LOCK_NB)) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			ret = -errno;
			snprintf(msg, len, "%s/%s: flock: %s", dir, name, strerror(errno));
			goto out_close;
		}
		if (!wait || (wait > 0 && mono() >= deadline)) {
			holder = holder_pid(lfd);
			ret = wait ? -ETIMEDOUT : -EBUSY;
			snprintf(msg, len, "volume %s is in use by another blktrack requester "
				 "(pid %ld, lock %s/%s)%s; it owns the volume's kernel checkpoint "
				 "until its COMMIT or ABORT", volume_id, holder, dir, name,
				 wait ? ", still after the wait" : ": try again later, or "
				 "--wait[=SECONDS]");
			goto out_close;
		}
		nanosleep(&tick, NULL);
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(lfd, 0) || fd_write_all(lfd, pid, strlen(pid)) < 0) {
		ret = -errno;
		snprintf(msg, len, "%s/%s: %s", dir, name, strerror(errno));
		goto out_close;
	}
	*fd = lfd;
	return 0;

out_close:
	close(lfd);
	return ret;
}

void vollock_release(int fd)
{
	if (fd >= 0)
		close(fd);
}
