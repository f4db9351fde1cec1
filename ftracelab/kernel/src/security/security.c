// SPDX-License-Identifier: Apache-2.0
/*
 * security/security.c for the mini-kernel: the LSM hooks on the read/write
 * and open paths, with no LSM loaded (they only cost a little time).
 */
#include "kernel.h"

noinline int security_file_permission(struct file *file, int mask)
{
	KCOST(12);
	(void)file;
	(void)mask;
	return 0;
}

noinline int security_file_open(struct file *file)
{
	KCOST(15);
	(void)file;
	return 0;
}
