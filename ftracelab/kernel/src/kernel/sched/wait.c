// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/sched/wait.c for the mini-kernel: wait queues. A waiter puts an
 * entry (a list node followed by its task pointer) on the queue, sets its
 * state and calls schedule(); __wake_up() wakes the queued tasks.
 */
#include "kernel.h"

noinline void init_waitqueue_head(struct wait_queue_head *wq)
{
	KCOST(10);
	wq->lock.locked = 0;
	INIT_LIST_HEAD(&wq->head);
}

noinline void prepare_to_wait_event(struct wait_queue_head *wq, struct wait_queue_entry *w, int state)
{
	struct list_head *entry = &w->entry;
	unsigned long flags;

	KCOST(20);
	w->task = current;
	flags = _raw_spin_lock_irqsave(&wq->lock);
	if (list_empty(entry))
		list_add_tail(entry, &wq->head);
	WRITE_ONCE(current->__state, state);
	_raw_spin_unlock_irqrestore(&wq->lock, flags);
}

noinline void finish_wait(struct wait_queue_head *wq, struct wait_queue_entry *w)
{
	struct list_head *entry = &w->entry;
	unsigned long flags;

	KCOST(15);
	WRITE_ONCE(current->__state, TASK_RUNNING);
	if (!list_empty(entry)) {
		flags = _raw_spin_lock_irqsave(&wq->lock);
		list_del_init(entry);
		_raw_spin_unlock_irqrestore(&wq->lock, flags);
	}
}

noinline int autoremove_wake_function(struct list_head *entry, unsigned int mode)
{
	struct wait_queue_entry *w = container_of(entry, struct wait_queue_entry, entry);
	int ret = try_to_wake_up(w->task, mode, 0);

	if (ret)
		list_del_init(entry);
	return ret;
}

static noinline int __wake_up_common(struct wait_queue_head *wq, unsigned int mode, int nr)
{
	struct list_head *pos = wq->head.next, *next;
	int woken = 0;

	KCOST(15);
	for (; pos != &wq->head && (nr <= 0 || woken < nr); pos = next) {
		next = pos->next;
		woken += autoremove_wake_function(pos, mode);
	}
	return woken;
}

noinline void __wake_up(struct wait_queue_head *wq, unsigned int mode, int nr, void *key)
{
	unsigned long flags;

	(void)key;
	flags = _raw_spin_lock_irqsave(&wq->lock);
	__wake_up_common(wq, mode, nr);
	_raw_spin_unlock_irqrestore(&wq->lock, flags);
}
