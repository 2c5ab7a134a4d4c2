// SPDX-License-Identifier: GPL-2.0
/*
 * bdev_write_page(): a page handed to the driver's ->rw_page (brd, zram,
 * pmem, btt) without a bio, by swap-out and mpage writeback (up to 6.2).
 * The tracker redirects it to a wrapper that marks (kmod/tracker.c).
 */
#include <linux/blkdev.h>

int bt_probe(struct block_device *bdev, struct page *page);
int bt_probe(struct block_device *bdev, struct page *page)
{
	return bdev_write_page(bdev, 0, page, NULL);
}
