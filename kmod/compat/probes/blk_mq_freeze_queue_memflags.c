// SPDX-License-Identifier: GPL-2.0
/* 6.14+: freezing returns memalloc flags that unfreezing restores. */
#include <linux/blkdev.h>
#include <linux/blk-mq.h>

void bt_probe(struct request_queue *q);
void bt_probe(struct request_queue *q)
{
	unsigned int memflags = blk_mq_freeze_queue(q);

	blk_mq_unfreeze_queue(q, memflags);
}
