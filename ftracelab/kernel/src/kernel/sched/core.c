// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/sched/core.c for the mini-kernel: runqueues, __schedule() and the
 * context switch, wake-ups (try_to_wake_up), new tasks, the tick's
 * scheduler work, preemption from interrupts and the idle loop.
 *
 * As in Linux 6.12: __schedule() is notrace, context_switch() is inlined,
 * finish_task_switch() shows as finish_task_switch.isra.0, and a wake-up on
 * another CPU sends it a reschedule IPI.
 */
#include "kernel.h"
#include "trace_events.h"
#include "sched.h"

struct rq runqueues[NR_CPUS];
struct pcpu_hot *per_cpu_hot[NR_CPUS];   /* set up by the lab's firmware */
unsigned int nr_cpu_ids;

struct task_struct *__switch_to_asm(struct task_struct *prev, struct task_struct *next);

static __always_inline void rq_lock(struct rq *rq) { _raw_spin_lock(&rq->__lock); }
static __always_inline void rq_unlock(struct rq *rq) { _raw_spin_unlock(&rq->__lock); }

noinline void update_rq_clock(struct rq *rq)
{
	KCOST(10);
	rq->clock = sched_clock();
}

noinline void activate_task(struct rq *rq, struct task_struct *p, int flags)
{
	KCOST(15);
	enqueue_task_fair(rq, p, flags);
	p->on_rq = 1;
}

noinline void deactivate_task(struct rq *rq, struct task_struct *p, int flags)
{
	KCOST(15);
	p->on_rq = 0;
	dequeue_task_fair(rq, p, flags);
}

/* Mark the CPU's current task for rescheduling; kick the CPU if remote. */
noinline void resched_curr(struct rq *rq)
{
	KCOST(10);
	if (per_cpu_hot[rq->cpu]->need_resched)
		return;
	WRITE_ONCE(per_cpu_hot[rq->cpu]->need_resched, 1);
	if (rq->cpu != smp_processor_id())
		native_smp_send_reschedule(rq->cpu);
}

noinline void wakeup_preempt(struct rq *rq, struct task_struct *p, int flags)
{
	KCOST(10);
	if (rq->curr == rq->idle)
		resched_curr(rq);
	else
		check_preempt_wakeup_fair(rq, p, flags);
}

static noinline void ttwu_do_activate(struct rq *rq, struct task_struct *p, int wake_flags)
{
	activate_task(rq, p, 0);
	wakeup_preempt(rq, p, wake_flags);
	WRITE_ONCE(p->__state, TASK_RUNNING);
	trace_sched_wakeup(p);          /* ttwu_do_wakeup() */
}

/* Wake p if its state matches; returns 1 if it was woken. */
noinline int try_to_wake_up(struct task_struct *p, unsigned int state, int wake_flags)
{
	unsigned long flags;
	struct rq *rq;
	int cpu;

	KCOST(40);
	if (!(READ_ONCE(p->__state) & state))
		return 0;
	trace_sched_waking(p);
	if (READ_ONCE(p->on_rq)) {      /* ttwu_runnable(): re-check under its rq lock */
		rq = &runqueues[p->cpu];
		flags = _raw_spin_lock_irqsave(&rq->__lock);
		if (p->on_rq) {         /* still queued: __schedule() will see RUNNING */
			WRITE_ONCE(p->__state, TASK_RUNNING);
			trace_sched_wakeup(p);      /* ttwu_do_wakeup() */
			_raw_spin_unlock_irqrestore(&rq->__lock, flags);
			return 1;
		}
		_raw_spin_unlock_irqrestore(&rq->__lock, flags);
	}
	while (READ_ONCE(p->on_cpu))    /* still switching out on another CPU */
		simulate_work(20);
	cpu = select_task_rq_fair(p, p->cpu, wake_flags);
	p->cpu = cpu;
	rq = &runqueues[cpu];
	flags = _raw_spin_lock_irqsave(&rq->__lock);
	update_rq_clock(rq);
	ttwu_do_activate(rq, p, wake_flags);
	_raw_spin_unlock_irqrestore(&rq->__lock, flags);
	return 1;
}

noinline int wake_up_process(struct task_struct *p)
{
	return try_to_wake_up(p, TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE, 0);
}

/* The IPI handler's work: this CPU only needs to notice need_resched. */
noinline void sched_ttwu_pending(void)
{
	KCOST(20);
}

noinline void sched_fork(struct task_struct *p)
{
	KCOST(50);
	p->__state = TASK_RUNNING;
	p->prio = current->prio;        /* normal_prio of the parent */
	p->on_rq = 0;
	p->on_cpu = 0;
	p->se.sum_exec_runtime = 0;
	p->se.prev_sum_exec_runtime = 0;
	p->se.vruntime = runqueues[smp_processor_id()].min_vruntime;
	p->se.slice = sysctl_sched_base_slice;
	INIT_LIST_HEAD(&p->se.run_node);
}

noinline void wake_up_new_task(struct task_struct *p)
{
	unsigned long flags;
	struct rq *rq;

	p->cpu = select_task_rq_fair(p, p->cpu, WF_FORK);
	rq = &runqueues[p->cpu];
	flags = _raw_spin_lock_irqsave(&rq->__lock);
	update_rq_clock(rq);
	activate_task(rq, p, ENQUEUE_NOCLOCK);
	trace_sched_wakeup_new(p);
	wakeup_preempt(rq, p, WF_FORK);
	_raw_spin_unlock_irqrestore(&rq->__lock, flags);
}

/* finish_task_switch(): gcc turns it into an .isra clone in Linux 6.12. */
static struct rq *finish_task_switch(struct task_struct *prev)
	__asm__("finish_task_switch.isra.0");
static noinline struct rq *finish_task_switch(struct task_struct *prev)
{
	struct rq *rq = &runqueues[smp_processor_id()];

	KCOST(30);
	WRITE_ONCE(prev->on_cpu, 0);
	rq_unlock(rq);
	local_irq_enable();
	if (unlikely(prev->__state == TASK_DEAD))
		put_task_struct(prev);
	return rq;
}

noinline void schedule_tail(struct task_struct *prev)
{
	finish_task_switch(prev);
	preempt_enable_no_resched();
}

/* context_switch() is inlined into __schedule(), as in Linux. */
static __always_inline struct rq *context_switch(struct rq *rq, struct task_struct *prev,
						  struct task_struct *next)
{
	this_cpu()->nr_switches++;
	rq->nr_switches++;
	next->on_cpu = 1;
	prev = __switch_to_asm(prev, next);
	barrier();
	return finish_task_switch(prev);
}

/* notrace in Linux: it switches stacks under the tracer's feet. */
notrace noinline void __schedule(unsigned int sched_mode)
{
	struct pcpu_hot *cpu = this_cpu();
	struct rq *rq = &runqueues[cpu->cpu_number];
	struct task_struct *prev = cpu->current_task, *next;

	local_irq_disable();
	rcu_note_context_switch(sched_mode == SM_PREEMPT);
	rq_lock(rq);
	update_rq_clock(rq);
	if (sched_mode != SM_PREEMPT && prev->__state != TASK_RUNNING && prev->on_rq)
		deactivate_task(rq, prev, DEQUEUE_SLEEP);
	next = pick_next_task_fair(rq, prev);
	if (!next)
		next = rq->idle;
	cpu->need_resched = 0;
	if (likely(prev != next)) {
		if (ftrace_graph_active)              /* the graph tracer's sched_switch probe */
			ftrace_graph_probe_sched_switch(prev, next);
		rq->curr = next;
		trace_sched_switch(sched_mode == SM_PREEMPT, prev, next);
		rq = context_switch(rq, prev, next);
	} else {
		rq_unlock(rq);
		local_irq_enable();
	}
}

noinline void schedule(void)
{
	KCOST(20);
	preempt_disable();
	__schedule(SM_NONE);
	preempt_enable_no_resched();
}

noinline void io_schedule(void)
{
	KCOST(10);
	schedule();
}

noinline void preempt_schedule_irq(void)
{
	do {
		preempt_disable();
		local_irq_enable();
		__schedule(SM_PREEMPT);
		local_irq_disable();
		preempt_enable_no_resched();
	} while (this_cpu()->need_resched);
}

noinline void schedule_idle(void)
{
	__schedule(SM_NONE);
}

/* The tick's scheduler work (sched_tick in 6.12, scheduler_tick before). */
noinline void sched_tick(void)
{
	struct rq *rq = &runqueues[smp_processor_id()];

	KCOST(60);
	rq_lock(rq);
	update_rq_clock(rq);
	if (rq->curr != rq->idle)
		task_tick_fair(rq, rq->curr);
	rq_unlock(rq);
}

/* arch_cpu_idle()/default_idle(): halt with interrupts enabled (noinstr). */
static notrace noinline void default_idle(void)
{
	asm volatile("sti; hlt; cli" ::: "memory");
}

static noinline void do_idle(void)
{
	struct pcpu_hot *cpu = this_cpu();

	KCOST(50);
	while (!READ_ONCE(cpu->need_resched)) {
		local_irq_disable();
		if (READ_ONCE(cpu->need_resched))
			break;
		default_idle();
		local_irq_enable();
	}
	local_irq_enable();
	schedule_idle();
}

noinline void __noreturn cpu_startup_entry(int state)
{
	(void)state;
	preempt_disable();      /* the idle task runs with preemption off (init_idle_preempt_count) */
	for (;;)
		do_idle();
}

noinline int __task_pid_nr_ns(struct task_struct *task, int type)
{
	KCOST(10);
	(void)type;
	return task->tgid;
}

static long __do_sys_getpid(const struct pt_regs *regs)
{
	(void)regs;
	return __task_pid_nr_ns(current, 1);
}
long __x64_sys_getpid(const struct pt_regs *regs) __attribute__((alias("__do_sys_getpid")));

static noinline long do_sched_yield(void)
{
	struct rq *rq = &runqueues[smp_processor_id()];

	local_irq_disable();
	rq_lock(rq);
	yield_task_fair(rq);
	rq_unlock(rq);
	local_irq_enable();
	schedule();
	return 0;
}

static long __do_sys_sched_yield(const struct pt_regs *regs)
{
	(void)regs;
	return do_sched_yield();
}
long __x64_sys_sched_yield(const struct pt_regs *regs)
	__attribute__((alias("__do_sys_sched_yield")));

/* Boot: the runqueues and this CPU's idle task (sched_init, init_idle). */
__init void init_idle(struct task_struct *idle, int cpu)
{
	struct rq *rq = &runqueues[cpu];
	struct pcpu_hot *hot = per_cpu_hot[cpu];

	idle->pid = 0;
	idle->tgid = 0;
	memcpy(idle->comm, "swapper/", 8);
	idle->comm[8] = '0' + cpu;
	idle->comm[9] = 0;
	idle->__state = TASK_RUNNING;
	idle->prio = MAX_RT_PRIO + NICE_WIDTH / 2;
	idle->cpu = cpu;
	idle->on_cpu = 1;
	idle->used = 1;
	idle->stack = (void *)(hot->top_of_stack - THREAD_SIZE);
	rq->idle = idle;
	rq->curr = idle;
	hot->idle = idle;
	hot->rq = rq;
	hot->current_task = idle;
}

__init void sched_init(void)
{
	unsigned int i;

	for (i = 0; i < nr_cpu_ids; i++) {
		struct rq *rq = &runqueues[i];

		rq->cpu = i;
		INIT_LIST_HEAD(&rq->cfs_tasks);
	}
	sched_init_granularity();
}
