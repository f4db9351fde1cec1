// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/trace/fgraph.c (Linux 6.12) for the mini-kernel: the function-graph
 * shadow stack and its users, the fgraph_ops.
 *
 *   ftrace_graph_func       the graph ops' callback at a traced function's
 *                           entry: hijacks its return address
 *                           (arch/x86/kernel/ftrace.c prepare_ftrace_return)
 *   function_graph_enter    pushes an ftrace_ret_stack frame, asks every
 *                           fgraph_ops whether it wants the call, writes the
 *                           bitmap word
 *   ftrace_return_to_handler  (from return_to_handler in ftrace_64.S) pops
 *                           the frame, calls the retfuncs, gives back the
 *                           real return address
 *   fgraph_reserve_data / fgraph_retrieve_data  an fgraph_ops' own words
 *   fgraph_register_slot / fgraph_unregister_slot  register_ftrace_graph()'s
 *                           part that is not code patching: the LRU slot and
 *                           the per-task shadow stacks (the lab patches)
 *
 * The word layout is described (and decoded) in the lab's trace/fgraph.py.
 * Two simplifications, said plainly: the shadow stacks come from one static
 * pool, one per task_table slot, instead of kmem_cache "fgraph_stack"; and
 * function_graph_enter() always loops over the fgraph_ops instead of using
 * the static call the kernel takes when only one is registered (same result).
 */
#include "fgraph.h"

#define SHADOW_STACK_SIZE 4096
#define SHADOW_STACK_OFFSET (SHADOW_STACK_SIZE / sizeof(long))
#define FGRAPH_FRAME_SIZE sizeof(struct ftrace_ret_stack)
#define FGRAPH_FRAME_OFFSET (FGRAPH_FRAME_SIZE / sizeof(long))
#define FGRAPH_ARRAY_SIZE 16
#define SHADOW_STACK_MAX_OFFSET (SHADOW_STACK_OFFSET - (FGRAPH_FRAME_OFFSET + 1 + FGRAPH_ARRAY_SIZE))
#define SHADOW_STACK_TASK_VARS(rs) (&(rs)[SHADOW_STACK_OFFSET - FGRAPH_ARRAY_SIZE])

#define FGRAPH_FRAME_OFFSET_MASK 0x3fful
#define FGRAPH_TYPE_SHIFT 10
#define FGRAPH_TYPE_MASK 0x3ul
#define FGRAPH_TYPE_RESERVED 0ul
#define FGRAPH_TYPE_BITMAP 1ul
#define FGRAPH_TYPE_DATA 2ul
#define FGRAPH_INDEX_SHIFT 12
#define FGRAPH_INDEX_MASK 0xfffful
#define FGRAPH_DATA_SHIFT 12
#define FGRAPH_DATA_MASK 0x1ful
#define FGRAPH_MAX_DATA_SIZE (sizeof(long) * 32)
#define FGRAPH_DATA_INDEX_SHIFT 17
#define FGRAPH_DATA_INDEX_MASK 0xful

/* arch/x86/include/asm/ftrace.h: what return_to_handler saves */
struct fgraph_ret_regs {
	unsigned long ax;
	unsigned long dx;
	unsigned long bp;
	unsigned long ip;       /* the lab's: the return address, for the retfuncs (6.14 fregs) */
};

extern char return_to_handler[];
void ftrace_graph_func(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *op,
		       struct ftrace_regs *fregs);

__used struct fgraph_ops *fgraph_array[FGRAPH_ARRAY_SIZE];   /* NULL: fgraph_stub */
__used unsigned long fgraph_array_bitmask;
__used int fgraph_lru_table[FGRAPH_ARRAY_SIZE] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
__used int fgraph_lru_next;
__used int fgraph_lru_last;
__used int ftrace_graph_active;
__used int kill_ftrace_graph;         /* ftrace_graph_stop(): a bad frame was found */
__used unsigned long fgraph_stacks[MAX_TASKS][SHADOW_STACK_OFFSET] __aligned(4096);

/* Where the lab finds these fields (trace/fgraph.py reads this table). */
__used const unsigned short fgraph_lab_offsets[] = {
	MAX_TASKS,
	sizeof(struct task_struct),
	__builtin_offsetof(struct task_struct, comm),
	__builtin_offsetof(struct task_struct, ret_stack),
	__builtin_offsetof(struct task_struct, curr_ret_stack),
	__builtin_offsetof(struct task_struct, curr_ret_depth),
	__builtin_offsetof(struct task_struct, trace_overrun),
	sizeof(struct fgraph_ops),
	__builtin_offsetof(struct fgraph_ops, ops),
	__builtin_offsetof(struct fgraph_ops, idx),
	__builtin_offsetof(struct fgraph_ops, nr_entries),
	__builtin_offsetof(struct fgraph_ops, lab_data_size),
};

static __always_inline unsigned long *ret_stack_of(struct task_struct *t)
{
	return (unsigned long *)t->ret_stack;
}

/* ---- slots and stacks (register_ftrace_graph / unregister_ftrace_graph) ---- */

notrace int fgraph_lru_alloc_index(void)
{
	int idx = fgraph_lru_table[fgraph_lru_next];

	if (idx == -1)
		return -1;
	fgraph_lru_table[fgraph_lru_next] = -1;
	fgraph_lru_next = (fgraph_lru_next + 1) % FGRAPH_ARRAY_SIZE;
	fgraph_array_bitmask |= 1ul << idx;
	return idx;
}

notrace int fgraph_lru_release_index(int idx)
{
	if (idx < 0 || idx >= FGRAPH_ARRAY_SIZE || fgraph_lru_table[fgraph_lru_last] != -1)
		return -1;
	fgraph_lru_table[fgraph_lru_last] = idx;
	fgraph_lru_last = (fgraph_lru_last + 1) % FGRAPH_ARRAY_SIZE;
	fgraph_array_bitmask &= ~(1ul << idx);
	return 0;
}

static notrace void graph_init_task(struct task_struct *t, unsigned long *ret_stack)
{
	unsigned long *vars = SHADOW_STACK_TASK_VARS(ret_stack);
	int i;

	t->trace_overrun = 0;
	t->ftrace_timestamp = 0;
	for (i = 0; i < FGRAPH_ARRAY_SIZE; i++)
		vars[i] = 0;
	t->curr_ret_stack = 0;
	t->curr_ret_depth = -1;
	barrier();
	t->ret_stack = ret_stack;
}

/* ftrace_graph_init_task(): a new task gets a stack while graph tracing is on. */
notrace void ftrace_graph_init_task(struct task_struct *t)
{
	t->ret_stack = NULL;
	t->curr_ret_stack = 0;
	t->curr_ret_depth = -1;
	if (ftrace_graph_active)
		graph_init_task(t, fgraph_stacks[t - task_table]);
}

/* The frames of a task that exits mid-call (do_exit() never returns) go with it. */
__used unsigned long fgraph_frames_dropped;

notrace void ftrace_graph_exit_task(struct task_struct *t)
{
	if (t->ret_stack)
		fgraph_frames_dropped += t->curr_ret_depth + 1;
	t->ret_stack = NULL;
}

/* start_graph_tracing(): every task that has none gets a shadow stack. */
static notrace void start_graph_tracing(void)
{
	int i;

	for (i = 0; i < MAX_TASKS; i++)
		if (task_table[i].used && !task_table[i].ret_stack)
			graph_init_task(&task_table[i], fgraph_stacks[i]);
}

/* The slot and stacks of register_ftrace_graph(); the lab then patches the sites. */
notrace int fgraph_register_slot(struct fgraph_ops *gops)
{
	int idx = fgraph_lru_alloc_index();

	if (idx < 0)
		return -ENOSPC;
	gops->idx = idx;
	fgraph_array[idx] = gops;
	if (!ftrace_graph_active++)
		start_graph_tracing();
	return idx;
}

notrace void fgraph_unregister_slot(struct fgraph_ops *gops)
{
	if (gops->idx < 0 || gops->idx >= FGRAPH_ARRAY_SIZE || fgraph_array[gops->idx] != gops)
		return;
	fgraph_array[gops->idx] = NULL;
	fgraph_lru_release_index(gops->idx);
	gops->idx = -1;
	ftrace_graph_active--;
}

/* ---- the shadow stack ---- */

static __always_inline int get_frame_offset(struct task_struct *t, int offset)
{
	return ret_stack_of(t)[offset] & FGRAPH_FRAME_OFFSET_MASK;
}

static __always_inline int get_type(unsigned long val)
{
	return (val >> FGRAPH_TYPE_SHIFT) & FGRAPH_TYPE_MASK;
}

static __always_inline int get_data_size(unsigned long val)
{
	return ((val >> FGRAPH_DATA_SHIFT) & FGRAPH_DATA_MASK) + 1;
}

/* get_ret_stack(): the frame below @offset, its offset in *frame_offset. */
static notrace struct ftrace_ret_stack *get_ret_stack(struct task_struct *t, int offset, int *frame_offset)
{
	int offs;

	if (offset <= 0)
		return NULL;
	offs = get_frame_offset(t, --offset);
	if (offs <= 0 || offs > offset)
		return NULL;
	offset -= offs;
	*frame_offset = offset;
	return (struct ftrace_ret_stack *)&ret_stack_of(t)[offset];
}

static notrace int ftrace_push_return_trace(unsigned long ret, unsigned long func, unsigned long *retp)
{
	struct task_struct *t = current;
	struct ftrace_ret_stack *ret_stack;
	unsigned long val = (FGRAPH_TYPE_RESERVED << FGRAPH_TYPE_SHIFT) | FGRAPH_FRAME_OFFSET;
	unsigned long long calltime;
	int offset;

	if (unlikely(kill_ftrace_graph) || !t->ret_stack)
		return -EBUSY;
	if (t->curr_ret_stack + FGRAPH_FRAME_OFFSET + 1 >= SHADOW_STACK_MAX_OFFSET) {
		t->trace_overrun++;
		return -EBUSY;
	}
	calltime = sched_clock();                 /* trace_clock_local() */
	offset = t->curr_ret_stack;
	ret_stack = (struct ftrace_ret_stack *)&ret_stack_of(t)[offset];
	offset += FGRAPH_FRAME_OFFSET;
	ret_stack_of(t)[offset] = val;            /* reserved, pointing at the frame */
	ret_stack->ret = ret;
	barrier();
	t->curr_ret_stack = offset + 1;
	barrier();
	ret_stack_of(t)[offset] = val;            /* again, in case an interrupt came in */
	ret_stack->ret = ret;
	ret_stack->func = func;
	ret_stack->calltime = calltime;
	ret_stack->retp = retp;
	return offset;
}

/* ftrace_graph_get_ret_stack(): the @idx'th frame from the top (0: the newest). */
notrace struct ftrace_ret_stack *ftrace_graph_get_ret_stack(struct task_struct *task, int idx)
{
	struct ftrace_ret_stack *ret_stack = NULL;
	int offset = task->curr_ret_stack;

	if (offset < 0)
		return NULL;
	do {
		ret_stack = get_ret_stack(task, offset, &offset);
	} while (ret_stack && --idx >= 0);
	return ret_stack;
}

notrace int function_graph_enter(unsigned long ret, unsigned long func, unsigned long frame_pointer,
				 unsigned long *retp, struct ftrace_regs *fregs)
{
	struct task_struct *t = current;
	struct ftrace_graph_ent trace;
	unsigned long bitmap = 0, mask;
	int offset, i;

	(void)frame_pointer;
	trace.func = func;
	trace.depth = ++t->curr_ret_depth;
	offset = ftrace_push_return_trace(ret, func, retp);
	if (offset < 0)
		goto out;
	for (mask = fgraph_array_bitmask; mask; mask &= mask - 1) {    /* for_each_set_bit() */
		struct fgraph_ops *gops;
		int save_curr_ret_stack;

		i = __builtin_ctzl(mask);
		gops = fgraph_array[i];
		if (!gops)
			continue;
		save_curr_ret_stack = t->curr_ret_stack;
		if (ftrace_ops_test(&gops->ops, func, NULL) && gops->entryfunc(&trace, gops, fregs))
			bitmap |= 1ul << i;
		else
			t->curr_ret_stack = save_curr_ret_stack;   /* drop any data it reserved */
	}
	if (!bitmap)
		goto out_ret;
	/* bit 0 always: fgraph_idx 0 doubles as the tail-call mark */
	ret_stack_of(t)[offset] = ((bitmap | 1) << FGRAPH_INDEX_SHIFT) |
				  (FGRAPH_TYPE_BITMAP << FGRAPH_TYPE_SHIFT) | FGRAPH_FRAME_OFFSET;
	return 0;
out_ret:
	t->curr_ret_stack -= FGRAPH_FRAME_OFFSET + 1;
out:
	t->curr_ret_depth--;
	return -EBUSY;
}

notrace void *fgraph_reserve_data(int idx, int size_bytes)
{
	struct task_struct *t = current;
	int curr_ret_stack = t->curr_ret_stack, data_size;
	unsigned long val;
	void *data;

	if (size_bytes > (int)FGRAPH_MAX_DATA_SIZE)
		return NULL;
	data_size = (size_bytes + sizeof(long) - 1) / sizeof(long);
	val = ret_stack_of(t)[curr_ret_stack - 1];
	data = &ret_stack_of(t)[curr_ret_stack];
	curr_ret_stack += data_size + 1;
	if (unlikely(curr_ret_stack >= (int)SHADOW_STACK_MAX_OFFSET))
		return NULL;
	val = ((unsigned long)idx << FGRAPH_DATA_INDEX_SHIFT) |
	      ((unsigned long)(data_size - 1) << FGRAPH_DATA_SHIFT) |
	      (FGRAPH_TYPE_DATA << FGRAPH_TYPE_SHIFT) | ((val & FGRAPH_FRAME_OFFSET_MASK) + data_size + 1);
	ret_stack_of(t)[curr_ret_stack - 1] = val;
	barrier();
	t->curr_ret_stack = curr_ret_stack;
	ret_stack_of(t)[curr_ret_stack - 1] = val;
	return data;
}

/* fgraph_retrieve_parent_data(): @depth 0 is the current function. */
notrace void *fgraph_retrieve_parent_data(int idx, int *size_bytes, int depth)
{
	struct task_struct *t = current;
	struct ftrace_ret_stack *ret_stack = NULL;
	int offset = t->curr_ret_stack, next_offset;
	unsigned long val;

	for (;;) {
		ret_stack = get_ret_stack(t, offset, &next_offset);
		if (!ret_stack || --depth < 0)
			break;
		offset = next_offset;
	}
	if (!ret_stack)
		return NULL;
	offset--;
	val = ret_stack_of(t)[offset];
	while (get_type(val) == FGRAPH_TYPE_DATA) {
		if ((int)((val >> FGRAPH_DATA_INDEX_SHIFT) & FGRAPH_DATA_INDEX_MASK) == idx) {
			if (size_bytes)
				*size_bytes = get_data_size(val) * sizeof(long);
			return &ret_stack_of(t)[offset - get_data_size(val)];
		}
		offset -= get_data_size(val) + 1;
		val = ret_stack_of(t)[offset];
	}
	return NULL;
}

notrace void *fgraph_retrieve_data(int idx, int *size_bytes)
{
	return fgraph_retrieve_parent_data(idx, size_bytes, 0);
}

notrace unsigned long *fgraph_get_task_var(struct fgraph_ops *gops)
{
	return &SHADOW_STACK_TASK_VARS(ret_stack_of(current))[gops->idx];
}

/* A frame that does not chain: the kernel WARNs and returns to panic(). */
notrace __noreturn void fgraph_bad_return(void)
{
	for (;;)
		asm volatile("ud2");
}

/* __ftrace_return_to_handler(): called by return_to_handler with the saved ax/dx/bp. */
notrace unsigned long ftrace_return_to_handler(struct fgraph_ret_regs *ret_regs)
{
	struct task_struct *t = current;
	struct ftrace_ret_stack *ret_stack;
	struct ftrace_graph_ret trace;
	unsigned long bitmap, ret;
	int offset;

	ret_stack = get_ret_stack(t, t->curr_ret_stack, &offset);
	if (unlikely(!ret_stack)) {
		kill_ftrace_graph = 1;                 /* ftrace_graph_stop() */
		return (unsigned long)fgraph_bad_return;
	}
	offset += FGRAPH_FRAME_OFFSET;
	ret = ret_stack->ret;
	trace.func = ret_stack->func;
	trace.calltime = ret_stack->calltime;
	trace.overrun = t->trace_overrun;
	trace.depth = t->curr_ret_depth;
	trace.rettime = sched_clock();
	trace.retval = ret_regs->ax;
	ret_regs->ip = ret;
	bitmap = (ret_stack_of(t)[offset] >> FGRAPH_INDEX_SHIFT) & FGRAPH_INDEX_MASK;
	for (; bitmap; bitmap &= bitmap - 1) {                      /* for_each_set_bit() */
		struct fgraph_ops *gops = fgraph_array[__builtin_ctzl(bitmap)];

		if (gops)
			gops->retfunc(&trace, gops, (struct ftrace_regs *)ret_regs);
	}
	barrier();
	t->curr_ret_stack = offset - FGRAPH_FRAME_OFFSET;
	t->curr_ret_depth--;
	return ret;
}

/*
 * arch/x86/kernel/ftrace.c: the graph ops' function. fregs->sp points at the
 * traced function's return address (its caller's return slot): swap in
 * return_to_handler when an fgraph_ops takes the call.
 */
notrace void ftrace_graph_func(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *op,
			       struct ftrace_regs *fregs)
{
	unsigned long *parent = (unsigned long *)((unsigned long *)fregs)[FREGS_SP_SLOT];
	int bit;

	(void)parent_ip;
	(void)op;
	if (unlikely(kill_ftrace_graph) || unlikely(current->tracing_graph_pause))
		return;
	bit = trace_test_and_set_recursion(ip, TRACE_FTRACE_START);
	if (bit < 0)
		return;
	if (!function_graph_enter(*parent, ip, 0, parent, fregs))
		*parent = (unsigned long)return_to_handler;
	trace_clear_recursion(bit);
}

/*
 * sleep-time off (options/sleep-time 0): a task's calls do not count the time
 * it slept (ftrace_graph_probe_sched_switch(), run at every switch while
 * graph tracing is on): the frames of the task switched in get their
 * calltime moved by how long it was out.
 */
__used int fgraph_sleep_time = 1;

notrace void ftrace_graph_probe_sched_switch(struct task_struct *prev, struct task_struct *next)
{
	unsigned long long timestamp;
	int offset;

	if (fgraph_sleep_time)
		return;
	timestamp = sched_clock();
	prev->ftrace_timestamp = timestamp;
	if (!next->ftrace_timestamp || !next->ret_stack)
		return;
	timestamp -= next->ftrace_timestamp;
	for (offset = next->curr_ret_stack; offset > 0; ) {
		struct ftrace_ret_stack *ret_stack = get_ret_stack(next, offset, &offset);

		if (!ret_stack)
			break;
		ret_stack->calltime += timestamp;
	}
}

/* ---- the lab's native fgraph_ops: counts, and checks its reserved data ---- */

notrace int lab_graph_entry(struct ftrace_graph_ent *trace, struct fgraph_ops *gops, struct ftrace_regs *fregs)
{
	(void)fregs;
	unsigned long *data = fgraph_reserve_data(gops->idx, sizeof(long));

	if (!data)
		return 0;
	*data = trace->func;
	gops->nr_entries++;
	return 1;
}

/*
 * Bit 0 of every bitmap is set, so the fgraph_ops in slot 0 also gets the
 * returns of calls only others took, as in the kernel: with no data of its
 * own on the frame, it counts them apart.
 */
notrace void lab_graph_return(struct ftrace_graph_ret *trace, struct fgraph_ops *gops, struct ftrace_regs *fregs)
{
	int size = 0;
	unsigned long *data = fgraph_retrieve_data(gops->idx, &size);

	(void)fregs;
	if (!data) {
		gops->nr_unclaimed++;
		return;
	}
	if (size != sizeof(long) || *data != trace->func)
		gops->nr_bad_data++;
	gops->nr_returns++;
	gops->total_ns += trace->rettime - trace->calltime;
}

/*
 * The lab's Python fgraph_ops: these two are its entryfunc and retfunc, and
 * lab_python_graph_call (ftrace_64.S) hands (trace, gops, data) to the
 * Python callback, whose answer comes back as the return value. The data
 * (gops->lab_data_size bytes, 0: none) is reserved on the shadow stack at
 * entry, before the callback fills it, and retrieved at the return.
 */
long lab_python_graph_call(long kind, void *trace, struct fgraph_ops *gops, void *data,
			   struct ftrace_regs *fregs);
void lab_emit_pending(void);

notrace int lab_python_graph_entry(struct ftrace_graph_ent *trace, struct fgraph_ops *gops,
				   struct ftrace_regs *fregs)
{
	void *data = NULL;
	int taken;

	if (gops->lab_data_size) {
		data = fgraph_reserve_data(gops->idx, gops->lab_data_size);
		if (!data) {            /* the stack is full: the callback counts a miss */
			lab_python_graph_call(1, trace, gops, NULL, fregs);
			return 0;
		}
	}
	taken = lab_python_graph_call(1, trace, gops, data, fregs) != 0;
	lab_emit_pending();             /* the records the callback queued */
	return taken;
}

notrace void lab_python_graph_return(struct ftrace_graph_ret *trace, struct fgraph_ops *gops,
				     struct ftrace_regs *fregs)
{
	int size = 0;
	void *data = gops->lab_data_size ? fgraph_retrieve_data(gops->idx, &size) : NULL;

	/* bit 0 of every bitmap: the ops in slot 0 also sees returns it never took */
	if (gops->lab_data_size && !data)
		return;
	lab_python_graph_call(2 | (long)size << 8, trace, gops, data, fregs);   /* kind, and the data's size */
	lab_emit_pending();
}
