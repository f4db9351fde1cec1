/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arch/x86/kernel/ftrace_64.S for the mini-kernel: __fentry__ and the
 * dynamic-ftrace trampolines (CONFIG_DYNAMIC_FTRACE_WITH_ARGS layout).
 *
 * Every traceable function starts with "endbr64; call __fentry__". At boot
 * ftrace_init() turns each of those calls into a 5-byte NOP; enabling a
 * tracer turns chosen sites into "call ftrace_caller" (or a per-ops copy of
 * it). ftrace_caller saves the argument registers in a struct ftrace_regs
 * shaped like pt_regs and calls the ops function through the "ftrace_call"
 * site, which is itself patched at run time.
 *
 * Layout of the frame ftrace_caller builds (offsets from %rsp after the
 * subq): the pt_regs slots r15..ss, FRAME_SIZE = 168 bytes.
 * The trampoline charges its own cost to the virtual clock, so tracing
 * overhead is visible in the numbers, as on real hardware.
 */
#define PTREGS_R15	0x00
#define PTREGS_R14	0x08
#define PTREGS_R13	0x10
#define PTREGS_R12	0x18
#define PTREGS_BP	0x20
#define PTREGS_BX	0x28
#define PTREGS_R11	0x30
#define PTREGS_R10	0x38
#define PTREGS_R9	0x40
#define PTREGS_R8	0x48
#define PTREGS_AX	0x50
#define PTREGS_CX	0x58
#define PTREGS_DX	0x60
#define PTREGS_SI	0x68
#define PTREGS_DI	0x70
#define PTREGS_ORIG_AX	0x78
#define PTREGS_IP	0x80
#define PTREGS_CS	0x88
#define PTREGS_FLAGS	0x90
#define PTREGS_SP	0x98
#define PTREGS_SS	0xa0
#define FRAME_SIZE	0xa8
#define MCOUNT_INSN_SIZE 5
#define __KERNEL_CS	0x10
#define __KERNEL_DS	0x18
/* Virtual time the trampoline itself costs (saving and restoring registers). */
#define FTRACE_CALLER_COST_NS 20
#define PCPU_CLOCK_NS	0x28	/* struct pcpu_hot, include/kernel.h */
#define PCPU_SLICE_END	0x40

/*
 * save_mcount_regs: a frame-pointer frame, then a pt_regs-shaped area with
 * the argument registers. The copies create_trampoline() makes of these
 * trampolines run at other addresses, so everything in them is
 * position-independent except the two places it patches: the ops load at
 * *_op_ptr and the call at ftrace_call / ftrace_regs_call.
 */
	.macro save_mcount_regs
	pushq	%rbp
	movq	%rsp, %rbp
	subq	$FRAME_SIZE, %rsp
	movq	%rax, PTREGS_AX(%rsp)
	movq	%rcx, PTREGS_CX(%rsp)
	movq	%rdx, PTREGS_DX(%rsp)
	movq	%rsi, PTREGS_SI(%rsp)
	movq	%rdi, PTREGS_DI(%rsp)
	movq	%r8, PTREGS_R8(%rsp)
	movq	%r9, PTREGS_R9(%rsp)
	movq	$0, PTREGS_ORIG_AX(%rsp)
	/*
	 * Charge the trampoline's own cost: tracing overhead shows in the clock.
	 * No slice-end check here (it would split the block): the traced
	 * function's own cost accounting checks it a few instructions later.
	 */
	addq	$FTRACE_CALLER_COST_NS, %gs:PCPU_CLOCK_NS
	movq	(%rbp), %rdx
	movq	%rdx, PTREGS_BP(%rsp)
	movq	8(%rbp), %rdi		/* return address into the traced function */
	movq	%rdi, PTREGS_IP(%rsp)
	subq	$MCOUNT_INSN_SIZE, %rdi	/* ip = the call site */
	movq	16(%rbp), %rsi		/* parent_ip */
	leaq	16(%rbp), %rdx
	movq	%rdx, PTREGS_SP(%rsp)
	.endm

	.macro restore_mcount_regs
	movq	PTREGS_R9(%rsp), %r9
	movq	PTREGS_R8(%rsp), %r8
	movq	PTREGS_DI(%rsp), %rdi
	movq	PTREGS_SI(%rsp), %rsi
	movq	PTREGS_DX(%rsp), %rdx
	movq	PTREGS_CX(%rsp), %rcx
	movq	PTREGS_AX(%rsp), %rax
	addq	$FRAME_SIZE, %rsp
	popq	%rbp
	.endm

	.text
	.globl __fentry__
	.type __fentry__, @function
	.p2align 4
__fentry__:
	endbr64
	ret
	.size __fentry__, .-__fentry__

/* ftrace_caller(): func(ip, parent_ip, op, fregs) with the argument registers. */
	.globl ftrace_caller
	.type ftrace_caller, @function
	.p2align 4
ftrace_caller:
	endbr64
	save_mcount_regs
	.globl ftrace_caller_op_ptr
ftrace_caller_op_ptr:
	movq	function_trace_op(%rip), %rdx
	movq	%rsp, %rcx		/* struct ftrace_regs * */
	.globl ftrace_call
ftrace_call:
	call	ftrace_stub
	restore_mcount_regs
	.globl ftrace_caller_end
ftrace_caller_end:
	jmp	ftrace_epilogue
	.size ftrace_caller, .-ftrace_caller

/*
 * ftrace_regs_caller(): a full struct pt_regs, for ops with SAVE_REGS. An
 * IPMODIFY handler may change regs->ip: the trampoline then "returns" to
 * the new address instead of the traced function's body (livepatch).
 */
	.globl ftrace_regs_caller
	.type ftrace_regs_caller, @function
	.p2align 4
ftrace_regs_caller:
	endbr64
	save_mcount_regs
	movq	%r15, PTREGS_R15(%rsp)
	movq	%r14, PTREGS_R14(%rsp)
	movq	%r13, PTREGS_R13(%rsp)
	movq	%r12, PTREGS_R12(%rsp)
	movq	%r11, PTREGS_R11(%rsp)
	movq	%r10, PTREGS_R10(%rsp)
	movq	%rbx, PTREGS_BX(%rsp)
	movq	$__KERNEL_CS, PTREGS_CS(%rsp)
	movq	$__KERNEL_DS, PTREGS_SS(%rsp)
	pushfq
	popq	%r8
	movq	%r8, PTREGS_FLAGS(%rsp)
	.globl ftrace_regs_caller_op_ptr
ftrace_regs_caller_op_ptr:
	movq	function_trace_op(%rip), %rdx
	leaq	(%rsp), %rcx		/* struct pt_regs * */
	.globl ftrace_regs_call
ftrace_regs_call:
	call	ftrace_stub
	movq	PTREGS_IP(%rsp), %rax	/* the handler may have moved ip */
	movq	%rax, 8(%rbp)
	movq	PTREGS_R15(%rsp), %r15
	movq	PTREGS_R14(%rsp), %r14
	movq	PTREGS_R13(%rsp), %r13
	movq	PTREGS_R12(%rsp), %r12
	movq	PTREGS_R11(%rsp), %r11
	movq	PTREGS_R10(%rsp), %r10
	movq	PTREGS_BX(%rsp), %rbx
	restore_mcount_regs
	.globl ftrace_regs_caller_end
ftrace_regs_caller_end:
	jmp	ftrace_epilogue
	.size ftrace_regs_caller, .-ftrace_regs_caller

	.globl ftrace_epilogue
	.type ftrace_epilogue, @function
ftrace_epilogue:
	ret
	.size ftrace_epilogue, .-ftrace_epilogue

	.globl ftrace_stub
	.type ftrace_stub, @function
	.p2align 4
ftrace_stub:
	endbr64
	ret
	.size ftrace_stub, .-ftrace_stub

/*
 * return_to_handler: where a function the graph tracer took returns to
 * (prepare_ftrace_return() put it in the return slot). It saves the return
 * values (struct fgraph_ret_regs: ax, dx, bp; and ip, set to the real return
 * address before the retfuncs run, as 6.14's ftrace_regs are), asks
 * ftrace_return_to_handler() for the real return address and goes there
 * by a call whose return slot it overwrites, as 6.12 does: that keeps the
 * return stack buffer balanced, and a jmp *%rdi would need an ENDBR at the
 * target under IBT.
 */
	.globl return_to_handler
	.type return_to_handler, @function
	.p2align 4
return_to_handler:
	subq	$32, %rsp		/* ax, dx, bp, and ip: the real return address */
	movq	%rax, 0(%rsp)
	movq	%rdx, 8(%rsp)
	movq	%rbp, 16(%rsp)
	movq	$0, 24(%rsp)
	movq	%rsp, %rdi
	call	ftrace_return_to_handler
	movq	%rax, %rdi
	movq	8(%rsp), %rdx
	movq	0(%rsp), %rax
	addq	$32, %rsp
	call	.Ldo_rop
	int3
.Ldo_rop:
	movq	%rdi, (%rsp)
	ret
	.size return_to_handler, .-return_to_handler

/*
 * The ops function of every ftrace_ops whose callback is Python. It leaves
 * its four arguments in the lab's mailbox page (memory the host reads
 * directly) and the lab's hook on lab_python_hook runs the callback
 * (machine/hooks.py). Records the callback queued (a kprobe event's) are
 * written by a tail call of lab_emit_pending(); otherwise it clobbers only %rax.
 */
#define LAB_MAILBOX 0xffff888000f00000	/* machine/memory.py LAB_MAILBOX */
	.globl lab_python_func
	.type lab_python_func, @function
	.p2align 4
lab_python_func:
	endbr64
	movabsq	$LAB_MAILBOX, %rax
	movq	%rdi, 0x00(%rax)
	movq	%rsi, 0x08(%rax)
	movq	%rdx, 0x10(%rax)
	movq	%rcx, 0x18(%rax)
	.globl lab_python_hook
lab_python_hook:
	cmpl	$0, 0x80(%rax)			/* records queued by the callback? */
	jne	lab_emit_pending
	ret
	.size lab_python_func, .-lab_python_func

/*
 * lab_kprobe_emit: where the lab sends a CPU after an int3 kprobe's handlers
 * queued records, with the address to resume at pushed: it writes them with
 * every register and the flags kept, then returns there.
 */
	.globl lab_kprobe_emit
	.type lab_kprobe_emit, @function
	.p2align 4
lab_kprobe_emit:
	pushfq
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	call	lab_emit_pending
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	popfq
	ret
	.size lab_kprobe_emit, .-lab_kprobe_emit

/*
 * lab_python_graph_call(kind, trace, gops, data, fregs): the same for a Python
 * fgraph_ops (kernel/trace/fgraph.c); the callback leaves its answer in the
 * mailbox's sixth word, returned in %rax.
 */
	.globl lab_python_graph_call
	.type lab_python_graph_call, @function
	.p2align 4
lab_python_graph_call:
	endbr64
	movabsq	$LAB_MAILBOX, %rax
	movq	%rdi, 0x00(%rax)
	movq	%rsi, 0x08(%rax)
	movq	%rdx, 0x10(%rax)
	movq	%rcx, 0x18(%rax)
	movq	%r8, 0x20(%rax)
	movq	$0, 0x28(%rax)
	.globl lab_python_graph_hook
lab_python_graph_hook:
	movq	0x28(%rax), %rax
	ret
	.size lab_python_graph_call, .-lab_python_graph_call

/*
 * lab_python_event_call(kind, file, entry, size): a trace event's record for the
 * lab to judge (kind 1: its filter); the answer comes back in %rax.
 */
	.globl lab_python_event_call
	.type lab_python_event_call, @function
	.p2align 4
lab_python_event_call:
	endbr64
	movabsq	$LAB_MAILBOX, %rax
	movq	%rdi, 0x00(%rax)
	movq	%rsi, 0x08(%rax)
	movq	%rdx, 0x10(%rax)
	movq	%rcx, 0x18(%rax)
	movq	$1, 0x28(%rax)
	.globl lab_python_event_hook
lab_python_event_hook:
	movq	0x28(%rax), %rax
	ret
	.size lab_python_event_call, .-lab_python_event_call

	.data
	.p2align 3
	.globl function_trace_op
function_trace_op:
	.quad ftrace_list_end
