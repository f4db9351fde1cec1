/* SPDX-License-Identifier: Apache-2.0 */
/* kernel/sched/sched.h for the mini-kernel: what core.c and fair.c share. */
#ifndef FTRACELAB_SCHED_H
#define FTRACELAB_SCHED_H

#include "kernel.h"

#define WF_FORK 0x04
#define ENQUEUE_NOCLOCK 0x08
#define DEQUEUE_SLEEP 0x01

extern struct rq runqueues[NR_CPUS];
extern u64 sysctl_sched_base_slice;

void enqueue_task_fair(struct rq *rq, struct task_struct *p, int flags);
void dequeue_task_fair(struct rq *rq, struct task_struct *p, int flags);
struct task_struct *pick_next_task_fair(struct rq *rq, struct task_struct *prev);
void check_preempt_wakeup_fair(struct rq *rq, struct task_struct *p, int wake_flags);
int select_task_rq_fair(struct task_struct *p, int prev_cpu, int wake_flags);
void task_tick_fair(struct rq *rq, struct task_struct *curr);
void yield_task_fair(struct rq *rq);
void sched_init_granularity(void);
void rcu_note_context_switch(bool preempt);
void update_rq_clock(struct rq *rq);
void activate_task(struct rq *rq, struct task_struct *p, int flags);

#endif
