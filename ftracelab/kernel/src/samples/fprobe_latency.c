// SPDX-License-Identifier: Apache-2.0
/*
 * A native fprobe sample in the spirit of samples/fprobe/fprobe_example.c: its
 * entry and exit handlers time each call of the probed functions. The entry
 * handler keeps sched_clock() in the call's entry data (on the fgraph shadow
 * stack); the exit handler adds the duration to a log2 histogram in the
 * fprobe's private data, which the lab reads back (trace/fprobe.py).
 *
 * Handlers have 6.14's fprobe signatures:
 *   int  entry(struct fprobe *fp, unsigned long entry_ip, unsigned long ret_ip,
 *              struct ftrace_regs *fregs, void *entry_data)   (non-zero: skip the exit)
 *   void exit (struct fprobe *fp, unsigned long entry_ip, unsigned long ret_ip,
 *              struct ftrace_regs *fregs, void *entry_data)
 */
#include "kernel.h"

struct lab_fprobe {                     /* trace/fprobe.py's struct fprobe */
	unsigned long nmissed;
	unsigned long flags;
	unsigned long entry_data_size;
	void *priv;
};

struct fprobe_latency {
	u64 nhit;                       /* entries */
	u64 nexit;                      /* returns seen */
	u64 total_ns;
	u64 max_ns;
	u64 log2_ns[64];                /* [k]: durations in [2^k, 2^(k+1)) ns; [0] also 0 */
};

notrace int fprobe_latency_entry(struct lab_fprobe *fp, unsigned long entry_ip, unsigned long ret_ip,
				 void *fregs, void *entry_data)
{
	struct fprobe_latency *lat = fp->priv;

	(void)entry_ip;
	(void)ret_ip;
	(void)fregs;
	lat->nhit++;
	*(u64 *)entry_data = sched_clock();
	return 0;
}

notrace void fprobe_latency_exit(struct lab_fprobe *fp, unsigned long entry_ip, unsigned long ret_ip,
				 void *fregs, void *entry_data)
{
	struct fprobe_latency *lat = fp->priv;
	u64 delta = sched_clock() - *(u64 *)entry_data;

	(void)entry_ip;
	(void)ret_ip;
	(void)fregs;
	lat->nexit++;
	lat->total_ns += delta;
	if (delta > lat->max_ns)
		lat->max_ns = delta;
	lat->log2_ns[delta ? 63 - __builtin_clzll(delta) : 0]++;
}
