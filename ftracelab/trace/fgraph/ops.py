"""kernel/trace/fgraph.c of Linux 6.12, the users: register_ftrace_graph() and
unregister_ftrace_graph() around the image's fgraph code, and every task's
shadow stack read out of emulated memory.

The kernel side (the slots, the shadow stacks, the calls) is
kernel/trace/fgraph.c in the image; :class:`Fgraph` does what the kernel does
around it: the fgraph_ops structure with its hashes, and one ftrace_ops,
``graph_ops`` with ``ftrace_graph_func``, on the union of the functions the
fgraph_ops want (ftrace_startup_subops()).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...errors import FtraceLabError
from ...machine.memory import TASK_PID
from ..ftrace_ops import OPS_FLAGS, OPS_NOTRACE_HASH, FtraceOps, FtraceOpsFlag, write_hash
from ..ftrace_update import Ftrace
from .stack import FGRAPH_ARRAY_SIZE, SHADOW_STACK_SIZE, ShadowStack

__all__ = ["Fgraph", "FgraphOps", "TaskStack"]


@dataclass(frozen=True)
class _Offsets:
    """fgraph_lab_offsets[] of kernel/trace/fgraph.c: where the structures' fields are."""

    max_tasks: int
    task_size: int
    task_comm: int
    task_ret_stack: int
    task_curr_ret_stack: int
    task_curr_ret_depth: int
    task_trace_overrun: int
    gops_size: int
    gops_ops: int
    gops_idx: int
    gops_counters: int         # nr_entries, nr_returns, nr_bad_data, nr_unclaimed, total_ns


class FgraphOps:
    """A registered ``struct fgraph_ops`` whose entryfunc and retfunc are native
    functions of the image (``lab_graph_entry``/``lab_graph_return`` count calls,
    keep one word of data on the shadow stack and check it on return)."""

    def __init__(self, fgraph: Fgraph, name: str, entryfunc: str, retfunc: str, sub: FtraceOps) -> None:
        self.fgraph, self.name, self.entryfunc, self.retfunc, self.sub = fgraph, name, entryfunc, retfunc, sub
        self.addr = 0
        self.idx = -1

    def _counter(self, k: int) -> int:
        return self.fgraph.machine.read_u64(self.addr + self.fgraph.offsets.gops_counters + 8 * k)

    @property
    def entries(self) -> int:
        """Calls its entryfunc took (lab_graph_entry's count)."""
        return self._counter(0)

    @property
    def returns(self) -> int:
        """Returns its retfunc saw for calls it took."""
        return self._counter(1)

    @property
    def bad_data(self) -> int:
        """Returns whose reserved data was not what the entry stored (should stay 0)."""
        return self._counter(2)

    @property
    def unclaimed(self) -> int:
        """Returns of calls only other fgraph_ops took (slot 0 gets them: bit 0)."""
        return self._counter(3)

    @property
    def total_ns(self) -> int:
        return self._counter(4)

    @property
    def calls(self) -> int:
        """Calls it took (its entries), as FtraceOps.calls counts an ops' calls."""
        return self.entries

    def unregister(self) -> None:
        self.fgraph.unregister(self)

    def __repr__(self) -> str:
        return (f"<fgraph_ops {self.name} idx={self.idx} entries={self.entries} "
                f"returns={self.returns} bad_data={self.bad_data}>")


class Fgraph:
    """register_ftrace_graph()/unregister_ftrace_graph() for the lab (``lab.fgraph``)."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace = ftrace
        self.machine = ftrace.machine
        raw = self.machine.read(self.machine.symbols["fgraph_lab_offsets"], 2 * 11)
        self.offsets = _Offsets(*struct.unpack("<11H", raw))
        self.gops: list[FgraphOps] = []
        self.graph_ops: FtraceOps | None = None

    def register(self, entryfunc: str = "lab_graph_entry", retfunc: str = "lab_graph_return",
                 filter: str | list[str] | None = None, notrace: str | list[str] | None = None,
                 name: str | None = None) -> FgraphOps:
        """register_ftrace_graph(): ``entryfunc``/``retfunc`` on the selected functions.
        Raises FtraceLabError when all 16 slots are taken (the kernel's -ENOSPC)."""
        m, ks = self.machine, self.machine.kallsyms
        entry, ret = ks.lookup_name(entryfunc).addr, ks.lookup_name(retfunc).addr
        sub = FtraceOps(self.ftrace, "ftrace_stub", FtraceOpsFlag.STUB, name or entryfunc)
        sub.filter_ips, sub.notrace_ips = self.ftrace.match(filter), self.ftrace.match(notrace)
        gops = FgraphOps(self, sub.name, entryfunc, retfunc, sub)
        off = self.offsets
        gops.addr = self.ftrace.data.alloc(off.gops_size)
        m.write(gops.addr, bytes(off.gops_size))
        m.write(gops.addr, struct.pack("<QQ", entry, ret))
        self._write_sub_hashes(gops)
        idx = m.call(0, "fgraph_register_slot", gops.addr) & 0xFFFF_FFFF      # an int
        if idx >= 1 << 31:
            raise FtraceLabError(f"register_ftrace_graph: -ENOSPC: all {FGRAPH_ARRAY_SIZE} fgraph_ops "
                                 "slots are taken; unregister one first")
        gops.idx = idx
        self.gops.append(gops)
        self._update_graph_ops()
        return gops

    def unregister(self, gops: FgraphOps) -> None:
        """unregister_ftrace_graph(): the slot goes back to the LRU table; the shadow
        stacks stay, so that calls in progress still return through them."""
        if gops not in self.gops:
            raise FtraceLabError(f"{gops.name} is not registered")
        self.machine.call(0, "fgraph_unregister_slot", gops.addr)
        self.gops.remove(gops)
        gops.idx = -1
        self._update_graph_ops()

    def _write_sub_hashes(self, gops: FgraphOps) -> None:
        """gops->ops: the filter and notrace hashes ftrace_ops_test() reads."""
        m, ops = self.machine, gops.addr + self.offsets.gops_ops
        notrace = write_hash(m, self.ftrace.data, gops.sub.notrace_ips)
        filt = write_hash(m, self.ftrace.data, gops.sub.filter_ips)
        m.write(ops + OPS_NOTRACE_HASH, struct.pack("<QQQ", notrace, filt, ops + OPS_NOTRACE_HASH))
        m.write_u64(ops + OPS_FLAGS, int(gops.sub.flags))

    def _update_graph_ops(self) -> None:
        """graph_ops traces what any fgraph_ops wants: the union of their filters
        (all functions if one has none), minus what every one of them excludes."""
        if not self.gops:
            if self.graph_ops is not None:
                self.ftrace.unregister(self.graph_ops)
                self.graph_ops = None
            return
        subs = [g.sub for g in self.gops]
        everything = any(not s.filter_ips for s in subs)
        filter_ips = set() if everything else set().union(*(s.filter_ips for s in subs))
        notrace_ips = set.intersection(*(set(s.notrace_ips) for s in subs))
        if self.graph_ops is None:
            self.graph_ops = FtraceOps(self.ftrace, "ftrace_graph_func", FtraceOpsFlag.DYNAMIC, "graph_ops")
            self.graph_ops.filter_ips, self.graph_ops.notrace_ips = filter_ips, notrace_ips
            self.ftrace.register_ops(self.graph_ops)
        else:
            self.graph_ops.filter_ips, self.graph_ops.notrace_ips = filter_ips, notrace_ips
            self.ftrace.refresh(self.graph_ops)

    @property
    def frames_dropped(self) -> int:
        """Frames that went with exiting tasks (ftrace_graph_exit_task()): their calls
        never return, so entries = returns + these for one fgraph_ops."""
        return self.machine.read_u64(self.machine.symbols["fgraph_frames_dropped"])

    # ---- reading the tasks' stacks ---------------------------------------------------

    def stacks(self) -> list[TaskStack]:
        """Every task that has a shadow stack, with its stack read from memory now."""
        m, off = self.machine, self.offsets
        out: list[TaskStack] = []
        for slot in range(off.max_tasks):
            task = m.symbols["task_table"] + slot * off.task_size
            ret_stack = m.read_u64(task + off.task_ret_stack)
            if not ret_stack:
                continue
            curr, depth = struct.unpack("<ii", m.read(task + off.task_curr_ret_stack, 8))
            overrun = struct.unpack("<i", m.read(task + off.task_trace_overrun, 4))[0]
            pid = struct.unpack("<i", m.read(task + TASK_PID, 4))[0]
            comm = m.read(task + off.task_comm, 16).split(b"\0")[0].decode(errors="replace")
            stack = ShadowStack.from_bytes(m.read(ret_stack, SHADOW_STACK_SIZE), curr, depth, overrun)
            out.append(TaskStack(pid, comm, slot, stack))
        return out


@dataclass(frozen=True)
class TaskStack:
    """A task's shadow stack as :meth:`Fgraph.stacks` found it."""

    pid: int
    comm: str
    slot: int           # index in task_table (idle tasks share pid 0)
    stack: ShadowStack
