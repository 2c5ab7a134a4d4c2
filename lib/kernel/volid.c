// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: a volume's stable identity from sysfs (see volid.h).
 *
 * In order, for the whole disk: the device-mapper UUID (LVM sets it:
 * "LVM-<vg uuid><lv uuid>"), else the device-mapper name (an LVM "vg-lv"
 * or the name its creator gave); the md array UUID; the disk's WWN
 * (/sys/block/X/wwid for NVMe, X/device/wwid for SCSI and NVMe); its serial
 * (X/serial for virtio, X/device/serial with X/device/model for NVMe and
 * others); for a loop device, its backing file and offset. A device
 * number is never one of them: it follows the order in
 * which disks appear, so two equal disks can swap it at boot.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <xxhash.h>

#include "kernel/volid.h"

/* The first line of @dir/@name, trimmed; 0 when it is not empty. */
static int read_attr(const char *dir, const char *name, char *buf, size_t len)
{
	char path[4096];
	size_t n, i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	n = strlen(buf);
	while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = 0;
	for (i = 0; buf[i] == ' ' || buf[i] == '\t'; i++)
		;
	memmove(buf, buf + i, n - i + 1);
	return buf[0] ? 0 : -ENOENT;
}

/* @dir's stable id, for a whole disk. */
static int disk_id(const char *dir, char *type, size_t tlen, char *val, size_t vlen)
{
	static const struct {
		const char *attr, *type;
	} order[] = {
		{ "dm/uuid", "dm-uuid" },
		{ "dm/name", "dm-name" },
		{ "md/uuid", "md-uuid" },
		{ "wwid", "wwid" },
		{ "device/wwid", "wwid" },
		{ "serial", "serial" },
	};
	char model[256], off[32];
	size_t i, n;

	/*
	 * A loop device: its backing file (the path losetup was given,
	 * absolute) and offset. The number is whichever was free at losetup;
	 * the file is the volume. A deleted file follows nothing.
	 */
	if (!read_attr(dir, "loop/backing_file", val, vlen)) {
		n = strlen(val);
		if (n >= 10 && !strcmp(val + n - 10, " (deleted)"))
			return -ENOENT;
		if (!read_attr(dir, "loop/offset", off, sizeof(off)) && strcmp(off, "0"))
			snprintf(val + n, vlen - n, "@%s", off);
		snprintf(type, tlen, "loop-file");
		return 0;
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (read_attr(dir, order[i].attr, val, vlen))
			continue;
		snprintf(type, tlen, "%s", order[i].type);
		return 0;
	}
	if (read_attr(dir, "device/serial", val, vlen))
		return -ENOENT;
	if (!read_attr(dir, "device/model", model, sizeof(model))) {
		n = strlen(val);
		snprintf(val + n, vlen - n, "+%s", model);
		/* The serial first: it is what tells two equal disks apart. */
	}
	snprintf(type, tlen, "serial");
	return 0;
}

/* Characters safe in a file name and in "TYPE:ID"; a prefix and a hash when long. */
static void clean_id(const char *raw, char *id, size_t idlen)
{
	char buf[VOLID_MAX + 1];
	size_t n = strlen(raw), i;

	if (n <= VOLID_MAX) {
		snprintf(buf, sizeof(buf), "%s", raw);
	} else {
		unsigned long long h = XXH3_64bits(raw, n);

		snprintf(buf, sizeof(buf), "%.*s~%016llx", VOLID_MAX - 17, raw, h);
	}
	for (i = 0; buf[i]; i++) {
		char c = buf[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("._:+-~,@", c)))
			buf[i] = '_';
	}
	snprintf(id, idlen, "%s", buf);
}

int volid_sysfs(const char *sysfs, dev_t dev, char *type, size_t tlen,
		char *id, size_t idlen)
{
	char dir[4096], raw[1024], part[32], start[32];
	size_t n;
	int err;

	snprintf(dir, sizeof(dir), "%s/dev/block/%u:%u", sysfs, major(dev), minor(dev));
	if (!read_attr(dir, "partition", part, sizeof(part))) {
		/* A partition: its disk is the parent directory in sysfs. */
		err = read_attr(dir, "start", start, sizeof(start));
		if (err)
			return err == -ENOENT ? -EIO : err;
		strcat(dir, "/..");
		err = disk_id(dir, type, tlen, raw, sizeof(raw));
		if (err)
			return err;
		n = strlen(raw);
		snprintf(raw + n, sizeof(raw) - n, ",p%s@%s", part, start);
	} else {
		err = disk_id(dir, type, tlen, raw, sizeof(raw));
		if (err)
			return err;
	}
	clean_id(raw, id, idlen);
	return 0;
}
