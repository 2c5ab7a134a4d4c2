// SPDX-License-Identifier: GPL-2.0
/*
 * lib/kernel/volid.c over a fake sysfs tree: a volume without a filesystem or
 * partition UUID is named by what follows the device (dm or md UUID, dm
 * name, WWN, serial; a partition adds its number and start), never by its
 * device number; two equal disks that swap device numbers keep their ids;
 * nothing stable is -ENOENT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <criterion/criterion.h>

#include "kernel/volid.h"

static char root[128];

static void mkdirs(const char *rel)
{
	char path[512], *p;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		mkdir(path, 0755);
		*p = '/';
	}
	mkdir(path, 0755);
}

/* @rel (under the root) holds @text and a newline, as sysfs attributes do. */
static void attr(const char *rel, const char *text)
{
	char path[512], dir[512];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", rel);
	*strrchr(dir, '/') = 0;
	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	cr_assert(f, "%s", path);
	fprintf(f, "%s\n", text);
	fclose(f);
}

/* dev/block/MAJ:MIN -> ../../devices/@devpath, as in sysfs. */
static void node(unsigned int maj, unsigned int min, const char *devpath)
{
	char link[512], target[512];

	mkdirs("dev/block");
	mkdirs(devpath);
	snprintf(link, sizeof(link), "%s/dev/block/%u:%u", root, maj, min);
	snprintf(target, sizeof(target), "../../%s", devpath);
	cr_assert_eq(symlink(target, link), 0, "%s", link);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/bt-volid.XXXXXX");
	cr_assert(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

static int id_of(unsigned int maj, unsigned int min, char *type, char *id)
{
	return volid_sysfs(root, makedev(maj, min), type, 16, id, 128);
}

#define assert_id(maj, min, want_type, want_id) do {				\
		char t_[16], i_[128];						\
		cr_assert_eq(id_of(maj, min, t_, i_), 0);			\
		cr_assert_str_eq(t_, want_type);				\
		cr_assert_str_eq(i_, want_id);					\
	} while (0)

TestSuite(volid, .init = setup, .fini = teardown, .timeout = 10);

Test(volid, virtio_serial_follows_the_disk)
{
	node(254, 0, "devices/pci0/virtio1/block/vda");
	attr("devices/pci0/virtio1/block/vda/serial", "bt-disk-A");
	node(254, 16, "devices/pci0/virtio2/block/vdb");
	attr("devices/pci0/virtio2/block/vdb/serial", "bt-disk-B");
	assert_id(254, 0, "serial", "bt-disk-A");
	assert_id(254, 16, "serial", "bt-disk-B");
}

/* The next boot: the same two disks in the other order. */
Test(volid, swapped_disks_keep_their_ids)
{
	node(254, 0, "devices/pci0/virtio1/block/vda");
	attr("devices/pci0/virtio1/block/vda/serial", "bt-disk-B");
	node(254, 16, "devices/pci0/virtio2/block/vdb");
	attr("devices/pci0/virtio2/block/vdb/serial", "bt-disk-A");
	assert_id(254, 0, "serial", "bt-disk-B");
	assert_id(254, 16, "serial", "bt-disk-A");
}

Test(volid, partition_is_its_disk_number_and_start)
{
	node(254, 0, "devices/v/block/vda");
	attr("devices/v/block/vda/serial", "bt-disk-A");
	node(254, 1, "devices/v/block/vda/vda1");
	attr("devices/v/block/vda/vda1/partition", "1");
	attr("devices/v/block/vda/vda1/start", "2048");
	node(254, 2, "devices/v/block/vda/vda2");
	attr("devices/v/block/vda/vda2/partition", "2");
	attr("devices/v/block/vda/vda2/start", "133120");
	assert_id(254, 1, "serial", "bt-disk-A,p1@2048");
	assert_id(254, 2, "serial", "bt-disk-A,p2@133120");
}

Test(volid, nvme_wwid_before_serial)
{
	node(259, 0, "devices/pci0/nvme/nvme0/nvme0n1");
	attr("devices/pci0/nvme/nvme0/nvme0n1/wwid", "eui.0025388b71b2a4c5");
	attr("devices/pci0/nvme/nvme0/serial", "S3ESNX0K");
	assert_id(259, 0, "wwid", "eui.0025388b71b2a4c5");
}

Test(volid, scsi_device_wwid)
{
	node(8, 0, "devices/host0/target0/0:0:0:0/block/sda");
	attr("devices/host0/target0/0:0:0:0/block/sda/device/wwid",
	     "naa.5000c500a1b2c3d4");
	assert_id(8, 0, "wwid", "naa.5000c500a1b2c3d4");
}

Test(volid, device_serial_with_model)
{
	node(8, 16, "devices/h/block/sdb");
	attr("devices/h/block/sdb/device/serial", "  ZA1B2C3  ");
	attr("devices/h/block/sdb/device/model", "ST4000 NM");
	assert_id(8, 16, "serial", "ZA1B2C3+ST4000_NM");
}

Test(volid, dm_uuid_then_dm_name)
{
	node(253, 0, "devices/virtual/block/dm-0");
	attr("devices/virtual/block/dm-0/dm/uuid", "LVM-abcDEF0123");
	attr("devices/virtual/block/dm-0/dm/name", "vg0-data");
	node(253, 1, "devices/virtual/block/dm-1");
	attr("devices/virtual/block/dm-1/dm/uuid", "");
	attr("devices/virtual/block/dm-1/dm/name", "vg0-logs");
	assert_id(253, 0, "dm-uuid", "LVM-abcDEF0123");
	assert_id(253, 1, "dm-name", "vg0-logs");
}

Test(volid, md_uuid)
{
	node(9, 0, "devices/virtual/block/md0");
	attr("devices/virtual/block/md0/md/uuid", "3b2a1c1e:5d0c2b5e:9e4f0a11:22c3d4e5");
	assert_id(9, 0, "md-uuid", "3b2a1c1e:5d0c2b5e:9e4f0a11:22c3d4e5");
}

Test(volid, nothing_stable_is_enoent)
{
	char t[16], i[128];

	node(254, 0, "devices/v/block/vda");
	attr("devices/v/block/vda/serial", "");		/* virtio without serial= */
	node(254, 1, "devices/v/block/vda/vda1");
	attr("devices/v/block/vda/vda1/partition", "1");
	attr("devices/v/block/vda/vda1/start", "2048");
	node(7, 0, "devices/virtual/block/loop0");
	cr_assert_eq(id_of(254, 0, t, i), -ENOENT);
	cr_assert_eq(id_of(254, 1, t, i), -ENOENT);
	cr_assert_eq(id_of(7, 0, t, i), -ENOENT);
	cr_assert_eq(id_of(7, 1, t, i), -ENOENT);	/* no such device */
}

Test(volid, long_ids_keep_a_prefix_and_a_hash)
{
	const char *a = "t10.ATA     Samsung SSD 850 EVO 250GB               S21PNXAG441016A";
	const char *b = "t10.ATA     Samsung SSD 850 EVO 250GB               S21PNXAG441016B";
	char ta[16], ia[128], tb[16], ib[128];
	size_t k;

	node(8, 0, "devices/h/block/sda");
	attr("devices/h/block/sda/device/wwid", a);
	node(8, 16, "devices/h/block/sdb");
	attr("devices/h/block/sdb/device/wwid", b);
	cr_assert_eq(id_of(8, 0, ta, ia), 0);
	cr_assert_eq(id_of(8, 16, tb, ib), 0);
	cr_assert_eq(strlen(ia), VOLID_MAX);
	cr_assert_str_neq(ia, ib, "two disks whose long ids differ at the end: %s", ia);
	cr_assert_eq(strncmp(ia, "t10.ATA_____Samsung_SSD_850", 27), 0, "%s", ia);
	for (k = 0; ia[k]; k++)
		cr_assert(!strchr("/ \t", ia[k]), "%s", ia);
}

/* A loop device is its backing file (and offset), whatever its number. */
Test(volid, loop_is_its_backing_file)
{
	char t[16], i[128];

	node(7, 0, "devices/virtual/block/loop0");
	attr("devices/virtual/block/loop0/loop/backing_file", "/srv/images/a.img");
	attr("devices/virtual/block/loop0/loop/offset", "0");
	node(7, 1, "devices/virtual/block/loop1");
	attr("devices/virtual/block/loop1/loop/backing_file", "/srv/images/a.img");
	attr("devices/virtual/block/loop1/loop/offset", "1048576");
	node(7, 2, "devices/virtual/block/loop2");
	attr("devices/virtual/block/loop2/loop/backing_file", "/tmp/gone.img (deleted)");
	assert_id(7, 0, "loop-file", "_srv_images_a.img");
	assert_id(7, 1, "loop-file", "_srv_images_a.img@1048576");
	cr_assert_eq(id_of(7, 2, t, i), -ENOENT);
}
