// SPDX-License-Identifier: Apache-2.0
/*
 * The virtual clock (the lab's stand-in for kernel/sched/clock.c and the TSC).
 *
 * Real hardware advances time by itself; the emulator's TSC is the host's
 * and would make traces non-deterministic. Instead each CPU's pcpu_hot
 * carries clock_ns, which only simulated work advances (KCOST() and the
 * explicit costs in the C code). sched_clock() reads it, so every timestamp
 * is a pure function of the workload and the seed.
 *
 * When a CPU's clock passes the slice end the lab gave it, it yields to the
 * lab's vCPU scheduler (paravirt_slice_end), which runs the CPU that is
 * furthest behind: that keeps CPUs within one slice of each other, so
 * cross-CPU effects (wake-ups, lock spinning) happen in the right order.
 * All of it is notrace, as sched_clock() is in Linux.
 */
#include "kernel.h"

notrace u64 sched_clock(void)
{
	return this_cpu()->clock_ns;
}

notrace void simulate_work(u64 ns)
{
	struct pcpu_hot *cpu = this_cpu();

	cpu->clock_ns += ns;
	if (unlikely(cpu->clock_ns >= cpu->slice_end_ns))
		paravirt_slice_end();
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

/* base_ns plus a geometric tail: spread_ns per extra step, mean ~spread_ns. */
notrace u64 random_latency(u64 base_ns, u64 spread_ns)
{
	struct pcpu_hot *cpu = this_cpu();
	u64 r = next_random(cpu);
	u64 tail = 0;

	if (!spread_ns)
		return base_ns;
	while ((r & 1) && tail < 16) {
		tail++;
		r >>= 1;
	}
	return base_ns + tail * spread_ns + (r >> 20) % spread_ns;
}
