// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/kernel/process{,_64}.c for the mini-kernel: the C half of the
 * context switch, and setting up a new task's stacks.
 */
#include "kernel.h"

struct inactive_task_frame {
	unsigned long r15, r14, r13, r12, bx, bp;
	unsigned long ret_addr;
};

struct fork_frame {
	struct inactive_task_frame frame;
	struct pt_regs regs;
};

extern char ret_from_fork_asm[];
void schedule_tail(struct task_struct *prev);

/* notrace: runs with prev's state half saved (__switch_to is NOKPROBE too). */
__used notrace struct task_struct *__switch_to(struct task_struct *prev, struct task_struct *next)
{
	struct pcpu_hot *cpu = this_cpu();

	cpu->current_task = next;
	cpu->top_of_stack = (unsigned long)next->stack + THREAD_SIZE;
	simulate_work(40);   /* FPU state, segment and TLS switching */
	return prev;
}

/*
 * The child's kernel stack: pt_regs at the top (a copy of the parent's with
 * ax = 0 and the new user stack), below it a frame __switch_to_asm pops and
 * "returns" from into ret_from_fork_asm.
 */
noinline int copy_thread(struct task_struct *p, const struct pt_regs *parent_regs,
			 unsigned long usp, unsigned long entry, unsigned long arg)
{
	struct fork_frame *ff = (struct fork_frame *)((char *)p->stack + THREAD_SIZE) - 1;

	KCOST(80);
	memset(ff, 0, sizeof(*ff));
	if (parent_regs)
		ff->regs = *parent_regs;
	ff->regs.ax = 0;
	ff->regs.cs = __USER_CS;
	ff->regs.ss = __USER_DS;
	ff->regs.flags = X86_EFLAGS_IF | 0x2;
	if (usp)
		ff->regs.sp = usp;
	if (entry) {             /* a program started by the lab: jump to it */
		ff->regs.ip = entry;
		ff->regs.di = arg;
	}
	ff->frame.ret_addr = (unsigned long)ret_from_fork_asm;
	p->thread.sp = (unsigned long)ff;
	return 0;
}

/* First code a forked task runs in C (kernel/sched/core.c, arch ret_from_fork). */
__used noinline void ret_from_fork(struct task_struct *prev, struct pt_regs *regs)
{
	(void)regs;
	schedule_tail(prev);
}
