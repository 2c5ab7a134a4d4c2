// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: a restore's target, the file or device a chain is written
 * onto (lib/requester/target.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "core/fdio.h"
#include "requester/target.h"

#define ZERO_BYTES	(1U << 20)

/* O_EXCL as mkfs: EBUSY while a filesystem is mounted or the device held. */
static int open_device(struct target *t, const char *path, bool force, char *msg, size_t len)
{
	uint64_t size;
	int err;

	snprintf(t->path, sizeof(t->path), "%s", path);
	t->fd = open(path, O_WRONLY | O_CLOEXEC | (force ? 0 : O_EXCL));
	if (t->fd < 0) {
		err = -errno;
		if (err == -EBUSY)
			snprintf(msg, len, "%s is in use (mounted, or held by another program): "
				 "refused, nothing written (--force writes over it anyway)", path);
		else
			snprintf(msg, len, "%s: %s", path, strerror(-err));
		return err;
	}
	if (ioctl(t->fd, BLKGETSIZE64, &size)) {
		err = -errno;
		snprintf(msg, len, "%s: size: %s", path, strerror(-err));
		return err;
	}
	if (size < t->size) {
		snprintf(msg, len, "%s has %llu bytes, the volume %llu: refused, nothing written",
			 path, (unsigned long long)size, (unsigned long long)t->size);
		return -ENOSPC;
	}
	return 0;
}

/*
 * A temporary file of exactly the volume's size beside @path (@st: the
 * existing file, whose permissions it takes; NULL: none). A symlink is
 * followed: the file it names is the one replaced.
 */
static int open_file(struct target *t, const char *path, const struct stat *st, char *msg,
		     size_t len)
{
	const char *slash, *base;
	int err, dlen;

	if (!st || !realpath(path, t->path))
		snprintf(t->path, sizeof(t->path), "%s", path);
	slash = strrchr(t->path, '/');
	base = slash ? slash + 1 : t->path;
	dlen = slash ? (int)(slash - t->path) : 1;
	if (snprintf(t->tmp, sizeof(t->tmp), "%.*s/.%s.blktrack-XXXXXX", dlen,
		     slash ? t->path : ".", base) >= (int)sizeof(t->tmp)) {
		t->tmp[0] = 0;
		snprintf(msg, len, "%s: %s", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	t->fd = mkostemp(t->tmp, O_CLOEXEC);
	if (t->fd < 0) {
		err = -errno;
		snprintf(msg, len, "%s: cannot create a temporary file beside it (%s): %s",
			 path, t->tmp, strerror(-err));
		t->tmp[0] = 0;
		return err;
	}
	t->is_file = true;
	if ((st && fchmod(t->fd, st->st_mode & 07777)) || ftruncate(t->fd, t->size)) {
		err = -errno;
		snprintf(msg, len, "%s: %s", t->tmp, strerror(-err));
		return err;
	}
	return 0;
}

/*
 * A device's old signatures go first (zeros, durable), as wipefs would: a
 * restore cut short must not look like the filesystem that was there.
 */
static int wipe_head(struct target *t, char *msg, size_t len)
{
	int err = fd_pwrite_all(t->fd, t->head, t->head_len, 0);

	if (!err && fsync(t->fd))
		err = -errno;
	if (err)
		snprintf(msg, len, "%s: wiping its first MiB: %s", t->path, strerror(-err));
	return err;
}

int target_open(struct target *t, const char *path, uint64_t size, bool force,
		char *msg, size_t len)
{
	struct stat st;
	bool exists;
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->size = size;
	exists = !stat(path, &st);
	if (!exists && errno != ENOENT) {
		err = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(-err));
		return err;
	}
	if (exists && S_ISBLK(st.st_mode)) {
		err = open_device(t, path, force, msg, len);
		t->dev = st.st_rdev;
	} else if (!exists || S_ISREG(st.st_mode)) {
		err = open_file(t, path, exists ? &st : NULL, msg, len);
	} else {
		snprintf(msg, len, "%s: neither a regular file nor a block device", path);
		return -EINVAL;
	}
	if (err)
		return err;
	t->head_len = size < TARGET_HEAD ? size : TARGET_HEAD;
	t->head = calloc(1, t->head_len ? t->head_len : 1);
	t->zeros = calloc(1, ZERO_BYTES);
	if (!t->head || !t->zeros)
		return -ENOMEM;
	return t->is_file ? 0 : wipe_head(t, msg, len);
}

int target_open_onto(struct target *t, const char *path, uint64_t size, bool force,
		     char *msg, size_t len)
{
	struct stat st;
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->size = size;
	t->in_place = true;
	if (stat(path, &st)) {
		snprintf(msg, len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISBLK(st.st_mode)) {
		err = open_device(t, path, force, msg, len);
		if (err)
			return err;
		t->dev = st.st_rdev;
	} else if (S_ISREG(st.st_mode)) {
		t->is_file = true;
		snprintf(t->path, sizeof(t->path), "%s", path);
		t->fd = open(path, O_RDWR | O_CLOEXEC);
		if (t->fd < 0) {
			snprintf(msg, len, "%s: %s", path, strerror(errno));
			return -errno;
		}
	} else {
		snprintf(msg, len, "%s: --onto writes a regular file or a block device that "
			 "holds the parent point, not this", path);
		return -EINVAL;
	}
	t->zeros = calloc(1, ZERO_BYTES);
	return t->zeros ? 0 : -ENOMEM;
}

static int write_zeros(struct target *t, uint64_t off, uint64_t n)
{
	int err = 0;

	/* A file: a hole reads as zeros and costs nothing. */
	if (t->is_file && !fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n))
		return 0;
	while (n && !err) {
		size_t len = n < ZERO_BYTES ? n : ZERO_BYTES;

		err = fd_pwrite_all(t->fd, t->zeros, len, off);
		off += len;
		n -= len;
	}
	return err;
}

int target_write(struct target *t, uint64_t off, const void *buf, size_t n)
{
	if (off < t->head_len) {
		size_t k = n < t->head_len - off ? n : t->head_len - off;

		if (buf)
			memcpy(t->head + off, buf, k);
		else
			memset(t->head + off, 0, k);
		off += k;
		n -= k;
		buf = buf ? (const char *)buf + k : NULL;
	}
	if (!n)
		return 0;
	return buf ? fd_pwrite_all(t->fd, buf, n, off) : write_zeros(t, off, n);
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, err = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

int target_finish(struct target *t, char *msg, size_t len)
{
	const char *what = "fsync";
	int err;

	if (t->in_place) {
		err = (t->is_file && ftruncate(t->fd, (off_t)t->size)) || fsync(t->fd) ? -errno : 0;
		if (err)
			snprintf(msg, len, "%s: %s", t->path, strerror(-err));
		return err;
	}
	/* The rest durable first: the head must never come before it. */
	err = fsync(t->fd) ? -errno : 0;
	if (!err) {
		what = "write";
		err = fd_pwrite_all(t->fd, t->head, t->head_len, 0);
	}
	if (!err) {
		what = "fsync";
		err = fsync(t->fd) ? -errno : 0;
	}
	if (!err && t->is_file) {
		what = "rename";
		err = rename(t->tmp, t->path) ? -errno : 0;
		if (!err) {
			t->tmp[0] = 0;
			what = "fsync of its directory";
			err = fsync_dir_of(t->path);
		}
	}
	if (err)
		snprintf(msg, len, "%s: %s: %s", t->tmp[0] ? t->tmp : t->path, what,
			 strerror(-err));
	return err;
}

void target_close(struct target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->tmp[0])
		unlink(t->tmp);
	free(t->head);
	free(t->zeros);
	t->fd = -1;
	t->tmp[0] = 0;
	t->head = t->zeros = NULL;
}
