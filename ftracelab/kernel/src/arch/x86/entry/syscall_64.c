// SPDX-License-Identifier: Apache-2.0
/*
 * arch/x86/entry/syscall_64.c for the mini-kernel: x64_sys_call(), the
 * switch over syscall numbers that 6.12 uses instead of an indirect call
 * through sys_call_table. Syscall numbers are x86-64's.
 */
#include "kernel.h"

#define __NR_read 0
#define __NR_write 1
#define __NR_close 3
#define __NR_getpid 39
#define __NR_exit 60
#define __NR_openat 257
#define __NR_exit_group 231
#define __NR_sched_yield 24

long __x64_sys_read(const struct pt_regs *regs);
long __x64_sys_write(const struct pt_regs *regs);
long __x64_sys_close(const struct pt_regs *regs);
long __x64_sys_getpid(const struct pt_regs *regs);
long __x64_sys_openat(const struct pt_regs *regs);
long __x64_sys_exit_group(const struct pt_regs *regs);
long __x64_sys_sched_yield(const struct pt_regs *regs);

long x64_sys_call(const struct pt_regs *regs, unsigned int nr)
{
	switch (nr) {
	case __NR_read: return __x64_sys_read(regs);
	case __NR_write: return __x64_sys_write(regs);
	case __NR_close: return __x64_sys_close(regs);
	case __NR_getpid: return __x64_sys_getpid(regs);
	case __NR_openat: return __x64_sys_openat(regs);
	case __NR_exit:
	case __NR_exit_group: return __x64_sys_exit_group(regs);
	case __NR_sched_yield: return __x64_sys_sched_yield(regs);
	default: return -ENOSYS;
	}
}
