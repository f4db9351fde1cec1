// SPDX-License-Identifier: Apache-2.0
/*
 * init/main.c and arch/x86/kernel/smpboot.c for the mini-kernel.
 *
 * The lab's firmware fills per_cpu_hot[] and nr_cpu_ids, gives each CPU a
 * stack and %gs, then starts CPU 0 at start_kernel() and every other CPU at
 * start_secondary(). Each ends in cpu_startup_entry(), the idle loop.
 * (ftrace_init() ran before, from the lab, as it runs early in start_kernel.)
 */
#include "kernel.h"

void sched_init(void);
void init_idle(struct task_struct *idle, int cpu);
void tick_setup_sched_timer(void);
void blk_mq_init(void);
void init_IRQ(void);
void serial8250_init(void);
void __noreturn cpu_startup_entry(int state);

__used int system_state;   /* 0 booting, 1 running */

static __init void __noreturn cpu_init_common(int cpu)
{
	init_idle(&task_table[cpu], cpu);
	local_irq_enable();
	tick_setup_sched_timer();
	cpu_startup_entry(0);
}

__used __init void __noreturn start_kernel(void)
{
	sched_init();
	init_IRQ();
	blk_mq_init();
	serial8250_init();
	system_state = 1;
	cpu_init_common(0);
}

__used __init void __noreturn start_secondary(void)
{
	cpu_init_common(smp_processor_id());
}
