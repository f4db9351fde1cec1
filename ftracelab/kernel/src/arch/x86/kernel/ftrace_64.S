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
#define PTREGS_BP	0x20
#define PTREGS_R9	0x40
#define PTREGS_R8	0x48
#define PTREGS_AX	0x50
#define PTREGS_CX	0x58
#define PTREGS_DX	0x60
#define PTREGS_SI	0x68
#define PTREGS_DI	0x70
#define PTREGS_ORIG_AX	0x78
#define PTREGS_IP	0x80
#define PTREGS_SP	0x98
#define FRAME_SIZE	0xa8
#define MCOUNT_INSN_SIZE 5
/* Virtual time the trampoline itself costs (saving and restoring registers). */
#define FTRACE_CALLER_COST_NS 20

	.text
	.globl __fentry__
	.type __fentry__, @function
	.p2align 4
__fentry__:
	endbr64
	ret
	.size __fentry__, .-__fentry__

	.globl ftrace_caller
	.type ftrace_caller, @function
	.p2align 4
ftrace_caller:
	endbr64
	/* save_mcount_regs: two fake frames keep frame-pointer unwinding sane */
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
	movl	$FTRACE_CALLER_COST_NS, %edi	/* tracing overhead shows in the clock */
	call	simulate_work
	movq	(%rbp), %rdx
	movq	%rdx, PTREGS_BP(%rsp)
	movq	8(%rbp), %rdi		/* return address into the traced function */
	movq	%rdi, PTREGS_IP(%rsp)
	subq	$MCOUNT_INSN_SIZE, %rdi	/* ip = the call site */
	movq	16(%rbp), %rsi		/* parent_ip */
	leaq	16(%rbp), %rdx
	movq	%rdx, PTREGS_SP(%rsp)
	.globl ftrace_caller_op_ptr
ftrace_caller_op_ptr:
	movq	function_trace_op(%rip), %rdx
	movq	%rsp, %rcx		/* struct ftrace_regs * */
	.globl ftrace_call
ftrace_call:
	call	ftrace_stub
	/* restore_mcount_regs */
	movq	PTREGS_R9(%rsp), %r9
	movq	PTREGS_R8(%rsp), %r8
	movq	PTREGS_DI(%rsp), %rdi
	movq	PTREGS_SI(%rsp), %rsi
	movq	PTREGS_DX(%rsp), %rdx
	movq	PTREGS_CX(%rsp), %rcx
	movq	PTREGS_AX(%rsp), %rax
	addq	$FRAME_SIZE, %rsp
	popq	%rbp
	.globl ftrace_caller_end
ftrace_caller_end:
	jmp	ftrace_epilogue
	.size ftrace_caller, .-ftrace_caller

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

	.data
	.p2align 3
	.globl function_trace_op
function_trace_op:
	.quad 0
