// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The directory store (lib/repo/store.h): every file is opened, created,
 * renamed and removed relative to the directory's descriptor, with
 * O_NOFOLLOW, so that a symbolic link planted in the repository never makes
 * us read, truncate or write a file outside it; a file is replaced by
 * NAME.tmp, fsync, rename, fsync of its directory; the lock is a flock().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/fdio.h"
#include "repo/repo.h"
#include "repo/store.h"

#define TMP_SUFFIX	".tmp"
#define LOCK_FILE	"lock"

struct store {
	int dirfd;
	int lockfd;
};

struct dir_file {
	struct repo_file f;		/* first: a repo_file * is a dir_file * */
	int fd;
};

static int dir_open(const char *where, bool create, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));

	*out = s;
	if (!s)
		return -ENOMEM;
	s->dirfd = s->lockfd = -1;
	if (create && mkdir(where, 0700) && errno != EEXIST)
		return -errno;
	s->dirfd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return s->dirfd < 0 ? -errno : 0;
}

static void dir_close(struct store *s)
{
	if (!s)
		return;
	if (s->lockfd >= 0)
		close(s->lockfd);	/* releases the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
}

static int dir_check(struct store *s, char *why, size_t len)
{
	static const char *const subs[] = { "backups", "deltas", "hashes" };
	struct stat st;
	unsigned int i;

	if (fstat(s->dirfd, &st))
		return -errno;
	if (st.st_uid != geteuid()) {
		snprintf(why, len, "is owned by uid %u, not by uid %u that runs blktrack: "
			 "refused", (unsigned int)st.st_uid, (unsigned int)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "is writable by %s (mode %04o): refused",
			 st.st_mode & S_IWOTH ? "others" : "its group",
			 (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	for (i = 0; i < 3; i++)
		if (!fstatat(s->dirfd, subs[i], &st, AT_SYMLINK_NOFOLLOW) &&
		    !S_ISDIR(st.st_mode)) {
			snprintf(why, len, "%s", subs[i]);
			return -ELOOP;
		}
	return 0;
}

static int dir_lock(struct store *s, bool create, unsigned int wait)
{
	unsigned int tenths = 0;

	s->lockfd = openat(s->dirfd, LOCK_FILE, O_RDWR | (create ? O_CREAT : 0) | O_NOFOLLOW |
			   O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		return -errno;
	while (flock(s->lockfd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			return -errno;
		if (wait != UINT_MAX && tenths >= 10ULL * wait)
			return -EBUSY;
		usleep(100000);
		tenths++;
	}
	return 0;
}

static int dir_mkdir(struct store *s, const char *dir)
{
	return mkdirat(s->dirfd, dir, 0700) && errno != EEXIST ? -errno : 0;
}

static int dir_sync(struct store *s, const char *dir)
{
	int fd = openat(s->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

static int dir_read(struct store *s, const char *name, uint64_t max, char **buf, size_t *len)
{
	struct stat st;
	char *p = NULL;
	int fd, ret = 0;

	fd = openat(s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		ret = -errno;
	else if ((uint64_t)st.st_size > max)
		ret = -EFBIG;
	else if (!(p = malloc(st.st_size + 1)))
		ret = -ENOMEM;
	else
		ret = fd_pread_all(fd, p, st.st_size, 0);
	close(fd);
	if (ret == -ENODATA)
		ret = -EIO;	/* shorter than its size: changed under us */
	if (ret) {
		free(p);
		return ret;
	}
	p[st.st_size] = '\0';
	*buf = p;
	*len = st.st_size;
	return 0;
}

static int dir_replace(struct store *s, const char *dir, const char *name, const void *buf,
		       size_t len, bool *replaced)
{
	char tmp[PATH_MAX];
	int fd, ret;

	*replaced = false;
	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, name);
	ret = store_fault("open", name);
	fd = ret ? -1 : openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
				     O_CLOEXEC, 0600);
	if (fd < 0)
		return ret ? ret : -errno;
	ret = store_fault("write", name);
	if (!ret)
		ret = fd_write_all(fd, buf, len);
	if (!ret)
		ret = store_fault("fsync", name);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret)
		ret = store_fault("rename", name);
	if (!ret && renameat(s->dirfd, tmp, s->dirfd, name))
		ret = -errno;
	*replaced = !ret;
	if (!ret)
		ret = store_fault("fsync-dir", name);
	if (!ret)
		ret = dir_sync(s, dir);
	if (ret)
		unlinkat(s->dirfd, tmp, 0);
	return ret;
}

static int dir_exists(struct store *s, const char *name)
{
	struct stat st;

	/* A symbolic link "exists" here: opening it then fails with ELOOP. */
	return !fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) &&
	       (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
}

static int dir_remove(struct store *s, const char *name)
{
	return unlinkat(s->dirfd, name, 0) ? -errno : 0;
}

static int dir_link(struct store *s, const char *from, const char *to)
{
	return linkat(s->dirfd, from, s->dirfd, to, 0) ? -errno : 0;
}

static int dir_list(struct store *s, const char *dir, int (*fn)(void *data, const char *name),
		    void *data)
{
	struct dirent *d;
	int fd, ret = 0;
	DIR *dp;

	fd = openat(s->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dp = fd < 0 ? NULL : fdopendir(fd);
	if (!dp) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while (!ret && (d = readdir(dp)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			ret = fn(data, d->d_name);
	closedir(dp);
	return ret;
}

/* ---- files --------------------------------------------------------------- */

static const struct store_ops *const self = &store_dir_ops;

static int file_new(int fd, struct repo_file **out)
{
	struct dir_file *f = malloc(sizeof(*f));

	*out = NULL;
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->f.ops = self;
	f->fd = fd;
	*out = &f->f;
	return 0;
}

static int fd_of(const struct repo_file *f)
{
	return ((const struct dir_file *)f)->fd;
}

static int dir_open_file(struct store *s, const char *name, struct repo_file **f)
{
	int fd = openat(s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	*f = NULL;
	if (fd < 0)
		return -errno;
	/* Read whole, in order: a bigger readahead keeps the disk busy. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return file_new(fd, f);
}

/* Readable too: the verify writer reads a backup back as it is written. */
static int dir_create_file(struct store *s, const char *name, struct repo_file **f)
{
	char tmp[PATH_MAX];
	int fd;

	*f = NULL;
	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, name);
	fd = openat(s->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : file_new(fd, f);
}

static int dir_install_file(struct store *s, const char *dir, const char *name,
			    struct repo_file *f)
{
	char tmp[PATH_MAX];
	int fd = fd_of(f), ret = 0;

	free(f);
	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, name);
	if (fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(s->dirfd, tmp, s->dirfd, name))
		ret = -errno;
	if (!ret)
		ret = dir_sync(s, dir);
	return ret;
}

static int dir_trailer(struct repo_file *f, uint64_t *sum)
{
	unsigned char t[8];
	struct stat sb;
	int i;

	if (fstat(fd_of(f), &sb))
		return -errno;
	if (sb.st_size < 8)
		return -ENODATA;
	if (pread(fd_of(f), t, 8, sb.st_size - 8) != 8)
		return -EIO;
	for (*sum = 0, i = 7; i >= 0; i--)
		*sum = *sum << 8 | t[i];
	return 0;
}

static int dir_file_size(struct repo_file *f, uint64_t *size)
{
	struct stat sb;

	if (fstat(fd_of(f), &sb))
		return -errno;
	*size = (uint64_t)sb.st_size;
	return 0;
}

static ssize_t dir_file_read(struct repo_file *f, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd_of(f), buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int dir_file_write(struct repo_file *f, const void *buf, size_t len)
{
	return fd_write_all(fd_of(f), buf, len);
}

static ssize_t dir_file_pread(struct repo_file *f, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	do
		n = pread(fd_of(f), buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int dir_file_follow(struct repo_file *f, struct repo_file **reader)
{
	int fd = dup(fd_of(f));

	return fd < 0 ? -errno : file_new(fd, reader);
}

static void dir_file_close(struct repo_file *f)
{
	close(fd_of(f));
	free(f);
}

const struct store_ops store_dir_ops = {
	.open = dir_open,
	.close = dir_close,
	.check = dir_check,
	.lock = dir_lock,
	.mkdir = dir_mkdir,
	.read = dir_read,
	.replace = dir_replace,
	.exists = dir_exists,
	.remove = dir_remove,
	.link = dir_link,
	.list = dir_list,
	.sync = dir_sync,
	.open_file = dir_open_file,
	.create_file = dir_create_file,
	.install_file = dir_install_file,
	.trailer = dir_trailer,
	.file_size = dir_file_size,
	.file_read = dir_file_read,
	.file_write = dir_file_write,
	.file_pread = dir_file_pread,
	.file_follow = dir_file_follow,
	.file_close = dir_file_close,
};
