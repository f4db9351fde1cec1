// SPDX-License-Identifier: Apache-2.0
/*
 * drivers/char/mem.c for the mini-kernel: /dev/null and /dev/zero.
 */
#include "kernel.h"

static noinline ssize_t read_iter_null(struct kiocb *iocb, struct iov_iter *to)
{
	KCOST(10);
	(void)iocb;
	(void)to;
	return 0;
}

static noinline ssize_t write_iter_null(struct kiocb *iocb, struct iov_iter *from)
{
	size_t count = from->count;

	KCOST(10);
	(void)iocb;
	from->count = 0;
	return count;
}

static noinline ssize_t read_iter_zero(struct kiocb *iocb, struct iov_iter *iter)
{
	KCOST(20);
	static const char zeroes[64];
	size_t written = 0;

	(void)iocb;
	while (iter->count) {
		size_t chunk = iter->count < sizeof(zeroes) ? iter->count : sizeof(zeroes);

		written += copy_page_to_iter(zeroes, chunk, iter);
	}
	return written;
}

static const struct file_operations null_fops = {
	.read_iter = read_iter_null,
	.write_iter = write_iter_null,
};

static const struct file_operations zero_fops = {
	.read_iter = read_iter_zero,
	.write_iter = write_iter_null,
};

static struct inode dev_null_inode = { .i_ino = 5, .i_fop = &null_fops };
static struct inode dev_zero_inode = { .i_ino = 6, .i_fop = &zero_fops };
struct dentry dev_null_dentry = { "null", &dev_null_inode };
struct dentry dev_zero_dentry = { "zero", &dev_zero_inode };
