// SPDX-License-Identifier: Apache-2.0
/*
 * drivers/block/null_blk/main.c for the mini-kernel: a disk that completes
 * each request after a seeded, tunable latency, from an hrtimer
 * (null_blk's irqmode=2, completion_nsec). The latency is the file's
 * i_read_latency_ns plus a random tail, so latency analysis has something
 * real to find.
 */
#include "kernel.h"

#define NULL_MAX_CMDS 32

struct nullb_cmd {
	struct hrtimer timer;
	struct bio *bio;
	int busy;
};

static struct nullb_cmd nullb_cmds[NULL_MAX_CMDS];
static raw_spinlock_t nullb_lock;
__used u64 null_blk_nr_requests;

static noinline void end_cmd(struct nullb_cmd *cmd)
{
	KCOST(30);
	blk_mq_complete_request(cmd->bio);
	cmd->busy = 0;
}

static noinline int null_cmd_timer_expired(struct hrtimer *timer)
{
	end_cmd(container_of(timer, struct nullb_cmd, timer));
	return HRTIMER_NORESTART;
}

noinline int null_queue_rq(struct bio *bio)
{
	struct nullb_cmd *cmd = NULL;
	unsigned long flags;
	u64 lat = bio->bi_inode->i_read_latency_ns;
	int i;

	KCOST(150);
	flags = _raw_spin_lock_irqsave(&nullb_lock);
	for (i = 0; i < NULL_MAX_CMDS; i++) {
		if (!nullb_cmds[i].busy) {
			cmd = &nullb_cmds[i];
			cmd->busy = 1;
			break;
		}
	}
	_raw_spin_unlock_irqrestore(&nullb_lock, flags);
	if (!cmd)
		return -EAGAIN;
	null_blk_nr_requests++;
	cmd->bio = bio;
	hrtimer_init(&cmd->timer, null_cmd_timer_expired);
	hrtimer_start_range_ns(&cmd->timer, random_latency(lat, lat / 4 + 1), 0, 1);
	return 0;
}
