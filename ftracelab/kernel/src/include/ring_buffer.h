/* SPDX-License-Identifier: Apache-2.0 */
/*
 * include/linux/ring_buffer.h and kernel/trace/ring_buffer.c's structures for
 * the mini-kernel, in the layout the lab's reader uses (trace/ring_buffer.py).
 * Change both together.
 */
#ifndef FTRACELAB_RING_BUFFER_H
#define FTRACELAB_RING_BUFFER_H

#include "kernel.h"

#define RINGBUF_TYPE_DATA_TYPE_LEN_MAX 28
#define RINGBUF_TYPE_PADDING 29
#define RINGBUF_TYPE_TIME_EXTEND 30
#define RINGBUF_TYPE_TIME_STAMP 31
#define RB_EVNT_MIN_SIZE 8
#define BUF_PAGE_HDR_SIZE 16
#define BUF_PAGE_SIZE (4096 - BUF_PAGE_HDR_SIZE)

struct buffer_data_page {
	u64 time_stamp;                  /* 0x00 */
	long commit;                     /* 0x08: bytes, plus RB_MISSED_* flags */
	unsigned char data[BUF_PAGE_SIZE]; /* 0x10 */
};

struct buffer_page {
	struct buffer_data_page *page;   /* 0x00 */
	unsigned long write;             /* 0x08 */
	unsigned long entries;           /* 0x10 */
	unsigned long real_end;          /* 0x18 */
};

struct ring_buffer_per_cpu {
	int cpu;                         /* 0x00 */
	unsigned int nr_pages;           /* 0x04 */
	struct buffer_page *pages;       /* 0x08: the ring */
	unsigned int head;               /* 0x10: oldest page, next for the reader */
	unsigned int tail;               /* 0x14: the page written now */
	unsigned int commit;             /* 0x18 */
	int overwrite;                   /* 0x1c: options/overwrite */
	u64 write_stamp;                 /* 0x20 */
	unsigned long entries;           /* 0x28 */
	unsigned long overrun;           /* 0x30 */
	unsigned long commit_overrun;    /* 0x38 */
	unsigned long dropped_events;    /* 0x40 */
	unsigned long entries_bytes;     /* 0x48 */
	unsigned long read;              /* 0x50 */
	unsigned long pages_touched;     /* 0x58 */
	int record_disabled;             /* 0x60 */
	unsigned int reserved_len;       /* 0x64 */
	void *reserved;                  /* 0x68 */
	u64 reserved_ts;                 /* 0x70 */
};

struct trace_buffer {
	int record_disabled;             /* 0x00: tracing_on == 0 */
	int nr_cpus;                     /* 0x04 */
	struct ring_buffer_per_cpu *buffers[NR_CPUS];   /* 0x08 */
};

extern struct trace_buffer *global_trace_buffer;

void *ring_buffer_lock_reserve(struct trace_buffer *buffer, unsigned int length, u64 ts);
void ring_buffer_unlock_commit(struct trace_buffer *buffer);

#endif
