"""The snapshot of kernel/trace/trace.c (CONFIG_TRACER_SNAPSHOT): a spare buffer
the size of the live one (``tr->max_buffer``) that taking a snapshot swaps with
it (update_max_tr(): the new live buffer inherits tracing_on), and the
``snapshot`` file (tracing_snapshot_write(), print_snapshot_help())::

    echo 1 > snapshot   allocate the spare if needed (the live size), then swap
    echo 0 > snapshot   free it
    echo 2 > snapshot   empty it (any number but 0 and 1), allocating nothing
    cat snapshot        its entries as ``trace`` shows the live ones, or, while
                        it is empty, whether it is allocated and the commands

The ``snapshot`` event trigger and ``snapshot`` function command arm it
(allocating the spare) and swap natively: tracing_snapshot_instance_cond() in the
image's trace_functions.c, which without a spare writes the kernel's
``*** SNAPSHOT NOT ALLOCATED ***`` lines and turns tracing off. The lab has no
latency tracers, so nothing else uses the spare.

``per_cpu/cpuN/snapshot`` is the same for one CPU (x86 has
CONFIG_RING_BUFFER_ALLOW_SWAP): ``echo 1`` allocates if needed and swaps only that
CPU's ring (update_max_tr_single(): ring_buffer_swap_cpu(), which does nothing
while tracing is off), ``echo 0`` is EINVAL, another number empties that CPU's
spare; ``per_cpu/cpuN/snapshot_raw`` gives the spare's pages as trace_pipe_raw does
the live ones'.
"""

from __future__ import annotations

import errno
import os
from functools import partial
from typing import TYPE_CHECKING

from .ring_buffer import RingBuffer

if TYPE_CHECKING:
    from ..tracefs import TraceFS
    from .ftrace_ops import KernelArena
    from .trace import TraceArray

__all__ = ["SNAPSHOT_HELP", "SNAPSHOT_PERCPU_HELP", "Snapshot"]

SNAPSHOT_PERCPU_HELP = ("# Snapshot commands:\n"
                        "# echo 0 > snapshot : Invalid for per_cpu snapshot file.\n"
                        "# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.\n"
                        "#                      Takes a snapshot of the main buffer for this cpu.\n"
                        "# echo 2 > snapshot : Clears this cpu's snapshot buffer (but does not allocate)\n"
                        "#                      (Doesn't have to be '2' works with any number that\n"
                        "#                       is not a '0' or '1')\n")
SNAPSHOT_HELP = ("# Snapshot commands:\n"
                 "# echo 0 > snapshot : Clears and frees snapshot buffer\n"
                 "# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.\n"
                 "#                      Takes a snapshot of the main buffer.\n"
                 "# echo 2 > snapshot : Clears snapshot buffer (but does not allocate or free)\n"
                 "#                      (Doesn't have to be '2' works with any number that\n"
                 "#                       is not a '0' or '1')\n")


class Snapshot:
    """tr->max_buffer, tr->allocated_snapshot and tr->snapshot (its users)."""

    def __init__(self, tr: TraceArray, pages: KernelArena) -> None:
        self.tr, self.m, self.pages = tr, tr.m, pages
        self.armed = 0                   # triggers and function commands using it

    @property
    def ring(self) -> RingBuffer | None:
        """The spare buffer, while allocated."""
        addr = self.m.read_u64(self.m.symbols["snapshot_trace_buffer"])
        return next((rb for rb in self.tr.rings if rb.addr == addr), None) if addr else None

    @property
    def allocated(self) -> bool:
        return self.ring is not None

    def alloc(self) -> RingBuffer:
        """tracing_alloc_snapshot_instance(): a spare of the live buffer's size."""
        ring = self.ring
        live = self.tr.buffer
        if ring is None:
            ring = next((rb for rb in self.tr.rings if rb is not live), None)
            if ring is None:
                ring = RingBuffer(self.m, self.tr.ftrace.data, self.pages, live.size_kb, install=False)
                self.tr.rings.append(ring)
                self.tr.apply_cpumask()              # the spare's CPUs follow tracing_cpumask
            else:
                ring.reset()
            self.m.write_u64(self.m.symbols["snapshot_trace_buffer"], ring.addr)
        ring.duplicate_size(live)                  # resize_buffer_duplicate_size()
        return ring

    def free(self) -> None:
        """free_snapshot(): the kernel shrinks the spare to a page; the lab keeps its
        pages for the next allocation."""
        self.m.write_u64(self.m.symbols["snapshot_trace_buffer"], 0)

    def resize(self) -> None:
        """buffer_size_kb resizes an allocated spare with the live buffer."""
        ring = self.ring
        if ring is not None:
            ring.duplicate_size(self.tr.buffer)

    def take(self) -> None:
        """tracing_snapshot(): swap, with the image's own code, on the current CPU."""
        self.m.call(self.tr.current_cpu, "tracing_snapshot_instance_cond")

    def arm(self, delta: int) -> None:
        """tracing_arm_snapshot() (+1: allocates) and tracing_disarm_snapshot() (-1)."""
        if delta > 0:
            self.alloc()
        self.armed = max(self.armed + delta, 0)

    # ---- the snapshot file --------------------------------------------------------
    def register(self, fs: TraceFS) -> None:
        fs.add_file("snapshot", read=self.read, write=self.write, mode=0o644)
        for cpu in range(self.m.ncpus):
            fs.add_file(f"per_cpu/cpu{cpu}/snapshot", read=partial(self.read, cpu),
                        write=partial(self.write, cpu=cpu), mode=0o644)
            fs.add_file(f"per_cpu/cpu{cpu}/snapshot_raw", read=partial(self.read_raw, cpu), mode=0o444)

    def write(self, text: str, append: bool, cpu: int | None = None) -> None:
        """tracing_snapshot_write() on ``snapshot`` or, given ``cpu``, its per_cpu file."""
        path = "snapshot" if cpu is None else f"per_cpu/cpu{cpu}/snapshot"
        word = text[:-1] if text.endswith("\n") else text
        if not word.isdigit():                        # kstrtoul_from_user(, 10)
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        value = int(word)
        if value == 0:
            if cpu is not None:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
            if self.allocated:
                self.free()
        elif value == 1:
            spare = self.alloc()
            if cpu is None:
                self.take()
            else:                                     # tracing_swap_cpu_buffer()
                spare.swap_cpu(self.tr.buffer, cpu)
        elif self.ring is not None:
            (self.ring.reset if cpu is None else partial(self.ring.reset_cpu, cpu))()

    def read(self, cpu: int | None = None) -> str | bytes:
        """The snapshot's entries (of one CPU), or while there are none the help."""
        ring = self.ring
        cpus = range(self.m.ncpus) if cpu is None else [cpu]
        if ring is None or not any(ring.stats(c).entries for c in cpus):
            state = "allocated" if ring is not None else "freed"
            return (f"# tracer: {self.tr.tracer.name}\n#\n#\n# * Snapshot is {state} *\n#\n"
                    + (SNAPSHOT_HELP if cpu is None else SNAPSHOT_PERCPU_HELP))
        return self.tr.render_trace(cpu, ring)

    def read_raw(self, cpu: int) -> bytes:
        """snapshot_raw: the spare's pages of one CPU, consumed as trace_pipe_raw's."""
        ring = self.ring
        return b"" if ring is None else b"".join(ring.consume_all(cpu))
