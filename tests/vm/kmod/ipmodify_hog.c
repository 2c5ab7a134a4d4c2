// SPDX-License-Identifier: GPL-2.0
/*
 * ipmodify_hog - a test-only module that holds IPMODIFY on
 * submit_bio_noacct(), as a livepatch of that function (or another snapshot
 * module, blksnap) would: an ftrace_ops with SAVE_REGS | IPMODIFY filtered
 * to it, whose callback does nothing. ftrace allows one IPMODIFY user per
 * function, so while it is loaded blktrack's snapshot interception is
 * refused (CHECKPOINT_SNAP -> EOPNOTSUPP), and while blktrack holds a
 * snapshot this module cannot load (EBUSY). tests/vm/0986-snapshot-refused.sh.
 *
 * Never part of blktrack.ko; built per kernel by scripts/build-kmod-all.sh
 * into build/kmod-KVER/testkmod/ and packed into the test initramfs only.
 */
#include <linux/ftrace.h>
#include <linux/module.h>

static void notrace hog_cb(unsigned long ip, unsigned long parent_ip,
			   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
}

static struct ftrace_ops hog_ops = {
	.func	= hog_cb,
	.flags	= FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY,
};

static int __init hog_init(void)
{
	static unsigned char name[] = "submit_bio_noacct";
	int ret;

	ret = ftrace_set_filter(&hog_ops, name, sizeof(name) - 1, 1);
	if (ret) {
		pr_warn("ipmodify_hog: cannot filter %s (%d)\n", name, ret);
		return ret;
	}
	ret = register_ftrace_function(&hog_ops);
	if (ret) {
		pr_warn("ipmodify_hog: cannot hold IPMODIFY on %s (%d)\n", name, ret);
		ftrace_free_filter(&hog_ops);
		return ret;
	}
	pr_info("ipmodify_hog: holding IPMODIFY on %s\n", name);
	return 0;
}

static void __exit hog_exit(void)
{
	unregister_ftrace_function(&hog_ops);
	ftrace_free_filter(&hog_ops);
	pr_info("ipmodify_hog: released\n");
}

module_init(hog_init);
module_exit(hog_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("blktrack test: hold IPMODIFY on submit_bio_noacct");
