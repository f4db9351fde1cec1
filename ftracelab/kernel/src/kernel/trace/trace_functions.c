// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/trace/trace_functions.c and trace.c for the mini-kernel: the
 * function tracer's callback, function_trace_call(), which writes a
 * TRACE_FN entry (struct ftrace_entry) into this CPU's ring buffer, and
 * tracing_gen_ctx(), the flags/preempt-count byte every entry carries.
 */
#include "trace.h"
#include "trace_events.h"

struct ftrace_entry {
	struct trace_entry ent;
	unsigned long ip;
	unsigned long parent_ip;
};

#define FTRACE_STACK_ENTRIES 8
#define FTRACE_TRAMPOLINE_MARKER ((unsigned long)0x7fffffff)
#define MODULES_VADDR 0xffffffffa0000000ul   /* machine/memory.py: ftrace trampolines */
#define MODULES_END 0xffffffffa0100000ul

struct stack_entry {
	struct trace_entry ent;
	int size;                       /* number of callers recorded */
	unsigned long caller[FTRACE_STACK_ENTRIES];
};

struct print_entry {
	struct trace_entry ent;
	unsigned long ip;
	char buf[];
};

__used int ftrace_func_stack_trace;  /* options/func_stack_trace (set by the lab) */

extern char ftrace_caller[], ftrace_epilogue[];

__used u64 function_trace_calls;    /* entries the function tracer wrote */

/* saved_cmdlines (trace.c: trace_save_cmdline()), see trace.h. */
__used struct saved_cmdlines_buffer savedcmd;
__used int trace_record_cmd = 1;        /* options/record-cmd */

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

static __always_inline bool on_task_stack(unsigned long addr)
{
	unsigned long base = (unsigned long)current->stack;

	return addr >= base && addr + 16 <= base + THREAD_SIZE;
}

/*
 * __ftrace_trace_stack() for the function tracer's func_stack_trace: walk the
 * frame pointers back from this callback. The trampoline shows as
 * FTRACE_TRAMPOLINE_MARKER; the traced function has not built its frame
 * yet, so it and its caller come from the trampoline's frame.
 */
/* A kernel_stack entry of nr frames (struct stack_entry, sized to what it holds). */
static notrace void write_stack_entry(struct trace_buffer *buffer, unsigned int ctx,
				      const unsigned long *calls, int nr)
{
	struct stack_entry *entry = ring_buffer_lock_reserve(buffer, 16 + nr * sizeof(long), sched_clock());

	if (!entry)
		return;
	fill_entry(&entry->ent, TRACE_STACK, ctx);
	entry->size = nr;
	memcpy(entry->caller, calls, nr * sizeof(long));
	ring_buffer_unlock_commit(buffer);
}

static notrace noinline void ftrace_trace_stack(struct trace_buffer *buffer, unsigned int ctx,
						unsigned long ip, unsigned long parent_ip)
{
	unsigned long calls[FTRACE_STACK_ENTRIES];
	unsigned long *fp = __builtin_frame_address(0);
	int nr = 0, hops = 0;

	/* up to the frame whose return address is in a trampoline */
	while (on_task_stack((unsigned long)fp) && hops++ < 4) {
		unsigned long ret = fp[1];

		if (ret >= MODULES_VADDR && ret < MODULES_END) {
			calls[nr++] = FTRACE_TRAMPOLINE_MARKER;   /* is_ftrace_trampoline() */
			break;
		}
		if (ret >= (unsigned long)ftrace_caller && ret < (unsigned long)ftrace_epilogue) {
			calls[nr++] = ret;        /* the shared ftrace_caller/ftrace_regs_caller */
			break;
		}
		fp = (unsigned long *)fp[0];
	}
	if (!nr)
		return;
	fp = (unsigned long *)fp[0];             /* the trampoline's frame */
	calls[nr++] = ip + 5;                     /* return address into the traced function */
	calls[nr++] = parent_ip;
	fp = on_task_stack((unsigned long)fp) ? (unsigned long *)fp[0] : NULL;  /* its caller's */
	while (fp && on_task_stack((unsigned long)fp) && nr < FTRACE_STACK_ENTRIES) {
		calls[nr++] = fp[1];
		fp = (unsigned long *)fp[0];
	}
	write_stack_entry(buffer, ctx, calls, nr);
}

/*
 * options/stacktrace (trace_buffer_unlock_commit_regs() -> ftrace_trace_stack()): after
 * an event's record, its kernel_stack. Called from the event's probe (whose commit is
 * inlined into it), so the chain starts past the probe's frame: at the tracepoint's
 * caller, as the kernel's skip does.
 */
__used int trace_event_stacktrace;

notrace noinline void event_trace_stack(unsigned int ctx)
{
	unsigned long calls[FTRACE_STACK_ENTRIES];
	unsigned long *fp = __builtin_frame_address(0);
	int nr = 0;

	fp = on_task_stack((unsigned long)fp) ? (unsigned long *)fp[0] : NULL;    /* the probe's frame */
	while (fp && on_task_stack((unsigned long)fp) && fp[1] && nr < FTRACE_STACK_ENTRIES) {
		calls[nr++] = fp[1];
		fp = (unsigned long *)fp[0];
	}
	if (nr)
		write_stack_entry(global_trace_buffer, ctx, calls, nr);
}

/*
 * The snapshot (trace.c: tracing_snapshot_instance_cond(), update_max_tr()): the
 * lab allocates the spare buffer and points snapshot_trace_buffer at it; taking
 * a snapshot swaps it with the live one, which inherits the tracing_on state.
 */
__used struct trace_buffer *snapshot_trace_buffer;

/* __trace_array_puts(): a TRACE_PRINT of a kernel string. */
static notrace void trace_array_puts(unsigned long ip, const char *str)
{
	struct print_entry *entry;
	unsigned int ctx = tracing_gen_ctx();
	size_t size = __builtin_strlen(str);

	entry = ring_buffer_lock_reserve(global_trace_buffer, sizeof(*entry) + size + 1, sched_clock());
	if (!entry)
		return;
	fill_entry(&entry->ent, TRACE_PRINT, ctx);
	entry->ip = ip;
	memcpy(entry->buf, str, size + 1);
	ring_buffer_unlock_commit(global_trace_buffer);
}

notrace void tracing_snapshot_instance_cond(void)
{
	struct trace_buffer *max = snapshot_trace_buffer;

	if (!max) {
		trace_array_puts((unsigned long)tracing_snapshot_instance_cond, "*** SNAPSHOT NOT ALLOCATED ***\n");
		trace_array_puts((unsigned long)tracing_snapshot_instance_cond, "*** stopping trace here!   ***\n");
		global_trace_buffer->record_disabled = 1;          /* tracer_tracing_off() */
		return;
	}
	max->record_disabled = global_trace_buffer->record_disabled;
	snapshot_trace_buffer = global_trace_buffer;
	global_trace_buffer = max;
}

/* tracing_mark_write(): what a write to trace_marker records (a TRACE_PRINT). */
__used notrace long tracing_mark_write(const char *ubuf, size_t cnt)
{
	struct trace_buffer *buffer = global_trace_buffer;
	struct print_entry *entry;
	unsigned long irqflags;
	unsigned int ctx = tracing_gen_ctx();

	if (cnt > 4000)
		cnt = 4000;
	irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS + cnt / 8);
	entry = ring_buffer_lock_reserve(buffer, sizeof(*entry) + cnt + 2, sched_clock());
	if (!entry) {
		local_irq_restore(irqflags);
		return -EBADF;
	}
	fill_entry(&entry->ent, TRACE_PRINT, ctx);
	trace_record_cmdline();                 /* as the sched_switch probe would */
	entry->ip = (unsigned long)tracing_mark_write;
	_copy_from_user(entry->buf, ubuf, cnt);
	if (!cnt || entry->buf[cnt - 1] != '\n')
		entry->buf[cnt++] = '\n';
	entry->buf[cnt] = 0;
	ring_buffer_unlock_commit(buffer);
	local_irq_restore(irqflags);
	return cnt;
}

/* trace_function(), then with options/func_stack_trace __trace_stack() */
static __always_inline void trace_function(struct trace_buffer *buffer, unsigned long ip,
					   unsigned long parent_ip, unsigned int ctx)
{
	struct ftrace_entry *entry = ring_buffer_lock_reserve(buffer, sizeof(*entry), sched_clock());

	if (entry) {
		fill_entry(&entry->ent, TRACE_FN, ctx);
		trace_record_cmdline();
		entry->ip = ip;
		entry->parent_ip = parent_ip;
		ring_buffer_unlock_commit(buffer);
		function_trace_calls++;
		if (ftrace_func_stack_trace)
			ftrace_trace_stack(buffer, ctx, ip, parent_ip);
	}
}

notrace void function_trace_call(unsigned long ip, unsigned long parent_ip,
				 struct ftrace_ops *op, struct ftrace_regs *fregs)
{
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
	trace_function(global_trace_buffer, ip, parent_ip, ctx);
	local_irq_restore(irqflags);
	trace_clear_recursion(bit);
}

/*
 * options/func-no-repeats (trace_functions.c: function_no_repeats_trace_call(),
 * is_repeat_check(), process_repeats(); trace.c: trace_last_func_repeats()): a call
 * with the CPU's last ip and parent_ip only counts (up to U16_MAX) and stamps the
 * time; the next other call first writes a TRACE_FUNC_REPEATS entry for that run,
 * with how long before it the last repeat was.
 */
#define TRACE_FUNC_REPEATS 19

struct trace_func_repeats {
	unsigned long ip, parent_ip;
	u64 ts_last_call;
	unsigned long count;
};

struct func_repeats_entry {
	struct trace_entry ent;
	unsigned long ip, parent_ip;
	unsigned short count, top_delta_ts;
	unsigned int bottom_delta_ts;
};

__used struct trace_func_repeats last_func_repeats[NR_CPUS];

notrace void function_no_repeats_trace_call(unsigned long ip, unsigned long parent_ip,
					    struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct trace_buffer *buffer = global_trace_buffer;
	struct trace_func_repeats *last = &last_func_repeats[smp_processor_id()];
	struct func_repeats_entry *rep;
	unsigned long irqflags;
	unsigned int ctx;
	int bit;

	(void)op;
	(void)fregs;
	bit = trace_test_and_set_recursion(ip, TRACE_FTRACE_START);
	if (bit < 0)
		return;
	if (last->ip == ip && last->parent_ip == parent_ip && last->count < 0xffff) {
		last->ts_last_call = sched_clock();              /* ring_buffer_time_stamp() */
		last->count++;
		goto out;
	}
	ctx = tracing_gen_ctx();
	irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS);
	if (last->count) {                                   /* trace_last_func_repeats() */
		u64 ts = sched_clock();

		rep = ring_buffer_lock_reserve(buffer, sizeof(*rep), ts);
		if (rep) {
			u64 delta = ts - last->ts_last_call;

			fill_entry(&rep->ent, TRACE_FUNC_REPEATS, ctx);
			rep->ip = last->ip;
			rep->parent_ip = last->parent_ip;
			rep->count = last->count;
			rep->top_delta_ts = delta >> 32;
			rep->bottom_delta_ts = (unsigned int)delta;
			ring_buffer_unlock_commit(buffer);
		}
		last->count = 0;
	}
	last->ip = ip;
	last->parent_ip = parent_ip;
	trace_function(buffer, ip, parent_ip, ctx);
	local_irq_restore(irqflags);
out:
	trace_clear_recursion(bit);
}

/*
 * Function commands of set_ftrace_filter (trace_functions.c: ftrace_traceon/
 * traceoff/stacktrace/dump/cpudump probes, called through
 * function_trace_probe_call()). The lab keeps the table sorted by ip;
 * count -1 is "unlimited".
 */
#define PROBE_TRACEON 1
#define PROBE_TRACEOFF 2
#define PROBE_STACKTRACE 3
#define PROBE_DUMP 4
#define PROBE_CPUDUMP 5
#define PROBE_ENABLE_EVENT 6    /* trace_events.c: event_enable_probe(), pad = the file */
#define PROBE_DISABLE_EVENT 7
#define PROBE_SNAPSHOT 8        /* ftrace_snapshot()/ftrace_count_snapshot() */
#define MAX_FUNC_PROBES 512
#define FTRACE_DATA_BASE 0xffff888001080000ul   /* machine/memory.py: event files live here */

struct func_probe_entry {
	unsigned long ip;
	int cmd;
	int pad;
	long count;
};

__used struct func_probe_entry func_probes[MAX_FUNC_PROBES];
__used unsigned int nr_func_probes;
__used int ftrace_dump_request;     /* 1 all CPUs, 2 this CPU: the lab prints the buffer */
__used int ftrace_dump_cpu;

static notrace bool probe_count(long *count)
{
	if (!*count)
		return false;
	if (*count != -1)
		(*count)--;
	return true;
}

notrace void function_trace_probe_call(unsigned long ip, unsigned long parent_ip,
				       struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct trace_buffer *buffer = global_trace_buffer;
	unsigned int lo = 0, hi = nr_func_probes, ctx;
	unsigned long irqflags;
	int bit;

	(void)op;
	(void)fregs;
	bit = trace_test_and_set_recursion(ip, TRACE_FTRACE_START);
	if (bit < 0)
		return;
	while (lo < hi) {                         /* the first entry for ip */
		unsigned int mid = (lo + hi) / 2;

		if (func_probes[mid].ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	ctx = tracing_gen_ctx();
	irqflags = local_irq_save();
	simulate_work_inline(RB_WRITE_COST_NS);
	for (; lo < nr_func_probes && func_probes[lo].ip == ip; lo++) {
		struct func_probe_entry *p = &func_probes[lo];

		switch (p->cmd) {
		case PROBE_TRACEON:       /* counts only when it changes the state */
			if (buffer->record_disabled && probe_count(&p->count))
				buffer->record_disabled = 0;
			break;
		case PROBE_TRACEOFF:
			if (!buffer->record_disabled && probe_count(&p->count))
				buffer->record_disabled = 1;
			break;
		case PROBE_STACKTRACE:
			if (!buffer->record_disabled && probe_count(&p->count))
				ftrace_trace_stack(buffer, ctx, ip, parent_ip);
			break;
		case PROBE_ENABLE_EVENT:        /* event_enable_count_probe(): only a change counts */
		case PROBE_DISABLE_EVENT: {
			struct trace_event_file *file =
				(struct trace_event_file *)(FTRACE_DATA_BASE + (unsigned int)p->pad);
			bool enable = p->cmd == PROBE_ENABLE_EVENT;

			if (enable == !(file->flags & EVENT_FILE_FL_SOFT_DISABLED) || !probe_count(&p->count))
				break;
			if (enable)
				file->flags &= ~EVENT_FILE_FL_SOFT_DISABLED;
			else
				file->flags |= EVENT_FILE_FL_SOFT_DISABLED;
			break;
		}
		case PROBE_SNAPSHOT:
			if (probe_count(&p->count))
				tracing_snapshot_instance_cond();
			break;
		case PROBE_DUMP:
		case PROBE_CPUDUMP:
			if (probe_count(&p->count)) {
				buffer->record_disabled = 1;   /* ftrace_dump() turns tracing off */
				ftrace_dump_request = p->cmd == PROBE_DUMP ? 1 : 2;
				ftrace_dump_cpu = smp_processor_id();
			}
			break;
		}
	}
	local_irq_restore(irqflags);
	trace_clear_recursion(bit);
}


/*
 * The records a Python callback queued in the lab's mailbox page (the probe
 * events' handlers are Python): written here, natively, once the callback has
 * returned, each as trace_event_buffer_reserve()/commit() would.
 *
 *   mailbox+0x80   u32 count
 *   mailbox+0x100  per record: u16 type, u16 length, u32 filtered, payload (8-byte aligned)
 */
#define LAB_MAILBOX 0xffff888000f00000ul        /* machine/memory.py LAB_MAILBOX */
#define LAB_PENDING_COUNT (LAB_MAILBOX + 0x80)
#define LAB_PENDING_RECORDS (LAB_MAILBOX + 0x100)

long lab_python_event_call(long kind, void *file, void *entry, unsigned long size);
static char lab_emit_scratch[4096] __aligned(8);

notrace void lab_emit_pending(void)
{
	unsigned int *count = (unsigned int *)LAB_PENDING_COUNT;
	unsigned char *rec = (unsigned char *)LAB_PENDING_RECORDS;
	unsigned int i;

	for (i = 0; i < *count; i++) {
		unsigned short type = *(unsigned short *)rec, len = *(unsigned short *)(rec + 2);
		unsigned int filtered = *(unsigned int *)(rec + 4);     /* the event has a filter */
		unsigned int ctx = tracing_gen_ctx();
		unsigned long irqflags = local_irq_save();
		struct trace_entry *ent;

		simulate_work_inline(RB_WRITE_COST_NS);
		if (filtered) {         /* trace_buffered_event, and the lab judges the filter */
			ent = (struct trace_entry *)lab_emit_scratch;
			fill_entry(ent, type, ctx);
			memcpy(ent + 1, rec + 8, len);
			if (!lab_python_event_call(2, (void *)(unsigned long)type, ent, sizeof(*ent) + len))
				goto next;
		}
		ent = ring_buffer_lock_reserve(global_trace_buffer, sizeof(*ent) + len, sched_clock());
		if (ent) {
			fill_entry(ent, type, ctx);
			memcpy(ent + 1, rec + 8, len);
			trace_record_cmdline();
			ring_buffer_unlock_commit(global_trace_buffer);
		}
next:
		local_irq_restore(irqflags);
		rec += 8 + ((len + 7u) & ~7u);
	}
	*count = 0;
}
