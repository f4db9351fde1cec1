/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arch/x86/entry/entry_64.S for the mini-kernel: SYSCALL entry, interrupt
 * entry, the return to the interrupted context, context switching and the
 * first return of a forked task.
 *
 * User space performs SYSCALL's register effects (RCX = return RIP,
 * R11 = RFLAGS) and jumps here, see user/workloads.c. The lab delivers an
 * interrupt the way the CPU does: it switches to the task's kernel stack
 * (TSS.sp0 = pcpu_hot.top_of_stack) when the CPU was in user space, pushes
 * SS, RSP, RFLAGS, CS, RIP, clears IF and jumps to the vector's entry.
 *
 * The lab has no privilege levels or GDT, so there is no SWAPGS (%gs is
 * always this CPU's pcpu_hot) and IRETQ/SYSRETQ are done in software by
 * restore_regs_and_return: it moves RIP and RFLAGS onto the target stack,
 * switches to it, then POPFQ; RET. Interrupts only arrive where the lab
 * stops a CPU, never inside that sequence.
 * This file is built without -pg: entry code is noinstr.
 */
#define PCPU_TOP_OF_STACK 0x18
#define PCPU_USER_SP 0x20
#define PCPU_SCRATCH0 0x58
#define PCPU_SCRATCH1 0x60
#define TASK_THREAD_SP 0x60
#define __USER_CS 0x33
#define __USER_DS 0x2b

	.macro PUSH_REGS rax=%rax
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	\rax
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
	.endm

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
	PUSH_REGS rax=$-38		/* pt_regs->ax = -ENOSYS */
	xorl	%ebp, %ebp		/* no frame to unwind into user space */
	movq	%rsp, %rdi
	movslq	%eax, %rsi
	call	do_syscall_64
	jmp	restore_regs_and_return
	.size entry_SYSCALL_64, .-entry_SYSCALL_64

/* Pops pt_regs and returns to the interrupted context (software IRETQ). */
	.globl restore_regs_and_return
	.type restore_regs_and_return, @function
restore_regs_and_return:
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
	addq	$8, %rsp		/* orig_ax; now at ip, cs, flags, sp, ss */
	movq	%rax, %gs:PCPU_SCRATCH0
	movq	%rcx, %gs:PCPU_SCRATCH1
	movq	0x18(%rsp), %rax	/* target stack */
	movq	0x00(%rsp), %rcx	/* ip */
	movq	%rcx, -8(%rax)
	movq	0x10(%rsp), %rcx	/* flags (read before the slot can be reused) */
	movq	%rcx, -16(%rax)
	leaq	-16(%rax), %rsp
	movq	%gs:PCPU_SCRATCH1, %rcx
	movq	%gs:PCPU_SCRATCH0, %rax
	popfq
	ret
	.size restore_regs_and_return, .-restore_regs_and_return

	.macro IDTENTRY_SYSVEC name, cfunc
	.globl \name
	.type \name, @function
	.p2align 4
\name:
	endbr64
	pushq	$-1			/* pt_regs->orig_ax: not a syscall */
	PUSH_REGS
	cld
	movq	%rsp, %rdi
	call	\cfunc
	jmp	restore_regs_and_return
	.size \name, .-\name
	.endm

/* The IDT stubs sit in __irqentry_text, as x86's do: the function_graph printer
 * marks calls of functions there (none is traceable on x86). */
	.pushsection .irqentry.text, "ax"
	IDTENTRY_SYSVEC asm_sysvec_apic_timer_interrupt, sysvec_apic_timer_interrupt
	IDTENTRY_SYSVEC asm_sysvec_reschedule_ipi, sysvec_reschedule_ipi

/*
 * Device interrupts: irq_entries_start holds a 16-byte stub per external vector
 * (IRQ_VECTOR_BASE + irq) that pushes its vector where pt_regs->orig_ax goes and
 * jumps to asm_common_interrupt, which calls common_interrupt(regs, vector).
 */
	.globl irq_entries_start
	.p2align 4
irq_entries_start:
	vector = 0x20
	.rept 16
0:	endbr64
	.byte	0x6a, vector		/* pushq $vector */
	jmp	asm_common_interrupt
	.fill	0b + 16 - ., 1, 0xcc
	vector = vector + 1
	.endr

	.globl asm_common_interrupt
	.type asm_common_interrupt, @function
	.p2align 4
asm_common_interrupt:
	PUSH_REGS
	cld
	movq	%rsp, %rdi
	movq	0x78(%rsp), %rsi	/* pt_regs->orig_ax: the vector */
	call	common_interrupt
	jmp	restore_regs_and_return
	.size asm_common_interrupt, .-asm_common_interrupt
	.popsection

/*
 * __switch_to_asm(prev, next): save prev's callee-saved registers and stack
 * pointer, load next's, and let __switch_to() finish the switch.
 */
	.globl __switch_to_asm
	.type __switch_to_asm, @function
	.p2align 4
__switch_to_asm:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, TASK_THREAD_SP(%rdi)
	movq	TASK_THREAD_SP(%rsi), %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	jmp	__switch_to
	.size __switch_to_asm, .-__switch_to_asm

/* A new task's first switch "returns" here: prev in %rax, pt_regs above. */
	.globl ret_from_fork_asm
	.type ret_from_fork_asm, @function
	.p2align 4
ret_from_fork_asm:
	movq	%rax, %rdi
	movq	%rsp, %rsi
	call	ret_from_fork
	jmp	restore_regs_and_return
	.size ret_from_fork_asm, .-ret_from_fork_asm

/*
 * The lab's vCPU scheduler takes the CPU back here when this CPU's virtual
 * clock passes pcpu_hot.slice_end_ns (like a hypervisor's preemption timer
 * causing a VM exit). HLT stops the emulator; resuming executes the RET.
 */
	.globl paravirt_slice_end
	.type paravirt_slice_end, @function
	.p2align 4
paravirt_slice_end:
	hlt
	ret
	.size paravirt_slice_end, .-paravirt_slice_end

/* The lab calls kernel functions from Python with this as return address. */
	.globl lab_call_return
	.type lab_call_return, @function
lab_call_return:
	hlt
	ud2
	.size lab_call_return, .-lab_call_return
