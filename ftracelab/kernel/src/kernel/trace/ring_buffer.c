// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/trace/ring_buffer.c for the mini-kernel: the writer side of the
 * per-CPU ring buffers (ring_buffer_lock_reserve, rb_reserve_next_event,
 * rb_calculate_event_length, rb_add_time_stamp, rb_reset_tail,
 * rb_move_tail, ring_buffer_unlock_commit).
 *
 * Pages are struct buffer_data_page, byte for byte the kernel's: a u64
 * time_stamp, a 64-bit commit, then 4080 bytes of events with 32-bit
 * headers (type_len:5, time_delta:27). The lab allocates the pages and the
 * per-CPU descriptors (trace/ring_buffer.py) and does the reader's side.
 *
 * Simplifications, said plainly: the ring is an array of pages indexed by
 * head/tail/commit instead of a list with flag bits in its pointers, and a
 * writer runs with interrupts off, so writers never nest (the lab delivers
 * interrupts only where a CPU stops, never inside this code).
 */
#include "ftrace.h"
#include "ring_buffer.h"

#define TS_SHIFT 27
#define TS_MASK ((1ull << TS_SHIFT) - 1)
#define RB_MAX_SMALL_DATA (4 * RINGBUF_TYPE_DATA_TYPE_LEN_MAX)
#define RB_LEN_TIME_EXTEND 8

struct trace_buffer *global_trace_buffer;   /* set up by the lab */

notrace static unsigned int rb_calculate_event_length(unsigned int length)
{
	if (!length)
		length++;
	if (length > RB_MAX_SMALL_DATA)
		length += 4;                     /* the array[0] length word */
	length = (length + 4 + 3) & ~3u;         /* header, RB_ARCH_ALIGNMENT 4 */
	if (length == 12)
		length = 16;                     /* room for an extend + padding later */
	return length;
}

/* End a page: the rest becomes padding outside or inside commit (rb_reset_tail). */
notrace static void rb_reset_tail(struct ring_buffer_per_cpu *cpu_buffer, struct buffer_page *bpage)
{
	unsigned long tail = bpage->write;
	u32 *event = (u32 *)(bpage->page->data + tail);

	if (tail >= BUF_PAGE_SIZE)
		return;
	bpage->real_end = tail;
	if (BUF_PAGE_SIZE - tail < RB_EVNT_MIN_SIZE) {
		*event = RINGBUF_TYPE_PADDING;   /* null padding; commit does not cover it */
		return;
	}
	event[0] = RINGBUF_TYPE_PADDING | (1u << 5);     /* time_delta 1: a discard */
	event[1] = BUF_PAGE_SIZE - tail - 4;
	cpu_buffer->entries_bytes += BUF_PAGE_SIZE - tail;   /* padding bytes are accounted */
	bpage->write = BUF_PAGE_SIZE;
	bpage->page->commit = BUF_PAGE_SIZE;
}

/* Move the tail to the next page; false if the event must be dropped. */
notrace static bool rb_move_tail(struct ring_buffer_per_cpu *cpu_buffer, u64 ts)
{
	unsigned int next = (cpu_buffer->tail + 1) % cpu_buffer->nr_pages;
	struct buffer_page *bpage;

	if (next == cpu_buffer->head) {
		struct buffer_page *head = &cpu_buffer->pages[cpu_buffer->head];

		if (!cpu_buffer->overwrite) {
			cpu_buffer->dropped_events++;
			return false;
		}
		/* rb_handle_head_page(): the oldest page is lost */
		cpu_buffer->overrun += head->entries;
		cpu_buffer->entries -= head->entries;
		cpu_buffer->entries_bytes -= head->write;
		cpu_buffer->head = (cpu_buffer->head + 1) % cpu_buffer->nr_pages;
	}
	rb_reset_tail(cpu_buffer, &cpu_buffer->pages[cpu_buffer->tail]);
	cpu_buffer->tail = next;
	cpu_buffer->commit = next;
	bpage = &cpu_buffer->pages[next];
	bpage->write = 0;
	bpage->entries = 0;
	bpage->real_end = 0;
	bpage->page->time_stamp = ts;
	bpage->page->commit = 0;
	cpu_buffer->pages_touched++;
	return true;
}

/* Reserve length bytes of payload at time ts; NULL if dropped. */
notrace void *ring_buffer_lock_reserve(struct trace_buffer *buffer, unsigned int length, u64 ts)
{
	struct ring_buffer_per_cpu *cpu_buffer;
	struct buffer_page *bpage;
	unsigned int len = rb_calculate_event_length(length), need;
	u64 delta;
	u32 *event;

	if (!buffer || buffer->record_disabled)
		return NULL;
	cpu_buffer = buffer->buffers[smp_processor_id()];
	if (!cpu_buffer || cpu_buffer->record_disabled)
		return NULL;
	bpage = &cpu_buffer->pages[cpu_buffer->tail];
	delta = bpage->write ? ts - cpu_buffer->write_stamp : 0;
	need = len + ((delta & ~TS_MASK) ? RB_LEN_TIME_EXTEND : 0);
	if (bpage->write + need > BUF_PAGE_SIZE) {
		if (!rb_move_tail(cpu_buffer, ts))
			return NULL;
		bpage = &cpu_buffer->pages[cpu_buffer->tail];
		delta = 0;                       /* the page's time_stamp is the base */
	}
	if (!bpage->write)
		bpage->page->time_stamp = ts;    /* the first event on a page: its stamp is the base */
	event = (u32 *)(bpage->page->data + bpage->write);
	if (delta & ~TS_MASK) {                  /* rb_add_time_stamp(): TIME_EXTEND */
		event[0] = RINGBUF_TYPE_TIME_EXTEND | (u32)((delta & TS_MASK) << 5);
		event[1] = (u32)(delta >> TS_SHIFT);
		event += 2;
		bpage->write += RB_LEN_TIME_EXTEND;
		delta = 0;
	}
	length = len - 4;
	if (length > RB_MAX_SMALL_DATA) {
		event[0] = (u32)(delta << 5);    /* type_len 0: length in array[0] */
		event[1] = length;               /* counts its own 4 bytes */
		cpu_buffer->reserved = event + 2;
	} else {
		event[0] = (length + 3) / 4 | (u32)(delta << 5);
		cpu_buffer->reserved = event + 1;
	}
	cpu_buffer->reserved_len = len;
	cpu_buffer->reserved_ts = ts;
	return cpu_buffer->reserved;
}

notrace void ring_buffer_unlock_commit(struct trace_buffer *buffer)
{
	struct ring_buffer_per_cpu *cpu_buffer = buffer->buffers[smp_processor_id()];
	struct buffer_page *bpage = &cpu_buffer->pages[cpu_buffer->tail];

	bpage->write += cpu_buffer->reserved_len;
	bpage->entries++;
	bpage->page->commit = bpage->write;
	cpu_buffer->entries++;
	cpu_buffer->entries_bytes += cpu_buffer->reserved_len;
	cpu_buffer->write_stamp = cpu_buffer->reserved_ts;
	cpu_buffer->reserved = NULL;
}
