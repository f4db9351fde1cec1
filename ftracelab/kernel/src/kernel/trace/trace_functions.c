// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/trace/trace_functions.c and trace.c for the mini-kernel: the
 * function tracer's callback, function_trace_call(), which writes a
 * TRACE_FN entry (struct ftrace_entry) into this CPU's ring buffer, and
 * tracing_gen_ctx(), the flags/preempt-count byte every entry carries.
 */
#include "ftrace.h"
#include "ring_buffer.h"

#define TRACE_FN 1
#define TRACE_FLAG_IRQS_OFF 0x01
#define TRACE_FLAG_NEED_RESCHED 0x04
#define TRACE_FLAG_HARDIRQ 0x08
#define TRACE_FLAG_SOFTIRQ 0x10
#define RB_WRITE_COST_NS 25

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

struct ftrace_entry {
	struct trace_entry ent;
	unsigned long ip;
	unsigned long parent_ip;
};

int trace_test_and_set_recursion(unsigned long ip, int start);
void trace_clear_recursion(int bit);

__used u64 function_trace_calls;    /* entries the function tracer wrote */

/*
 * saved_cmdlines (trace.c: trace_save_cmdline()): the last comm seen for each
 * pid, so the trace text can name tasks that have exited since. 128 slots,
 * as saved_cmdlines_size defaults to; the pid map is indexed by pid & 1023.
 */
#define SAVED_CMDLINES 128
#define PID_MAP_SIZE 1024
#define NO_CMDLINE_MAP 0xffffffffu

struct saved_cmdlines_buffer {
	unsigned int map_pid_to_cmdline[PID_MAP_SIZE];
	unsigned int map_cmdline_to_pid[SAVED_CMDLINES];
	char saved_cmdlines[SAVED_CMDLINES][TASK_COMM_LEN];
	unsigned int cmdline_idx;
	unsigned int initialized;
};
__used struct saved_cmdlines_buffer savedcmd;

static __always_inline bool cmdline_saved(unsigned int pid)
{
	unsigned int idx = savedcmd.map_pid_to_cmdline[pid & (PID_MAP_SIZE - 1)];

	return savedcmd.initialized && idx < SAVED_CMDLINES && savedcmd.map_cmdline_to_pid[idx] == pid;
}

notrace void trace_save_cmdline(struct task_struct *tsk)
{
	unsigned int pid = tsk->pid, idx, i;

	if (!savedcmd.initialized) {
		for (i = 0; i < PID_MAP_SIZE; i++)
			savedcmd.map_pid_to_cmdline[i] = NO_CMDLINE_MAP;
		for (i = 0; i < SAVED_CMDLINES; i++)
			savedcmd.map_cmdline_to_pid[i] = NO_CMDLINE_MAP;
		savedcmd.initialized = 1;
	}
	idx = savedcmd.map_pid_to_cmdline[pid & (PID_MAP_SIZE - 1)];
	if (idx == NO_CMDLINE_MAP || savedcmd.map_cmdline_to_pid[idx] != pid) {
		idx = savedcmd.cmdline_idx;
		savedcmd.cmdline_idx = (idx + 1) % SAVED_CMDLINES;
		if (savedcmd.map_cmdline_to_pid[idx] != NO_CMDLINE_MAP)
			savedcmd.map_pid_to_cmdline[savedcmd.map_cmdline_to_pid[idx] &
						    (PID_MAP_SIZE - 1)] = NO_CMDLINE_MAP;
		savedcmd.map_cmdline_to_pid[idx] = pid;
		savedcmd.map_pid_to_cmdline[pid & (PID_MAP_SIZE - 1)] = idx;
	}
	memcpy(savedcmd.saved_cmdlines[idx], tsk->comm, TASK_COMM_LEN);
}

/* tracing_gen_ctx(): (flags << 16) | preempt-count byte. */
notrace unsigned int tracing_gen_ctx(void)
{
	struct pcpu_hot *cpu = this_cpu();
	unsigned int flags = 0, pc = cpu->preempt_count;

	if (!(arch_local_save_flags() & X86_EFLAGS_IF))
		flags |= TRACE_FLAG_IRQS_OFF;
	if (cpu->need_resched)
		flags |= TRACE_FLAG_NEED_RESCHED;
	if (pc & (0xf * HARDIRQ_OFFSET))
		flags |= TRACE_FLAG_HARDIRQ;
	if (pc & (0xff * SOFTIRQ_OFFSET))
		flags |= TRACE_FLAG_SOFTIRQ;
	return (flags << 16) | ((pc & 0xff) > 15 ? 15 : (pc & 0xff));
}

notrace void function_trace_call(unsigned long ip, unsigned long parent_ip,
				 struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct trace_buffer *buffer = global_trace_buffer;
	struct ftrace_entry *entry;
	unsigned long irqflags;
	unsigned int ctx;
	int bit;

	(void)op;
	(void)fregs;
	bit = trace_test_and_set_recursion(ip, TRACE_FTRACE_START);
	if (bit < 0)
		return;
	ctx = tracing_gen_ctx();
	irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS);
	entry = ring_buffer_lock_reserve(buffer, sizeof(*entry), sched_clock());
	if (entry) {
		entry->ent.type = TRACE_FN;
		entry->ent.flags = ctx >> 16;
		entry->ent.preempt_count = ctx & 0xff;
		entry->ent.pid = current->pid;
		if (current->pid && !cmdline_saved(current->pid))   /* not the idle task */
			trace_save_cmdline(current);
		entry->ip = ip;
		entry->parent_ip = parent_ip;
		ring_buffer_unlock_commit(buffer);
		function_trace_calls++;
	}
	local_irq_restore(irqflags);
	trace_clear_recursion(bit);
}
