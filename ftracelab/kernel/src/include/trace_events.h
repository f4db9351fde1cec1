/* SPDX-License-Identifier: Apache-2.0 */
/*
 * include/linux/trace_events.h and the tracepoints of include/trace/events/
 * for the mini-kernel: each trace_<event>() below is a tracepoint call site.
 * The lab registers an event by pointing tp_files[TP_<event>] at its
 * struct trace_event_file (trace/trace_events.py); the call writes a record
 * when that file's EVENT_FILE_FL_ENABLED bit is set. This is what a kernel
 * built without jump labels does: a load and a test at every call site.
 */
#ifndef FTRACELAB_TRACE_EVENTS_H
#define FTRACELAB_TRACE_EVENTS_H

#include "kernel.h"

/* enum { EVENT_FILE_FL_*_BIT } of 6.12 */
#define EVENT_FILE_FL_ENABLED (1ul << 0)
#define EVENT_FILE_FL_RECORDED_CMD (1ul << 1)
#define EVENT_FILE_FL_RECORDED_TGID (1ul << 2)
#define EVENT_FILE_FL_FILTERED (1ul << 3)
#define EVENT_FILE_FL_NO_SET_FILTER (1ul << 4)
#define EVENT_FILE_FL_SOFT_MODE (1ul << 5)
#define EVENT_FILE_FL_SOFT_DISABLED (1ul << 6)
#define EVENT_FILE_FL_TRIGGER_MODE (1ul << 7)
#define EVENT_FILE_FL_TRIGGER_COND (1ul << 8)
#define EVENT_FILE_FL_PID_FILTER (1ul << 9)

struct trace_event_file {
	unsigned long flags;            /* 0x00: EVENT_FILE_FL_* */
	unsigned short type;            /* 0x08: the event's ID (common_type) */
	unsigned short pad[3];
	unsigned long nr_written;       /* 0x10: records this file wrote */
};

/* The tracepoints the lab can attach an event to (lab_tp_names, in this order). */
enum lab_tracepoint {
	TP_sched_switch, TP_sched_waking, TP_sched_wakeup, TP_sched_wakeup_new,
	TP_sched_process_fork, TP_sched_process_exit, TP_sched_process_free, TP_sched_process_wait,
	TP_sys_enter, TP_sys_exit,
	TP_softirq_entry, TP_softirq_exit, TP_softirq_raise,
	TP_local_timer_entry, TP_local_timer_exit, TP_reschedule_entry, TP_reschedule_exit,
	TP_irq_handler_entry, TP_irq_handler_exit,
	NR_LAB_TRACEPOINTS
};

extern struct trace_event_file *tp_files[NR_LAB_TRACEPOINTS];

/* An event's tracepoint runs when its file is enabled, or in soft mode for its triggers. */
static __always_inline struct trace_event_file *tp_file(int tp)
{
	struct trace_event_file *file = tp_files[tp];

	return (file && (file->flags & (EVENT_FILE_FL_ENABLED | EVENT_FILE_FL_TRIGGER_MODE))) ? file : NULL;
}

#define LOCAL_TIMER_VECTOR 0xec
#define RESCHEDULE_VECTOR 0xfd

void trace_event_raw_event_sched_switch(struct trace_event_file *file, bool preempt,
					struct task_struct *prev, struct task_struct *next);
void trace_event_raw_event_sched_wakeup_template(struct trace_event_file *file, struct task_struct *p);
void trace_event_raw_event_sched_process_template(struct trace_event_file *file, struct task_struct *p);
void trace_event_raw_event_sched_process_wait(struct trace_event_file *file, int pid);
void trace_event_raw_event_sched_process_fork(struct trace_event_file *file, struct task_struct *parent,
					      struct task_struct *child);
void trace_event_raw_event_vector(struct trace_event_file *file, int vector);
void trace_event_raw_event_softirq(struct trace_event_file *file, unsigned int vec);
void trace_event_raw_event_irq_handler_entry(struct trace_event_file *file, int irq, struct irqaction *action);
void trace_event_raw_event_irq_handler_exit(struct trace_event_file *file, int irq, struct irqaction *action,
					   int ret);
void ftrace_syscall_enter(struct pt_regs *regs, long id);
void ftrace_syscall_exit(struct pt_regs *regs, long ret);

#define TP_PROTO(...) __VA_ARGS__
#define TP_ARGS(...) __VA_ARGS__

/*
 * tp_probestubs[TP_<event>]: tracepoint probe events (t in dynamic_events) on it.
 * Each puts __probestub_<event>() on the tracepoint, an empty traceable function
 * taking (void *__data, args...), and an fprobe on that stub (trace_fprobe.c's
 * __regsiter_tracepoint_fprobe()); it runs after the event's own probe, as its
 * priority 0 orders it behind the event's 10.
 */
extern unsigned char tp_probestubs[NR_LAB_TRACEPOINTS];

/*
 * set_event_pid / set_event_notrace_pid (trace_events.c): while either list is set
 * (event_pid_filtering), probes around the scheduler's tracepoints keep each CPU's
 * event_ignore_pid[] as event_filter_pid_sched_{switch,wakeup}_probe_pre/post()
 * do (priority INT_MAX before the event's probe, INT_MIN after it); with
 * options/event-fork or function-fork (pid_fork_following) the fork and free
 * tracepoints add and drop children.
 */
extern unsigned char event_pid_filtering;
void event_filter_pid_sched_switch_probe_pre(struct task_struct *prev, struct task_struct *next);
void event_filter_pid_sched_switch_probe_post(struct task_struct *next);
void event_filter_pid_sched_wakeup_probe_pre(struct task_struct *task);
void event_filter_pid_sched_wakeup_probe_post(void);
extern unsigned char pid_fork_following;
void pid_follow_fork(struct task_struct *self, struct task_struct *task);

#define DEFINE_TP_HOOKED(name, proto, args, gate, pre, call, post)		\
void __probestub_##name(void *__data, proto);					\
static __always_inline void trace_##name(proto)				\
{										\
	struct trace_event_file *file = tp_file(TP_##name);			\
										\
	if (unlikely(file || tp_probestubs[TP_##name] || gate)) {		\
		preempt_disable();	/* __DO_TRACE(): probes run with preemption off */ \
		if (gate)							\
			pre;							\
		if (file)							\
			call;							\
		if (tp_probestubs[TP_##name])					\
			__probestub_##name(NULL, args);				\
		if (gate)							\
			post;							\
		preempt_enable_no_resched();					\
	}									\
}

#define DEFINE_TP(name, proto, args, call)					\
void __probestub_##name(void *__data, proto);					\
static __always_inline void trace_##name(proto)				\
{										\
	struct trace_event_file *file = tp_file(TP_##name);			\
										\
	if (unlikely(file || tp_probestubs[TP_##name])) {			\
		preempt_disable();	/* __DO_TRACE(): probes run with preemption off */ \
		if (file)							\
			call;							\
		if (tp_probestubs[TP_##name])					\
			__probestub_##name(NULL, args);				\
		preempt_enable_no_resched();					\
	}									\
}

DEFINE_TP_HOOKED(sched_switch, TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next),
		 TP_ARGS(preempt, prev, next), event_pid_filtering, event_filter_pid_sched_switch_probe_pre(prev, next),
		 trace_event_raw_event_sched_switch(file, preempt, prev, next),
		 event_filter_pid_sched_switch_probe_post(next))
DEFINE_TP_HOOKED(sched_waking, TP_PROTO(struct task_struct *p), TP_ARGS(p), event_pid_filtering,
		 event_filter_pid_sched_wakeup_probe_pre(p), trace_event_raw_event_sched_wakeup_template(file, p),
		 event_filter_pid_sched_wakeup_probe_post())
DEFINE_TP_HOOKED(sched_wakeup, TP_PROTO(struct task_struct *p), TP_ARGS(p), event_pid_filtering,
		 event_filter_pid_sched_wakeup_probe_pre(p), trace_event_raw_event_sched_wakeup_template(file, p),
		 event_filter_pid_sched_wakeup_probe_post())
DEFINE_TP_HOOKED(sched_wakeup_new, TP_PROTO(struct task_struct *p), TP_ARGS(p), event_pid_filtering,
		 event_filter_pid_sched_wakeup_probe_pre(p), trace_event_raw_event_sched_wakeup_template(file, p),
		 event_filter_pid_sched_wakeup_probe_post())
DEFINE_TP_HOOKED(sched_process_fork, TP_PROTO(struct task_struct *parent, struct task_struct *child),
		 TP_ARGS(parent, child), pid_fork_following, (void)0,
		 trace_event_raw_event_sched_process_fork(file, parent, child), pid_follow_fork(parent, child))
DEFINE_TP(sched_process_exit, TP_PROTO(struct task_struct *p), TP_ARGS(p),
	  trace_event_raw_event_sched_process_template(file, p))
DEFINE_TP_HOOKED(sched_process_free, TP_PROTO(struct task_struct *p), TP_ARGS(p), pid_fork_following, (void)0,
		 trace_event_raw_event_sched_process_template(file, p), pid_follow_fork(NULL, p))
DEFINE_TP(sched_process_wait, TP_PROTO(int pid), TP_ARGS(pid), trace_event_raw_event_sched_process_wait(file, pid))
DEFINE_TP(softirq_entry, TP_PROTO(unsigned int vec), TP_ARGS(vec), trace_event_raw_event_softirq(file, vec))
DEFINE_TP(softirq_exit, TP_PROTO(unsigned int vec), TP_ARGS(vec), trace_event_raw_event_softirq(file, vec))
DEFINE_TP(softirq_raise, TP_PROTO(unsigned int vec), TP_ARGS(vec), trace_event_raw_event_softirq(file, vec))
DEFINE_TP(irq_handler_entry, TP_PROTO(int irq, struct irqaction *action), TP_ARGS(irq, action),
	  trace_event_raw_event_irq_handler_entry(file, irq, action))
DEFINE_TP(irq_handler_exit, TP_PROTO(int irq, struct irqaction *action, int ret), TP_ARGS(irq, action, ret),
	  trace_event_raw_event_irq_handler_exit(file, irq, action, ret))
DEFINE_TP(local_timer_entry, TP_PROTO(int vector), TP_ARGS(vector), trace_event_raw_event_vector(file, vector))
DEFINE_TP(local_timer_exit, TP_PROTO(int vector), TP_ARGS(vector), trace_event_raw_event_vector(file, vector))
DEFINE_TP(reschedule_entry, TP_PROTO(int vector), TP_ARGS(vector), trace_event_raw_event_vector(file, vector))
DEFINE_TP(reschedule_exit, TP_PROTO(int vector), TP_ARGS(vector), trace_event_raw_event_vector(file, vector))

/*
 * The raw syscall tracepoints: their probes (ftrace_syscall_enter/exit) write the
 * syscalls:sys_enter_<name>/sys_exit_<name> events, and raw_syscalls:sys_enter/
 * sys_exit write their own. syscall_tracepoints says whether any is on (the
 * SYSCALL_WORK_SYSCALL_TRACEPOINT work bit of every task).
 */
extern int syscall_tracepoints;

void __probestub_sys_enter(void *__data, struct pt_regs *regs, long id);
void __probestub_sys_exit(void *__data, struct pt_regs *regs, long ret);

static __always_inline void trace_sys_enter(struct pt_regs *regs, long id)
{
	if (unlikely(syscall_tracepoints))
		ftrace_syscall_enter(regs, id);
	if (unlikely(tp_probestubs[TP_sys_enter])) {
		preempt_disable();      /* __DO_TRACE(), as for the other tracepoints */
		__probestub_sys_enter(NULL, regs, id);
		preempt_enable_no_resched();
	}
}

static __always_inline void trace_sys_exit(struct pt_regs *regs, long ret)
{
	if (unlikely(syscall_tracepoints))
		ftrace_syscall_exit(regs, ret);
	if (unlikely(tp_probestubs[TP_sys_exit])) {
		preempt_disable();      /* __DO_TRACE(), as for the other tracepoints */
		__probestub_sys_exit(NULL, regs, ret);
		preempt_enable_no_resched();
	}
}

#endif
