// SPDX-License-Identifier: GPL-2.0
/*
 * discard_plug - a test-only module that submits several discards under
 * one plug, as XFS's online discard and blkdev_issue_discard() do, so that
 * blk-mq merges them into one request of several ranges on a device that
 * takes them (NVMe: up to 256). At load it discards, on the block device
 * open as file descriptor @fd of the loading process, the sector ranges
 * @ranges=START,LEN[,START,LEN...], waits for them, and stays loaded until
 * rmmod. tests/vm/0420-multi-discard.sh:
 *
 *	insmod discard_plug.ko fd=3 ranges=2048,16,8192,8 3<>/dev/nvme0n1
 *
 * Never part of blktrack.ko; built per kernel by scripts/build-kmod-all.sh
 * into build/kmod-KVER/testkmod/ and packed into the test initramfs only.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>

static int fd = -1;
module_param(fd, int, 0444);
MODULE_PARM_DESC(fd, "file descriptor of the loading process: the block device");

static unsigned long ranges[32];
static int nr_ranges;
module_param_array(ranges, ulong, &nr_ranges, 0444);
MODULE_PARM_DESC(ranges, "START,LEN sector pairs to discard under one plug");

static int discard_ranges(struct block_device *bdev)
{
	struct bio *prev = NULL, *bio;
	struct blk_plug plug;
	int i, ret;

	blk_start_plug(&plug);
	for (i = 0; i + 1 < nr_ranges; i += 2) {
		bio = bio_alloc(bdev, 0, REQ_OP_DISCARD, GFP_KERNEL);
		bio->bi_iter.bi_sector = ranges[i];
		bio->bi_iter.bi_size = ranges[i + 1] << SECTOR_SHIFT;
		if (prev) {
			/* prev's completion is counted into bio's: one wait. */
			bio_chain(prev, bio);
			submit_bio(prev);
		}
		prev = bio;
	}
	/* Sleeping flushes the plug: the bios go down together. */
	ret = submit_bio_wait(prev);
	bio_put(prev);
	blk_finish_plug(&plug);
	return ret;
}

static int __init discard_plug_init(void)
{
	struct file *f;
	int ret;

	if (nr_ranges < 2 || nr_ranges % 2)
		return -EINVAL;
	f = fget(fd);
	if (!f)
		return -EBADF;
	ret = S_ISBLK(file_inode(f)->i_mode) ? discard_ranges(I_BDEV(f->f_mapping->host)) :
					      -ENOTBLK;
	fput(f);
	return ret;
}

static void __exit discard_plug_exit(void)
{
}

module_init(discard_plug_init);
module_exit(discard_plug_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("blktrack test: discards merged into one request");
