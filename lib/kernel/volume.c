// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: block device numbers, names and volume identity (libblkid),
 * and the same as the context's kernel sees them (a unit test's fake).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <blkid/blkid.h>

#include "kernel/kernel.h"
#include "kernel/volid.h"

BLKTRACK_EXPORT int blktrack_dev_from_path(const char *path, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	*dev = st.st_rdev;
	return 0;
}

BLKTRACK_EXPORT int blktrack_dev_name(dev_t dev, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent",
		 major(dev), minor(dev));
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "DEVNAME=", 8))
				continue;
			line[strcspn(line, "\n")] = '\0';
			fclose(f);
			n = snprintf(buf, len, "/dev/%s", line + 8);
			return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
		}
		fclose(f);
	}
	n = snprintf(buf, len, "%u:%u", major(dev), minor(dev));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

BLKTRACK_EXPORT int blktrack_volume_identify(const char *path,
					     struct blktrack_volume_id *vid)
{
	const char *uuid = NULL, *partuuid = NULL, *type = NULL;
	blkid_probe pr;
	dev_t dev;
	int err;

	err = blktrack_dev_from_path(path, &dev);
	if (err < 0)
		return err;
	memset(vid, 0, sizeof(*vid));

	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return errno ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	if (blkid_do_safeprobe(pr) < 0) {
		blkid_free_probe(pr);
		return -EIO;
	}
	blkid_probe_lookup_value(pr, "UUID", &uuid, NULL);
	blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
	blkid_probe_lookup_value(pr, "PART_ENTRY_UUID", &partuuid, NULL);

	if (type)
		copy_str(vid->fstype, sizeof(vid->fstype), type);
	if (uuid && *uuid) {
		copy_str(vid->id, sizeof(vid->id), uuid);
		copy_str(vid->id_type, sizeof(vid->id_type), "uuid");
	} else if (partuuid && *partuuid) {
		copy_str(vid->id, sizeof(vid->id), partuuid);
		copy_str(vid->id_type, sizeof(vid->id_type), "partuuid");
	} else if (volid_sysfs("/sys", dev, vid->id_type, sizeof(vid->id_type),
			       vid->id, sizeof(vid->id))) {
		/* Nothing follows the device: see blktrack_volume_id_stable(). */
		snprintf(vid->id, sizeof(vid->id), "dev:%u:%u", major(dev), minor(dev));
		copy_str(vid->id_type, sizeof(vid->id_type), "devno");
	}
	blkid_free_probe(pr);
	return 0;
}

int kernel_dev_from_path(struct blktrack_ctx *ctx, const char *path, dev_t *dev)
{
	if (!ctx->kernel)
		return blktrack_dev_from_path(path, dev);
	if (!ctx->kernel->dev_from_path)
		return -EOPNOTSUPP;
	return ctx->kernel->dev_from_path(ctx, path, dev);
}

int kernel_volume_identify(struct blktrack_ctx *ctx, const char *path,
			   struct blktrack_volume_id *vid)
{
	if (!ctx->kernel)
		return blktrack_volume_identify(path, vid);
	if (!ctx->kernel->volume_identify)
		return -EOPNOTSUPP;
	return ctx->kernel->volume_identify(ctx, path, vid);
}

BLKTRACK_EXPORT bool blktrack_volume_id_stable(const struct blktrack_volume_id *vid)
{
	return strcmp(vid->id_type, "devno") != 0;
}
