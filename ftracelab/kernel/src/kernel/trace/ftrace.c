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
 * All notrace: the tracer must not trace itself.
 */
#include "ftrace.h"

#define GOLDEN_RATIO_64 0x61C8864680B583EBull
#define FTRACE_MAX_PIDS 64

/* The end of ftrace_ops_list: an ops that does nothing (ftrace_list_end). */
__used struct ftrace_ops ftrace_list_end = { .flags = FTRACE_OPS_FL_STUB };
__used struct ftrace_ops *ftrace_ops_list = &ftrace_list_end;

/* set_ftrace_pid: the pids ftrace_pid_func lets through (0 entries: none). */
__used int ftrace_pids[FTRACE_MAX_PIDS];
__used unsigned int nr_ftrace_pids;

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

notrace void ftrace_pid_func(unsigned long ip, unsigned long parent_ip,
			     struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	int pid = current->pid;
	unsigned int i;

	for (i = 0; i < nr_ftrace_pids && i < FTRACE_MAX_PIDS; i++) {
		if (ftrace_pids[i] == pid) {
			op->saved_func(ip, parent_ip, op, fregs);
			return;
		}
	}
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
