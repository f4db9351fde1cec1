// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/kernel/apic/apic.c and kernel/time for the mini-kernel: the local
 * APIC timer interrupt. sysvec_apic_timer_interrupt() is noinstr in Linux
 * (DEFINE_IDTENTRY_SYSVEC), the handler below it is traced.
 */
#include "kernel.h"

__used u64 jiffies_64;

noinline void sched_tick(void)
{
	simulate_work(200);
}

noinline void update_process_times(int user_tick)
{
	(void)user_tick;
	jiffies_64++;
	sched_tick();
}

noinline void hrtimer_interrupt(void)
{
	update_process_times(0);
}

static noinline void __sysvec_apic_timer_interrupt(struct pt_regs *regs)
{
	(void)regs;
	hrtimer_interrupt();
}

noinstr void sysvec_apic_timer_interrupt(struct pt_regs *regs)
{
	this_cpu()->preempt_count += 0x10000; /* HARDIRQ_OFFSET */
	__sysvec_apic_timer_interrupt(regs);
	this_cpu()->preempt_count -= 0x10000;
}
