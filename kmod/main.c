// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack - changed-block tracking for backups.
 *
 * main.c: module init and exit, the control device /dev/blktrack-ctl and
 * its ioctls (argument checks here, the work in volume.c), debugfs.
 * The ABI is include/uapi/linux/blktrack.h; its comments are the contract.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kdev_t.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <generated/utsrelease.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "volume.h"

unsigned int bt_mem_limit_mib = 64;
module_param_named(mem_limit_mib, bt_mem_limit_mib, uint, 0444);
MODULE_PARM_DESC(mem_limit_mib,
		 "Default map memory limit per volume in MiB (0: no limit; default 64)");

static struct dentry *bt_debugfs;

/* ==== Argument checks ==================================================== */

/* Copy an argument struct in; its first field is its size. */
static int bt_copy_in(void *karg, const void __user *uarg, size_t size)
{
	if (copy_from_user(karg, uarg, size))
		return -EFAULT;
	if (*(const u64 *)karg != size)
		return -EMSGSIZE;
	return 0;
}

static bool bt_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

/* A device number the kernel can represent, or false. */
static bool bt_devno(const struct blktrack_devno *d, dev_t *dev)
{
	if (d->major > MAJOR(~0U) || d->minor > MINOR(~0U))
		return false;
	*dev = MKDEV(d->major, d->minor);
	return true;
}

static bool bt_block_size_ok(u32 bs)
{
	return bs == 0 || (is_power_of_2(bs) && bs >= BLKTRACK_BLOCK_SIZE_MIN &&
			   bs <= BLKTRACK_BLOCK_SIZE_MAX);
}

/* ==== Ioctls ============================================================= */

static int bt_ioc_version(void __user *uarg)
{
	struct blktrack_version v;
	int ret = bt_copy_in(&v, uarg, sizeof(v));

	if (ret)
		return ret;
	if (v.reserved0 || !bt_zero(v.reserved, sizeof(v.reserved)))
		return -EINVAL;
	v.abi_version = BLKTRACK_ABI_VERSION;
	v.features = BLKTRACK_FEATURE_RESTORE | BLKTRACK_FEATURE_ABORT_EPOCH |
		     (bt_snap_supported() ? BLKTRACK_FEATURE_SNAPSHOT : 0);
	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static int bt_ioc_attach(void __user *uarg)
{
	struct blktrack_attach a;
	dev_t dev;
	int ret = bt_copy_in(&a, uarg, sizeof(a));

	if (ret)
		return ret;
	if (a.flags || !bt_zero(a.reserved, sizeof(a.reserved)) ||
	    !bt_block_size_ok(a.block_size))
		return -EINVAL;
	if (!bt_devno(&a.dev, &dev))
		return -ENODEV;
	return bt_attach(&a, dev);
}

static int bt_ioc_detach(void __user *uarg)
{
	struct blktrack_dev_arg d;
	dev_t dev;
	int ret = bt_copy_in(&d, uarg, sizeof(d));

	if (ret)
		return ret;
	if (d.flags || d.reserved0 || !bt_zero(d.reserved, sizeof(d.reserved)))
		return -EINVAL;
	if (!bt_devno(&d.dev, &dev))
		return -ENOENT;
	return bt_detach(dev);
}

static int bt_ioc_list(void __user *uarg)
{
	struct blktrack_list l;
	int ret = bt_copy_in(&l, uarg, sizeof(l));

	if (ret)
		return ret;
	if (l.flags || l.reserved0 || !bt_zero(l.reserved, sizeof(l.reserved)))
		return -EINVAL;
	ret = bt_list(&l);
	if (ret)
		return ret;
	return copy_to_user(uarg, &l, sizeof(l)) ? -EFAULT : 0;
}

static int bt_ioc_status(void __user *uarg)
{
	struct blktrack_status st;
	dev_t dev;
	int ret = bt_copy_in(&st, uarg, sizeof(st));

	if (ret)
		return ret;
	if (st.flags || !bt_zero(st.reserved, sizeof(st.reserved)))
		return -EINVAL;
	if (!bt_devno(&st.dev, &dev))
		return -ENOENT;
	ret = bt_status(&st, dev);
	if (ret)
		return ret;
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/* The volumes of CHECKPOINT and CHECKPOINT_SNAP; @snap as bt_checkpoint(). */
static int bt_checkpoint_vols(u64 vols_ptr, u32 count,
			      const struct blktrack_checkpoint_snap *snap)
{
	struct blktrack_checkpoint_vol __user *ucv;
	struct blktrack_checkpoint_vol *cv;
	dev_t *devs;
	u32 i, j;
	int ret = 0;

	ucv = u64_to_user_ptr(vols_ptr);
	cv = memdup_user(ucv, count * sizeof(*cv));
	if (IS_ERR(cv))
		return PTR_ERR(cv);
	devs = kcalloc(count, sizeof(*devs), GFP_KERNEL);
	if (!devs) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < count; i++) {
		if (cv[i].reserved0) {
			ret = -EINVAL;
			goto out_free;
		}
		for (j = 0; j < i; j++) {
			if (cv[j].dev.major == cv[i].dev.major &&
			    cv[j].dev.minor == cv[i].dev.minor) {
				ret = -EINVAL;	/* one volume, one instant */
				goto out_free;
			}
		}
	}
	for (i = 0; i < count; i++) {
		if (!bt_devno(&cv[i].dev, &devs[i])) {
			ret = -ENOENT;
			goto out_free;
		}
	}
	ret = bt_checkpoint(cv, devs, count, ucv, snap);
out_free:
	kfree(devs);
	kfree(cv);
	return ret;
}

static int bt_ioc_checkpoint(void __user *uarg)
{
	struct blktrack_checkpoint c;
	int ret = bt_copy_in(&c, uarg, sizeof(c));

	if (ret)
		return ret;
	if (c.flags || !bt_zero(c.reserved, sizeof(c.reserved)) ||
	    !c.count || c.count > BLKTRACK_CHECKPOINT_MAX)
		return -EINVAL;
	return bt_checkpoint_vols(c.vols_ptr, c.count, NULL);
}

static int bt_ioc_checkpoint_snap(void __user *uarg)
{
	struct blktrack_checkpoint_snap c;
	int ret = bt_copy_in(&c, uarg, sizeof(c));

	if (ret)
		return ret;
	if ((c.flags & ~(BLKTRACK_SNAP_ALL | BLKTRACK_SNAP_STORE_FD)) || c.reserved0 ||
	    c.reserved || !c.count || c.count > BLKTRACK_CHECKPOINT_MAX)
		return -EINVAL;
	if (!(c.flags & BLKTRACK_SNAP_STORE_FD) && c.store_fd)
		return -EINVAL;		/* a store the call does not use */
	return bt_checkpoint_vols(c.vols_ptr, c.count, &c);
}

static int bt_ioc_snap_read(void __user *uarg)
{
	struct blktrack_snap_read rd;
	dev_t dev;
	int ret = bt_copy_in(&rd, uarg, sizeof(rd));

	if (ret)
		return ret;
	if ((rd.flags & ~(BLKTRACK_SNAP_READ_KEEP | BLKTRACK_SNAP_READ_RELEASE)) ||
	    rd.reserved0 || !bt_zero(rd.reserved, sizeof(rd.reserved)) || !rd.length)
		return -EINVAL;
	if (rd.flags & BLKTRACK_SNAP_READ_RELEASE) {
		/* Nothing is read: no buffer, and any length. */
		if ((rd.flags & BLKTRACK_SNAP_READ_KEEP) || rd.buf_ptr)
			return -EINVAL;
	} else if (rd.length > BLKTRACK_SNAP_READ_MAX) {
		return -E2BIG;
	}
	if (!bt_devno(&rd.dev, &dev))
		return -ENOENT;
	return bt_snap_read_dev(&rd, dev);
}

static int bt_ioc_snap_status(void __user *uarg)
{
	struct blktrack_snap_status st;
	dev_t dev;
	int ret = bt_copy_in(&st, uarg, sizeof(st));

	if (ret)
		return ret;
	if (st.flags || st.error || !bt_zero(st.reserved, sizeof(st.reserved)))
		return -EINVAL;
	if (!bt_devno(&st.dev, &dev))
		return -ENOENT;
	ret = bt_snap_status_dev(&st, dev);
	if (ret)
		return ret;
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

static int bt_ioc_read_extents(void __user *uarg)
{
	struct blktrack_read_extents rd;
	dev_t dev;
	int ret = bt_copy_in(&rd, uarg, sizeof(rd));

	if (ret)
		return ret;
	if ((rd.flags & ~BLKTRACK_READ_ACTIVE) || rd.reserved0 ||
	    !bt_zero(rd.reserved, sizeof(rd.reserved)) || !rd.capacity)
		return -EINVAL;
	if (!bt_devno(&rd.dev, &dev))
		return -ENOENT;
	ret = bt_read_extents(&rd, dev);
	if (ret)
		return ret;
	return copy_to_user(uarg, &rd, sizeof(rd)) ? -EFAULT : 0;
}

static int bt_ioc_stamp(void __user *uarg, bool commit)
{
	struct blktrack_stamp_arg a;
	dev_t dev;
	int ret = bt_copy_in(&a, uarg, sizeof(a));

	if (ret)
		return ret;
	if (a.flags || a.reserved0 || !bt_zero(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	if (!bt_devno(&a.dev, &dev))
		return -ENOENT;
	return commit ? bt_commit(&a, dev) : bt_abort(&a, dev);
}

static bool bt_restore_reason_ok(u32 reason)
{
	return reason == BLKTRACK_REASON_RESIZED || reason == BLKTRACK_REASON_UNCLEAN ||
	       reason == BLKTRACK_REASON_NO_STATE || reason == BLKTRACK_REASON_OFFLINE_CHANGE;
}

static int bt_ioc_restore(void __user *uarg)
{
	struct blktrack_extent *ext = NULL;
	struct blktrack_restore r;
	bool invalid;
	dev_t dev;
	int ret = bt_copy_in(&r, uarg, sizeof(r));

	if (ret)
		return ret;
	invalid = r.flags & BLKTRACK_RESTORE_INVALID;
	if ((r.flags & ~BLKTRACK_RESTORE_INVALID) || !bt_zero(r.reserved, sizeof(r.reserved)))
		return -EINVAL;
	if (invalid ? !bt_restore_reason_ok(r.reason) || r.count :
		      r.reason || bt_zero(r.stamp.generation, sizeof(r.stamp.generation)) ||
		      !r.block_size || !bt_block_size_ok(r.block_size))
		return -EINVAL;
	if (r.count > BLKTRACK_RESTORE_MAX)
		return -E2BIG;
	if (!bt_devno(&r.dev, &dev))
		return -ENOENT;
	if (r.count) {
		ext = memdup_user(u64_to_user_ptr(r.extents_ptr), r.count * sizeof(*ext));
		if (IS_ERR(ext))
			return PTR_ERR(ext);
	}
	ret = bt_restore(&r, ext, dev);
	kfree(ext);
	return ret;
}

static long bt_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case BLKTRACK_IOC_VERSION:
		return bt_ioc_version(uarg);
	case BLKTRACK_IOC_ATTACH:
		return bt_ioc_attach(uarg);
	case BLKTRACK_IOC_DETACH:
		return bt_ioc_detach(uarg);
	case BLKTRACK_IOC_LIST:
		return bt_ioc_list(uarg);
	case BLKTRACK_IOC_STATUS:
		return bt_ioc_status(uarg);
	case BLKTRACK_IOC_CHECKPOINT:
		return bt_ioc_checkpoint(uarg);
	case BLKTRACK_IOC_READ_EXTENTS:
		return bt_ioc_read_extents(uarg);
	case BLKTRACK_IOC_COMMIT:
		return bt_ioc_stamp(uarg, true);
	case BLKTRACK_IOC_ABORT:
		return bt_ioc_stamp(uarg, false);
	case BLKTRACK_IOC_RESTORE:
		return bt_ioc_restore(uarg);
	case BLKTRACK_IOC_CHECKPOINT_SNAP:
		return bt_ioc_checkpoint_snap(uarg);
	case BLKTRACK_IOC_SNAP_READ:
		return bt_ioc_snap_read(uarg);
	case BLKTRACK_IOC_SNAP_STATUS:
		return bt_ioc_snap_status(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations bt_ctl_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= bt_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,	/* every struct is 32/64 neutral */
	.llseek		= noop_llseek,
};

static struct miscdevice bt_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= BLKTRACK_CTL_NAME,
	.fops	= &bt_ctl_fops,
	.mode	= 0600,
};

/* ==== debugfs ============================================================ */

static int bt_allocations_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%ld\n", atomic_long_read(&blktrack_allocations));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(bt_allocations);

static int bt_leaf_reserve_show(struct seq_file *m, void *v)
{
	unsigned int ready;
	u64 taken, missed;

	bt_leaf_reserve_stats(&taken, &missed, &ready);
	seq_printf(m, "taken %llu\nmissed %llu\nready %u\n", taken, missed, ready);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(bt_leaf_reserve);

/* ==== Module ============================================================= */

static bool bt_untested_kernel;
module_param_named(untested_kernel, bt_untested_kernel, bool, 0444);
MODULE_PARM_DESC(untested_kernel,
		 "load on a kernel line whose block layer was not checked (compat.h)");

static int __init bt_init(void)
{
	int ret;

	if (!bt_kernel_verified()) {
		if (!bt_untested_kernel) {
			pr_err("kernel %s is not a line blktrack was checked on (6.1, 6.12): not loading (untested_kernel=1 overrides)\n",
			       UTS_RELEASE);
			return -EOPNOTSUPP;
		}
		pr_warn("kernel %s is not a line blktrack was checked on: a write may go untracked\n",
			UTS_RELEASE);
	}

	ret = bt_tracker_init();
	if (ret)
		return ret;
	ret = bt_leaf_reserve_init();
	if (ret)
		return ret;
	ret = bt_snap_init();
	if (ret)
		goto out_reserve;
	/* debugfs is a debugging aid: its failures are not ours to report. */
	bt_debugfs = debugfs_create_dir("blktrack", NULL);
	debugfs_create_file("allocations", 0400, bt_debugfs, NULL,
			    &bt_allocations_fops);
	debugfs_create_file("leaf_reserve", 0400, bt_debugfs, NULL,
			    &bt_leaf_reserve_fops);

	ret = misc_register(&bt_misc);
	if (ret) {
		pr_err("cannot register /dev/%s: %d\n", BLKTRACK_CTL_NAME, ret);
		goto out_debugfs;
	}
	pr_info("loaded, ABI version %d\n", BLKTRACK_ABI_VERSION);
	return 0;

out_debugfs:
	debugfs_remove_recursive(bt_debugfs);
	bt_snap_exit();
out_reserve:
	bt_leaf_reserve_exit();
	return ret;
}

static void __exit bt_exit(void)
{
	long n;

	misc_deregister(&bt_misc);
	bt_detach_all();	/* unregisters the probes with the last volume */
	bt_snap_exit();		/* the last snapshot went with its volume */
	bt_leaf_reserve_exit();
	debugfs_remove_recursive(bt_debugfs);
	/* Let RCU callbacks of the map (if it uses any) run before counting. */
	rcu_barrier();
	n = atomic_long_read(&blktrack_allocations);
	if (n)
		pr_err("leaked %ld allocations\n", n);
	else
		pr_info("unloaded\n");
}

module_init(bt_init);
module_exit(bt_exit);

MODULE_DESCRIPTION("Changed-block tracking for backups");
MODULE_AUTHOR("blktrack developers");
MODULE_LICENSE("GPL");
