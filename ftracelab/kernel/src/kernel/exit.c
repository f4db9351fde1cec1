// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/exit.c for the mini-kernel: exit_group(2), wait4(2) and the death
 * of a task (do_exit -> do_task_dead; the next task frees it in
 * finish_task_switch).
 */
#include "kernel.h"
#include "trace_events.h"
#include "sched/sched.h"

extern int nr_user_tasks;

noinline void release_task(struct task_struct *p)
{
	KCOST(80);
	p->exit_state = EXIT_DEAD;
	put_task_struct(p);
}

noinline void __noreturn do_task_dead(void)
{
	WRITE_ONCE(current->__state, TASK_DEAD);
	__schedule(SM_NONE);
	for (;;)
		;
}

noinline void __noreturn do_exit(long code)
{
	struct task_struct *tsk = current;

	KCOST(300);
	tsk->exit_code = code;
	trace_sched_process_exit(tsk);
	exit_files(tsk);
	if (tsk->parent) {
		tsk->exit_state = EXIT_ZOMBIE;
		__wake_up(&tsk->parent->wait_chldexit, TASK_INTERRUPTIBLE, 1, NULL);
	} else {
		tsk->exit_state = EXIT_DEAD;
	}
	__atomic_sub_fetch(&nr_user_tasks, 1, __ATOMIC_RELAXED);
	preempt_disable();
	do_task_dead();
}

noinline void __noreturn do_group_exit(int exit_code)
{
	do_exit(exit_code);
}

long __x64_sys_exit_group(const struct pt_regs *regs)
{
	do_group_exit((int)regs->di);
}

long __x64_sys_exit(const struct pt_regs *regs)
{
	do_exit((int)regs->di);
}

/* Find a zombie child of current; reap it. */
static noinline long do_wait(int *status)
{
	struct task_struct *me = current;
	DEFINE_WAIT(wait);
	long ret = -ECHILD;
	int i;

	for (;;) {
		prepare_to_wait_event(&me->wait_chldexit, &wait, TASK_INTERRUPTIBLE);
		if (!me->nr_children)
			break;
		for (i = NR_CPUS; i < MAX_TASKS; i++) {
			struct task_struct *p = &task_table[i];

			if (p->used && p->parent == me && p->exit_state == EXIT_ZOMBIE) {
				ret = p->pid;
				if (status)
					*status = (p->exit_code & 0xff) << 8;
				me->nr_children--;
				p->parent = NULL;
				release_task(p);
				goto out;
			}
		}
		schedule();
	}
out:
	finish_wait(&me->wait_chldexit, &wait);
	return ret;
}

noinline long kernel_wait4(int upid, int *stat_addr, int options, void *ru)
{
	(void)options;
	(void)ru;
	KCOST(40);
	trace_sched_process_wait(upid > 0 ? upid : 0);   /* pid_nr(wo->wo_pid) */
	return do_wait(stat_addr);
}

long __x64_sys_wait4(const struct pt_regs *regs)
{
	return kernel_wait4((int)regs->di, (int *)regs->si, (int)regs->dx, (void *)regs->r10);
}
