"""The per-CPU ring buffers in the emulated kernel's memory (kernel/trace/ring_buffer.c:
ring_buffer_alloc(), ring_buffer_resize(), rb_get_reader_page(),
ring_buffer_read_page(), ring_buffer_entries_cpu() and friends).

The writer is native code in the image (kernel/trace/ring_buffer.c); this
module allocates the pages and descriptors it writes into and plays the
reader. Layout of the descriptors (include/ring_buffer.h)::

    struct trace_buffer           struct ring_buffer_per_cpu
    0x00 record_disabled          0x00 cpu          0x28 entries
    0x04 nr_cpus                  0x04 nr_pages     0x30 overrun
    0x08 buffers[NR_CPUS]         0x08 pages        0x38 commit_overrun
                                  0x10 head         0x40 dropped_events
    struct buffer_page            0x14 tail         0x48 entries_bytes
    0x00 page  (-> a 4 KiB        0x18 commit       0x50 read
                buffer_data_page) 0x1c overwrite    0x58 pages_touched
    0x08 write 0x10 entries       0x20 write_stamp  0x60 record_disabled
    0x18 real_end

A consuming read (trace_pipe, trace_pipe_raw) takes whole pages from the head,
as a reader-page swap does, then the unread events of the page being written
(ring_buffer_read_page() copies those out; the lab hands out the page with the
events read before covered by one discard padding), and marks lost events in
the page's commit field the way ring_buffer_read_page() does (RB_MISSED_EVENTS,
RB_MISSED_STORED and the count after the data).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..machine.cpu import Machine
from ..machine.memory import PAGE_SIZE
from .ftrace_ops import KernelArena

BUF_PAGE_HDR_SIZE = 16
BUF_PAGE_SIZE = PAGE_SIZE - BUF_PAGE_HDR_SIZE
RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
TRACE_BUF_SIZE_DEFAULT_KB = 1408        # 16384 entries of 88 bytes, as in Linux

CPU_DESC_SIZE = 0x78
_CPU_FMT = "<iIQIIIiQQQQQQQQ"           # up to pages_touched (0x60)


@dataclass
class CpuBufferStats:
    """One CPU's counters, as per_cpu/cpuN/stats shows them."""

    entries: int
    overrun: int
    commit_overrun: int
    bytes: int
    dropped_events: int
    read_events: int
    pages: int


class RingBuffer:
    """The global trace buffer: one ring of pages per CPU."""

    def __init__(self, machine: Machine, data: KernelArena, pages: KernelArena,
                 size_kb: int = TRACE_BUF_SIZE_DEFAULT_KB, install: bool = True) -> None:
        self.m = machine
        self.data = data
        self.page_arena = pages
        self.addr = data.alloc(8 + 8 * 8)
        self.cpu_addrs: list[int] = [0] * machine.ncpus
        self.last_overrun = [0] * machine.ncpus
        # trace_pipe's position on the page being written: (index, offset, last ts,
        # the page's time_stamp, events taken)
        self.read_state: dict[int, tuple[int, int, int, int, int]] = {}
        self.overwrite = True
        self.disabled_cpus: set[int] = set()     # tracing_cpumask's: record_disabled per CPU
        self.size_kb = 0
        m = machine
        m.write(self.addr, struct.pack("<ii", 0, machine.ncpus))
        if install:                     # the live buffer (a snapshot's spare is not)
            m.write_u64(m.symbols["global_trace_buffer"], self.addr)
        self.resize(size_kb)

    # ---- allocation -----------------------------------------------------------
    def resize(self, size_kb: int, cpu: int | None = None) -> None:
        """ring_buffer_resize(): new, empty rings (contents lost) of ``size_kb``, rounded
        up to whole pages of BUF_PAGE_SIZE bytes and at least two, for every CPU or one."""
        nr_pages = max(2, (size_kb * 1024 + BUF_PAGE_SIZE - 1) // BUF_PAGE_SIZE)
        for c in range(self.m.ncpus) if cpu is None else [cpu]:
            self._new_ring(c, nr_pages)
        if cpu is None:
            self.size_kb = size_kb

    def _new_ring(self, cpu: int, nr_pages: int) -> None:
        m = self.m
        desc = self.data.alloc(CPU_DESC_SIZE)
        bpages = self.data.alloc(32 * nr_pages)
        pages = [self.page_arena.alloc(PAGE_SIZE) for _ in range(nr_pages)]
        for p in pages:
            m.write(p, bytes(16))
        m.write(bpages, b"".join(struct.pack("<QQQQ", p, 0, 0, 0) for p in pages))
        m.write(desc, struct.pack("<iIQIIIi", cpu, nr_pages, bpages, 0, 0, 0,
                                  int(self.overwrite)) + bytes(CPU_DESC_SIZE - 0x20))
        m.write_u64(self.addr + 8 + 8 * cpu, desc)
        m.write_u32(desc + 0x60, int(cpu in self.disabled_cpus))
        self.cpu_addrs[cpu] = desc
        self.last_overrun[cpu] = 0
        self.read_state.pop(cpu, None)

    def nr_pages(self, cpu: int) -> int:
        return int(self._cpu(cpu)[1])

    def size_bytes(self, cpu: int) -> int:
        """ring_buffer_size(): what one CPU's ring holds (pages x BUF_PAGE_SIZE)."""
        return self.nr_pages(cpu) * BUF_PAGE_SIZE

    def duplicate_size(self, other: RingBuffer) -> None:
        """resize_buffer_duplicate_size(): each CPU's ring as large as ``other``'s."""
        for cpu in range(self.m.ncpus):
            if self.nr_pages(cpu) != other.nr_pages(cpu):
                self._new_ring(cpu, other.nr_pages(cpu))

    def reset(self) -> None:
        """ring_buffer_reset(): empty every CPU's ring, keep its pages and mode."""
        for cpu in range(len(self.cpu_addrs)):
            self.reset_cpu(cpu)

    def reset_cpu(self, cpu: int) -> None:
        """ring_buffer_reset_cpu(): empty one CPU's ring."""
        desc = self.cpu_addrs[cpu]
        nr, bpages = self._cpu(cpu)[1:3]
        for i in range(nr):
            page = self._bpage(cpu, i)[0]
            self.m.write(page, bytes(16))
            self.m.write(bpages + 32 * i + 8, bytes(24))
        self.m.write(desc + 0x10, bytes(12))               # head, tail, commit
        self.m.write(desc + 0x20, bytes(0x60 - 0x20))      # stamps and counters
        self.last_overrun[cpu] = 0
        self.read_state.pop(cpu, None)

    def swap_cpu(self, other: RingBuffer, cpu: int) -> bool:
        """ring_buffer_swap_cpu(): exchange one CPU's ring with ``other``'s. False
        (-EAGAIN, nothing done) while either buffer or CPU ring records nothing, or
        (-EINVAL) when their sizes differ."""
        if self.nr_pages(cpu) != other.nr_pages(cpu):
            return False
        if any(rb.record_disabled or rb.m.read(rb.cpu_addrs[cpu] + 0x60, 4) != bytes(4)
               for rb in (self, other)):
            return False
        mine, theirs = self.cpu_addrs[cpu], other.cpu_addrs[cpu]
        self.cpu_addrs[cpu], other.cpu_addrs[cpu] = theirs, mine
        self.m.write_u64(self.addr + 8 + 8 * cpu, theirs)
        self.m.write_u64(other.addr + 8 + 8 * cpu, mine)
        self.last_overrun[cpu], other.last_overrun[cpu] = other.last_overrun[cpu], self.last_overrun[cpu]
        mine_state, their_state = self.read_state.pop(cpu, None), other.read_state.pop(cpu, None)
        if their_state is not None:
            self.read_state[cpu] = their_state
        if mine_state is not None:
            other.read_state[cpu] = mine_state
        return True

    @property
    def record_disabled(self) -> bool:
        return bool(self.m.read(self.addr, 1)[0])

    def set_recording(self, on: bool) -> None:
        """tracing_on: tracer_tracing_on()/off()."""
        self.m.write_u32(self.addr, 0 if on else 1)

    def set_cpu_recording(self, cpu: int, on: bool) -> None:
        """ring_buffer_record_enable_cpu()/ring_buffer_record_disable_cpu()."""
        (self.disabled_cpus.discard if on else self.disabled_cpus.add)(cpu)
        self.m.write_u32(self.cpu_addrs[cpu] + 0x60, int(not on))

    def set_overwrite(self, on: bool) -> None:
        """options/overwrite: ring_buffer_change_overwrite()."""
        self.overwrite = on
        for desc in self.cpu_addrs:
            self.m.write_u32(desc + 0x1C, int(on))

    # ---- state --------------------------------------------------------------
    def _cpu(self, cpu: int) -> tuple[int, ...]:
        return struct.unpack(_CPU_FMT, self.m.read(self.cpu_addrs[cpu], 0x60))

    def _bpage(self, cpu: int, index: int) -> tuple[int, int, int, int]:
        bpages = self._cpu(cpu)[2]
        a, b, c, d = struct.unpack("<QQQQ", self.m.read(bpages + 32 * index, 32))
        return a, b, c, d

    def stats(self, cpu: int) -> CpuBufferStats:
        f = self._cpu(cpu)
        _cpu, nr, _pages, _h, _t, _c, _ow, _ws, entries, overrun, c_over, dropped, nbytes, read, \
            _touched = f
        return CpuBufferStats(entries, overrun, c_over, nbytes, dropped, read, nr)

    def _set_field(self, cpu: int, offset: int, value: int) -> None:
        self.m.write_u64(self.cpu_addrs[cpu] + offset, value)

    def pointers(self, cpu: int) -> dict[str, int]:
        """The ring's page indexes: head (the reader takes next), tail (written now),
        commit, and the number of pages."""
        f = self._cpu(cpu)
        return {"nr_pages": f[1], "head": f[3], "tail": f[4], "commit": f[5]}

    def page_info(self, cpu: int, index: int) -> dict[str, int]:
        """A buffer_page: its data page's address, write index, entries and real_end."""
        page, write, entries, real_end = self._bpage(cpu, index)
        return {"page": page, "write": write, "entries": entries, "real_end": real_end}

    # ---- reading ----------------------------------------------------------------
    def page_indexes(self, cpu: int) -> list[int]:
        """Indexes of the pages holding data, oldest first (head .. tail)."""
        f = self._cpu(cpu)
        nr, head, tail = f[1], f[3], f[4]
        out, i = [], head
        while True:
            out.append(i)
            if i == tail:
                return out
            i = (i + 1) % nr

    def read_page(self, cpu: int, index: int) -> bytes:
        page = self._bpage(cpu, index)[0]
        return self.m.read(page, PAGE_SIZE)

    def snapshot(self, cpu: int) -> list[bytes]:
        """Every page with unread data, oldest first, without consuming (the ``trace``
        view): what trace_pipe took is not shown again."""
        pages = []
        for i in self.page_indexes(cpu):
            raw = bytearray(self.read_page(cpu, i))
            commit = struct.unpack_from("<q", raw, 8)[0] & ~(RB_MISSED_EVENTS | RB_MISSED_STORED)
            state = self.read_state.get(cpu)
            if state and state[0] == i and state[1] >= commit and \
                    int.from_bytes(raw[:8], "little") == state[3]:
                continue                    # everything on it was read through trace_pipe
            self._patch_consumed(cpu, i, raw)   # hide what trace_pipe already took
            if commit:
                pages.append(bytes(raw))
        return pages

    def _patch_consumed(self, cpu: int, index: int, raw: bytearray) -> int:
        """Hide events a trace_pipe read already took from this page: set the page's
        time_stamp to the last one taken and cover them with one discard padding
        (time_delta 1: it does not move the clock). Returns how many it hid."""
        state = self.read_state.get(cpu)
        if state is None or state[0] != index or int.from_bytes(raw[:8], "little") != state[3]:
            return 0
        _index, offset, ts, _page_ts, count = state
        struct.pack_into("<QII", raw, 0, ts, *struct.unpack_from("<II", raw, 8))
        struct.pack_into("<II", raw, BUF_PAGE_HDR_SIZE, 29 | (1 << 5), offset - 4)
        return count

    def consume_full_pages(self, cpu: int) -> list[bytes]:
        """Take every full page (all before the tail), oldest first."""
        f = self._cpu(cpu)
        nr, head, tail = f[1], f[3], f[4]
        out = []
        while head != tail:
            _page, write, entries, real_end = self._bpage(cpu, head)
            raw = bytearray(self.read_page(cpu, head))
            entries -= self._patch_consumed(cpu, head, raw)
            self.read_state.pop(cpu, None)
            if real_end:
                # ring_buffer_read_page(): a whole page is handed out with real_end as
                # its commit, the end-of-page filler zeroed
                struct.pack_into("<q", raw, 8, real_end)
                raw[BUF_PAGE_HDR_SIZE + real_end:] = bytes(BUF_PAGE_SIZE - real_end)
            self._mark_lost(cpu, raw)
            out.append(bytes(raw))
            stats = self._cpu(cpu)
            self._set_field(cpu, 0x28, stats[8] - entries)           # entries
            self._set_field(cpu, 0x48, max(stats[12] - write, 0))    # bytes (read_bytes)
            self._set_field(cpu, 0x50, stats[13] + entries)          # read
            head = (head + 1) % nr
            self.m.write_u32(self.cpu_addrs[cpu] + 0x10, head)
        return out

    def _mark_lost(self, cpu: int, raw: bytearray) -> None:
        """ring_buffer_read_page(): events lost since the last read flag the page's
        commit (RB_MISSED_EVENTS) and, with room after the data, store the count."""
        overrun = self._cpu(cpu)[9]
        lost = overrun - self.last_overrun[cpu]
        self.last_overrun[cpu] = overrun
        if lost:
            commit = struct.unpack_from("<q", raw, 8)[0]
            flags = RB_MISSED_EVENTS
            if BUF_PAGE_SIZE - commit >= 8:
                struct.pack_into("<q", raw, BUF_PAGE_HDR_SIZE + commit, lost)
                flags |= RB_MISSED_STORED
            struct.pack_into("<q", raw, 8, commit | flags)

    def consume_all(self, cpu: int) -> list[bytes]:
        """trace_pipe and trace_pipe_raw: every event not read yet, the page being
        written included (ring_buffer_read_page() copies a partial page out). Full
        pages leave the ring; on the writer's page the read position is kept."""
        from ..formats.ring_buffer_page import decode_pages

        pages = self.consume_full_pages(cpu)
        tail = self._cpu(cpu)[4]
        raw = bytearray(self.read_page(cpu, tail))
        commit = struct.unpack_from("<q", raw, 8)[0] & ~(RB_MISSED_EVENTS | RB_MISSED_STORED)
        state = self.read_state.get(cpu)
        page_ts = int.from_bytes(raw[:8], "little")
        already = state[1] if state and state[0] == tail and state[3] == page_ts else 0
        if commit <= already:
            return pages
        taken_before = self._patch_consumed(cpu, tail, raw)
        events = decode_pages(bytes(self.read_page(cpu, tail)), cpu=cpu)
        last_ts = int(events.ts[-1]) if len(events) else page_ts
        self._mark_lost(cpu, raw)
        pages.append(bytes(raw))
        self.read_state[cpu] = (tail, commit, last_ts, page_ts, len(events))
        stats = self._cpu(cpu)
        self._set_field(cpu, 0x28, stats[8] - (len(events) - taken_before))
        self._set_field(cpu, 0x50, stats[13] + (len(events) - taken_before))
        return pages
