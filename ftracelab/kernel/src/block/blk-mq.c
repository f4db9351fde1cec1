// SPDX-License-Identifier: Apache-2.0
/*
 * block/blk-core.c, blk-mq.c and bio.c for the mini-kernel: a bio goes
 * submit_bio -> submit_bio_noacct -> blk_mq_submit_bio -> the driver's
 * queue_rq; the driver completes it later from an interrupt
 * (blk_mq_complete_request), which raises BLOCK_SOFTIRQ; the softirq
 * (blk_done_softirq -> blk_complete_reqs) ends the request and bio_endio()
 * wakes the task waiting in submit_bio_wait().
 */
#include "kernel.h"

int null_queue_rq(struct bio *bio);

struct blk_done_list {
	raw_spinlock_t lock;
	struct list_head list;
};
static struct blk_done_list blk_cpu_done[NR_CPUS];

noinline void bio_endio(struct bio *bio)
{
	KCOST(40);
	if (bio->bi_end_io)
		bio->bi_end_io(bio);
}

noinline void blk_update_request(struct bio *bio, int error)
{
	KCOST(60);
	bio->bi_status = error;
	bio_endio(bio);
}

noinline void blk_mq_end_request(struct bio *bio, int error)
{
	KCOST(30);
	blk_update_request(bio, error);
}

static noinline void blk_complete_reqs(struct list_head *list)
{
	while (!list_empty(list)) {
		struct bio *bio = container_of(list->next, struct bio, bi_list);

		list_del_init(&bio->bi_list);
		blk_mq_end_request(bio, 0);
	}
}

static noinline void blk_done_softirq(void)
{
	struct blk_done_list *done = &blk_cpu_done[smp_processor_id()];
	struct list_head local;
	unsigned long flags;

	KCOST(40);
	INIT_LIST_HEAD(&local);
	flags = _raw_spin_lock_irqsave(&done->lock);
	if (!list_empty(&done->list)) {   /* splice */
		local.next = done->list.next;
		local.prev = done->list.prev;
		local.next->prev = &local;
		local.prev->next = &local;
		INIT_LIST_HEAD(&done->list);
	}
	_raw_spin_unlock_irqrestore(&done->lock, flags);
	blk_complete_reqs(&local);
}

/* Called by the driver from its completion interrupt. */
noinline void blk_mq_complete_request(struct bio *bio)
{
	struct blk_done_list *done = &blk_cpu_done[smp_processor_id()];

	KCOST(40);
	_raw_spin_lock(&done->lock);
	list_add_tail(&bio->bi_list, &done->list);
	_raw_spin_unlock(&done->lock);
	raise_softirq_irqoff(BLOCK_SOFTIRQ);
}

noinline void blk_mq_start_request(struct bio *bio)
{
	(void)bio;
	KCOST(50);
}

noinline void blk_mq_submit_bio(struct bio *bio)
{
	KCOST(200);
	INIT_LIST_HEAD(&bio->bi_list);
	blk_mq_start_request(bio);
	if (null_queue_rq(bio))
		blk_mq_end_request(bio, -EIO);
}

noinline void submit_bio_noacct(struct bio *bio)
{
	KCOST(60);
	blk_mq_submit_bio(bio);
}

noinline void submit_bio(struct bio *bio)
{
	KCOST(40);
	submit_bio_noacct(bio);
}

static noinline void submit_bio_wait_endio(struct bio *bio)
{
	struct task_struct *waiter = bio->bi_waiter;

	WRITE_ONCE(bio->bi_done, 1);
	if (waiter)
		wake_up_process(waiter);
}

/* Submit and sleep in io_schedule() until the completion wakes us. */
noinline int submit_bio_wait(struct bio *bio)
{
	bio->bi_end_io = submit_bio_wait_endio;
	bio->bi_waiter = current;
	bio->bi_done = 0;
	WRITE_ONCE(current->__state, TASK_UNINTERRUPTIBLE);
	submit_bio(bio);
	while (!READ_ONCE(bio->bi_done)) {
		io_schedule();
		WRITE_ONCE(current->__state, TASK_UNINTERRUPTIBLE);
	}
	WRITE_ONCE(current->__state, TASK_RUNNING);
	return bio->bi_status;
}

__init void blk_mq_init(void)
{
	unsigned int i;

	for (i = 0; i < NR_CPUS; i++)
		INIT_LIST_HEAD(&blk_cpu_done[i].list);
	open_softirq(BLOCK_SOFTIRQ, blk_done_softirq);
}
