// SPDX-License-Identifier: GPL-2.0
/* Up to 6.13: blk_mq_freeze_queue() returns nothing, unfreeze takes the queue only. */
#include <linux/blkdev.h>
#include <linux/blk-mq.h>

void bt_probe(struct request_queue *q);
void bt_probe(struct request_queue *q)
{
	blk_mq_freeze_queue(q);
	blk_mq_unfreeze_queue(q);
}
