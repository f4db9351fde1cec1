// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/time/hrtimer.c, tick-sched.c, clockevents.c, timer.c and
 * kernel/time/hrtimer.c's nanosleep for the mini-kernel.
 *
 * Each CPU keeps its armed hrtimers in expiry order. The earliest one
 * programs the local APIC deadline (lapic_next_deadline); when the CPU's
 * clock passes it the lab raises the timer interrupt, and
 * hrtimer_interrupt() runs the expired timers. The periodic tick is an
 * hrtimer too (tick_nohz_handler, every TICK_NSEC).
 */
#include "kernel.h"

#define HRTIMER_MODE_ABS 0
#define HRTIMER_MODE_REL 1

int lapic_next_deadline(u64 deadline_ns);

static struct hrtimer_cpu_base hrtimer_bases[NR_CPUS];
static struct hrtimer tick_timers[NR_CPUS];

noinline u64 ktime_get(void)
{
	KCOST(15);
	return sched_clock();
}

noinline int clockevents_program_event(u64 expires, bool force)
{
	(void)force;
	KCOST(15);
	return lapic_next_deadline(expires);
}

noinline int tick_program_event(u64 expires, int force)
{
	return clockevents_program_event(expires, force);
}

static noinline void hrtimer_reprogram(struct hrtimer_cpu_base *base)
{
	struct hrtimer *first;
	u64 next = ~0ull;

	if (!list_empty(&base->active)) {
		first = container_of(base->active.next, struct hrtimer, node);
		next = first->expires;
	}
	if (next != base->expires_next) {
		base->expires_next = next;
		tick_program_event(next, 0);
	}
}

static noinline void enqueue_hrtimer(struct hrtimer_cpu_base *base, struct hrtimer *timer)
{
	struct list_head *pos = base->active.next;

	KCOST(25);
	while (pos != &base->active &&
	       container_of(pos, struct hrtimer, node)->expires <= timer->expires)
		pos = pos->next;
	list_add_tail(&timer->node, pos);   /* insert before pos */
	timer->queued = 1;
}

static noinline void __remove_hrtimer(struct hrtimer *timer)
{
	KCOST(15);
	list_del_init(&timer->node);
	timer->queued = 0;
}

noinline void hrtimer_init(struct hrtimer *timer, int (*fn)(struct hrtimer *))
{
	KCOST(15);
	timer->function = fn;
	timer->queued = 0;
	INIT_LIST_HEAD(&timer->node);
}

noinline void hrtimer_start_range_ns(struct hrtimer *timer, u64 tim, u64 delta_ns, int mode)
{
	struct hrtimer_cpu_base *base = &hrtimer_bases[smp_processor_id()];
	unsigned long flags;

	(void)delta_ns;
	flags = _raw_spin_lock_irqsave(&base->lock);
	if (timer->queued)
		__remove_hrtimer(timer);
	timer->expires = mode == HRTIMER_MODE_REL ? sched_clock() + tim : tim;
	timer->cpu = smp_processor_id();
	enqueue_hrtimer(base, timer);
	hrtimer_reprogram(base);
	_raw_spin_unlock_irqrestore(&base->lock, flags);
}

noinline int hrtimer_try_to_cancel(struct hrtimer *timer)
{
	struct hrtimer_cpu_base *base = &hrtimer_bases[timer->cpu];
	unsigned long flags;
	int ret = 0;

	flags = _raw_spin_lock_irqsave(&base->lock);
	if (timer->queued) {
		__remove_hrtimer(timer);
		ret = 1;
	}
	_raw_spin_unlock_irqrestore(&base->lock, flags);
	return ret;
}

static noinline void __hrtimer_run_queues(struct hrtimer_cpu_base *base, u64 now)
{
	while (!list_empty(&base->active)) {
		struct hrtimer *timer = container_of(base->active.next, struct hrtimer, node);

		if (timer->expires > now)
			break;
		__remove_hrtimer(timer);
		_raw_spin_unlock(&base->lock);
		if (timer->function(timer) == HRTIMER_RESTART) {
			_raw_spin_lock(&base->lock);
			enqueue_hrtimer(base, timer);
		} else {
			_raw_spin_lock(&base->lock);
		}
	}
}

noinline void hrtimer_interrupt(void)
{
	struct hrtimer_cpu_base *base = &hrtimer_bases[smp_processor_id()];

	KCOST(40);
	_raw_spin_lock(&base->lock);
	base->expires_next = ~0ull;
	__hrtimer_run_queues(base, ktime_get());
	hrtimer_reprogram(base);
	_raw_spin_unlock(&base->lock);
}

/* The timer wheel's softirq: nothing is on the wheel in the lab yet. */
static noinline void run_timer_softirq(void)
{
	KCOST(80);
}

noinline void account_process_tick(struct task_struct *p, int user_tick)
{
	(void)p;
	(void)user_tick;
	KCOST(30);
}

noinline void update_process_times(int user_tick)
{
	struct task_struct *p = current;

	KCOST(40);
	account_process_tick(p, user_tick);
	raise_softirq(TIMER_SOFTIRQ);
	sched_tick();
}

/* The periodic tick, an hrtimer since NO_HZ (tick_nohz_handler in 6.12). */
static noinline int tick_nohz_handler(struct hrtimer *timer)
{
	KCOST(30);
	update_process_times(0);
	timer->expires += TICK_NSEC;
	return HRTIMER_RESTART;
}

/* tick_setup_sched_timer(): start this CPU's tick. */
noinline void tick_setup_sched_timer(void)
{
	int cpu = smp_processor_id();
	struct hrtimer_cpu_base *base = &hrtimer_bases[cpu];

	INIT_LIST_HEAD(&base->active);
	base->expires_next = ~0ull;
	hrtimer_init(&tick_timers[cpu], tick_nohz_handler);
	/* Stagger the CPUs' ticks, as jiffies-based tick offsets do. */
	hrtimer_start_range_ns(&tick_timers[cpu], (TICK_NSEC / 4) * (1 + cpu % 4), 0,
			       HRTIMER_MODE_ABS);
	open_softirq(TIMER_SOFTIRQ, run_timer_softirq);
}

/* nanosleep(2): an hrtimer_sleeper wakes the task. */
struct hrtimer_sleeper {
	struct hrtimer timer;
	struct task_struct *task;
};

static noinline int hrtimer_wakeup(struct hrtimer *timer)
{
	struct hrtimer_sleeper *t = container_of(timer, struct hrtimer_sleeper, timer);
	struct task_struct *task = t->task;

	t->task = NULL;
	if (task)
		wake_up_process(task);
	return HRTIMER_NORESTART;
}

static noinline int do_nanosleep(struct hrtimer_sleeper *t, int mode)
{
	(void)mode;
	do {
		WRITE_ONCE(current->__state, TASK_INTERRUPTIBLE);
		hrtimer_start_range_ns(&t->timer, t->timer.expires, 0, HRTIMER_MODE_ABS);
		if (t->task)
			schedule();
		hrtimer_try_to_cancel(&t->timer);
	} while (t->task);
	WRITE_ONCE(current->__state, TASK_RUNNING);
	return 0;
}

noinline long hrtimer_nanosleep(u64 rqtp_ns, int mode, int clockid)
{
	struct hrtimer_sleeper t;

	(void)clockid;
	KCOST(40);
	hrtimer_init(&t.timer, hrtimer_wakeup);
	t.timer.expires = sched_clock() + rqtp_ns;
	t.task = current;
	return do_nanosleep(&t, mode);
}

struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; };

long __x64_sys_nanosleep(const struct pt_regs *regs)
{
	struct __kernel_timespec ts;

	if (_copy_from_user(&ts, (void *)regs->di, sizeof(ts)))
		return -EFAULT;
	if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
		return -EINVAL;
	return hrtimer_nanosleep((u64)ts.tv_sec * 1000000000ull + ts.tv_nsec, HRTIMER_MODE_REL, 1);
}
