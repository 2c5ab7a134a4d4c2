// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the built-in filesystem writer's helpers (lib/requester/fs.h):
 * where a volume is mounted, FIFREEZE and FITHAW; a file's extents (FIEMAP).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "format/filemap.h"
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

int fs_block_device(dev_t dev, char *out, size_t len)
{
	char path[64], line[256];
	int err = -ENOENT, n;
	FILE *f;

	/* sysfs has the kernel's name of the device; devtmpfs has the node by that name. */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", major(dev), minor(dev));
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ENODEV : -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = 0;
			n = snprintf(out, len, "/dev/%s", line + 8);
			err = n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
			break;
		}
	fclose(f);
	return err;
}

/* FIEMAP flags that leave an extent without a place on the volume we can read. */
#define FIEMAP_UNPLACED	(FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | \
			 FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED | \
			 FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE | \
			 FIEMAP_EXTENT_DATA_TAIL)
#define FIEMAP_BATCH	512

/* One batch of extents from @start into @m; *@start moves past them, *@last at the end. */
static int map_batch(int fd, struct fiemap *fm, struct filemap *m, uint64_t *start,
		     bool *last, char *why, size_t len)
{
	memset(fm, 0, sizeof(*fm));
	fm->fm_start = *start;
	fm->fm_length = FIEMAP_MAX_OFFSET - *start;
	fm->fm_extent_count = FIEMAP_BATCH;
	if (ioctl(fd, FS_IOC_FIEMAP, fm))
		return errno == ENOTTY || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	*last = !fm->fm_mapped_extents;
	for (unsigned int i = 0; i < fm->fm_mapped_extents; i++) {
		const struct fiemap_extent *x = &fm->fm_extents[i];

		*last = x->fe_flags & FIEMAP_EXTENT_LAST;
		*start = x->fe_logical + x->fe_length;
		if ((x->fe_flags & FIEMAP_UNPLACED) && m->trusted) {
			m->trusted = false;
			snprintf(why, len, "the extent at byte %llu has no place on the volume "
				 "(FIEMAP flags 0x%x: delayed allocation, inline or encoded data)",
				 (unsigned long long)x->fe_logical, x->fe_flags);
		}
		if (!m->trusted)
			continue;
		m->shared |= !!(x->fe_flags & FIEMAP_EXTENT_SHARED);
		if (filemap_add(m, x->fe_logical, x->fe_physical, x->fe_length,
				x->fe_flags & FIEMAP_EXTENT_UNWRITTEN ? FILEMAP_UNWRITTEN : 0)) {
			m->trusted = false;
			snprintf(why, len, "FIEMAP gave the extent at byte %llu out of order",
				 (unsigned long long)x->fe_logical);
		}
	}
	return 0;
}

int fs_file_map(int fd, struct filemap *m, char *why, size_t len)
{
	struct fiemap *fm = malloc(sizeof(*fm) + FIEMAP_BATCH * sizeof(struct fiemap_extent));
	uint64_t start = 0;
	unsigned int gen = 0;
	bool last = false;
	struct stat st;
	int err = 0;

	filemap_init(m);
	why[0] = 0;
	if (!fm)
		return -ENOMEM;
	if (fstat(fd, &st))
		err = -errno;
	m->size = st.st_size;
	m->ino = st.st_ino;
	/* The inode's generation tells a new file on a reused inode number. */
	if (!err && !ioctl(fd, FS_IOC_GETVERSION, &gen))
		m->generation = gen;
	while (!err && !last)
		err = map_batch(fd, fm, m, &start, &last, why, len);
	free(fm);
	if (err)
		filemap_free(m);
	return err;
}

/* Whether the filesystem on @dev journals data (ext4 data=journal): its superblock's options. */
static bool journals_data(dev_t dev)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned int maj, min;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && !found && getline(&line, &cap, f) > 0) {
		const char *sep = strstr(line, " - ");

		found = sscanf(line, "%*u %*u %u:%u", &maj, &min) == 2 &&
			makedev(maj, min) == dev && sep && strstr(sep, "data=journal");
	}
	free(line);
	if (f)
		fclose(f);
	return found;
}

bool fs_file_unplaceable(int fd, char *why, size_t len)
{
	struct fsxattr fx;
	struct stat st;
	int flags = 0;

	if (!ioctl(fd, FS_IOC_FSGETXATTR, &fx) && (fx.fsx_xflags & FS_XFLAG_REALTIME)) {
		snprintf(why, len, "an XFS realtime file (its extents are on the realtime device)");
		return true;
	}
	if ((!ioctl(fd, FS_IOC_GETFLAGS, &flags) && (flags & FS_JOURNAL_DATA_FL)) ||
	    (!fstat(fd, &st) && journals_data(st.st_dev))) {
		snprintf(why, len, "its data goes through the journal first (data=journal): "
			 "its blocks on the volume may be older than the file");
		return true;
	}
	return false;
}
