"""The lab's vCPU scheduler: interleaves the emulated CPUs on one Unicorn
instance and plays the interrupt controller (the local APIC timer and IPIs).

Each CPU has its own virtual clock (pcpu_hot.clock_ns). The scheduler
always runs the running CPU whose clock is furthest behind, and gives it a
slice that ends one quantum past the next-slowest running CPU, so no CPU
gets more than a quantum ahead of another: a wake-up or a lock release on one
CPU is seen by the others at the right virtual time. The kernel yields at a
slice end from simulate_work() (paravirt_slice_end), and right after sending
an IPI.

Interrupts are delivered where a CPU stops, if its IF flag is set:

* the timer interrupt when the CPU's clock has passed the deadline it
  programmed (pcpu_hot.next_event_ns, written by lapic_next_deadline());
* a device interrupt when the CPU's clock has passed the time a device asked
  for on its line (lab_irq_lines[irq], written by lab_irq_raise_at(); the
  lab_irq_armed mask says which lines have one): the vector's stub in
  irq_entries_start;
* the reschedule IPI when another CPU set pcpu_hot.ipi_pending, or the CPU
  is idle with need_resched set.

A CPU halted in the idle loop keeps its clock until something wakes it;
then its clock jumps to the wake-up time. When every CPU is idle, time
jumps to the earliest programmed deadline.

Everything here is deterministic: ties go to the lowest CPU number.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import MachineError
from .cpu import Machine, Stop
from .memory import (
    NO_DEADLINE,
    PCPU_CLOCK_NS,
    PCPU_IPI_PENDING,
    PCPU_NEED_RESCHED,
    PCPU_NEXT_EVENT,
    PCPU_SLICE_END,
    percpu_addr,
)

QUANTUM_NS = 2_000
NR_IRQS = 16
IRQ_STUB_SIZE = 16                 # irq_entries_start: one stub per vector
_LINE = struct.Struct("<Qi4x")     # struct lab_irq_line


@dataclass
class SmpStop:
    """Why :meth:`VcpuScheduler.run` returned: "done", or a breakpoint/step Stop."""

    reason: str
    stop: Stop | None = None


class VcpuScheduler:
    def __init__(self, machine: Machine, quantum_ns: int = QUANTUM_NS) -> None:
        self.m = machine
        self.quantum_ns = quantum_ns
        sym = machine.symbols
        self._slice_end_resume = sym["paravirt_slice_end"] + 1
        self._timer_entry = sym["asm_sysvec_apic_timer_interrupt"]
        self._ipi_entry = sym["asm_sysvec_reschedule_ipi"]
        self._irq_entries = sym["irq_entries_start"]
        self._irq_lines = sym["lab_irq_lines"]
        self._irq_armed = sym["lab_irq_armed"]
        self.halted = [False] * machine.ncpus
        self.slices = 0

    # ---- per-CPU fields ------------------------------------------------------
    def _u64(self, cpu: int, off: int) -> int:
        return self.m.read_u64(percpu_addr(cpu) + off)

    def _u32(self, cpu: int, off: int) -> int:
        return int.from_bytes(self.m.read(percpu_addr(cpu) + off, 4), "little")

    def clock(self, cpu: int) -> int:
        return self._u64(cpu, PCPU_CLOCK_NS)

    def _set_clock(self, cpu: int, ns: int) -> None:
        self.m.write_u64(percpu_addr(cpu) + PCPU_CLOCK_NS, ns)

    def sync_clocks(self) -> int:
        """Bring idle CPUs' clocks up to the latest one; returns that time."""
        now = max(self.clock(c) for c in range(self.m.ncpus))
        for c in range(self.m.ncpus):
            if self.halted[c]:
                self._set_clock(c, now)
        return now

    # ---- interrupts ------------------------------------------------------------
    def _lines(self, cpu: int) -> list[tuple[int, int]]:
        """(deadline, irq) of the device lines armed for ``cpu``."""
        armed = int.from_bytes(self.m.read(self._irq_armed, 4), "little")
        if not armed:
            return []
        raw = self.m.read(self._irq_lines, _LINE.size * NR_IRQS)
        out = []
        for irq in range(NR_IRQS):
            if armed >> irq & 1:
                deadline, target = _LINE.unpack_from(raw, _LINE.size * irq)
                if target == cpu:
                    out.append((deadline, irq))
        return out

    def _next_event(self, cpu: int) -> int:
        """The earliest time something will interrupt ``cpu``: its APIC deadline or a
        device line."""
        return min([self._u64(cpu, PCPU_NEXT_EVENT), *(d for d, _ in self._lines(cpu))])

    def _try_interrupts(self, cpu: int, idle: bool = False) -> bool:
        """Deliver what is pending on the selected CPU; True if one was taken.
        An idle CPU is also kicked out of hlt when it has need_resched set."""
        m = self.m
        if not m.interrupts_enabled():
            return False
        if self.clock(cpu) >= self._u64(cpu, PCPU_NEXT_EVENT):
            # The deadline fires once; the handler programs the next one.
            m.write_u64(percpu_addr(cpu) + PCPU_NEXT_EVENT, NO_DEADLINE)
            return m.deliver_interrupt(self._timer_entry)
        due = [irq for deadline, irq in self._lines(cpu) if deadline <= self.clock(cpu)]
        if due:                            # the lowest line first, as the IO-APIC's priority
            irq = min(due)
            m.write_u64(self._irq_lines + _LINE.size * irq, NO_DEADLINE)
            armed = int.from_bytes(m.read(self._irq_armed, 4), "little")
            m.write_u32(self._irq_armed, armed & ~(1 << irq))
            return m.deliver_interrupt(self._irq_entries + IRQ_STUB_SIZE * irq)
        if self._u32(cpu, PCPU_IPI_PENDING) or (idle and self._u32(cpu, PCPU_NEED_RESCHED)):
            m.write_u32(percpu_addr(cpu) + PCPU_IPI_PENDING, 0)
            return m.deliver_interrupt(self._ipi_entry)
        return False

    def _wants_wakeup(self, cpu: int, now: int) -> bool:
        return bool(self._u32(cpu, PCPU_IPI_PENDING) or self._u32(cpu, PCPU_NEED_RESCHED)
                    or self._next_event(cpu) <= now)

    def _wake(self, cpu: int, now: int) -> None:
        """Wake a halted CPU at virtual time ``now`` (or at its own deadline)."""
        deadline = self._next_event(cpu)
        wake_at = now if (self._u32(cpu, PCPU_IPI_PENDING) or self._u32(cpu, PCPU_NEED_RESCHED)) \
            else deadline
        self._set_clock(cpu, max(self.clock(cpu), wake_at))
        self.m.select_cpu(cpu)
        self.halted[cpu] = not self._try_interrupts(cpu, idle=True)

    # ---- the loop ----------------------------------------------------------------
    def run(self, done: Callable[[], bool], max_slices: int = 5_000_000) -> SmpStop:
        """Interleave the CPUs until ``done()`` holds with every CPU idle, or a CPU
        stops at a breakpoint or after a step."""
        m = self.m
        n = m.ncpus
        for _ in range(max_slices):
            running = [c for c in range(n) if not self.halted[c]]
            now = min((self.clock(c) for c in running), default=None)
            if now is not None:
                for c in range(n):
                    if self.halted[c] and self._wants_wakeup(c, now):
                        self._wake(c, now)
                running = [c for c in range(n) if not self.halted[c]]
            if not running:
                if done():
                    return SmpStop("done")
                deadlines = [(self._next_event(c), c) for c in range(n)]
                wake_at, cpu = min(deadlines)
                pending = [c for c in range(n) if self._wants_wakeup(c, self.clock(c))]
                if pending:
                    self._wake(pending[0], self.clock(pending[0]))
                    continue
                if wake_at == NO_DEADLINE:
                    raise MachineError("every CPU is idle with nothing programmed to wake it, "
                                       "but tasks are still alive: the workload is stuck")
                self._wake(cpu, wake_at)
                continue
            cpu = min(running, key=lambda c: (self.clock(c), c))
            stop = self._run_slice(cpu, running)
            if stop is not None:
                return SmpStop(stop.reason, stop)
        raise MachineError(f"no end after {max_slices} slices")

    def _run_slice(self, cpu: int, running: list[int]) -> Stop | None:
        m = self.m
        m.select_cpu(cpu)
        self._try_interrupts(cpu)      # first: a handler reprograms the deadline
        others = [self.clock(c) for c in running if c != cpu]
        halted_deadlines = [self._next_event(c) for c in range(m.ncpus) if self.halted[c]]
        end = min([NO_DEADLINE, self._next_event(cpu), *halted_deadlines,
                   *(t + self.quantum_ns for t in others)])
        m.write_u64(percpu_addr(cpu) + PCPU_SLICE_END, end)
        stop = m.run()
        self.slices += 1
        m.write_u64(percpu_addr(cpu) + PCPU_SLICE_END, NO_DEADLINE)
        if stop.reason != "halt":
            return stop                           # a breakpoint or a step: pause
        if stop.rip != self._slice_end_resume:     # the idle loop's hlt
            self.halted[cpu] = not self._try_interrupts(cpu, idle=True)
        else:
            self._try_interrupts(cpu)
        return None
