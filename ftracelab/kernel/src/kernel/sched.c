// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/sched/core.c and kernel/exit.c for the mini-kernel, one CPU and one
 * task for now: schedule() (traced) around the notrace __schedule(), the
 * idle loop, exit, getpid and sched_yield.
 */
#include "kernel.h"

struct task_struct init_task = {
	.pid = 1,
	.tgid = 1,
	.comm = "init",
};

#define SM_NONE 0

/*
 * notrace in Linux (it switches stacks under the tracer's feet). With a
 * single runnable task there is nothing to switch to, which is also what
 * Linux does when the runqueue holds only current.
 */
notrace noinline void __schedule(unsigned int sched_mode)
{
	(void)sched_mode;
	simulate_work(150);
}

noinline void schedule(void)
{
	__schedule(SM_NONE);
}

/* arch_cpu_idle(): halt until an interrupt; the lab stops the CPU here. */
static notrace void default_idle(void)
{
	asm volatile("hlt" ::: "memory");
}

notrace void __noreturn do_idle(void)
{
	for (;;)
		default_idle();
}

noinline void __noreturn do_exit(long code)
{
	struct task_struct *tsk = current;

	(void)code;
	tsk->state = 0x10; /* EXIT_DEAD */
	__schedule(SM_NONE);
	do_idle();
}

noinline int __task_pid_nr_ns(struct task_struct *task, int type)
{
	(void)type;
	return task->tgid;
}

/*
 * SYSCALL_DEFINE0(): the body is __do_sys_NAME and __x64_sys_NAME is an alias
 * at the same address, so traces name the function __do_sys_getpid.
 */
static long __do_sys_getpid(const struct pt_regs *regs)
{
	(void)regs;
	return __task_pid_nr_ns(current, 1);
}
long __x64_sys_getpid(const struct pt_regs *regs) __attribute__((alias("__do_sys_getpid")));

noinline long do_sched_yield(void)
{
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

long __x64_sys_exit_group(const struct pt_regs *regs)
{
	do_exit(regs->di);
}

noinline u64 ktime_get(void)
{
	return sched_clock();
}
