/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arch/x86/entry/entry_64.S for the mini-kernel: the 64-bit SYSCALL entry.
 *
 * The lab's CPU performs SYSCALL's register effects (RCX = return RIP,
 * R11 = RFLAGS, RIP = entry_SYSCALL_64, see machine/cpu.py). The entry then
 * does what Linux does: switch to the task's kernel stack, build struct
 * pt_regs and call do_syscall_64(regs, nr).
 *
 * Two differences from Linux, both because the lab has no privilege levels:
 * there is no SWAPGS (%gs always points at this CPU's pcpu_hot), and the
 * return path restores RFLAGS from R11 and jumps to RCX instead of SYSRETQ.
 * This file is built without -pg: entry code is noinstr.
 */
#define PCPU_TOP_OF_STACK 0x18
#define PCPU_USER_SP 0x20
#define __USER_CS 0x33
#define __USER_DS 0x2b

	.section .entry.text, "ax"
	.globl entry_SYSCALL_64
	.type entry_SYSCALL_64, @function
	.p2align 6
entry_SYSCALL_64:
	endbr64
	movq	%rsp, %gs:PCPU_USER_SP
	movq	%gs:PCPU_TOP_OF_STACK, %rsp
	.globl entry_SYSCALL_64_safe_stack
entry_SYSCALL_64_safe_stack:
	pushq	$__USER_DS		/* pt_regs->ss */
	pushq	%gs:PCPU_USER_SP	/* pt_regs->sp */
	pushq	%r11			/* pt_regs->flags */
	pushq	$__USER_CS		/* pt_regs->cs */
	pushq	%rcx			/* pt_regs->ip */
	.globl entry_SYSCALL_64_after_hwframe
entry_SYSCALL_64_after_hwframe:
	pushq	%rax			/* pt_regs->orig_ax */
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	$-38			/* pt_regs->ax = -ENOSYS */
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	xorl	%ebp, %ebp		/* no frame to unwind into user space */
	movq	%rsp, %rdi
	movslq	%eax, %rsi
	call	do_syscall_64
	/* Return to user space with the result in pt_regs->ax. */
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rax
	popq	%rcx
	popq	%rdx
	popq	%rsi
	popq	%rdi
	addq	$8, %rsp		/* orig_ax */
	movq	0x00(%rsp), %rcx	/* ip */
	movq	0x10(%rsp), %r11	/* flags */
	movq	0x18(%rsp), %rsp	/* user stack */
	pushq	%r11
	popfq
	jmp	*%rcx
	.size entry_SYSCALL_64, .-entry_SYSCALL_64
