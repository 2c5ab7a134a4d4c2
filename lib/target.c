// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the files and devices blktrack writes over (lib/target.h):
 * a snapshot's store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "target.h"

/* ---- the snapshot store ------------------------------------------------- */

int store_open(const char *path, int *fd, char *msg, size_t len)
{
	struct stat st;
	int err;

	if (stat(path, &st)) {
		err = -errno;
		snprintf(msg, len, "--snapshot-store %s: %s", path, strerror(-err));
		return err;
	}
	if (S_ISDIR(st.st_mode)) {
		*fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	} else if (S_ISBLK(st.st_mode)) {
		*fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	} else if (S_ISREG(st.st_mode)) {
		*fd = open(path, O_RDWR | O_CLOEXEC);
	} else {
		snprintf(msg, len, "--snapshot-store %s: not a directory, block device or "
			 "regular file", path);
		return -EINVAL;
	}
	if (*fd < 0) {
		err = -errno;
		snprintf(msg, len, "--snapshot-store %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}
