// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/softirq.c for the mini-kernel: irq_enter_rcu()/irq_exit_rcu() and
 * softirq processing on the way out of an interrupt (handle_softirqs),
 * with interrupts enabled while the handlers run, as in Linux.
 */
#include "kernel.h"
#include "trace_events.h"

static void (*softirq_vec[NR_SOFTIRQS])(void);

noinline void open_softirq(int nr, void (*action)(void))
{
	KCOST(10);
	softirq_vec[nr] = action;
}

noinline void irq_enter_rcu(void)
{
	KCOST(25);
	this_cpu()->preempt_count += HARDIRQ_OFFSET;
}

/* Not traced in 6.12 (raise_softirq_irqoff is not in available_filter_functions). */
notrace void raise_softirq_irqoff(unsigned int nr)
{
	trace_softirq_raise(nr);
	this_cpu()->softirq_pending |= 1u << nr;
}

noinline void raise_softirq(unsigned int nr)
{
	unsigned long flags = local_irq_save();

	KCOST(15);

	raise_softirq_irqoff(nr);
	local_irq_restore(flags);
}

static noinline void handle_softirqs(bool ksirqd)
{
	struct pcpu_hot *cpu = this_cpu();
	u32 pending;
	int restart = 10;

	(void)ksirqd;
	KCOST(40);
	cpu->preempt_count += SOFTIRQ_OFFSET;
	while ((pending = cpu->softirq_pending) && restart--) {
		unsigned int nr;

		cpu->softirq_pending = 0;
		local_irq_enable();
		for (nr = 0; nr < NR_SOFTIRQS; nr++)
			if ((pending & (1u << nr)) && softirq_vec[nr]) {
				trace_softirq_entry(nr);
				softirq_vec[nr]();
				trace_softirq_exit(nr);
			}
		local_irq_disable();
	}
	cpu->preempt_count -= SOFTIRQ_OFFSET;
}

noinline void __do_softirq(void)
{
	handle_softirqs(false);
}

static notrace void __irq_exit_rcu(void)
{
	struct pcpu_hot *cpu = this_cpu();

	cpu->preempt_count -= HARDIRQ_OFFSET;
	if (!in_interrupt() && cpu->softirq_pending)
		__do_softirq();   /* invoke_softirq(), inlined */
}

noinline void irq_exit_rcu(void)
{
	KCOST(25);
	__irq_exit_rcu();
}

noinline void rcu_note_context_switch(bool preempt)
{
	(void)preempt;
	KCOST(15);
}
