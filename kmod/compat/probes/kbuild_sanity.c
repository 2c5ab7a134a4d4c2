// SPDX-License-Identifier: GPL-2.0
/* Always compiles: proves the probe build itself works (gen-config.sh). */
#include <linux/types.h>

int bt_probe_sanity(void);
int bt_probe_sanity(void)
{
	return 0;
}
