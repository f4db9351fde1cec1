// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/locking/{spinlock,mutex,rwsem}.c for the mini-kernel.
 *
 * A contended spinlock spins for real, charging virtual time while it does,
 * so a spin costs what the holder keeps the lock. A contended mutex sleeps:
 * __mutex_lock_slowpath() queues the task and schedules; mutex_unlock()
 * wakes the first waiter and hands the lock over.
 */
#include "kernel.h"

#define SPIN_COST_NS 10

noinline void _raw_spin_lock(raw_spinlock_t *lock)
{
	preempt_disable();
	simulate_work(8);
	while (__atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE))
		while (READ_ONCE(lock->locked))
			simulate_work(SPIN_COST_NS);   /* cpu_relax() */
}

noinline void _raw_spin_unlock(raw_spinlock_t *lock)
{
	simulate_work(5);
	__atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
	preempt_enable_no_resched();
}

noinline unsigned long _raw_spin_lock_irqsave(raw_spinlock_t *lock)
{
	unsigned long flags = local_irq_save();

	_raw_spin_lock(lock);
	return flags;
}

noinline void _raw_spin_unlock_irqrestore(raw_spinlock_t *lock, unsigned long flags)
{
	_raw_spin_unlock(lock);
	local_irq_restore(flags);
}

noinline void _raw_spin_lock_irq(raw_spinlock_t *lock)
{
	local_irq_disable();
	_raw_spin_lock(lock);
}

noinline void _raw_spin_unlock_irq(raw_spinlock_t *lock)
{
	_raw_spin_unlock(lock);
	local_irq_enable();
}

noinline void __rcu_read_lock(void)
{
	KCOST(3);
	this_cpu()->preempt_count++;
}

noinline void __rcu_read_unlock(void)
{
	KCOST(3);
	this_cpu()->preempt_count--;
}

noinline void mutex_init(struct mutex *lock)
{
	KCOST(10);
	lock->owner = 0;
	lock->wait_lock.locked = 0;
	INIT_LIST_HEAD(&lock->wait_list);
}

static noinline void __mutex_lock_slowpath(struct mutex *lock)
{
	DEFINE_WAIT(waiter);
	long me = (long)current;

	_raw_spin_lock_irq(&lock->wait_lock);
	if (!lock->wait_list.next)
		INIT_LIST_HEAD(&lock->wait_list);
	for (;;) {
		long expected = 0;

		if (__atomic_compare_exchange_n(&lock->owner, &expected, me, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED) ||
		    READ_ONCE(lock->owner) == me)   /* handed over by mutex_unlock */
			break;
		waiter.task = current;
		if (list_empty(&waiter.entry))
			list_add_tail(&waiter.entry, &lock->wait_list);
		WRITE_ONCE(current->__state, TASK_UNINTERRUPTIBLE);
		_raw_spin_unlock_irq(&lock->wait_lock);
		schedule();
		_raw_spin_lock_irq(&lock->wait_lock);
	}
	if (!list_empty(&waiter.entry))
		list_del_init(&waiter.entry);
	WRITE_ONCE(current->__state, TASK_RUNNING);
	_raw_spin_unlock_irq(&lock->wait_lock);
}

noinline void mutex_lock(struct mutex *lock)
{
	long expected = 0;

	KCOST(10);
	if (!__atomic_compare_exchange_n(&lock->owner, &expected, (long)current, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		__mutex_lock_slowpath(lock);
}

noinline void mutex_unlock(struct mutex *lock)
{
	struct task_struct *next = NULL;

	KCOST(10);
	_raw_spin_lock_irq(&lock->wait_lock);
	if (lock->wait_list.next && !list_empty(&lock->wait_list)) {
		struct wait_queue_entry *w = container_of(lock->wait_list.next,
							  struct wait_queue_entry, entry);
		list_del_init(&w->entry);
		next = w->task;
	}
	WRITE_ONCE(lock->owner, (long)next);   /* hand over, or release */
	_raw_spin_unlock_irq(&lock->wait_lock);
	if (next)
		wake_up_process(next);
}

/* i_rwsem: writers only in the lab, so a mutex underneath. */
noinline void down_write(struct mutex *sem)
{
	KCOST(10);
	mutex_lock(sem);
}

noinline void up_write(struct mutex *sem)
{
	KCOST(10);
	mutex_unlock(sem);
}
