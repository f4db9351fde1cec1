// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/entry/syscall_64.c for the mini-kernel: x64_sys_call(), the
 * switch over syscall numbers that 6.12 uses instead of an indirect call
 * through sys_call_table. Syscall numbers are x86-64's.
 */
#include "kernel.h"

#define SYSCALLS(X) \
	X(0, read) X(1, write) X(3, close) X(9, mmap) X(24, sched_yield) \
	X(35, nanosleep) X(39, getpid) X(56, clone) X(60, exit) X(61, wait4) \
	X(231, exit_group) X(257, openat)

#define DECLARE(nr, name) long __x64_sys_##name(const struct pt_regs *regs);
SYSCALLS(DECLARE)

long x64_sys_call(const struct pt_regs *regs, unsigned int nr)
{
	switch (nr) {
#define CASE(nr, name) case nr: return __x64_sys_##name(regs);
	SYSCALLS(CASE)
	default: return -ENOSYS;
	}
}
