// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the built-in filesystem writer's helpers (lib/requester/fs.h):
 * where a volume is mounted, FIFREEZE and FITHAW.
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

#include "requester/fs.h"

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
