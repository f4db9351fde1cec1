// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/kernel/apic/apic.c and smp.c for the mini-kernel: the local APIC
 * timer interrupt and the reschedule IPI. The sysvec_* entry points are
 * noinstr in Linux (DEFINE_IDTENTRY_SYSVEC); the handlers below them are
 * traced. The timer deadline is "programmed" by writing pcpu_hot's
 * next_event_ns, which the lab reads like a TSC-deadline MSR.
 */
#include "kernel.h"
#include "trace_events.h"

void irqentry_exit(struct pt_regs *regs);
void sched_ttwu_pending(void);

static noinline void __sysvec_apic_timer_interrupt(struct pt_regs *regs)
{
	(void)regs;
	KCOST(150);   /* APIC EOI, interrupt delivery */
	trace_local_timer_entry(LOCAL_TIMER_VECTOR);
	this_cpu()->nr_irqs++;
	hrtimer_interrupt();
	trace_local_timer_exit(LOCAL_TIMER_VECTOR);
}

noinstr void sysvec_apic_timer_interrupt(struct pt_regs *regs)
{
	irq_enter_rcu();
	__sysvec_apic_timer_interrupt(regs);
	irq_exit_rcu();
	irqentry_exit(regs);
}

noinstr void sysvec_reschedule_ipi(struct pt_regs *regs)
{
	struct pcpu_hot *cpu = this_cpu();

	simulate_work(100);
	trace_reschedule_entry(RESCHEDULE_VECTOR);
	cpu->ipi_pending = 0;
	cpu->nr_irqs++;
	sched_ttwu_pending();
	trace_reschedule_exit(RESCHEDULE_VECTOR);
	irqentry_exit(regs);
}

/* The local APIC's TSC-deadline register. */
noinline int lapic_next_deadline(u64 deadline_ns)
{
	struct pcpu_hot *cpu = this_cpu();

	KCOST(20);
	WRITE_ONCE(cpu->next_event_ns, deadline_ns);
	/* The lab must take the CPU back when the deadline passes. */
	if (deadline_ns < cpu->slice_end_ns)
		WRITE_ONCE(cpu->slice_end_ns, deadline_ns);
	return 0;
}

noinline void native_smp_send_reschedule(int cpu)
{
	struct pcpu_hot *target = per_cpu_hot[cpu];

	KCOST(60);
	WRITE_ONCE(target->ipi_pending, 1);
	/* Let the lab run the target CPU now, so it sees the IPI in time. */
	paravirt_slice_end();
}
