"""The emulated machine's memory map (Documentation/arch/x86/x86_64/mm.rst, in miniature).

::

    0x0000000000400000  user programs (user.elf)             R-X / R / RW
    0x00007fffe0000000  mmap area, 16 MiB (mm->mmap_base)     RW
    0x00007ffff0000000  user stacks of lab-started tasks,    RW
                        64 slots of 64 KiB
    0x00007ffffff00000  workload arguments page               RW
    0xffff8880000c0000  direct map: one pcpu_hot page per CPU  RW
    0xffff888000f00000  the lab's mailbox page, host-backed   RW
                        (arguments of Python callbacks)
    0xffff888001080000  ftrace data: ftrace_ops, hashes (the  RW
                        lab allocates them, as kmalloc would)
    0xffff888010000000  ring-buffer pages, 128 MiB             RW
    0xffffc900000d0000  vmalloc: kernel stacks, 16 KiB each,  RW
                        an unmapped guard page between them
    0xffffffff81000000  kernel text (vmlinux)                 R-X
    0xffffffffa0000000  module area: ftrace trampolines       R-X
                        kernel rodata, __mcount_loc            R
                        kernel data and bss                   RW

Text is never writable by emulated code: only the lab's text_poke writes it.

The odd offsets of the pcpu_hot pages, the ftrace data and the stacks within
their 1 MiB are on purpose. Unicorn's software TLB is direct-mapped on the page
number modulo 256, so pages 1 MiB apart evict each other. Every traced call
touches pcpu_hot, the ftrace data (ops, ring_buffer_per_cpu), a stack and the
trampoline's page (it loads its ops from there). At 1 MiB-aligned bases all
four shared set 0, and the misses cost the native function tracer about a
quarter of its time (bench/bench_pages.py). Here they use sets 0xc0-0xc7,
0x80 upwards and 0xd1-0xf8.
The layout of struct pcpu_hot is shared with include/kernel.h and
entry_64.S (the PCPU_* offsets below).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

PAGE_SIZE = 0x1000

USER_MMAP_BASE = 0x7FFF_E000_0000     # include/kernel.h USER_MMAP_BASE
USER_MMAP_SIZE = 0x100_0000
USER_STACKS_BASE = 0x7FFF_F000_0000   # include/kernel.h USER_STACKS_BASE
USER_STACK_SLOT = 0x1_0000
USER_STACK_SLOTS = 64
USER_ARGS = 0x7FFF_FFF0_0000

PERCPU_BASE = 0xFFFF_8880_000C_0000
LAB_MAILBOX = 0xFFFF_8880_00F0_0000     # ftrace_64.S LAB_MAILBOX
FTRACE_DATA_BASE = 0xFFFF_8880_0108_0000
FTRACE_DATA_SIZE = 0x40_0000
TRACE_PAGES_BASE = 0xFFFF_8880_1000_0000
TRACE_PAGES_SIZE = 0x800_0000
MODULES_VADDR = 0xFFFF_FFFF_A000_0000
MODULES_SIZE = 0x10_0000
KSTACK_BASE = 0xFFFF_C900_000D_0000
THREAD_SIZE = 0x4000

# struct pcpu_hot field offsets (include/kernel.h)
PCPU_SELF = 0x00
PCPU_CURRENT_TASK = 0x08
PCPU_PREEMPT_COUNT = 0x10
PCPU_CPU_NUMBER = 0x14
PCPU_TOP_OF_STACK = 0x18
PCPU_CLOCK_NS = 0x28
PCPU_NR_SYSCALLS = 0x30
PCPU_RAND_STATE = 0x38
PCPU_SLICE_END = 0x40
PCPU_NEXT_EVENT = 0x48
PCPU_IPI_PENDING = 0x50
PCPU_NEED_RESCHED = 0x54
PCPU_NR_IRQS = 0x68
PCPU_NR_SWITCHES = 0x70
NO_DEADLINE = 0xFFFF_FFFF_FFFF_FFFF

# struct task_struct field offsets (include/kernel.h)
TASK_PID = 0x00
TASK_COMM = 0x08
TASK_STACK = 0x50


def percpu_addr(cpu: int) -> int:
    return PERCPU_BASE + cpu * PAGE_SIZE


def kstack_range(cpu: int) -> tuple[int, int]:
    """[bottom, top) of a CPU's kernel stack; a guard page lies below each."""
    bottom = KSTACK_BASE + cpu * (THREAD_SIZE + PAGE_SIZE) + PAGE_SIZE
    return bottom, bottom + THREAD_SIZE


def page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    size: int
    read: bool
    write: bool
    execute: bool

    @property
    def end(self) -> int:
        return self.start + self.size

    def allows(self, access: str) -> bool:
        return {"read": self.read, "write": self.write, "fetch": self.execute}[access]

    @property
    def perms(self) -> str:
        return ("r" if self.read else "-") + ("w" if self.write else "-") + \
            ("x" if self.execute else "-")


class MemoryMap:
    """Sorted, non-overlapping regions with an address lookup."""

    def __init__(self) -> None:
        self._regions: list[Region] = []
        self._starts: list[int] = []

    def add(self, region: Region) -> None:
        i = bisect.bisect_left(self._starts, region.start)
        for other in self._regions[max(i - 1, 0):i + 1]:
            if region.start < other.end and other.start < region.end:
                raise ValueError(f"region {region.name} overlaps {other.name}")
        self._regions.insert(i, region)
        self._starts.insert(i, region.start)

    def find(self, addr: int) -> Region | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._regions[i].end:
            return self._regions[i]
        return None

    def __iter__(self) -> Iterator[Region]:
        return iter(self._regions)
