// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/trace/ftrace.c for the mini-kernel: what runs on the traced path
 * (the recursion guard of include/linux/trace_recursion.h is inline, in
 * ftrace.h). The lab's Python side (trace/ftrace_ops.py) builds the ops,
 * their hashes and the trampolines in this kernel's memory and patches the
 * call sites; these functions run when a patched site is reached:
 *
 *   ftrace_ops_list_func   several ops share a site: test each ops' hashes
 *   ftrace_ops_assist_func one ops without FTRACE_OPS_FL_RECURSION: guard it
 *   ftrace_pid_func        ops with FTRACE_OPS_FL_PID: only for set_ftrace_pid
 *   lab_count_func         a native callback that counts its calls
 *
 * and the function profiler (function_profile_enabled, trace_stat/functionN):
 * an fgraph_ops counting hits and summing times per function and CPU
 * (profile_graph_entry/return), whose records the lab reads and prints
 * (trace/trace_stat.py).
 *
 * All notrace: the tracer must not trace itself.
 */
#include "fgraph.h"

#define GOLDEN_RATIO_64 0x61C8864680B583EBull

/* The end of ftrace_ops_list: an ops that does nothing (ftrace_list_end). */
__used struct ftrace_ops ftrace_list_end = { .flags = FTRACE_OPS_FL_STUB };
__used struct ftrace_ops *ftrace_ops_list = &ftrace_list_end;

/* set_ftrace_pid / set_ftrace_notrace_pid: tr->function_pids, tr->function_no_pids */
__used unsigned long ftrace_pid_bits[PID_LIST_MAX / 64], ftrace_no_pid_bits[PID_LIST_MAX / 64];
__used unsigned char ftrace_pids_set, ftrace_no_pids_set, function_fork;

/* kernel/trace/trace_recursion_record.c: how often recursion was stopped. */
__used u64 ftrace_recursion_count;
__used unsigned long ftrace_recursion_last_ip;

static __always_inline unsigned long hash_long(unsigned long val, unsigned int bits)
{
	return bits ? (val * GOLDEN_RATIO_64) >> (64 - bits) : 0;
}

notrace struct ftrace_func_entry *ftrace_lookup_ip(struct ftrace_hash *hash, unsigned long ip)
{
	struct hlist_node *node;

	if (!hash || !hash->count)
		return NULL;
	for (node = hash->buckets[hash_long(ip, hash->size_bits)]; node; node = node->next) {
		struct ftrace_func_entry *entry = (struct ftrace_func_entry *)node;

		if (entry->ip == ip)
			return entry;
	}
	return NULL;
}

/* An ops traces ip if its filter is empty or has ip, and its notrace lacks ip. */
notrace int ftrace_ops_test(struct ftrace_ops *ops, unsigned long ip, void *regs)
{
	struct ftrace_ops_hash *h = ops->func_hash;

	(void)regs;
	return (!h->filter_hash || !h->filter_hash->count || ftrace_lookup_ip(h->filter_hash, ip)) &&
	       (!h->notrace_hash || !ftrace_lookup_ip(h->notrace_hash, ip));
}

notrace void ftrace_ops_list_func(unsigned long ip, unsigned long parent_ip,
				  struct ftrace_ops *ignored, struct ftrace_regs *fregs)
{
	struct ftrace_ops *op;
	int bit;

	(void)ignored;
	bit = trace_test_and_set_recursion(ip, TRACE_LIST_START);
	if (bit < 0)
		return;
	simulate_work_inline(10);
	for (op = ftrace_ops_list; op != &ftrace_list_end; op = op->next) {
		if (op->flags & FTRACE_OPS_FL_STUB)
			continue;
		if (ftrace_ops_test(op, ip, fregs))
			op->func(ip, parent_ip, op, fregs);
	}
	trace_clear_recursion(bit);
}

notrace void ftrace_ops_assist_func(unsigned long ip, unsigned long parent_ip,
				    struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	int bit = trace_test_and_set_recursion(ip, TRACE_FTRACE_START);

	if (bit < 0)
		return;
	op->func(ip, parent_ip, op, fregs);
	trace_clear_recursion(bit);
}

/*
 * The func of an FTRACE_OPS_FL_PID ops while a pid list is set: the kernel reads the
 * verdict its sched_switch probe cached for this CPU (ftrace_ignore_pid); the lab
 * asks the lists about current, which is the same answer.
 */
notrace void ftrace_pid_func(unsigned long ip, unsigned long parent_ip,
			     struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (ftrace_ignore_this_task(current))
		return;
	op->saved_func(ip, parent_ip, op, fregs);
}

/* A native callback: count the calls in op->nr_calls (what the lab's bench uses). */
notrace void lab_count_func(unsigned long ip, unsigned long parent_ip,
			    struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	(void)ip;
	(void)parent_ip;
	(void)fregs;
	this_cpu()->clock_ns += 15;  /* its cost; the traced function checks the slice end */
	op->nr_calls++;              /* a plain add: only one CPU runs at a time in the lab */
}

/* ---- the function profiler (CONFIG_FUNCTION_PROFILER, with the graph tracer) ---- */

#define PAGE_SIZE_BYTES 4096ul
#define FTRACE_PROFILE_HASH_BITS 10
#define FTRACE_PROFILE_HASH_SIZE (1 << FTRACE_PROFILE_HASH_BITS)
#define PROFILE_COST_NS 10
/* The kernel allocates DIV_ROUND_UP(functions, PROFILES_PER_PAGE) pages a CPU; the lab
 * takes them from a static pool of this many. */
#define FTRACE_PROFILE_MAX_PAGES 8

struct ftrace_profile {
	struct hlist_node node;            /* 0x00 */
	unsigned long ip;                  /* 0x10 */
	unsigned long counter;             /* 0x18: hits */
	unsigned long long time;           /* 0x20: ns */
	unsigned long long time_squared;   /* 0x28 */
};

struct ftrace_profile_page {
	struct ftrace_profile_page *next;  /* 0x00 */
	unsigned long index;               /* 0x08: records used */
	struct ftrace_profile records[];   /* 0x10 */
};

struct ftrace_profile_stat {
	int disabled;                      /* 0x00: atomic_t, against NMI recursion */
	struct hlist_node **hash;          /* 0x08 */
	struct ftrace_profile_page *pages; /* 0x10: the page being filled */
	struct ftrace_profile_page *start; /* 0x18 */
};                                       /* (struct tracer_stat stat: trace/trace_stat.py) */

#define PROFILE_RECORDS_SIZE (PAGE_SIZE_BYTES - __builtin_offsetof(struct ftrace_profile_page, records))
#define PROFILES_PER_PAGE (PROFILE_RECORDS_SIZE / sizeof(struct ftrace_profile))

__used int ftrace_profile_enabled;
__used int fgraph_graph_time = 1;             /* options/graph-time */
__used struct ftrace_profile_stat ftrace_profile_stats[NR_CPUS];
static struct hlist_node *ftrace_profile_hash[NR_CPUS][FTRACE_PROFILE_HASH_SIZE];
static char ftrace_profile_pool[NR_CPUS][FTRACE_PROFILE_MAX_PAGES][PAGE_SIZE_BYTES] __aligned(4096);
/* for the lab's reader: sizeof(struct ftrace_profile), PROFILES_PER_PAGE, sizeof(stat) */
__used const unsigned short ftrace_profile_lab_sizes[] = {
	sizeof(struct ftrace_profile), PROFILES_PER_PAGE, sizeof(struct ftrace_profile_stat),
};

static notrace void ftrace_profile_reset(struct ftrace_profile_stat *stat)
{
	struct ftrace_profile_page *pg;

	for (pg = stat->pages = stat->start; pg; pg = pg->next) {
		memset(pg->records, 0, PROFILE_RECORDS_SIZE);
		pg->index = 0;
	}
	memset(stat->hash, 0, FTRACE_PROFILE_HASH_SIZE * sizeof(*stat->hash));
}

/* ftrace_profile_pages_init(): enough pages for every function, once. */
static notrace void ftrace_profile_pages_init(struct ftrace_profile_stat *stat, int cpu, int functions)
{
	struct ftrace_profile_page *pg;
	int pages = (functions + PROFILES_PER_PAGE - 1) / PROFILES_PER_PAGE, i;

	if (stat->pages)
		return;
	if (pages > FTRACE_PROFILE_MAX_PAGES)
		pages = FTRACE_PROFILE_MAX_PAGES;
	pg = stat->start = stat->pages = (struct ftrace_profile_page *)ftrace_profile_pool[cpu][0];
	for (i = 1; i < pages; i++)
		pg = pg->next = (struct ftrace_profile_page *)ftrace_profile_pool[cpu][i];
	pg->next = NULL;
}

/* ftrace_profile_init(): @functions is ftrace_update_tot_cnt, the lab's record count. */
notrace void ftrace_profile_init(int functions)
{
	unsigned int cpu;

	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		struct ftrace_profile_stat *stat = &ftrace_profile_stats[cpu];

		if (stat->hash) {
			ftrace_profile_reset(stat);
			continue;
		}
		stat->hash = ftrace_profile_hash[cpu];
		ftrace_profile_pages_init(stat, cpu, functions);
	}
}

static notrace struct ftrace_profile *ftrace_find_profiled_func(struct ftrace_profile_stat *stat,
								  unsigned long ip)
{
	struct hlist_node *node;

	for (node = stat->hash[hash_long(ip, FTRACE_PROFILE_HASH_BITS)]; node; node = node->next) {
		struct ftrace_profile *rec = container_of(node, struct ftrace_profile, node);

		if (rec->ip == ip)
			return rec;
	}
	return NULL;
}

static notrace struct ftrace_profile *ftrace_profile_alloc(struct ftrace_profile_stat *stat, unsigned long ip)
{
	struct ftrace_profile *rec = NULL;
	struct hlist_node **head;

	if (++stat->disabled != 1)
		goto out;
	rec = ftrace_find_profiled_func(stat, ip);
	if (rec)
		goto out;
	if (stat->pages->index == PROFILES_PER_PAGE) {
		if (!stat->pages->next)
			goto out;                      /* full: the function goes uncounted */
		stat->pages = stat->pages->next;
	}
	rec = &stat->pages->records[stat->pages->index++];
	rec->ip = ip;
	head = &stat->hash[hash_long(ip, FTRACE_PROFILE_HASH_BITS)];   /* hlist_add_head_rcu() */
	rec->node.next = *head;
	if (*head)
		(*head)->pprev = &rec->node.next;
	*head = &rec->node;
	rec->node.pprev = head;
out:
	stat->disabled--;
	return rec;
}

static notrace void function_profile_call(unsigned long ip)
{
	struct ftrace_profile_stat *stat;
	struct ftrace_profile *rec;
	unsigned long flags;

	if (!ftrace_profile_enabled)
		return;
	flags = local_irq_save();
	simulate_work_inline(PROFILE_COST_NS);
	stat = &ftrace_profile_stats[smp_processor_id()];
	if (!stat->hash || !ftrace_profile_enabled)
		goto out;
	rec = ftrace_find_profiled_func(stat, ip);
	if (!rec) {
		rec = ftrace_profile_alloc(stat, ip);
		if (!rec)
			goto out;
	}
	rec->counter++;
out:
	local_irq_restore(flags);
}

notrace int profile_graph_entry(struct ftrace_graph_ent *trace, struct fgraph_ops *gops,
				struct ftrace_regs *fregs)
{
	(void)fregs;
	struct ftrace_ret_stack *ret_stack;

	(void)gops;
	function_profile_call(trace->func);
	if (!current->ret_stack)               /* graph tracing shutting down */
		return 0;
	ret_stack = ftrace_graph_get_ret_stack(current, 0);
	if (ret_stack)
		ret_stack->subtime = 0;
	return 1;
}

notrace void profile_graph_return(struct ftrace_graph_ret *trace, struct fgraph_ops *gops,
				struct ftrace_regs *fregs)
{
	(void)fregs;
	struct ftrace_ret_stack *ret_stack;
	struct ftrace_profile_stat *stat;
	unsigned long long calltime;
	struct ftrace_profile *rec;
	unsigned long flags;

	(void)gops;
	flags = local_irq_save();
	simulate_work_inline(PROFILE_COST_NS);
	stat = &ftrace_profile_stats[smp_processor_id()];
	if (!stat->hash || !ftrace_profile_enabled)
		goto out;
	if (!trace->calltime)                  /* zeroed: ignore it */
		goto out;
	calltime = trace->rettime - trace->calltime;
	if (!fgraph_graph_time) {
		/* graph-time off: a call's time leaves out its children's */
		ret_stack = ftrace_graph_get_ret_stack(current, 1);
		if (ret_stack)
			ret_stack->subtime += calltime;
		ret_stack = ftrace_graph_get_ret_stack(current, 0);
		if (ret_stack && ret_stack->subtime < calltime)
			calltime -= ret_stack->subtime;
		else
			calltime = 0;
	}
	rec = ftrace_find_profiled_func(stat, trace->func);
	if (rec) {
		rec->time += calltime;
		rec->time_squared += calltime * calltime;
	}
out:
	local_irq_restore(flags);
}
