// SPDX-License-Identifier: Apache-2.0
/*
 * fs/file.c and fs/file_table.c for the mini-kernel: the fd table, struct
 * file allocation and reference counting.
 */
#include "kernel.h"

extern struct kmem_cache filp_cachep, files_cachep;

static struct files_struct *current_files(void)
{
	return current->files;
}

/* dup_fd() for a new process: an empty table (the lab has no inherited fds). */
noinline struct files_struct *alloc_files(void)
{
	struct files_struct *files = kmem_cache_alloc_noprof(&files_cachep, GFP_KERNEL);

	if (!files)
		return NULL;
	memset(files, 0, sizeof(*files));
	files->count = 1;
	/* alloc_fdtable(): the fd array comes from kmalloc */
	files->fd = __kmalloc_noprof(NR_OPEN_DEFAULT * sizeof(struct file *), GFP_KERNEL);
	if (!files->fd) {
		kmem_cache_free(&files_cachep, files);
		return NULL;
	}
	memset(files->fd, 0, NR_OPEN_DEFAULT * sizeof(struct file *));
	return files;
}

/* Close whatever a dying task left open, then drop the table. */
noinline void exit_files(struct task_struct *tsk)
{
	struct files_struct *files = tsk->files;
	unsigned int fd;

	KCOST(40);
	if (!files)
		return;
	tsk->files = NULL;
	if (--files->count)
		return;
	for (fd = 0; fd < NR_OPEN_DEFAULT; fd++)
		if (files->open_fds & (1ul << fd))
			fput(files->fd[fd]);
	kfree(files->fd);
	kmem_cache_free(&files_cachep, files);
}

static noinline int alloc_fd(unsigned int start, unsigned int flags)
{
	struct files_struct *files = current_files();
	unsigned int fd;
	int error = -EMFILE;

	KCOST(40);
	(void)flags;
	_raw_spin_lock(&files->file_lock);
	for (fd = start; fd < NR_OPEN_DEFAULT; fd++) {
		if (!(files->open_fds & (1ul << fd))) {
			files->open_fds |= 1ul << fd;
			error = fd;
			break;
		}
	}
	_raw_spin_unlock(&files->file_lock);
	return error;
}

noinline int get_unused_fd_flags(unsigned int flags)
{
	KCOST(15);
	return alloc_fd(0, flags);
}

noinline void put_unused_fd(unsigned int fd)
{
	struct files_struct *files = current_files();

	KCOST(20);
	_raw_spin_lock(&files->file_lock);
	files->open_fds &= ~(1ul << fd);
	_raw_spin_unlock(&files->file_lock);
}

noinline void fd_install(unsigned int fd, struct file *file)
{
	struct files_struct *files = current_files();

	KCOST(20);
	__rcu_read_lock();
	files->fd[fd] = file;
	__rcu_read_unlock();
}

static struct file *files_lookup_fd(unsigned int fd)
{
	struct files_struct *files = current_files();

	if (fd >= NR_OPEN_DEFAULT || !(files->open_fds & (1ul << fd)))
		return NULL;
	return files->fd[fd];
}

noinline struct fd fdget_pos(unsigned int fd)
{
	struct fd f = { files_lookup_fd(fd), 0 };

	KCOST(30);
	if (f.file && f.file->f_count > 1) {
		mutex_lock(&f.file->f_pos_lock);
		f.flags = 1; /* FDPUT_POS_UNLOCK */
	}
	return f;
}

noinline struct file *alloc_empty_file(int flags)
{
	struct file *f = kmem_cache_alloc_noprof(&filp_cachep, GFP_KERNEL);

	KCOST(60);
	if (!f)
		return NULL;
	memset(f, 0, sizeof(*f));
	f->f_flags = flags;
	f->f_count = 1;
	return f;
}

static noinline void __fput(struct file *file)
{
	KCOST(60);
	__fsnotify_parent(NULL, 0x8 /* FS_CLOSE_WRITE */, file, 1);
	if (file->f_op && file->f_op->release)
		file->f_op->release(file->f_inode, file);
	kmem_cache_free(&filp_cachep, file);
}

noinline void fput(struct file *file)
{
	KCOST(20);
	if (--file->f_count == 0)
		__fput(file);
}

noinline struct file *file_close_fd(unsigned int fd)
{
	struct files_struct *files = current_files();
	struct file *file;

	KCOST(40);
	_raw_spin_lock(&files->file_lock);
	file = (fd < NR_OPEN_DEFAULT && (files->open_fds & (1ul << fd))) ? files->fd[fd] : NULL;
	if (file) {
		files->fd[fd] = NULL;
		files->open_fds &= ~(1ul << fd);
	}
	_raw_spin_unlock(&files->file_lock);
	return file;
}
