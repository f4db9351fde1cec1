// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/trace/trace_functions_graph.c (Linux 6.12) for the mini-kernel: the
 * function_graph tracer's fgraph_ops callbacks, which write a
 * TRACE_GRAPH_ENT entry (funcgraph_entry: func, depth) at a call and a
 * TRACE_GRAPH_RET entry (funcgraph_exit: func, retval, depth, overrun,
 * calltime, rettime; this kernel has CONFIG_FUNCTION_GRAPH_RETVAL) at its
 * return, honouring set_graph_function, set_graph_notrace, max_graph_depth,
 * tracing_thresh and funcgraph-irqs. The lab prints them (trace/
 * trace_functions_graph.py) and sets the variables below.
 */
#include "fgraph.h"
#include "trace.h"

struct ftrace_graph_ent_entry {
	struct trace_entry ent;
	struct ftrace_graph_ent graph_ent;
} __attribute__((packed));

struct ftrace_graph_ret_entry {
	struct trace_entry ent;
	struct ftrace_graph_ret ret;
} __attribute__((packed));

/* the per-task variable of the tracer's fgraph_ops (trace.h) */
#define TRACE_GRAPH_FL 1ul
#define TRACE_GRAPH_DEPTH_START_BIT 2
#define TRACE_GRAPH_DEPTH_MASK (3ul << TRACE_GRAPH_DEPTH_START_BIT)
#define TRACE_GRAPH_NOTRACE (1ul << 4)

__used struct ftrace_hash *ftrace_graph_hash;          /* set_graph_function; empty: every one */
__used struct ftrace_hash *ftrace_graph_notrace_hash;  /* set_graph_notrace */
__used unsigned int fgraph_max_depth;                  /* max_graph_depth; 0: no limit */
__used unsigned long long tracing_thresh;              /* ns; 0: off */
__used int ftrace_graph_skip_irqs;                     /* !options/funcgraph-irqs */

struct ftrace_func_entry *ftrace_lookup_ip(struct ftrace_hash *hash, unsigned long ip);

static __always_inline bool hash_empty(struct ftrace_hash *hash)
{
	return !hash || !hash->count;
}

/* ftrace_graph_addr(): in set_graph_function (which then covers its callees)? */
static notrace int ftrace_graph_addr(unsigned long *task_var, struct ftrace_graph_ent *trace)
{
	if (hash_empty(ftrace_graph_hash))
		return 1;
	if (ftrace_lookup_ip(ftrace_graph_hash, trace->func)) {
		*task_var |= TRACE_GRAPH_FL;
		*task_var = (*task_var & ~TRACE_GRAPH_DEPTH_MASK) |
			    (((unsigned long)trace->depth & 3) << TRACE_GRAPH_DEPTH_START_BIT);
		return 1;
	}
	return 0;
}

static notrace void ftrace_graph_addr_finish(struct fgraph_ops *gops, struct ftrace_graph_ret *trace)
{
	unsigned long *task_var = fgraph_get_task_var(gops);

	if ((*task_var & TRACE_GRAPH_FL) &&
	    trace->depth == (int)((*task_var & TRACE_GRAPH_DEPTH_MASK) >> TRACE_GRAPH_DEPTH_START_BIT))
		*task_var &= ~TRACE_GRAPH_FL;
}

static notrace int ftrace_graph_ignore_func(struct fgraph_ops *gops, struct ftrace_graph_ent *trace)
{
	unsigned long *task_var = fgraph_get_task_var(gops);

	return !((*task_var & TRACE_GRAPH_FL) || ftrace_graph_addr(task_var, trace)) ||
	       trace->depth < 0 || (fgraph_max_depth && trace->depth >= (int)fgraph_max_depth);
}

static notrace void *graph_reserve(int type, unsigned int size, unsigned int ctx)
{
	struct trace_entry *ent = ring_buffer_lock_reserve(global_trace_buffer, size, sched_clock());

	if (ent)
		fill_entry(ent, type, ctx);
	return ent;
}

notrace int trace_graph_entry(struct ftrace_graph_ent *trace, struct fgraph_ops *gops,
				struct ftrace_regs *fregs)
{
	(void)fregs;
	unsigned long *task_var = fgraph_get_task_var(gops);
	struct ftrace_graph_ent_entry *entry;
	unsigned long irqflags;
	unsigned int ctx;

	if (*task_var & TRACE_GRAPH_NOTRACE)
		return 0;
	if (!hash_empty(ftrace_graph_notrace_hash) && ftrace_lookup_ip(ftrace_graph_notrace_hash, trace->func)) {
		*task_var |= TRACE_GRAPH_NOTRACE;     /* its return clears the bit */
		return 1;
	}
	if ((ftrace_pids_set || ftrace_no_pids_set) && ftrace_ignore_this_task(current))
		return 0;                             /* !ftrace_trace_task(tr) */
	if (ftrace_graph_ignore_func(gops, trace))
		return 0;
	if (ftrace_graph_skip_irqs && (this_cpu()->preempt_count & (0xf * HARDIRQ_OFFSET)))
		return 0;
	if (tracing_thresh)                       /* only returns are written */
		return 1;
	ctx = tracing_gen_ctx();
	irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS);
	entry = graph_reserve(TRACE_GRAPH_ENT, sizeof(*entry), ctx);
	if (entry) {
		entry->graph_ent = *trace;
		trace_record_cmdline();
		ring_buffer_unlock_commit(global_trace_buffer);
	}
	local_irq_restore(irqflags);
	return entry != NULL;
}

static notrace void __trace_graph_return(struct ftrace_graph_ret *trace)
{
	struct ftrace_graph_ret_entry *entry;
	unsigned long irqflags;
	unsigned int ctx = tracing_gen_ctx();

	irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS);
	entry = graph_reserve(TRACE_GRAPH_RET, sizeof(*entry), ctx);
	if (entry) {
		entry->ret = *trace;
		trace_record_cmdline();
		ring_buffer_unlock_commit(global_trace_buffer);
	}
	local_irq_restore(irqflags);
}

notrace void trace_graph_return(struct ftrace_graph_ret *trace, struct fgraph_ops *gops,
				struct ftrace_regs *fregs)
{
	(void)fregs;
	unsigned long *task_var = fgraph_get_task_var(gops);

	ftrace_graph_addr_finish(gops, trace);
	if (*task_var & TRACE_GRAPH_NOTRACE) {
		*task_var &= ~TRACE_GRAPH_NOTRACE;
		return;
	}
	__trace_graph_return(trace);
}

notrace void trace_graph_thresh_return(struct ftrace_graph_ret *trace, struct fgraph_ops *gops,
				struct ftrace_regs *fregs)
{
	(void)fregs;
	unsigned long *task_var = fgraph_get_task_var(gops);

	ftrace_graph_addr_finish(gops, trace);
	if (*task_var & TRACE_GRAPH_NOTRACE) {
		*task_var &= ~TRACE_GRAPH_NOTRACE;
		return;
	}
	if (tracing_thresh && trace->rettime - trace->calltime < tracing_thresh)
		return;
	__trace_graph_return(trace);
}
