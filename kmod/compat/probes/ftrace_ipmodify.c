// SPDX-License-Identifier: GPL-2.0
/*
 * An ftrace callback that reads the traced function's first argument and
 * changes where it returns (SAVE_REGS | IPMODIFY), kept registered even
 * when ftrace_enabled is turned off (PERMANENT): the snapshot's redirect of
 * submit_bio_noacct() (kmod/snapshot.c).
 */
#include <linux/ftrace.h>
#include <linux/ptrace.h>

static void bt_probe_cb(unsigned long ip, unsigned long parent_ip,
			struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);

	instruction_pointer_set(regs, regs_get_kernel_argument(regs, 0));
}

static struct ftrace_ops bt_probe_ops = {
	.func	= bt_probe_cb,
	.flags	= FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY |
		  FTRACE_OPS_FL_PERMANENT,
};

int bt_probe(void);
int bt_probe(void)
{
	static unsigned char name[] = "submit_bio_noacct";
	int ret = ftrace_set_filter(&bt_probe_ops, name, sizeof(name) - 1, 1);

	if (!ret)
		ret = register_ftrace_function(&bt_probe_ops);
	unregister_ftrace_function(&bt_probe_ops);
	ftrace_free_filter(&bt_probe_ops);
	return ret;
}
