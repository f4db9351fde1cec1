// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/fork.c and kernel/pid.c for the mini-kernel: clone(2) through
 * kernel_clone() -> copy_process() -> wake_up_new_task(), and the lab's way
 * of starting a program (what a shell's fork + execve amounts to).
 *
 * Tasks share one address space (the lab has no paging), so clone() needs a
 * new user stack: the caller passes it, as for a thread. Each task gets a
 * kernel stack and a slot in task_table[].
 */
#include "kernel.h"
#include "trace_events.h"

#define CLONE_VM 0x00000100
#define CLONE_FILES 0x00000400

struct kernel_clone_args {
	u64 flags;
	unsigned long stack;
	unsigned long entry;    /* the lab's spawn: user entry point (0: fork return) */
	unsigned long arg;
	const char *comm;
};

int copy_thread(struct task_struct *p, const struct pt_regs *parent_regs,
		unsigned long usp, unsigned long entry, unsigned long arg);
void sched_fork(struct task_struct *p);

struct task_struct task_table[MAX_TASKS];
static char task_stacks[MAX_TASKS][THREAD_SIZE] __aligned(4096);
static struct mm_struct init_mm = { USER_MMAP_BASE, USER_MMAP_BASE + 0x1000000ul, USER_MMAP_BASE };
static raw_spinlock_t tasklist_lock;
static int last_pid = 100;
__used int nr_user_tasks;   /* live user tasks; the lab waits for 0 */
__used u64 total_forks;

noinline int alloc_pid(void)
{
	KCOST(40);
	return ++last_pid;
}

noinline void free_pid(int pid)
{
	(void)pid;
	KCOST(30);
}

noinline struct task_struct *alloc_task_struct(void)
{
	struct task_struct *p = NULL;
	int i;

	KCOST(120);
	_raw_spin_lock(&tasklist_lock);
	for (i = NR_CPUS; i < MAX_TASKS; i++) {
		if (!task_table[i].used) {
			p = &task_table[i];
			memset(p, 0, sizeof(*p));
			p->used = 1;
			p->stack = task_stacks[i];
			break;
		}
	}
	_raw_spin_unlock(&tasklist_lock);
	return p;
}

noinline void free_task(struct task_struct *tsk)
{
	KCOST(60);
	ftrace_graph_exit_task(tsk);
	tsk->used = 0;
}

noinline void __put_task_struct(struct task_struct *tsk)
{
	trace_sched_process_free(tsk);  /* delayed_put_task_struct() */
	free_pid(tsk->pid);
	free_task(tsk);
}

noinline struct task_struct *copy_process(int pid, int trace, int node, struct kernel_clone_args *args)
{
	struct task_struct *parent = current, *p;
	int i;

	(void)trace;
	(void)node;
	KCOST(400);
	p = alloc_task_struct();
	if (!p)
		return NULL;
	ftrace_graph_init_task(p);
	p->pid = p->tgid = pid;
	if (args->comm) {
		for (i = 0; i < TASK_COMM_LEN - 1 && args->comm[i]; i++)
			p->comm[i] = args->comm[i];
		p->comm[i] = 0;
	} else {
		memcpy(p->comm, parent->comm, TASK_COMM_LEN);
	}
	p->parent = parent->mm ? parent : NULL;
	p->usage = p->parent ? 2 : 1;
	p->mm = &init_mm;
	p->cpu = smp_processor_id();
	init_waitqueue_head(&p->wait_chldexit);
	p->files = (args->flags & CLONE_FILES) && parent->files ? parent->files : alloc_files();
	if (!p->files) {
		free_task(p);
		return NULL;
	}
	sched_fork(p);
	copy_thread(p, args->entry ? NULL : (struct pt_regs *)(parent->stack + THREAD_SIZE) - 1,
		    args->stack, args->entry, args->arg);
	if (p->parent)
		parent->nr_children++;
	__atomic_add_fetch(&nr_user_tasks, 1, __ATOMIC_RELAXED);
	total_forks++;
	return p;
}

noinline long kernel_clone(struct kernel_clone_args *args)
{
	int pid = alloc_pid();
	struct task_struct *p = copy_process(pid, 0, NUMA_NO_NODE, args);

	if (!p)
		return -ENOMEM;
	trace_sched_process_fork(current, p);
	wake_up_new_task(p);
	return pid;
}

/* clone(flags, newsp, parent_tid, child_tid, tls): SYSCALL_DEFINE5 */
long __x64_sys_clone(const struct pt_regs *regs)
{
	struct kernel_clone_args args = {
		.flags = regs->di,
		.stack = regs->si,
	};

	if (!args.stack)
		return -EINVAL;   /* one address space: a child needs its own stack */
	return kernel_clone(&args);
}

/*
 * The lab starts a workload's first task here, on an idle CPU, the way a
 * shell's fork+execve would: a new task whose user context begins at entry.
 * notrace: it is the lab's doing, not a kernel path.
 */
__used notrace long lab_spawn(unsigned long entry, unsigned long arg,
			      unsigned long user_sp, const char *comm)
{
	struct kernel_clone_args args = {
		.flags = 0, .stack = user_sp, .entry = entry, .arg = arg, .comm = comm,
	};

	return kernel_clone(&args);
}
