// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/sched/fair.c for the mini-kernel: a small CFS/EEVDF. Each runqueue
 * keeps its runnable tasks (not the running one) in a list; the task with
 * the smallest vruntime runs next, a waking task preempts the current one
 * if it is owed more than one slice, and the tick preempts a task that has
 * used up its slice while others wait.
 */
#include "kernel.h"
#include "sched.h"

/* 0.75 ms scaled by 1 + ilog2(ncpus), as sched_update_scaling() does. */
u64 sysctl_sched_base_slice = 750000;

__init void sched_init_granularity(void)
{
	unsigned int factor = 1, n = nr_cpu_ids;

	while (n > 1) {
		factor++;
		n >>= 1;
	}
	sysctl_sched_base_slice = 750000ull * factor;
}

/* Charge the running task for the time since it last was. */
static noinline void update_curr(struct rq *rq)
{
	struct task_struct *curr = rq->curr;
	u64 now = rq->clock, delta;

	KCOST(15);
	if (curr == rq->idle || now <= curr->se.exec_start)
		return;
	delta = now - curr->se.exec_start;
	curr->se.exec_start = now;
	curr->se.sum_exec_runtime += delta;
	curr->se.vruntime += delta;
	if (curr->se.vruntime > rq->min_vruntime && list_empty(&rq->cfs_tasks))
		rq->min_vruntime = curr->se.vruntime;
}

noinline void enqueue_task_fair(struct rq *rq, struct task_struct *p, int flags)
{
	(void)flags;
	KCOST(25);
	update_curr(rq);
	if (p->se.vruntime + sysctl_sched_base_slice < rq->min_vruntime)
		p->se.vruntime = rq->min_vruntime - sysctl_sched_base_slice;  /* sleeper credit */
	list_add_tail(&p->se.run_node, &rq->cfs_tasks);
	p->se.on_rq = 1;
	rq->nr_running++;
}

noinline void dequeue_task_fair(struct rq *rq, struct task_struct *p, int flags)
{
	(void)flags;
	KCOST(25);
	update_curr(rq);
	if (p->se.on_rq && p != rq->curr)
		list_del_init(&p->se.run_node);
	p->se.on_rq = 0;
	rq->nr_running--;
}

static noinline void put_prev_task_fair(struct rq *rq, struct task_struct *prev)
{
	KCOST(15);
	update_curr(rq);
	if (prev != rq->idle && prev->on_rq && prev->__state == TASK_RUNNING)
		list_add_tail(&prev->se.run_node, &rq->cfs_tasks);
}

static noinline void set_next_entity(struct rq *rq, struct task_struct *next)
{
	KCOST(15);
	list_del_init(&next->se.run_node);
	next->se.exec_start = rq->clock;
	next->se.prev_sum_exec_runtime = next->se.sum_exec_runtime;
	if (next->se.vruntime > rq->min_vruntime)
		rq->min_vruntime = next->se.vruntime;
}

noinline struct task_struct *pick_next_task_fair(struct rq *rq, struct task_struct *prev)
{
	struct task_struct *best = NULL;
	struct list_head *pos;

	KCOST(40);
	if (prev != rq->idle)
		put_prev_task_fair(rq, prev);
	for (pos = rq->cfs_tasks.next; pos != &rq->cfs_tasks; pos = pos->next) {
		struct task_struct *p = container_of(pos, struct task_struct, se.run_node);

		if (!best || p->se.vruntime < best->se.vruntime)
			best = p;
	}
	if (best)
		set_next_entity(rq, best);
	return best;
}

noinline void check_preempt_wakeup_fair(struct rq *rq, struct task_struct *p, int wake_flags)
{
	struct task_struct *curr = rq->curr;

	(void)wake_flags;
	KCOST(20);
	update_curr(rq);
	if (p->se.vruntime + sysctl_sched_base_slice / 2 < curr->se.vruntime)
		resched_curr(rq);
}

/* Prefer the previous CPU if it is idle, else the least loaded CPU. */
noinline int select_task_rq_fair(struct task_struct *p, int prev_cpu, int wake_flags)
{
	unsigned int i, best = prev_cpu;

	(void)p;
	(void)wake_flags;
	KCOST(40);
	if (runqueues[prev_cpu].curr == runqueues[prev_cpu].idle &&
	    !runqueues[prev_cpu].nr_running)
		return prev_cpu;
	for (i = 0; i < nr_cpu_ids; i++) {
		if (runqueues[i].nr_running < runqueues[best].nr_running)
			best = i;
	}
	return best;
}

noinline void task_tick_fair(struct rq *rq, struct task_struct *curr)
{
	KCOST(30);
	update_curr(rq);
	if (!list_empty(&rq->cfs_tasks) &&
	    curr->se.sum_exec_runtime - curr->se.prev_sum_exec_runtime >= curr->se.slice)
		resched_curr(rq);
}

noinline void yield_task_fair(struct rq *rq)
{
	KCOST(15);
	update_rq_clock(rq);
	update_curr(rq);
	rq->curr->se.vruntime += sysctl_sched_base_slice / 4;
	WRITE_ONCE(this_cpu()->need_resched, 1);
}
