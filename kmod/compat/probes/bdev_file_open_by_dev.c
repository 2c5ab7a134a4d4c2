// SPDX-License-Identifier: GPL-2.0
/* 6.9+: opening a block device yields a struct file. */
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/file.h>

int bt_probe(dev_t dev);
int bt_probe(dev_t dev)
{
	struct file *f = bdev_file_open_by_dev(dev, BLK_OPEN_READ, NULL, NULL);
	struct block_device *bdev;

	if (IS_ERR(f))
		return PTR_ERR(f);
	bdev = file_bdev(f);
	fput(f);
	return bdev ? 0 : -ENXIO;
}
