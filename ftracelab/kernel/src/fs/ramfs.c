// SPDX-License-Identifier: Apache-2.0
/*
 * fs/ramfs and mm/shmem.c for the mini-kernel: a flat, fixed set of files
 * whose contents live in memory, read and written through the page-cache
 * style read_iter/write_iter path (shmem_file_read_iter et al.).
 *
 * The lab seeds the files' contents and per-file device latency at boot
 * (machine/... writes ramfs_files[]); /dev/null and /dev/zero come from
 * drivers/char/mem.c.
 */
#include "kernel.h"

#define RAMFS_MAX_FILES 16
#define RAMFS_NAME_LEN 32
#define RAMFS_DATA_SIZE 8192

struct ramfs_file {
	char name[RAMFS_NAME_LEN];
	struct dentry dentry;
	struct inode inode;
	char data[RAMFS_DATA_SIZE];
};

static ssize_t shmem_file_read_iter(struct kiocb *iocb, struct iov_iter *to);
static ssize_t shmem_file_write_iter(struct kiocb *iocb, struct iov_iter *from);

const struct file_operations shmem_file_operations = {
	.read_iter = shmem_file_read_iter,
	.write_iter = shmem_file_write_iter,
};

/* Filled in by the lab before the first syscall (nr_ramfs_files first). */
__used struct ramfs_file ramfs_files[RAMFS_MAX_FILES];
__used unsigned int nr_ramfs_files;

extern struct dentry dev_null_dentry, dev_zero_dentry;

noinline struct dentry *ramfs_lookup(const char *name)
{
	unsigned int i;

	simulate_work(20);
	if (!strcmp(name, "/dev/null"))
		return &dev_null_dentry;
	if (!strcmp(name, "/dev/zero"))
		return &dev_zero_dentry;
	for (i = 0; i < nr_ramfs_files && i < RAMFS_MAX_FILES; i++) {
		struct ramfs_file *f = &ramfs_files[i];

		if (!strcmp(name, f->name)) {
			f->dentry.d_name = f->name;
			f->dentry.d_inode = &f->inode;
			f->inode.i_data = f->data;
			f->inode.i_capacity = RAMFS_DATA_SIZE;
			f->inode.i_fop = &shmem_file_operations;
			f->inode.i_ino = 100 + i;
			return &f->dentry;
		}
	}
	return NULL;
}

/* The page-cache read: copy what is cached, paying the device latency. */
noinline ssize_t filemap_read(struct kiocb *iocb, struct iov_iter *iter)
{
	struct inode *inode = iocb->ki_filp->f_inode;
	loff_t pos = iocb->ki_pos;
	size_t n;

	if (pos >= inode->i_size)
		return 0;
	n = inode->i_size - pos;
	if (n > iter->count)
		n = iter->count;
	if (inode->i_read_latency_ns)
		simulate_work(random_latency(inode->i_read_latency_ns,
					     inode->i_read_latency_ns / 2));
	n = copy_page_to_iter(inode->i_data + pos, n, iter);
	iocb->ki_pos = pos + n;
	touch_atime(iocb->ki_filp);
	return n;
}

static noinline ssize_t shmem_file_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	return filemap_read(iocb, to);
}

noinline ssize_t generic_perform_write(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = iocb->ki_filp->f_inode;
	loff_t pos = iocb->ki_pos;
	size_t n = from->count;

	if (pos >= inode->i_capacity)
		return -ENOSPC;
	if (n > inode->i_capacity - pos)
		n = inode->i_capacity - pos;
	n = copy_page_from_iter(inode->i_data + pos, n, from);
	iocb->ki_pos = pos + n;
	if (iocb->ki_pos > inode->i_size)
		inode->i_size = iocb->ki_pos;
	return n;
}

static noinline ssize_t shmem_file_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	file_update_time(iocb->ki_filp);
	return generic_perform_write(iocb, from);
}

noinline void touch_atime(struct file *file)
{
	file->f_inode->i_atime = ktime_get();
}

noinline void file_update_time(struct file *file)
{
	file->f_inode->i_mtime = ktime_get();
}
