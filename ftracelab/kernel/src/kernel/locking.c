// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/locking/{mutex,spinlock}.c and kernel/rcu for the mini-kernel.
 * One CPU runs at a time in this issue, so the locks never contend; they
 * are real functions so that traces show them where Linux does.
 */
#include "kernel.h"

noinline void mutex_lock(struct mutex *lock)
{
	lock->owner = (long)current;
	simulate_work(8);
}

noinline void mutex_unlock(struct mutex *lock)
{
	lock->owner = 0;
	simulate_work(8);
}

noinline void _raw_spin_lock(raw_spinlock_t *lock)
{
	while (__atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE))
		;
	this_cpu()->preempt_count++;
	simulate_work(5);
}

noinline void _raw_spin_unlock(raw_spinlock_t *lock)
{
	__atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
	this_cpu()->preempt_count--;
	simulate_work(5);
}

noinline void __rcu_read_lock(void)
{
	this_cpu()->preempt_count++;
}

noinline void __rcu_read_unlock(void)
{
	this_cpu()->preempt_count--;
}
