// SPDX-License-Identifier: Apache-2.0
/*
 * The trace events of the mini-kernel: what TRACE_EVENT() generates for each
 * event of include/trace/events/{sched,irq,irq_vectors}.h
 * (trace_event_raw_event_<template>(): reserve, fill the fields, commit), and
 * kernel/trace/trace_syscalls.c's probes of the raw syscall tracepoints
 * (ftrace_syscall_enter/exit() for syscalls:sys_enter_<name>/sys_exit_<name>,
 * and raw_syscalls:sys_enter/sys_exit). Layouts are 6.12's, as their format
 * files show them; the lab writes those files (trace/trace_events.py) and
 * points tp_files[] and the syscall tables at the event files it registers.
 */
#include "trace_events.h"
#include "trace.h"

__used struct trace_event_file *tp_files[NR_LAB_TRACEPOINTS];
__used const char lab_tp_names[] =
	"sched_switch\0sched_waking\0sched_wakeup\0sched_wakeup_new\0"
	"sched_process_fork\0sched_process_exit\0sched_process_free\0sched_process_wait\0"
	"sys_enter\0sys_exit\0softirq_entry\0softirq_exit\0softirq_raise\0"
	"local_timer_entry\0local_timer_exit\0reschedule_entry\0reschedule_exit\0"
	"irq_handler_entry\0irq_handler_exit\0";

__used unsigned char tp_probestubs[NR_LAB_TRACEPOINTS];

/*
 * The tracepoints' stubs (include/linux/tracepoint.h: __probestub_<name>()): empty
 * and traceable in the kernel; here they charge the few nanoseconds a call costs,
 * as every traceable function of the lab does.
 */
#define DEFINE_PROBESTUB(name, proto) noinline void __probestub_##name(void *__data, proto) { KCOST(2); }

DEFINE_PROBESTUB(sched_switch, TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next))
DEFINE_PROBESTUB(sched_waking, TP_PROTO(struct task_struct *p))
DEFINE_PROBESTUB(sched_wakeup, TP_PROTO(struct task_struct *p))
DEFINE_PROBESTUB(sched_wakeup_new, TP_PROTO(struct task_struct *p))
DEFINE_PROBESTUB(sched_process_fork, TP_PROTO(struct task_struct *parent, struct task_struct *child))
DEFINE_PROBESTUB(sched_process_exit, TP_PROTO(struct task_struct *p))
DEFINE_PROBESTUB(sched_process_free, TP_PROTO(struct task_struct *p))
DEFINE_PROBESTUB(sched_process_wait, TP_PROTO(int pid))
DEFINE_PROBESTUB(sys_enter, TP_PROTO(struct pt_regs *regs, long id))
DEFINE_PROBESTUB(sys_exit, TP_PROTO(struct pt_regs *regs, long ret))
DEFINE_PROBESTUB(softirq_entry, TP_PROTO(unsigned int vec))
DEFINE_PROBESTUB(softirq_exit, TP_PROTO(unsigned int vec))
DEFINE_PROBESTUB(softirq_raise, TP_PROTO(unsigned int vec))
DEFINE_PROBESTUB(local_timer_entry, TP_PROTO(int vector))
DEFINE_PROBESTUB(local_timer_exit, TP_PROTO(int vector))
DEFINE_PROBESTUB(reschedule_entry, TP_PROTO(int vector))
DEFINE_PROBESTUB(reschedule_exit, TP_PROTO(int vector))
DEFINE_PROBESTUB(irq_handler_entry, TP_PROTO(int irq, struct irqaction *action))
DEFINE_PROBESTUB(irq_handler_exit, TP_PROTO(int irq, struct irqaction *action, int ret))

#define NR_syscalls 512
#define SYSCALL_MAX_ARGS 6
/* tr->enter_syscall_files[] / exit_syscall_files[]: NULL unless that event is on */
__used struct trace_event_file *enter_syscall_files[NR_syscalls];
__used struct trace_event_file *exit_syscall_files[NR_syscalls];
__used unsigned char syscall_nb_args[NR_syscalls];   /* the syscall metadata's nb_args */
__used int syscall_tracepoints;

/* tracing_gen_ctx_dec(): the tracepoint's own preempt_disable() is not the event's */
static __always_inline unsigned int tracing_gen_ctx_dec(void)
{
	return tracing_gen_ctx() - 1;
}

/*
 * trace_buffered_event: with a filter on the event (EVENT_FILE_FL_FILTERED) the
 * record is built in this CPU's scratch page first; event_commit() asks the
 * filter (the lab evaluates it: lab_python_event_call) and copies the record into
 * the ring buffer only if it matches, as trace_event_buffer_commit() does.
 */
#define BUFFERED_EVENT_SIZE 4096
static char trace_buffered_event[NR_CPUS][BUFFERED_EVENT_SIZE] __aligned(8);
static unsigned int buffered_size[NR_CPUS];
long lab_python_event_call(long kind, struct trace_event_file *file, void *entry, unsigned long size);

/*
 * Event pid filtering (trace.c: trace_ignore_this_task(), trace_filter_add_remove_task();
 * trace_events.c: the sched probes). The pid lists are bitmaps the lab writes; a
 * list is "set" while its flag is, as tr->filtered_pids / filtered_no_pids are
 * non-NULL. event_ignore_pid[] is each CPU's tr->array_buffer.data->ignore_pid.
 */
__used unsigned long event_pids[PID_LIST_MAX / 64];
__used unsigned long event_no_pids[PID_LIST_MAX / 64];
__used unsigned char event_pids_set, event_no_pids_set, event_pid_filtering, event_fork;
__used unsigned char pid_fork_following;    /* event-fork or function-fork with a list set */
__used unsigned char event_ignore_pid[NR_CPUS];

static notrace bool trace_ignore_this_task(struct task_struct *task)
{
	return ignore_this_task(event_pids, event_pids_set, event_no_pids, event_no_pids_set, task->pid);
}

notrace void event_filter_pid_sched_switch_probe_pre(struct task_struct *prev, struct task_struct *next)
{
	event_ignore_pid[smp_processor_id()] = trace_ignore_this_task(prev) && trace_ignore_this_task(next);
}

notrace void event_filter_pid_sched_switch_probe_post(struct task_struct *next)
{
	event_ignore_pid[smp_processor_id()] = trace_ignore_this_task(next);
}

notrace void event_filter_pid_sched_wakeup_probe_pre(struct task_struct *task)
{
	if (event_ignore_pid[smp_processor_id()])
		event_ignore_pid[smp_processor_id()] = trace_ignore_this_task(task);
}

notrace void event_filter_pid_sched_wakeup_probe_post(void)
{
	if (!event_ignore_pid[smp_processor_id()])
		event_ignore_pid[smp_processor_id()] = trace_ignore_this_task(current);
}

/*
 * event_filter_pid_sched_process_fork()/_exit() (options/event-fork) and
 * ftrace_pid_follow_sched_process_fork()/_exit() (options/function-fork): children
 * join the lists their parent is in; a freed task (self NULL) leaves them.
 */
notrace void pid_follow_fork(struct task_struct *self, struct task_struct *task)
{
	int parent = self ? self->pid : -1;

	if (event_fork) {
		if (event_pids_set)
			pid_list_add_remove(event_pids, parent, task->pid);
		if (event_no_pids_set)
			pid_list_add_remove(event_no_pids, parent, task->pid);
	}
	if (function_fork) {
		if (ftrace_pids_set)
			pid_list_add_remove(ftrace_pid_bits, parent, task->pid);
		if (ftrace_no_pids_set)
			pid_list_add_remove(ftrace_no_pid_bits, parent, task->pid);
	}
}

static unsigned int reserved_ctx[NR_CPUS];

/* trace_event_buffer_reserve() */
static notrace void *event_reserve(struct trace_event_file *file, unsigned int size,
				   unsigned int ctx, unsigned long *irqflags)
{
	struct trace_entry *ent;

	if (unlikely(file->flags & EVENT_FILE_FL_PID_FILTER) && event_ignore_pid[smp_processor_id()])
		return NULL;                    /* trace_event_ignore_this_pid() */
	reserved_ctx[smp_processor_id()] = ctx;  /* the options/stacktrace entry's context too */

	*irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS);
	if (unlikely(file->flags & (EVENT_FILE_FL_FILTERED | EVENT_FILE_FL_TRIGGER_MODE)) &&
	    size <= BUFFERED_EVENT_SIZE) {
		ent = (struct trace_entry *)trace_buffered_event[smp_processor_id()];
		buffered_size[smp_processor_id()] = size;
		fill_entry(ent, file->type, ctx);
		return ent;
	}
	ent = ring_buffer_lock_reserve(global_trace_buffer, size, sched_clock());
	if (!ent) {
		local_irq_restore(*irqflags);
		return NULL;
	}
	fill_entry(ent, file->type, ctx);
	return ent;
}

/*
 * trace_event_buffer_commit(). With a filter or triggers on the event the lab
 * judges the record (lab_python_event_call: filter_match_preds() and
 * event_triggers_call(), which may turn tracing on first); what the post
 * triggers leave (traceoff, a stacktrace record) is done after the record.
 */
#define LAB_MAILBOX_POST ((volatile unsigned long *)(0xffff888000f00000ul + 0x30))
#define POST_TRACEOFF 1ul
#define POST_SNAPSHOT 2ul       /* after the record: it lands in the snapshot, as the kernel's does */
void lab_emit_pending(void);
void tracing_snapshot_instance_cond(void);

extern int trace_event_stacktrace;
void event_trace_stack(unsigned int ctx);

/* always inlined into the probe, so that event_trace_stack() knows the frames */
static __always_inline notrace void event_commit(struct trace_event_file *file, unsigned long irqflags)
{
	if (unlikely(file->flags & (EVENT_FILE_FL_FILTERED | EVENT_FILE_FL_TRIGGER_MODE))) {
		int cpu = smp_processor_id();
		unsigned int size = buffered_size[cpu];
		unsigned long post;
		void *ent;

		*LAB_MAILBOX_POST = 0;
		if (lab_python_event_call(1, file, trace_buffered_event[cpu], size)) {
			ent = ring_buffer_lock_reserve(global_trace_buffer, size, sched_clock());
			if (ent) {
				memcpy(ent, trace_buffered_event[cpu], size);      /* ring_buffer_write() */
				trace_record_cmdline();
				ring_buffer_unlock_commit(global_trace_buffer);
				file->nr_written++;
				if (unlikely(trace_event_stacktrace))
					event_trace_stack(reserved_ctx[cpu]);
			}
		}
		post = *LAB_MAILBOX_POST;
		if (post & POST_SNAPSHOT)
			tracing_snapshot_instance_cond();
		lab_emit_pending();                     /* a stacktrace trigger's record */
		if (post & POST_TRACEOFF)
			global_trace_buffer->record_disabled = 1;          /* tracer_tracing_off() */
		local_irq_restore(irqflags);
		return;
	}
	trace_record_cmdline();
	ring_buffer_unlock_commit(global_trace_buffer);
	file->nr_written++;
	if (unlikely(trace_event_stacktrace))
		event_trace_stack(reserved_ctx[smp_processor_id()]);
	local_irq_restore(irqflags);
}

static __always_inline void comm_copy(char *dst, const char *src)
{
	memcpy(dst, src, TASK_COMM_LEN);
}

/* ---- include/trace/events/sched.h ---- */

#define TASK_REPORT_MAX 0x100
#define TASK_REPORT 0x7f

struct trace_event_raw_sched_switch {
	struct trace_entry ent;
	char prev_comm[TASK_COMM_LEN];
	int prev_pid;
	int prev_prio;
	long prev_state;
	char next_comm[TASK_COMM_LEN];
	int next_pid;
	int next_prio;
};

/* __trace_sched_switch_state(): R+ when preempted, else the state's report bit */
static __always_inline long sched_switch_state(bool preempt, struct task_struct *p)
{
	unsigned int state = (p->__state | p->exit_state) & TASK_REPORT;

	if (preempt)
		return TASK_REPORT_MAX;
	state = state ? 32 - __builtin_clz(state) : 0;        /* fls() */
	return state ? 1l << (state - 1) : 0;
}

notrace void trace_event_raw_event_sched_switch(struct trace_event_file *file, bool preempt,
						struct task_struct *prev, struct task_struct *next)
{
	struct trace_event_raw_sched_switch *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	comm_copy(entry->prev_comm, prev->comm);
	entry->prev_pid = prev->pid;
	entry->prev_prio = prev->prio;
	entry->prev_state = sched_switch_state(preempt, prev);
	comm_copy(entry->next_comm, next->comm);
	entry->next_pid = next->pid;
	entry->next_prio = next->prio;
	event_commit(file, irqflags);
}

struct trace_event_raw_sched_wakeup_template {
	struct trace_entry ent;
	char comm[TASK_COMM_LEN];
	int pid;
	int prio;
	int target_cpu;
};

notrace void trace_event_raw_event_sched_wakeup_template(struct trace_event_file *file,
							 struct task_struct *p)
{
	struct trace_event_raw_sched_wakeup_template *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	comm_copy(entry->comm, p->comm);
	entry->pid = p->pid;
	entry->prio = p->prio;
	entry->target_cpu = p->cpu;
	event_commit(file, irqflags);
}

struct trace_event_raw_sched_process_template {
	struct trace_entry ent;
	char comm[TASK_COMM_LEN];
	int pid;
	int prio;
};

notrace void trace_event_raw_event_sched_process_template(struct trace_event_file *file,
							  struct task_struct *p)
{
	struct trace_event_raw_sched_process_template *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	comm_copy(entry->comm, p->comm);
	entry->pid = p->pid;
	entry->prio = p->prio;
	event_commit(file, irqflags);
}

/* sched_process_wait: current's comm and prio, and the pid waited for */
notrace void trace_event_raw_event_sched_process_wait(struct trace_event_file *file, int pid)
{
	struct trace_event_raw_sched_process_template *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	comm_copy(entry->comm, current->comm);
	entry->pid = pid;
	entry->prio = current->prio;
	event_commit(file, irqflags);
}

struct trace_event_raw_sched_process_fork {
	struct trace_entry ent;
	char parent_comm[TASK_COMM_LEN];
	int parent_pid;
	char child_comm[TASK_COMM_LEN];
	int child_pid;
};

notrace void trace_event_raw_event_sched_process_fork(struct trace_event_file *file,
						      struct task_struct *parent, struct task_struct *child)
{
	struct trace_event_raw_sched_process_fork *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	comm_copy(entry->parent_comm, parent->comm);
	entry->parent_pid = parent->pid;
	comm_copy(entry->child_comm, child->comm);
	entry->child_pid = child->pid;
	event_commit(file, irqflags);
}

/* ---- include/trace/events/irq.h and arch/x86/include/asm/trace/irq_vectors.h ---- */

struct trace_event_raw_int_field {
	struct trace_entry ent;
	int value;              /* softirq: unsigned int vec; irq_vectors: int vector */
};

notrace void trace_event_raw_event_softirq(struct trace_event_file *file, unsigned int vec)
{
	struct trace_event_raw_int_field *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	entry->value = (int)vec;
	event_commit(file, irqflags);
}

/* include/trace/events/irq.h: irq_handler_entry (irq, __string name), irq_handler_exit */
struct trace_event_raw_irq_handler_entry {
	struct trace_entry ent;
	int irq;
	u32 __data_loc_name;    /* (length << 16) | offset of the string in the record */
	char __data[];
};

struct trace_event_raw_irq_handler_exit {
	struct trace_entry ent;
	int irq;
	int ret;
};

notrace void trace_event_raw_event_irq_handler_entry(struct trace_event_file *file, int irq,
						     struct irqaction *action)
{
	struct trace_event_raw_irq_handler_entry *entry;
	unsigned long irqflags;
	u32 len = (u32)strlen(action->name) + 1;

	entry = event_reserve(file, sizeof(*entry) + len, tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	entry->irq = irq;
	entry->__data_loc_name = len << 16 | (u32)sizeof(*entry);
	memcpy(entry->__data, action->name, len);
	event_commit(file, irqflags);
}

notrace void trace_event_raw_event_irq_handler_exit(struct trace_event_file *file, int irq,
						    struct irqaction *action, int ret)
{
	struct trace_event_raw_irq_handler_exit *entry;
	unsigned long irqflags;

	(void)action;
	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	entry->irq = irq;
	entry->ret = ret;
	event_commit(file, irqflags);
}

notrace void trace_event_raw_event_vector(struct trace_event_file *file, int vector)
{
	struct trace_event_raw_int_field *entry;
	unsigned long irqflags;

	entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx_dec(), &irqflags);
	if (!entry)
		return;
	entry->value = vector;
	event_commit(file, irqflags);
}

/* ---- kernel/trace/trace_syscalls.c ---- */

struct syscall_trace_enter {
	struct trace_entry ent;
	int nr;
	unsigned long args[];
};

struct syscall_trace_exit {
	struct trace_entry ent;
	int nr;
	long ret;
};

struct trace_event_raw_sys_enter {
	struct trace_entry ent;
	long id;
	unsigned long args[SYSCALL_MAX_ARGS];
};

struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
};

/* syscall_get_arguments(): di, si, dx, r10, r8, r9 */
static __always_inline void syscall_args(struct pt_regs *regs, unsigned long *args)
{
	args[0] = regs->di;
	args[1] = regs->si;
	args[2] = regs->dx;
	args[3] = regs->r10;
	args[4] = regs->r8;
	args[5] = regs->r9;
}

notrace void ftrace_syscall_enter(struct pt_regs *regs, long id)
{
	struct trace_event_file *file;
	unsigned long irqflags, args[SYSCALL_MAX_ARGS];
	int nb;

	preempt_disable();                                    /* __DO_TRACE() */
	syscall_args(regs, args);
	file = tp_file(TP_sys_enter);                         /* raw_syscalls:sys_enter */
	if (file) {
		struct trace_event_raw_sys_enter *raw;

		raw = event_reserve(file, sizeof(*raw), tracing_gen_ctx_dec(), &irqflags);
		if (raw) {
			raw->id = id;
			memcpy(raw->args, args, sizeof(args));
			event_commit(file, irqflags);
		}
	}
	if (id >= 0 && id < NR_syscalls && (file = enter_syscall_files[id]) &&
	    (file->flags & (EVENT_FILE_FL_ENABLED | EVENT_FILE_FL_TRIGGER_MODE))) {
		struct syscall_trace_enter *entry;

		nb = syscall_nb_args[id];
		entry = event_reserve(file, sizeof(*entry) + sizeof(long) * nb, tracing_gen_ctx(), &irqflags);
		if (entry) {
			entry->nr = (int)id;
			memcpy(entry->args, args, sizeof(long) * nb);
			event_commit(file, irqflags);
		}
	}
	preempt_enable_no_resched();
}

notrace void ftrace_syscall_exit(struct pt_regs *regs, long ret)
{
	struct trace_event_file *file;
	unsigned long irqflags;
	long id = (long)regs->orig_ax;

	preempt_disable();
	file = tp_file(TP_sys_exit);                          /* raw_syscalls:sys_exit */
	if (file) {
		struct trace_event_raw_sys_exit *raw;

		raw = event_reserve(file, sizeof(*raw), tracing_gen_ctx_dec(), &irqflags);
		if (raw) {
			raw->id = id;
			raw->ret = ret;
			event_commit(file, irqflags);
		}
	}
	if (id >= 0 && id < NR_syscalls && (file = exit_syscall_files[id]) &&
	    (file->flags & (EVENT_FILE_FL_ENABLED | EVENT_FILE_FL_TRIGGER_MODE))) {
		struct syscall_trace_exit *entry;

		entry = event_reserve(file, sizeof(*entry), tracing_gen_ctx(), &irqflags);
		if (entry) {
			entry->nr = (int)id;
			entry->ret = ret;
			event_commit(file, irqflags);
		}
	}
	preempt_enable_no_resched();
}
