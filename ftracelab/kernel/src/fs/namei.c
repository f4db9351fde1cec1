// SPDX-License-Identifier: Apache-2.0
/*
 * fs/namei.c for the mini-kernel: copying a path name in from user space
 * (getname) and resolving it to an open file (do_filp_open/path_openat).
 * The ramfs has one flat directory, so the walk is a single lookup.
 */
#include "kernel.h"

extern struct kmem_cache names_cachep;

/*
 * In Linux 6.12 gcc splits getname_flags() and the traces show
 * getname_flags.part.0. The split is spelled out here, under the same
 * symbol name, so that it does not depend on gcc's inlining decisions.
 */
static struct filename *getname_flags_part_0(const char *filename)
	__asm__("getname_flags.part.0");
static noinline struct filename *getname_flags_part_0(const char *filename)
{
	struct filename *result = kmem_cache_alloc_noprof(&names_cachep, GFP_KERNEL);
	size_t len;

	KCOST(60);
	if (!result)
		return NULL;
	len = strlen(filename);
	if (len >= PATH_MAX) {
		kmem_cache_free(&names_cachep, result);
		return NULL;
	}
	_copy_from_user(result->iname, filename, len + 1);
	result->name = result->iname;
	return result;
}

noinline struct filename *getname_flags(const char *filename, int flags)
{
	KCOST(20);
	(void)flags;
	if (!filename)
		return NULL;
	return getname_flags_part_0(filename);
}

noinline struct filename *getname(const char *filename)
{
	KCOST(15);
	return getname_flags(filename, 0);
}

noinline void putname(struct filename *name)
{
	KCOST(15);
	if (name)
		kmem_cache_free(&names_cachep, name);
}

static noinline struct dentry *lookup_fast(const char *name)
{
	struct dentry *dentry;

	KCOST(40);
	__rcu_read_lock();
	dentry = ramfs_lookup(name);
	__rcu_read_unlock();
	return dentry;
}

/*
 * Walk the path one component at a time. Linux's link_path_walk() loops;
 * the lab's walk_component() recurses into the rest of the path, so that
 * traces show a recursive function (each level pays for one component).
 */
static noinline struct dentry *walk_component(const char *path, const char *rest, int depth)
{
	struct dentry *found;

	KCOST(30);
	while (*rest == '/')
		rest++;
	while (*rest && *rest != '/')
		rest++;
	if (*rest && depth < 16) {
		found = walk_component(path, rest, depth + 1);
		barrier();   /* keeps gcc from turning the recursion into a loop */
		return found;
	}
	return lookup_fast(path);
}

static noinline struct file *path_openat(struct filename *pathname, int flags)
{
	struct file *file = alloc_empty_file(flags);
	struct dentry *dentry;
	int error;

	KCOST(80);
	if (!file)
		return NULL;
	dentry = walk_component(pathname->name, pathname->name, 0);
	if (!dentry) {
		fput(file);
		return NULL;
	}
	error = vfs_open(dentry, file);
	if (error) {
		fput(file);
		return NULL;
	}
	return file;
}

noinline struct file *do_filp_open(int dfd, struct filename *pathname, int flags)
{
	KCOST(30);
	(void)dfd;
	return path_openat(pathname, flags);
}
