/* SPDX-License-Identifier: Apache-2.0 */
/*
 * include/linux/ftrace.h for the mini-kernel: struct ftrace_ops and the
 * filter hashes, in the layout the lab's Python side reads and writes
 * (trace/ftrace_ops.py). Change both together.
 */
#ifndef FTRACELAB_FTRACE_H
#define FTRACELAB_FTRACE_H

#include "kernel.h"

struct ftrace_ops;
struct ftrace_regs;   /* pt_regs-shaped frame built by the trampolines */
#define FREGS_SP_SLOT 19      /* PTREGS_SP / 8 (ftrace_64.S): the parent return slot */
typedef void (*ftrace_func_t)(unsigned long ip, unsigned long parent_ip,
			      struct ftrace_ops *op, struct ftrace_regs *fregs);

/* kernel/trace/ftrace.c: an entry of a filter/notrace hash. */
struct hlist_node { struct hlist_node *next, **pprev; };
struct ftrace_func_entry {
	struct hlist_node hlist;   /* 0x00 */
	unsigned long ip;          /* 0x10 */
	unsigned long direct;      /* 0x18 */
};

struct ftrace_hash {
	unsigned long size_bits;            /* 0x00 */
	struct hlist_node **buckets;        /* 0x08: hlist_head[1 << size_bits] */
	unsigned long count;                /* 0x10 */
	unsigned long flags;                /* 0x18 */
};

struct ftrace_ops_hash {
	struct ftrace_hash *notrace_hash;   /* 0x00 */
	struct ftrace_hash *filter_hash;    /* 0x08 */
};

struct ftrace_ops {
	ftrace_func_t func;                 /* 0x00 */
	struct ftrace_ops *next;            /* 0x08 */
	unsigned long flags;                /* 0x10 */
	void *private;                      /* 0x18 */
	ftrace_func_t saved_func;           /* 0x20 */
	struct ftrace_ops_hash local_hash;  /* 0x28 */
	struct ftrace_ops_hash *func_hash;  /* 0x38 */
	unsigned long trampoline;           /* 0x40 */
	unsigned long trampoline_size;      /* 0x48 */
	unsigned long nr_calls;             /* 0x50: lab_count_func's counter */
};

#define FTRACE_OPS_FL_ENABLED (1ul << 0)
#define FTRACE_OPS_FL_DYNAMIC (1ul << 1)
#define FTRACE_OPS_FL_SAVE_REGS (1ul << 2)
#define FTRACE_OPS_FL_RECURSION (1ul << 4)
#define FTRACE_OPS_FL_STUB (1ul << 5)
#define FTRACE_OPS_FL_IPMODIFY (1ul << 12)
#define FTRACE_OPS_FL_PID (1ul << 13)
#define FTRACE_OPS_FL_RCU (1ul << 14)

/* include/linux/trace_recursion.h: bits in current->trace_recursion. */
#define TRACE_FTRACE_START 0
#define TRACE_LIST_START 5
#define TRACE_CTX_NMI 0
#define TRACE_CTX_IRQ 1
#define TRACE_CTX_SOFTIRQ 2
#define TRACE_CTX_NORMAL 3
#define TRACE_CTX_TRANSITION 4

int ftrace_ops_test(struct ftrace_ops *ops, unsigned long ip, void *regs);   /* ftrace.c */

/* kernel/trace/trace_recursion_record.c: how often recursion was stopped. */
extern u64 ftrace_recursion_count;
extern unsigned long ftrace_recursion_last_ip;

static __always_inline int trace_get_context_bit(void)
{
	int pc = this_cpu()->preempt_count;

	if (pc & (0xf * HARDIRQ_OFFSET))
		return TRACE_CTX_IRQ;
	if (pc & (0xff * SOFTIRQ_OFFSET))
		return TRACE_CTX_SOFTIRQ;
	return TRACE_CTX_NORMAL;
}

/*
 * trace_test_and_set_recursion(): the bit taken, or -1 if this context is in
 * already. Inline, as in the kernel: it is on every traced call's path.
 */
static __always_inline int trace_test_and_set_recursion(unsigned long ip, int start)
{
	unsigned long *val = &current->trace_recursion;
	int bit = trace_get_context_bit() + start;

	if (unlikely(*val & (1ul << bit))) {
		/* One extra level for a context change preempt_count has not shown yet. */
		bit = TRACE_CTX_TRANSITION + start;
		if (*val & (1ul << bit)) {
			ftrace_recursion_count++;
			ftrace_recursion_last_ip = ip;
			return -1;
		}
	}
	*val |= 1ul << bit;
	return bit;
}

static __always_inline void trace_clear_recursion(int bit)
{
	current->trace_recursion &= ~(1ul << bit);
}

/*
 * Pid lists (trace.c: struct trace_pid_list, trace_ignore_this_task(),
 * trace_filter_add_remove_task()): a bitmap of PID_LIST_MAX pids the lab writes,
 * "set" while its flag is (the kernel's list pointer is non-NULL).
 */
#define PID_LIST_MAX 32768

static __always_inline bool pid_listed(const unsigned long *bits, int pid)
{
	return pid >= 0 && pid < PID_LIST_MAX && (bits[pid / 64] >> (pid % 64)) & 1;
}

static __always_inline bool ignore_this_task(const unsigned long *pids, bool pids_set,
					     const unsigned long *no_pids, bool no_pids_set, int pid)
{
	return (pids_set && !pid_listed(pids, pid)) || (no_pids_set && pid_listed(no_pids, pid));
}

/* A child of a listed task joins the list; a task freed (self NULL) leaves it. */
static __always_inline void pid_list_add_remove(unsigned long *bits, int self, int pid)
{
	if (pid < 0 || pid >= PID_LIST_MAX)
		return;
	if (self < 0)
		bits[pid / 64] &= ~(1ul << (pid % 64));
	else if (pid_listed(bits, self))
		bits[pid / 64] |= 1ul << (pid % 64);
}

/* set_ftrace_pid / set_ftrace_notrace_pid (ftrace.c), options/function-fork */
extern unsigned long ftrace_pid_bits[PID_LIST_MAX / 64], ftrace_no_pid_bits[PID_LIST_MAX / 64];
extern unsigned char ftrace_pids_set, ftrace_no_pids_set, function_fork;

static __always_inline bool ftrace_ignore_this_task(struct task_struct *task)
{
	return ignore_this_task(ftrace_pid_bits, ftrace_pids_set, ftrace_no_pid_bits, ftrace_no_pids_set,
				task->pid);
}

#endif
