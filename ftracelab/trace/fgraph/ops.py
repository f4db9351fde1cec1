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
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import FtraceLabError, ShadowStackError
from ...machine.memory import TASK_PID
from ...machine.stepper import StepTrace
from ..ftrace_ops import OPS_FLAGS, OPS_NOTRACE_HASH, FtraceOps, FtraceOpsFlag, write_hash
from ..ftrace_update import Ftrace
from .stack import (
    FGRAPH_ARRAY_SIZE,
    FGRAPH_FRAME_OFFSET,
    FGRAPH_FRAME_OFFSET_MASK,
    SHADOW_STACK_SIZE,
    ControlWord,
    FgraphType,
    ShadowStack,
)

__all__ = ["Fgraph", "FgraphOps", "StackEvent", "TaskStack", "stack_events"]


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
                 name: str | None = None, hashes: FtraceOps | None = None) -> FgraphOps:
        """register_ftrace_graph(): ``entryfunc``/``retfunc`` on the selected functions
        (or on those of ``hashes``, an ftrace_ops whose filter and notrace sets it
        shares, as the function_graph tracer shares the global ops'; call
        :meth:`refresh` when they change). Raises FtraceLabError when all 16 slots
        are taken (the kernel's -ENOSPC)."""
        m, ks = self.machine, self.machine.kallsyms
        entry, ret = ks.lookup_name(entryfunc).addr, ks.lookup_name(retfunc).addr
        if hashes is None:
            sub = FtraceOps(self.ftrace, "ftrace_stub", FtraceOpsFlag.STUB, name or entryfunc)
            sub.filter_ips, sub.notrace_ips = self.ftrace.match(filter), self.ftrace.match(notrace)
        else:
            sub = hashes
        gops = FgraphOps(self, name or sub.name, entryfunc, retfunc, sub)
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

    def refresh(self, gops: FgraphOps) -> None:
        """Its filter or notrace set changed: rewrite its hashes and graph_ops'."""
        if gops in self.gops:
            self._write_sub_hashes(gops)
            self._update_graph_ops()

    def _write_sub_hashes(self, gops: FgraphOps) -> None:
        """gops->ops: the filter and notrace hashes ftrace_ops_test() reads."""
        m, ops = self.machine, gops.addr + self.offsets.gops_ops
        notrace = write_hash(m, self.ftrace.data, gops.sub.notrace_ips)
        filt = write_hash(m, self.ftrace.data, gops.sub.filter_ips)
        m.write(ops + OPS_NOTRACE_HASH, struct.pack("<QQQ", notrace, filt, ops + OPS_NOTRACE_HASH))
        m.write_u64(ops + OPS_FLAGS, int(FtraceOpsFlag.STUB))

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
        tasks = (self.machine.symbols["task_table"] + slot * self.offsets.task_size
                 for slot in range(self.offsets.max_tasks))
        return [ts for ts in map(self.task_stack, tasks) if ts is not None]

    def task_stack(self, task: int) -> TaskStack | None:
        """The shadow stack of the task_struct at ``task`` (None if it has none)."""
        m, off = self.machine, self.offsets
        ret_stack = m.read_u64(task + off.task_ret_stack)
        if not ret_stack:
            return None
        curr, depth = struct.unpack("<ii", m.read(task + off.task_curr_ret_stack, 8))
        overrun = struct.unpack("<i", m.read(task + off.task_trace_overrun, 4))[0]
        pid = struct.unpack("<i", m.read(task + TASK_PID, 4))[0]
        comm = m.read(task + off.task_comm, 16).split(b"\0")[0].decode(errors="replace")
        stack = ShadowStack.from_bytes(m.read(ret_stack, SHADOW_STACK_SIZE), curr, depth, overrun)
        return TaskStack(pid, comm, (task - m.symbols["task_table"]) // off.task_size, task, ret_stack, stack)


@dataclass(frozen=True)
class TaskStack:
    """A task's shadow stack as :meth:`Fgraph.stacks` found it."""

    pid: int
    comm: str
    slot: int           # index in task_table (idle tasks share pid 0)
    task: int           # the task_struct's address
    ret_stack: int      # the shadow stack's address
    stack: ShadowStack


# ---- a shadow stack's life, step by step ---------------------------------------------

@dataclass(frozen=True)
class StackEvent:
    """One change of a task's shadow stack while stepping: after instruction ``step``
    (at ``where``), the stack became ``stack``; ``what`` says what happened."""

    step: int
    where: str
    what: str
    stack: ShadowStack


def stack_events(trace: StepTrace, start: ShadowStack, ret_stack: int, task: int, offsets: _Offsets,
                 symbol: Callable[[int], str] = hex) -> list[StackEvent]:
    """Replay the memory writes of a recorded path on a task's shadow stack (``start``
    as it was before the path, at ``ret_stack``; ``task`` its task_struct): an event
    each time ``curr_ret_stack`` or the word below it changes."""
    words = list(start.words)
    state = {"curr": start.curr_ret_stack, "depth": start.curr_ret_depth, "overrun": start.trace_overrun}
    fields = {task + offsets.task_curr_ret_stack: "curr", task + offsets.task_curr_ret_depth: "depth",
              task + offsets.task_trace_overrun: "overrun"}
    events = [StackEvent(-1, "", "before", start)]
    seen = _shape(words, start.curr_ret_stack)
    for step in trace.steps:
        for addr, size, value in step.writes:
            if ret_stack <= addr < ret_stack + SHADOW_STACK_SIZE and size == 8 and addr % 8 == 0:
                words[(addr - ret_stack) // 8] = value
            elif addr in fields and size == 4:
                state[fields[addr]] = value - (1 << 32) if value >= 1 << 31 else value
        shape = _shape(words, state["curr"])
        if shape == seen:
            continue
        stack = ShadowStack(list(words), state["curr"], state["depth"], state["overrun"])
        events.append(StackEvent(step.index, step.where, _describe(events[-1].stack, stack, symbol), stack))
        seen = shape
    return events


def _shape(words: list[int], curr: int) -> tuple[int, int, int]:
    """What makes a new event: curr_ret_stack, the word below it, and the control word
    of the frame that word points to (RESERVED, then BITMAP)."""
    if not 0 < curr <= len(words):
        return (curr, 0, 0)
    top = words[curr - 1]
    control = curr - 1 - (top & FGRAPH_FRAME_OFFSET_MASK) + FGRAPH_FRAME_OFFSET
    return (curr, top, words[control] if 0 <= control < len(words) else 0)


def _describe(before: ShadowStack, after: ShadowStack, symbol: Callable[[int], str]) -> str:
    """What the change from ``before`` to ``after`` was."""
    curr, grew = after.curr_ret_stack, after.curr_ret_stack - before.curr_ret_stack
    try:
        top = ControlWord.decode(after.words[curr - 1]) if curr > 0 else None
        frame, popped = after.top(), before.top()
    except (ValueError, ShadowStackError):
        return f"curr_ret_stack {before.curr_ret_stack} -> {curr}"
    if grew == FGRAPH_FRAME_OFFSET + 1 and top is not None and top.type is FgraphType.RESERVED:
        base = curr - FGRAPH_FRAME_OFFSET - 1
        return f"push: frame reserved at word {base} (ret {symbol(after.words[base])})"
    if grew > 0 and top is not None and top.type is FgraphType.DATA:
        return f"fgraph_reserve_data: {top.size} word(s) for ops {top.index}"
    if grew == 0 and frame is not None and frame.control.type is FgraphType.BITMAP:
        ops = ",".join(str(i) for i in range(FGRAPH_ARRAY_SIZE) if frame.control.bitmap >> i & 1)
        return f"{symbol(frame.func)} taken: bitmap {{{ops}}}"
    if grew < 0 and popped is not None:
        return f"pop {symbol(popped.func)}: returns to {symbol(popped.ret)}"
    return f"curr_ret_stack {before.curr_ret_stack} -> {curr}"
