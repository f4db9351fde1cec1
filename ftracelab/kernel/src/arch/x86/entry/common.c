// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/entry/common.c for the mini-kernel: do_syscall_64().
 * noinstr in Linux 6.12, so never in available_filter_functions.
 */
#include "kernel.h"

long x64_sys_call(const struct pt_regs *regs, unsigned int nr);

#define NR_syscalls 512

__used noinstr void do_syscall_64(struct pt_regs *regs, int nr)
{
	struct pcpu_hot *cpu = this_cpu();

	cpu->nr_syscalls++;
	simulate_work(60); /* entry, exit and the mitigations around them */
	if (likely((unsigned int)nr < NR_syscalls))
		regs->ax = x64_sys_call(regs, nr);
}
