// SPDX-License-Identifier: Apache-2.0
/*
 * lib/iov_iter.c and lib/usercopy.c for the mini-kernel. Linux 6.12 does not
 * trace copy_page_to_iter() or _copy_to_user() (neither is in a real 6.12's
 * available_filter_functions), so these are notrace too.
 */
#include "kernel.h"

notrace unsigned long _copy_to_user(void *to, const void *from, unsigned long n)
{
	memcpy(to, from, n);
	return 0;
}

notrace unsigned long _copy_from_user(void *to, const void *from, unsigned long n)
{
	memcpy(to, from, n);
	return 0;
}

notrace size_t copy_page_to_iter(const char *from, size_t bytes, struct iov_iter *i)
{
	if (bytes > i->count)
		bytes = i->count;
	_copy_to_user(i->buf, from, bytes);
	i->buf += bytes;
	i->count -= bytes;
	return bytes;
}

notrace size_t copy_page_from_iter(char *to, size_t bytes, struct iov_iter *i)
{
	if (bytes > i->count)
		bytes = i->count;
	_copy_from_user(to, i->buf, bytes);
	i->buf += bytes;
	i->count -= bytes;
	return bytes;
}
