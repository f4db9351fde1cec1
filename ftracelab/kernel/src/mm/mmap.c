// SPDX-License-Identifier: Apache-2.0
/*
 * mm/mmap.c and mm/util.c for the mini-kernel: mmap(2) hands out anonymous
 * ranges from the (shared) address space's mmap area. No page tables: the
 * lab maps the whole area up front. do_mmap() takes nine arguments, so
 * some of them travel on the stack, as they do in Linux.
 */
#include "kernel.h"

#define PROT_READ 0x1
#define MAP_ANONYMOUS 0x20
#define PAGE_ALIGN(x) (((x) + 4095ul) & ~4095ul)

static raw_spinlock_t mmap_lock;

noinline unsigned long do_mmap(struct file *file, unsigned long addr, unsigned long len,
			       unsigned long prot, unsigned long flags, unsigned long vm_flags,
			       unsigned long pgoff, unsigned long *populate, void *uf)
{
	struct mm_struct *mm = current->mm;
	unsigned long start;

	(void)file;
	(void)addr;
	(void)prot;
	(void)vm_flags;
	(void)pgoff;
	(void)uf;
	KCOST(300);
	if (!mm || !len || !(flags & MAP_ANONYMOUS))
		return -EINVAL;
	len = PAGE_ALIGN(len);
	_raw_spin_lock(&mmap_lock);
	start = mm->mmap_next;
	if (start + len > mm->mmap_end) {
		_raw_spin_unlock(&mmap_lock);
		return -ENOMEM;
	}
	mm->mmap_next = start + len;
	_raw_spin_unlock(&mmap_lock);
	if (populate)
		*populate = 0;
	return start;
}

noinline unsigned long vm_mmap_pgoff(struct file *file, unsigned long addr, unsigned long len,
				     unsigned long prot, unsigned long flag, unsigned long pgoff)
{
	unsigned long populate;

	KCOST(40);
	return do_mmap(file, addr, len, prot, flag, 0, pgoff, &populate, NULL);
}

noinline unsigned long ksys_mmap_pgoff(unsigned long addr, unsigned long len, unsigned long prot,
				       unsigned long flags, unsigned long fd, unsigned long pgoff)
{
	(void)fd;
	KCOST(30);
	return vm_mmap_pgoff(NULL, addr, len, prot, flags, pgoff);
}

long __x64_sys_mmap(const struct pt_regs *regs)
{
	if (regs->r9 & 4095)
		return -EINVAL;
	return ksys_mmap_pgoff(regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9 >> 12);
}
