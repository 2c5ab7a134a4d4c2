// SPDX-License-Identifier: GPL-2.0
/* Up to 6.4: blkdev_get_by_dev(dev, fmode_t, holder) / blkdev_put(bdev, fmode_t). */
#include <linux/blkdev.h>
#include <linux/fs.h>

int bt_probe(dev_t dev);
int bt_probe(dev_t dev)
{
	fmode_t mode = FMODE_READ;
	struct block_device *bdev = blkdev_get_by_dev(dev, mode, NULL);

	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	blkdev_put(bdev, mode);
	return 0;
}
