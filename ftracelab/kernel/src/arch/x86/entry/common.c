// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/entry/common.c and kernel/entry/common.c for the mini-kernel:
 * do_syscall_64(), the exit-to-user work loop and irqentry_enter/exit().
 * All noinstr in Linux 6.12, so none of them is in available_filter_functions.
 */
#include "kernel.h"
#include "trace_events.h"

long x64_sys_call(const struct pt_regs *regs, unsigned int nr);

#define NR_syscalls 512

_Static_assert(__builtin_offsetof(struct task_struct, thread) == 0x60, "entry_64.S TASK_THREAD_SP");
_Static_assert(__builtin_offsetof(struct pcpu_hot, scratch) == 0x58, "entry_64.S PCPU_SCRATCH0");

static __always_inline bool user_mode(const struct pt_regs *regs)
{
	return regs->cs == __USER_CS;
}

/* exit_to_user_mode_loop(): reschedule before returning to user space. */
static noinstr void exit_to_user_mode_loop(void)
{
	for (;;) {
		local_irq_disable();
		if (!this_cpu()->need_resched)
			break;
		local_irq_enable();
		schedule();
	}
}

__used noinstr void do_syscall_64(struct pt_regs *regs, int nr)
{
	struct pcpu_hot *cpu = this_cpu();

	cpu->nr_syscalls++;
	local_irq_enable();   /* syscall_enter_from_user_mode() */
	simulate_work(60);    /* entry, exit and the mitigations around them */
	trace_sys_enter(regs, nr);          /* syscall_enter_from_user_mode() */
	if (likely((unsigned int)nr < NR_syscalls))
		regs->ax = x64_sys_call(regs, nr);
	trace_sys_exit(regs, regs->ax);     /* syscall_exit_to_user_mode() */
	exit_to_user_mode_loop();
}

/* irqentry_enter()/irqentry_exit(): the bracket around every interrupt. */
noinstr void irqentry_exit(struct pt_regs *regs)
{
	struct pcpu_hot *cpu = this_cpu();

	if (user_mode(regs)) {
		exit_to_user_mode_loop();
	} else if (!cpu->preempt_count && cpu->need_resched &&
		   (regs->flags & X86_EFLAGS_IF)) {
		preempt_schedule_irq();
	}
}
