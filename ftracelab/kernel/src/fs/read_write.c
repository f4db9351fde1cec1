// SPDX-License-Identifier: Apache-2.0
/*
 * fs/read_write.c for the mini-kernel: read(2) and write(2) down to the
 * file's read_iter/write_iter, with the permission and notification hooks
 * Linux calls on the way (rw_verify_area, fsnotify).
 */
#include "kernel.h"

#define MAY_WRITE 0x2
#define MAY_READ 0x4
#define READ 0
#define WRITE 1
#define FS_ACCESS 0x1
#define FS_MODIFY 0x2
#define MAX_RW_COUNT 0x7ffff000ul

noinline int rw_verify_area(int read_write, struct file *file, const loff_t *ppos, size_t count)
{
	KCOST(20);
	if (ppos && *ppos < 0)
		return -EINVAL;
	return security_file_permission(file, read_write == READ ? MAY_READ : MAY_WRITE);
}

noinline int __fsnotify_parent(struct dentry *dentry, unsigned int mask, const void *data, int data_type)
{
	KCOST(25);
	(void)dentry;
	(void)mask;
	(void)data;
	(void)data_type;
	return 0;
}

static ssize_t new_sync_read(struct file *filp, char *buf, size_t len, loff_t *ppos)
{
	struct kiocb kiocb = { filp, *ppos };
	struct iov_iter iter = { buf, len };
	ssize_t ret = filp->f_op->read_iter(&kiocb, &iter);

	*ppos = kiocb.ki_pos;
	return ret;
}

static ssize_t new_sync_write(struct file *filp, const char *buf, size_t len, loff_t *ppos)
{
	struct kiocb kiocb = { filp, *ppos };
	struct iov_iter iter = { (char *)buf, len };
	ssize_t ret = filp->f_op->write_iter(&kiocb, &iter);

	*ppos = kiocb.ki_pos;
	return ret;
}

noinline ssize_t vfs_read(struct file *file, char *buf, size_t count, loff_t *pos)
{
	ssize_t ret;

	KCOST(60);
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	ret = rw_verify_area(READ, file, pos, count);
	if (ret)
		return ret;
	if (count > MAX_RW_COUNT)
		count = MAX_RW_COUNT;
	ret = new_sync_read(file, buf, count, pos);
	if (ret > 0)
		__fsnotify_parent(NULL, FS_ACCESS, file, 1);
	return ret;
}

noinline ssize_t vfs_write(struct file *file, const char *buf, size_t count, loff_t *pos)
{
	ssize_t ret;

	KCOST(60);
	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	ret = rw_verify_area(WRITE, file, pos, count);
	if (ret)
		return ret;
	if (count > MAX_RW_COUNT)
		count = MAX_RW_COUNT;
	ret = new_sync_write(file, buf, count, pos);
	if (ret > 0)
		__fsnotify_parent(NULL, FS_MODIFY, file, 1);
	return ret;
}

static void fdput_pos(struct fd f)
{
	if (f.flags & 1)
		mutex_unlock(&f.file->f_pos_lock);
}

noinline ssize_t ksys_read(unsigned int fd, char *buf, size_t count)
{
	struct fd f = fdget_pos(fd);
	ssize_t ret = -EBADF;

	KCOST(40);
	if (f.file) {
		loff_t pos = f.file->f_pos;

		ret = vfs_read(f.file, buf, count, &pos);
		if (ret >= 0)
			f.file->f_pos = pos;
		fdput_pos(f);
	}
	return ret;
}

noinline ssize_t ksys_write(unsigned int fd, const char *buf, size_t count)
{
	struct fd f = fdget_pos(fd);
	ssize_t ret = -EBADF;

	KCOST(40);
	if (f.file) {
		loff_t pos = f.file->f_pos;

		ret = vfs_write(f.file, buf, count, &pos);
		if (ret >= 0)
			f.file->f_pos = pos;
		fdput_pos(f);
	}
	return ret;
}

long __x64_sys_read(const struct pt_regs *regs)
{
	return ksys_read((unsigned int)regs->di, (char *)regs->si, regs->dx);
}

long __x64_sys_write(const struct pt_regs *regs)
{
	return ksys_write((unsigned int)regs->di, (const char *)regs->si, regs->dx);
}
