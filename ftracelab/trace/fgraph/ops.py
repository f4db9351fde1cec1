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
from dataclasses import dataclass, field
from typing import Any

from ...errors import FtraceLabError, ShadowStackError
from ...machine.hooks import RawCallHook
from ...machine.memory import TASK_PID
from ...machine.stepper import StepTrace
from ..ftrace_ops import OPS_FLAGS, OPS_NOTRACE_HASH, FtraceOps, FtraceOpsFlag, FtraceRegs, write_hash
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

__all__ = ["Fgraph", "FgraphOps", "GraphEnt", "GraphRet", "StackEvent", "TaskStack", "stack_events"]

GRAPH_ENT = struct.Struct("<Qi")              # struct ftrace_graph_ent (packed)
GRAPH_RET = struct.Struct("<QQiIQQ")          # struct ftrace_graph_ret (packed, with retval)
PY_ENTRY, PY_RETURN = 1, 2                    # lab_python_graph_call()'s kind


@dataclass
class GraphEnt:
    """What a Python entryfunc gets: ``struct ftrace_graph_ent`` (func, depth), the
    function's name, ``data``: the bytes reserved for it on the shadow stack
    (``data_size`` of its fgraph_ops), which the callback may fill, and ``regs``:
    the traced function's registers (6.14's fregs argument), or None when the
    reservation failed (the stack is full: the call is not taken, whatever the
    callback answers)."""

    func: int
    depth: int
    name: str
    data: bytearray = field(default_factory=bytearray)
    regs: FtraceRegs | None = None


@dataclass
class GraphRet:
    """What a Python retfunc gets: ``struct ftrace_graph_ret`` and the function's name;
    ``data`` holds what the entry left in its reserved bytes."""

    func: int
    retval: int
    depth: int
    overrun: int
    calltime: int
    rettime: int
    name: str
    data: bytes = b""
    regs: int = 0                     # struct fgraph_ret_regs *: ax, dx, bp

    @property
    def duration(self) -> int:
        return self.rettime - self.calltime


PyEntryFunc = Callable[[GraphEnt, "FgraphOps"], Any]
PyReturnFunc = Callable[[GraphRet, "FgraphOps"], Any]


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
    gops_data_size: int        # lab_data_size: what a Python fgraph_ops reserves


class FgraphOps:
    """A registered ``struct fgraph_ops``. Its entryfunc and retfunc are native
    functions of the image (``lab_graph_entry``/``lab_graph_return`` count calls,
    keep one word of data on the shadow stack and check it on return), or Python
    callables, run through ``lab_python_graph_entry``/``lab_python_graph_return``."""

    def __init__(self, fgraph: Fgraph, name: str, entryfunc: str | PyEntryFunc,
                 retfunc: str | PyReturnFunc | None, sub: FtraceOps) -> None:
        self.fgraph, self.name, self.entryfunc, self.retfunc, self.sub = fgraph, name, entryfunc, retfunc, sub
        self.addr = 0
        self.idx = -1
        self.data_size = 0
        self.py_entries = 0       # calls a Python entryfunc took
        self.py_returns = 0       # returns a Python retfunc saw

    @property
    def python(self) -> bool:
        return not isinstance(self.entryfunc, str) or not isinstance(self.retfunc, str)

    def _counter(self, k: int) -> int:
        return self.fgraph.machine.read_u64(self.addr + self.fgraph.offsets.gops_counters + 8 * k)

    @property
    def entries(self) -> int:
        """Calls its entryfunc took (lab_graph_entry's count, or the Python one's)."""
        return self.py_entries if not isinstance(self.entryfunc, str) else self._counter(0)

    @property
    def returns(self) -> int:
        """Returns its retfunc saw for calls it took (a Python retfunc also sees those
        of calls only other ops took when it is in slot 0 and keeps no data)."""
        return self.py_returns if not isinstance(self.retfunc, str) else self._counter(1)

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
        checks = "python" if self.python else f"bad_data={self.bad_data}"
        return (f"<fgraph_ops {self.name} idx={self.idx} entries={self.entries} "
                f"returns={self.returns} {checks}>")


class Fgraph:
    """register_ftrace_graph()/unregister_ftrace_graph() for the lab (``lab.fgraph``)."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace = ftrace
        self.machine = ftrace.machine
        raw = self.machine.read(self.machine.symbols["fgraph_lab_offsets"], 2 * 12)
        self.offsets = _Offsets(*struct.unpack("<12H", raw))
        self.gops: list[FgraphOps] = []
        self.graph_ops: FtraceOps | None = None
        self._by_addr: dict[int, FgraphOps] = {}
        self._py_hook: RawCallHook | None = None
        self._names: dict[int, str] = {}

    def register(self, entryfunc: str | PyEntryFunc = "lab_graph_entry",
                 retfunc: str | PyReturnFunc | None = "lab_graph_return",
                 filter: str | list[str] | None = None, notrace: str | list[str] | None = None,
                 name: str | None = None, hashes: FtraceOps | None = None,
                 data_size: int = 0) -> FgraphOps:
        """register_ftrace_graph(): ``entryfunc``/``retfunc`` on the selected functions
        (or on those of ``hashes``, an ftrace_ops whose filter and notrace sets it
        shares, as the function_graph tracer shares the global ops'; call
        :meth:`refresh` when they change). Raises FtraceLabError when all 16 slots
        are taken (the kernel's -ENOSPC).

        Each of them is the name of a native function of the image or a Python
        callable: ``entryfunc(trace: GraphEnt, gops) -> bool`` (true: take the call,
        so that its return comes back) and ``retfunc(trace: GraphRet, gops)`` (None:
        none). A Python entryfunc gets ``data_size`` bytes on the shadow stack
        (fgraph_reserve_data(), a DATA word in the stack) in ``trace.data``; its
        retfunc reads them back."""
        m = self.machine
        if not callable(entryfunc) and not isinstance(entryfunc, str):
            raise TypeError("entryfunc must be a callable or the name of a native function")
        if data_size and isinstance(entryfunc, str):
            raise FtraceLabError("data_size is for a Python entryfunc; a native one calls "
                                 "fgraph_reserve_data() itself")
        if not 0 <= data_size <= 32 * 8:
            raise FtraceLabError(f"data_size {data_size}: fgraph_reserve_data() takes at most "
                                 "FGRAPH_MAX_DATA_SIZE (256) bytes")
        entry = self._native(entryfunc, "lab_python_graph_entry")
        ret = self._native(retfunc if retfunc is not None else (lambda t, g: None), "lab_python_graph_return")
        if hashes is None:
            label = name or (entryfunc if isinstance(entryfunc, str)
                             else str(getattr(entryfunc, "__name__", "python")))
            sub = FtraceOps(self.ftrace, "ftrace_stub", FtraceOpsFlag.STUB, label)
            sub.filter_ips, sub.notrace_ips = self.ftrace.match(filter), self.ftrace.match(notrace)
        else:
            sub = hashes
        gops = FgraphOps(self, name or sub.name, entryfunc, retfunc, sub)
        gops.data_size = data_size
        off = self.offsets
        gops.addr = self.ftrace.data.alloc(off.gops_size)
        m.write(gops.addr, bytes(off.gops_size))
        m.write(gops.addr, struct.pack("<QQ", entry, ret))
        m.write_u32(gops.addr + off.gops_data_size, data_size)
        self._write_sub_hashes(gops)
        idx = m.call(0, "fgraph_register_slot", gops.addr) & 0xFFFF_FFFF      # an int
        if idx >= 1 << 31:
            raise FtraceLabError(f"register_ftrace_graph: -ENOSPC: all {FGRAPH_ARRAY_SIZE} fgraph_ops "
                                 "slots are taken; unregister one first")
        gops.idx = idx
        self.gops.append(gops)
        self._by_addr[gops.addr] = gops
        if gops.python and self._py_hook is None:
            self._py_hook = RawCallHook(m, m.symbols["lab_python_graph_hook"], self._on_python)
        self._update_graph_ops()
        return gops

    def set_data_size(self, gops: FgraphOps, size: int) -> None:
        """Change what a Python fgraph_ops reserves at each entry (lab_data_size)."""
        if not 0 <= size <= 32 * 8:
            raise FtraceLabError(f"data_size {size}: fgraph_reserve_data() takes at most 256 bytes")
        gops.data_size = size
        self.machine.write_u32(gops.addr + self.offsets.gops_data_size, size)

    def _name(self, ip: int) -> str:
        """%ps of a traced function, remembered (the same few come back every call)."""
        name = self._names.get(ip)
        if name is None:
            hit = self.machine.kallsyms.lookup(ip)
            name = self._names[ip] = hit[0].name if hit is not None else ""
        return name

    def _native(self, func: str | Callable[..., Any], python_stub: str) -> int:
        """The address the fgraph_ops holds: the native function, or the Python stub."""
        return self.machine.kallsyms.lookup_name(func if isinstance(func, str) else python_stub).addr

    def _on_python(self, kind: int, trace: int, gops_addr: int, data: int) -> None:
        # runs at lab_python_graph_hook, inside the emulation: plain reads and writes only
        m = self.machine
        gops = self._by_addr.get(gops_addr)
        fregs = m.mailbox[4]
        if gops is None:
            return
        if kind == PY_ENTRY:
            func, depth = GRAPH_ENT.unpack(m.read(trace, GRAPH_ENT.size))
            name = self._name(func)
            missed = bool(gops.data_size) and not data
            ent = GraphEnt(func, depth, name, bytearray(gops.data_size),
                           None if missed else FtraceRegs(m, fregs, False, False))
            taken = bool(gops.entryfunc(ent, gops)) if callable(gops.entryfunc) else False
            taken = taken and not missed
            if taken and data:
                m.write(data, bytes(ent.data[:gops.data_size]).ljust(gops.data_size, b"\0"))
            gops.py_entries += taken
            m.mailbox[5] = int(taken)
        elif kind & 0xFF == PY_RETURN:
            func, retval, depth, overrun, calltime, rettime = GRAPH_RET.unpack(m.read(trace, GRAPH_RET.size))
            name = self._name(func)
            ret = GraphRet(func, retval, depth, overrun, calltime, rettime, name,
                           m.read(data, kind >> 8) if data else b"", fregs)
            gops.py_returns += 1
            if callable(gops.retfunc):
                gops.retfunc(ret, gops)

    def unregister(self, gops: FgraphOps) -> None:
        """unregister_ftrace_graph(): the slot goes back to the LRU table; the shadow
        stacks stay, so that calls in progress still return through them."""
        if gops not in self.gops:
            raise FtraceLabError(f"{gops.name} is not registered")
        self.machine.call(0, "fgraph_unregister_slot", gops.addr)
        self.gops.remove(gops)
        self._by_addr.pop(gops.addr, None)
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

    def in_flight(self, gops: FgraphOps | None = None) -> int:
        """Calls entered and not yet returned, on every task's stack now (those ``gops``
        took, if given): entries = returns + frames_dropped + in_flight."""
        return sum(1 for t in self.stacks() for f in t.stack.frames()
                   if gops is None or (f.control.bitmap >> gops.idx) & 1)

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
