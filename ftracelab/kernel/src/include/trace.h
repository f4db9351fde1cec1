/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kernel/trace/trace.h for the mini-kernel: what the tracers' writers share,
 * the common entry header, the context word and saved_cmdlines.
 */
#ifndef FTRACELAB_TRACE_H
#define FTRACELAB_TRACE_H

#include "ftrace.h"
#include "ring_buffer.h"

/* enum trace_type */
#define TRACE_FN 1
#define TRACE_STACK 4
#define TRACE_PRINT 5
#define TRACE_GRAPH_RET 10
#define TRACE_GRAPH_ENT 11

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

unsigned int tracing_gen_ctx(void);
void trace_save_cmdline(struct task_struct *tsk);

static __always_inline void fill_entry(struct trace_entry *ent, int type, unsigned int ctx)
{
	ent->type = type;
	ent->flags = ctx >> 16;
	ent->preempt_count = ctx & 0xff;
	ent->pid = current->pid;
}

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
extern struct saved_cmdlines_buffer savedcmd;

static __always_inline bool cmdline_saved(unsigned int pid)
{
	unsigned int idx = savedcmd.map_pid_to_cmdline[pid & (PID_MAP_SIZE - 1)];

	return savedcmd.initialized && idx < SAVED_CMDLINES && savedcmd.map_cmdline_to_pid[idx] == pid;
}

/*
 * What every writer does after filling its entry: tracing_record_cmdline(), while
 * options/record-cmd is set (the kernel's sched_switch probe saves the comms then;
 * with it cleared, tasks not saved yet print as <...>).
 */
extern int trace_record_cmd;

static __always_inline void trace_record_cmdline(void)
{
	if (trace_record_cmd && current->pid && !cmdline_saved(current->pid))   /* not the idle task */
		trace_save_cmdline(current);
}

#endif
