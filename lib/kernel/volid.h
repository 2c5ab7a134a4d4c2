/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A volume's stable identity from sysfs: what follows the device across
 * reboots when it carries no filesystem or partition UUID.
 *
 * Typical use:
 *	char type[16], id[BLKTRACK_VOLUME_ID_MAX];
 *
 *	if (volid_sysfs("/sys", dev, type, sizeof(type), id, sizeof(id)) == 0)
 *		... "TYPE:ID" names the volume on every boot ...
 *	else
 *		... -ENOENT: nothing stable; never persist a device number ...
 *
 * No libblkid, no device I/O: only files under @sysfs (a fake tree in the
 * unit tests, tests/unit/test_volid.c).
 */
#ifndef BLKTRACK_VOLID_H
#define BLKTRACK_VOLID_H

#include <stddef.h>
#include <sys/types.h>

/* Longest id volid_sysfs() makes (longer ones keep a prefix and a hash). */
#define VOLID_MAX	47

/*
 * The stable id of the block device @dev under the sysfs root @sysfs:
 * @type "loop-file", "dm-uuid", "dm-name", "md-uuid", "wwid" or "serial", @id its value
 * (characters outside [A-Za-z0-9._:+~,@-] made '_'); a partition is its disk's
 * id and ",pN@S" (partition number N, first sector S). 0, or -ENOENT when
 * nothing stable is known, or -errno.
 */
int volid_sysfs(const char *sysfs, dev_t dev, char *type, size_t tlen,
		char *id, size_t idlen);

#endif
