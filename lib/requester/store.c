// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the snapshot's store, where the kernel writes the copies
 * (lib/requester/store.h), and which block devices share sectors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <blkid/blkid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "requester/store.h"

/* A filesystem or partition table on @fd: its type in @type (1), none (0). */
static int probe_signature(int fd, char *type, size_t len)
{
	const char *v = NULL;
	blkid_probe pr;
	int found;

	pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, 0)) {
		blkid_free_probe(pr);
		return -EIO;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	/* 0: found one; 1: nothing; -2: ambiguous (several): also something. */
	found = blkid_do_safeprobe(pr);
	if (!found && (!blkid_probe_lookup_value(pr, "TYPE", &v, NULL) ||
		       !blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL)))
		snprintf(type, len, "%s", v);
	else
		snprintf(type, len, "several signatures");
	blkid_free_probe(pr);
	return found == 0 || found == -2 ? 1 : 0;
}

/* The whole disk of block device @dev: itself, or a partition's parent. */
dev_t whole_disk(dev_t dev)
{
	char path[64];
	unsigned int ma, mi;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition", major(dev), minor(dev));
	if (access(path, F_OK))
		return dev;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", major(dev), minor(dev));
	f = fopen(path, "re");
	if (!f)
		return dev;
	if (fscanf(f, "%u:%u", &ma, &mi) == 2)
		dev = makedev(ma, mi);
	fclose(f);
	return dev;
}

bool devs_overlap(dev_t a, dev_t b)
{
	return a == b || whole_disk(a) == b || whole_disk(b) == a;
}

/* The device under the file a loop device @rdev reads and writes: 0 if none. */
static dev_t loop_backing_dev(dev_t rdev)
{
	char path[64], file[4096];
	struct stat st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file", major(rdev),
		 minor(rdev));
	f = fopen(path, "re");
	if (!f)
		return 0;		/* not a loop device */
	n = fread(file, 1, sizeof(file) - 1, f);
	fclose(f);
	file[n] = 0;
	file[strcspn(file, "\n")] = 0;
	return stat(file, &st) ? 0 : st.st_dev;
}

int store_open(const char *path, const dev_t *volumes, size_t n, bool force, int *fd,
	       char *msg, size_t len)
{
	struct stat st;
	char type[64];
	dev_t below;
	size_t i;
	int err;

	if (stat(path, &st)) {
		err = -errno;
		snprintf(msg, len, "--snapshot-store %s: %s", path, strerror(-err));
		return err;
	}
	if (S_ISDIR(st.st_mode)) {
		*fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	} else if (S_ISBLK(st.st_mode)) {
		below = loop_backing_dev(st.st_rdev);
		for (i = 0; below && i < n && !devs_overlap(below, volumes[i]); i++)
			;
		if (below && i < n) {
			snprintf(msg, len, "--snapshot-store %s is a loop device over a file on "
				 "the volume: its writes would wait behind the writes the "
				 "snapshot holds; give a store on another disk", path);
			return -EDEADLK;
		}
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
	/* Like mkfs and wipefs: what holds data is not overwritten unasked. */
	err = S_ISDIR(st.st_mode) || force ? 0 : probe_signature(*fd, type, sizeof(type));
	if (!err)
		return 0;
	if (err > 0) {
		snprintf(msg, len, "--snapshot-store %s holds %s (a filesystem or partition "
			 "table): refused, the snapshot would overwrite it (--force to use it "
			 "anyway)", path, type);
		err = -EEXIST;
	} else {
		snprintf(msg, len, "--snapshot-store %s: probe: %s", path, strerror(-err));
	}
	close(*fd);
	*fd = -1;
	return err;
}
