// SPDX-License-Identifier: Apache-2.0
/*
 * The virtual clock (the lab's stand-in for kernel/sched/clock.c and the TSC).
 *
 * Real hardware advances time by itself; the emulator's TSC is the host's
 * and would make traces non-deterministic. Instead each CPU's pcpu_hot
 * carries clock_ns, which only simulated work advances. sched_clock() reads
 * it, so every timestamp is a pure function of the workload and the seed.
 * All of it is notrace, as sched_clock() is in Linux.
 */
#include "kernel.h"

notrace u64 sched_clock(void)
{
	return this_cpu()->clock_ns;
}

notrace void simulate_work(u64 ns)
{
	this_cpu()->clock_ns += ns;
}

/* xorshift64*: a seeded, per-CPU generator for latency distributions. */
static notrace u64 next_random(struct pcpu_hot *cpu)
{
	u64 x = cpu->rand_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	cpu->rand_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* base_ns plus an exponential-looking tail of mean ~spread_ns. */
notrace u64 random_latency(u64 base_ns, u64 spread_ns)
{
	struct pcpu_hot *cpu = this_cpu();
	u64 r = next_random(cpu);
	u64 tail = 0;

	if (!spread_ns)
		return base_ns;
	/* Count leading one-bits: geometric with p = 1/2, then scale. */
	while ((r & 1) && tail < 16) {
		tail++;
		r >>= 1;
	}
	return base_ns + tail * spread_ns + (r % spread_ns);
}
