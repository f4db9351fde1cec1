// SPDX-License-Identifier: Apache-2.0
/*
 * lib/string.c and arch/x86/lib/memcpy_64.S for the mini-kernel. memcpy is
 * assembly in Linux and never traced; the C here is built without -pg for
 * the same reason. Each copy charges the virtual clock by size.
 */
#include "kernel.h"

notrace void *memcpy(void *dst, const void *src, size_t n)
{
	char *d = dst;
	const char *s = src;

	simulate_work(4 + n / 16);
	while (n--)
		*d++ = *s++;
	return dst;
}

notrace void *memset(void *dst, int c, size_t n)
{
	char *d = dst;

	simulate_work(4 + n / 32);
	while (n--)
		*d++ = (char)c;
	return dst;
}

notrace int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

notrace size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}
