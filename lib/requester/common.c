// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: helpers every part of the requester shares:
 * time, progress, test crash points, opening a volume, stamps and backup
 * file headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "requester/requester.h"

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void crash_at(const char *point)
{
	const char *want = test_hook("BLKTRACK_TEST_CRASH_AT");

	if (want && !strcmp(want, point)) {
		fprintf(stderr, "libblktrack: BLKTRACK_TEST_CRASH_AT=%s: killing myself\n", point);
		kill(getpid(), SIGKILL);
		_exit(137);
	}
}

void progress(blktrack_progress_fn fn, void *data, const char *what,
	      uint64_t done, uint64_t total)
{
	if (fn)
		fn(data, what, done, total);
}

/* Open a volume for reading: O_DIRECT, so that no stale page of the block
 * device's cache hides what a filesystem wrote; buffered if refused. */
int open_volume(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd;
}

int fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	*size = st.st_size;
	return 0;
}

enum repo_type repo_type_of(enum blktrack_backup_type t)
{
	return (enum repo_type)(t - 1);
}

void to_bstamp(const struct repo_stamp *s, struct bfile_stamp *b)
{
	memcpy(b->generation, s->generation, 16);
	b->epoch = s->epoch;
	b->size = s->size;
	b->block_size = s->block_size;
}

bool bstamp_matches(const struct bfile_stamp *b, const struct repo_stamp *s)
{
	return !memcmp(b->generation, s->generation, 16) && b->epoch == s->epoch &&
	       b->size == s->size && b->block_size == s->block_size;
}

/* Read the header of a repository backup file (the parent's id). */
int read_header(struct repo *r, const char *name, struct bfile_header *h, char *msg,
		size_t len)
{
	struct bfile_reader *rd;
	struct repo_file *f;
	int err = repo_file_open(r, name, &f);

	if (err) {
		snprintf(msg, len, "%s", repo_error(r));
		return err;
	}
	err = bfile_reader_open_fn(repo_file_read, f, h, &rd);
	if (err < 0)
		snprintf(msg, len, "%s/%s: %s", repo_path(r), name,
			 rd ? bfile_reader_error(rd) : strerror(-err));
	bfile_reader_free(rd);
	repo_file_close(f);
	return err;
}
