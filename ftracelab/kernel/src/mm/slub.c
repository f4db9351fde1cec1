// SPDX-License-Identifier: Apache-2.0
/*
 * mm/slub.c for the mini-kernel: fixed-size caches with a bitmap of free
 * objects, and kmalloc() on top of a few power-of-two caches. The names and
 * the call structure are Linux 6.12's (the _noprof suffixes come from memory
 * allocation profiling).
 */
#include "kernel.h"

#define CACHE_OBJS 128

static char filp_objs[CACHE_OBJS][sizeof(struct file)] __aligned(64);
static char names_objs[CACHE_OBJS / 4][sizeof(struct filename)] __aligned(64);
static char files_objs[CACHE_OBJS / 2][sizeof(struct files_struct)] __aligned(64);
static char bio_objs[CACHE_OBJS / 2][sizeof(struct bio)] __aligned(64);
static char kmalloc_64_objs[CACHE_OBJS][64] __aligned(64);
static char kmalloc_512_objs[CACHE_OBJS][512] __aligned(64);

struct kmem_cache filp_cachep = {
	"filp", sizeof(struct file), CACHE_OBJS, { 0 }, filp_objs };
struct kmem_cache names_cachep = {
	"names_cache", sizeof(struct filename), CACHE_OBJS / 4, { 0 }, names_objs };
struct kmem_cache files_cachep = {
	"files_cache", sizeof(struct files_struct), CACHE_OBJS / 2, { 0 }, files_objs };
struct kmem_cache bio_cachep = {
	"bio-0", sizeof(struct bio), CACHE_OBJS / 2, { 0 }, bio_objs };
static struct kmem_cache kmalloc_caches[] = {
	{ "kmalloc-64", 64, CACHE_OBJS, { 0 }, kmalloc_64_objs },
	{ "kmalloc-512", 512, CACHE_OBJS, { 0 }, kmalloc_512_objs },
};

static raw_spinlock_t slab_lock;

noinline void *kmem_cache_alloc_noprof(struct kmem_cache *s, unsigned int flags)
{
	void *obj = NULL;
	unsigned long irqflags;
	unsigned int i;

	(void)flags;
	irqflags = _raw_spin_lock_irqsave(&slab_lock);
	for (i = 0; i < s->nr_objs; i++) {
		if (!(s->inuse[i / 64] & (1ul << (i % 64)))) {
			s->inuse[i / 64] |= 1ul << (i % 64);
			obj = (char *)s->objs + (unsigned long)i * s->size;
			break;
		}
	}
	_raw_spin_unlock_irqrestore(&slab_lock, irqflags);
	simulate_work(random_latency(40, 20));
	return obj;
}

noinline void *kmem_cache_alloc_node_noprof(struct kmem_cache *s, unsigned int flags, int node)
{
	(void)node;
	return kmem_cache_alloc_noprof(s, flags);
}

noinline void kmem_cache_free(struct kmem_cache *s, void *obj)
{
	unsigned long i = ((char *)obj - (char *)s->objs) / s->size;
	unsigned long irqflags;

	if (!obj)
		return;
	irqflags = _raw_spin_lock_irqsave(&slab_lock);
	s->inuse[i / 64] &= ~(1ul << (i % 64));
	_raw_spin_unlock_irqrestore(&slab_lock, irqflags);
	simulate_work(30);
}

static struct kmem_cache *kmalloc_slab(size_t size)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kmalloc_caches); i++)
		if (size <= kmalloc_caches[i].size)
			return &kmalloc_caches[i];
	return NULL;
}

noinline void *__kmalloc_noprof(size_t size, unsigned int flags)
{
	struct kmem_cache *s = kmalloc_slab(size);

	return s ? kmem_cache_alloc_noprof(s, flags) : NULL;
}

noinline void kfree(const void *obj)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kmalloc_caches); i++) {
		struct kmem_cache *s = &kmalloc_caches[i];
		char *base = s->objs;

		if ((char *)obj >= base && (char *)obj < base + s->size * s->nr_objs) {
			kmem_cache_free(s, (void *)obj);
			return;
		}
	}
}
