/* SPDX-License-Identifier: Apache-2.0 */
/*
 * include/linux/ftrace.h's function-graph part for the mini-kernel: the
 * shadow stack frame, what entry and return callbacks get, struct fgraph_ops
 * (kernel/trace/fgraph.c, trace_functions_graph.c and the lab share them).
 */
#ifndef FTRACELAB_FGRAPH_H
#define FTRACELAB_FGRAPH_H

#include "ftrace.h"

/* include/linux/ftrace.h, 6.12 with CONFIG_FUNCTION_PROFILER (x86: no fp) */
struct ftrace_ret_stack {
	unsigned long ret;
	unsigned long func;
	unsigned long long calltime;
	unsigned long long subtime;
	unsigned long *retp;
};

struct ftrace_graph_ent {
	unsigned long func;
	int depth;
} __attribute__((packed));

struct ftrace_graph_ret {
	unsigned long func;
	unsigned long retval;          /* CONFIG_FUNCTION_GRAPH_RETVAL */
	int depth;
	unsigned int overrun;
	unsigned long long calltime;
	unsigned long long rettime;
} __attribute__((packed));

struct fgraph_ops;
/* 6.14's callbacks, with the registers (6.12's have no third argument) */
typedef int (*trace_func_graph_ent_t)(struct ftrace_graph_ent *, struct fgraph_ops *, struct ftrace_regs *);
typedef void (*trace_func_graph_ret_t)(struct ftrace_graph_ret *, struct fgraph_ops *, struct ftrace_regs *);

struct fgraph_ops {
	trace_func_graph_ent_t entryfunc;   /* 0x00 */
	trace_func_graph_ret_t retfunc;     /* 0x08 */
	struct ftrace_ops ops;              /* 0x10: its filter and notrace hashes */
	void *private;                      /* 0x68 */
	trace_func_graph_ent_t saved_func;  /* 0x70 */
	int idx;                            /* 0x78 */
	/* the lab's counters, for lab_graph_entry/lab_graph_return */
	unsigned long nr_entries;           /* 0x80 */
	unsigned long nr_returns;           /* 0x88 */
	unsigned long nr_bad_data;          /* 0x90: returns whose reserved data was wrong */
	unsigned long nr_unclaimed;         /* 0x98: returns it never took (bit 0, below) */
	unsigned long long total_ns;        /* 0xa0 */
	int lab_data_size;                  /* 0xa8: bytes lab_python_graph_entry reserves */
};

unsigned long *fgraph_get_task_var(struct fgraph_ops *gops);
struct ftrace_ret_stack *ftrace_graph_get_ret_stack(struct task_struct *task, int idx);
void *fgraph_reserve_data(int idx, int size_bytes);
void *fgraph_retrieve_data(int idx, int *size_bytes);
extern int fgraph_sleep_time;

#endif
