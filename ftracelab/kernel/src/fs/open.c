// SPDX-License-Identifier: Apache-2.0
/*
 * fs/open.c for the mini-kernel: openat(2) and close(2).
 */
#include "kernel.h"

#define O_ACCMODE 3
#define O_WRONLY 1
#define O_RDWR 2
#define O_TRUNC 01000

static noinline int do_dentry_open(struct file *f, struct inode *inode)
{
	int acc = f->f_flags & O_ACCMODE;

	KCOST(80);
	f->f_inode = inode;
	f->f_op = inode->i_fop;
	f->f_mode = (acc == O_WRONLY) ? FMODE_WRITE
		  : (acc == O_RDWR) ? (FMODE_READ | FMODE_WRITE) : FMODE_READ;
	if ((f->f_flags & O_TRUNC) && (f->f_mode & FMODE_WRITE))
		inode->i_size = 0;
	if (security_file_open(f))
		return -EPERM;
	if (f->f_op->open)
		return f->f_op->open(inode, f);
	return 0;
}

noinline int vfs_open(struct dentry *dentry, struct file *file)
{
	KCOST(20);
	return do_dentry_open(file, dentry->d_inode);
}

static noinline long do_sys_openat2(int dfd, const char *filename, int flags)
{
	struct filename *tmp = getname(filename);
	struct file *f;
	int fd;

	KCOST(60);
	if (!tmp)
		return -EFAULT;
	fd = get_unused_fd_flags(flags);
	if (fd >= 0) {
		f = do_filp_open(dfd, tmp, flags);
		if (!f) {
			put_unused_fd(fd);
			fd = -ENOENT;
		} else {
			fd_install(fd, f);
		}
	}
	putname(tmp);
	return fd;
}

long __x64_sys_openat(const struct pt_regs *regs)
{
	return do_sys_openat2((int)regs->di, (const char *)regs->si, (int)regs->dx);
}

static noinline int filp_flush(struct file *filp)
{
	KCOST(15);
	(void)filp;
	return 0;
}

long __x64_sys_close(const struct pt_regs *regs)
{
	struct file *file = file_close_fd((unsigned int)regs->di);
	int retval;

	if (!file)
		return -EBADF;
	retval = filp_flush(file);
	fput(file);
	return retval;
}
