/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h - the one place that knows how kernel APIs differ.
 *
 * Force-included into every file of the module (kmod/Kbuild), right after
 * the generated config header whose HAVE_* macros say which probe in
 * kmod/compat/probes/ compiled against the target kernel. Core files call
 * only the bt_* wrappers below and carry no version #ifs. A kernel on which
 * no known variant of an API compiles stops here with #error.
 *
 * Adding a probe: see doc/KERNEL.md ("The compat layer").
 */
#ifndef BLKTRACK_COMPAT_H
#define BLKTRACK_COMPAT_H

#ifndef BLKTRACK_COMPAT_CONFIG
#error "blktrack: the generated probe config is missing (kmod/compat/gen-config.sh)"
#endif

/*
 * This header comes before any kernel header, so printk.h's default would
 * win over the files' own pr_fmt: set the module's prefix here (the files
 * repeat the same definition, which is harmless).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>

/* ---- Opening a block device by number, shared (not exclusive) ---------- */

#if defined(HAVE_BDEV_FILE_OPEN_BY_DEV)			/* 6.9+ */

struct bt_bdev {
	struct block_device *bdev;
	struct file *file;
};

static inline int bt_bdev_open(dev_t dev, struct bt_bdev *h)
{
	/* No holder: a shared open that never blocks an exclusive one. */
	struct file *f = bdev_file_open_by_dev(dev, BLK_OPEN_READ, NULL, NULL);

	if (IS_ERR(f))
		return PTR_ERR(f);
	h->file = f;
	h->bdev = file_bdev(f);
	return 0;
}

static inline void bt_bdev_close(struct bt_bdev *h)
{
	fput(h->file);
}

#elif defined(HAVE_BLKDEV_GET_BY_DEV_FMODE)		/* up to 6.4 */

struct bt_bdev {
	struct block_device *bdev;
};

static inline int bt_bdev_open(dev_t dev, struct bt_bdev *h)
{
	/* No FMODE_EXCL: a shared open that never blocks an exclusive one. */
	struct block_device *bdev = blkdev_get_by_dev(dev, FMODE_READ, NULL);

	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	h->bdev = bdev;
	return 0;
}

static inline void bt_bdev_close(struct bt_bdev *h)
{
	blkdev_put(h->bdev, FMODE_READ);
}

#else
#error "blktrack: no known way to open a block device on this kernel (kmod/compat/probes)"
#endif

/* ---- Redirecting a traced function (snapshots) ------------------------- */

#if defined(HAVE_FTRACE_IPMODIFY)				/* x86 with regs */

#include <linux/ftrace.h>
#include <linux/ptrace.h>

#define BT_FTRACE_REDIRECT_FLAGS \
	(FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT)

/* The traced function's first argument (SAVE_REGS: full pt_regs). */
static __always_inline unsigned long bt_ftrace_arg0(struct ftrace_regs *fregs)
{
	return regs_get_kernel_argument(ftrace_get_regs(fregs), 0);
}

/* Continue in @ip, with the traced function's arguments and return address. */
static __always_inline void bt_ftrace_redirect(struct ftrace_regs *fregs, unsigned long ip)
{
	instruction_pointer_set(ftrace_get_regs(fregs), ip);
}

#else

/*
 * No redirect: snapshots are refused with EOPNOTSUPP and VERSION does not
 * report BLKTRACK_FEATURE_SNAPSHOT. Tracking does not need it.
 */
#define BT_FTRACE_REDIRECT_FLAGS 0
static inline unsigned long bt_ftrace_arg0(struct ftrace_regs *fregs) { return 0; }
static inline void bt_ftrace_redirect(struct ftrace_regs *fregs, unsigned long ip) { }

#endif

/* ---- The kernel lines whose block layer was checked -------------------- */

#include <linux/version.h>

/*
 * Correctness rides on block-layer behaviour no API states: block_bio_queue
 * fires in submit_bio_noacct_nocheck(), after throttling and the partition
 * remap, before the driver; blk_update_request() traces block_rq_complete
 * while the request still holds its bios, and clears BIO_TRACE_COMPLETION
 * before ending them (so block_bio_complete is the bio-based disks' own);
 * nvme multipath and md trace block_bio_remap for a bio moved in place.
 * These were read in the sources of, and are tested on, the lines below:
 * the module refuses other kernels unless loaded with untested_kernel=1.
 */
static inline bool bt_kernel_verified(void)
{
	return (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 1, 0) &&
		LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)) ||
	       (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0) &&
		LINUX_VERSION_CODE < KERNEL_VERSION(6, 13, 0));
}

/* ---- Writes without a bio: ->rw_page ---------------------------------- */

#if defined(HAVE_BDEV_WRITE_PAGE)				/* up to 6.2 */

/*
 * bdev_write_page() gives a page to the driver's ->rw_page (brd, zram,
 * pmem, btt) without a bio, for swap-out and mpage writeback: no block
 * tracepoint sees it. The tracker puts a kretprobe on it (kmod/tracker.c).
 */
#define BT_RW_PAGE_FN "bdev_write_page"

static inline bool bt_disk_has_rw_page(struct gendisk *disk)
{
	return disk->fops->rw_page;
}

#else

/* Every write is a bio (6.3 removed ->rw_page). */
#define BT_RW_PAGE_FN "(none)"

static inline bool bt_disk_has_rw_page(struct gendisk *disk)
{
	return false;
}

#endif

#endif /* BLKTRACK_COMPAT_H */
