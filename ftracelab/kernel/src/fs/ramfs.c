// SPDX-License-Identifier: Apache-2.0
/*
 * fs/ramfs, mm/shmem.c and mm/filemap.c for the mini-kernel: a flat, fixed
 * set of files whose contents live in memory.
 *
 * A file with i_read_latency_ns == 0 is all in the page cache. A file with
 * a latency lives on the slow disk (drivers/block/null_blk.c): the first
 * read of each 4 KiB page goes filemap_get_pages -> page_cache_sync_ra ->
 * filemap_read_folio -> submit_bio_wait and sleeps until the disk's
 * completion interrupt; later reads hit the cache.
 * Writes take the inode's i_rwsem (down_write) and its i_lock spinlock, so
 * writers on several CPUs contend.
 *
 * The lab seeds the files at boot (kernel/rootfs.py writes ramfs_files[]);
 * /dev/null and /dev/zero come from drivers/char/mem.c.
 */
#include "kernel.h"

#define RAMFS_MAX_FILES 16
#define RAMFS_NAME_LEN 32
#define RAMFS_DATA_SIZE 8192
#define PAGE_SIZE 4096

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

extern struct dentry dev_null_dentry, dev_zero_dentry, dev_ttyS0_dentry;

/* The lab's dcache: one flat directory. */
noinline struct dentry *ramfs_lookup(const char *name)
{
	unsigned int i;

	KCOST(60);
	if (!strcmp(name, "/dev/null"))
		return &dev_null_dentry;
	if (!strcmp(name, "/dev/zero"))
		return &dev_zero_dentry;
	if (!strcmp(name, "/dev/ttyS0"))
		return &dev_ttyS0_dentry;
	for (i = 0; i < nr_ramfs_files && i < RAMFS_MAX_FILES; i++) {
		struct ramfs_file *f = &ramfs_files[i];

		if (!strcmp(name, f->name)) {
			if (!f->dentry.d_inode) {    /* first lookup: instantiate the inode */
				f->dentry.d_name = f->name;
				f->dentry.d_inode = &f->inode;
				f->inode.i_data = f->data;
				f->inode.i_capacity = RAMFS_DATA_SIZE;
				f->inode.i_fop = &shmem_file_operations;
				f->inode.i_ino = 100 + i;
				mutex_init(&f->inode.i_rwsem);
			}
			return &f->dentry;
		}
	}
	return NULL;
}

/* Read one page from the disk and wait for it (a synchronous read-ahead). */
static noinline int filemap_read_folio(struct inode *inode, loff_t pos)
{
	struct bio bio = {
		.bi_inode = inode, .bi_pos = pos, .bi_size = PAGE_SIZE,
	};

	KCOST(120);
	return submit_bio_wait(&bio);
}

noinline void page_cache_sync_ra(struct inode *inode, loff_t pos)
{
	KCOST(80);
	if (filemap_read_folio(inode, pos & ~(loff_t)(PAGE_SIZE - 1)) == 0)
		inode->i_cached_upto = (pos & ~(loff_t)(PAGE_SIZE - 1)) + PAGE_SIZE;
}

static noinline int filemap_get_pages(struct inode *inode, loff_t pos)
{
	KCOST(50);
	if (inode->i_read_latency_ns && (u64)pos >= inode->i_cached_upto)
		page_cache_sync_ra(inode, pos);
	return 0;
}

/* The page-cache read, at most to the end of the current page. */
noinline ssize_t filemap_read(struct kiocb *iocb, struct iov_iter *iter)
{
	struct inode *inode = iocb->ki_filp->f_inode;
	loff_t pos = iocb->ki_pos;
	size_t n;

	KCOST(100);
	if (pos >= inode->i_size)
		return 0;
	filemap_get_pages(inode, pos);
	n = inode->i_size - pos;
	if (n > iter->count)
		n = iter->count;
	if (inode->i_read_latency_ns && n > PAGE_SIZE - (pos % PAGE_SIZE))
		n = PAGE_SIZE - (pos % PAGE_SIZE);
	n = copy_page_to_iter(inode->i_data + pos, n, iter);
	iocb->ki_pos = pos + n;
	touch_atime(iocb->ki_filp);
	return n;
}

static noinline ssize_t shmem_file_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	KCOST(20);
	return filemap_read(iocb, to);
}

noinline ssize_t generic_perform_write(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = iocb->ki_filp->f_inode;
	loff_t pos = iocb->ki_pos;
	size_t n = from->count;

	KCOST(80);
	if (pos >= inode->i_capacity)
		return -ENOSPC;
	if (n > inode->i_capacity - pos)
		n = inode->i_capacity - pos;
	_raw_spin_lock(&inode->i_lock);      /* the folio and i_size update */
	n = copy_page_from_iter(inode->i_data + pos, n, from);
	iocb->ki_pos = pos + n;
	if (iocb->ki_pos > inode->i_size)
		inode->i_size = iocb->ki_pos;
	_raw_spin_unlock(&inode->i_lock);
	return n;
}

static noinline ssize_t shmem_file_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = iocb->ki_filp->f_inode;
	ssize_t ret;

	KCOST(20);
	down_write(&inode->i_rwsem);         /* inode_lock() */
	file_update_time(iocb->ki_filp);
	ret = generic_perform_write(iocb, from);
	up_write(&inode->i_rwsem);
	return ret;
}

noinline void touch_atime(struct file *file)
{
	KCOST(20);
	file->f_inode->i_atime = ktime_get();
}

noinline void file_update_time(struct file *file)
{
	KCOST(20);
	file->f_inode->i_mtime = ktime_get();
}
