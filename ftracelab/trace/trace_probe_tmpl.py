"""kernel/trace/trace_probe_tmpl.h and the printing half of trace_probe.c:
process_fetch_insn() (run a fetch program), store_trace_args() (the record:
fixed-size values at their offsets, strings after them as ``__data_loc``) and
trace_probe_print_args() (``name=value`` in each type's format).

The probe handlers run in Python inside a fgraph callback; the records they make
are queued in the lab's mailbox page and written natively by lab_emit_pending()
(kernel/trace/trace_functions.c) once the callback returns, with the ring
buffer, clock and context of the probed call.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..machine.memory import PCPU_CURRENT_TASK, TASK_COMM
from .trace_entries import Field
from .trace_events_pid import ignores_this_pid
from .trace_probe import (
    MAX_TRACE_ARGS,
    Fetch,
    ParseContext,
    ProbeArg,
    ProbeError,
    ProbeLog,
    expand_meta_args,
    parse_probe_arg,
    print_fmt,
)

if TYPE_CHECKING:
    from ..machine.cpu import Machine
    from .trace_events import TraceEvent

__all__ = ["FetchEnv", "TraceProbe", "compare_arg_types", "parse_args", "print_args", "queue_record",
           "store_args"]

MAX_STRING_SIZE = 4096
FAULT_STRING = "(fault)"
PENDING_COUNT, PENDING_RECORDS, MAILBOX_SIZE = 0x80, 0x100, 4096


class _Fault(Exception):
    """A fetch touched memory it could not read (the kernel's -EFAULT)."""


_PT_REGS_PLAIN = {"ip", "sp", "flags", "cs", "ss", "orig_ax"}


@dataclass
class FetchEnv:
    """Where fetches read from: memory, the probed call's registers (``regs``, or
    ``retval`` at an exit), current's comm, kallsyms for ``@SYM``, and the entry
    arguments an exit event kept (``edata``)."""

    m: Machine
    regs: Any = None                    # FtraceRegs (fprobe, kprobe on ftrace) or CpuRegs (int3)
    retval: int = 0
    comm_of: Callable[[], str] = lambda: ""       # current's comm, read only when asked
    symbol: Callable[[str], int | None] = lambda name: None
    edata: Mapping[int, int] = field(default_factory=dict)

    @property
    def comm(self) -> str:
        return self.comm_of()

    @classmethod
    def at(cls, m: Machine, regs: Any, retval: int = 0, edata: Mapping[int, int] | None = None) -> FetchEnv:
        """What a probe handler on the current CPU reads from: current's comm, kallsyms."""
        def comm() -> str:
            task = m.percpu_u64(m.cpu, PCPU_CURRENT_TASK)
            return m.read(task + TASK_COMM, 16).split(b"\0")[0].decode(errors="replace")

        def symbol(name: str) -> int | None:
            return m.kallsyms.lookup_name(name).addr if m.kallsyms.count(name) else None
        return cls(m, regs, retval, comm, symbol, edata or {})

    def read(self, addr: int, size: int) -> bytes:
        try:
            return self.m.read(addr, size)
        except Exception as exc:            # unmapped: a fault, as probe_mem_read() returns
            raise _Fault(hex(addr)) from exc

    def value(self, f: Fetch) -> int:
        """The unsigned long a fetch program yields (an address for what follows)."""
        if f.op == "reg":                    # pt_regs names: ax -> rax; ip, sp, flags as they are
            assert self.regs is not None
            name = str(f.value)
            return int(getattr(self.regs, name if name[:1] == "r" or name in _PT_REGS_PLAIN else "r" + name))
        if f.op == "stack":
            assert self.regs is not None
            return int.from_bytes(self.read(int(self.regs.sp) + 8 * int(f.value), 8), "little")
        if f.op == "stackp":
            assert self.regs is not None
            return int(self.regs.sp)
        if f.op == "retval":
            return self.retval
        if f.op == "arg":
            assert self.regs is not None
            return int(self.regs.arg(int(f.value) + 1))
        if f.op == "edata":
            return self.edata.get(int(f.value), 0)
        if f.op == "imm":
            return int(f.value) & (1 << 64) - 1
        if f.op == "symbol":
            return self._symbol(str(f.value))
        if f.op in ("deref", "uderef"):
            assert f.inner is not None
            return int.from_bytes(self.read(self.value(f.inner) + int(f.value), 8), "little")
        raise _Fault(f.op)

    def _symbol(self, text: str) -> int:
        name, off = text, 0
        for sep in "+-":
            if sep in text[1:]:
                at = text.index(sep, 1)
                name, off = text[:at], int(text[at:], 0)
        addr = self.symbol(name)
        if addr is None:
            raise _Fault(name)
        return addr + off

    def address(self, f: Fetch) -> int:
        """For a final dereference: the address it reads (ST_MEM / ST_STRING)."""
        assert f.inner is not None
        return self.value(f.inner) + int(f.value)

    def string(self, addr: int) -> bytes:
        out = bytearray()
        while len(out) < MAX_STRING_SIZE:
            chunk = self.read(addr + len(out), min(64, MAX_STRING_SIZE - len(out)))
            nul = chunk.find(b"\0")
            if nul >= 0:
                return bytes(out + chunk[:nul])
            out += chunk
        return bytes(out[:MAX_STRING_SIZE - 1])


def _scalar(env: FetchEnv, a: ProbeArg, index: int = 0) -> int:
    """One value of type ``a.type`` (element ``index`` of an array)."""
    size = a.type.size
    f = a.fetch
    if f.op in ("deref", "uderef"):
        raw = int.from_bytes(env.read(env.address(f) + index * size, size), "little")
    else:
        raw = env.value(f) & ((1 << 8 * size) - 1)
    if a.bitfield is not None:
        width, offset = a.bitfield
        raw = (raw >> offset) & ((1 << width) - 1)
    return raw


def _text(env: FetchEnv, a: ProbeArg) -> bytes | None:
    """A string argument's bytes (without the NUL), None on a fault."""
    f = a.fetch
    try:
        if f.op == "comm":
            return env.comm.encode()
        if f.op == "data":
            return str(f.value).encode()
        if a.type.name == "symstr":
            return b""                     # the symbol's name is filled by the caller
        addr = env.address(f) if f.op in ("deref", "uderef") else env.value(f)
        return env.string(addr)
    except _Fault:
        return None


def store_args(env: FetchEnv, args: Sequence[ProbeArg], head: bytes,
               symstr: Callable[[int], str] = hex) -> bytes:
    """store_trace_args(): the record after the common fields: ``head`` (the probe's
    ip fields), each argument at its offset, then the strings."""
    fixed = len(head) + sum(a.size for a in args)
    out = bytearray(head) + bytearray(fixed - len(head))
    tail = bytearray()
    for a in args:
        at = len(head) + a.offset
        if a.type.is_string:
            for k in range(a.count or 1):
                if a.type.name == "symstr":
                    try:
                        data: bytes | None = symstr(env.value(a.fetch)).encode()
                    except _Fault:
                        data = None
                else:
                    data = _text(env, a)
                where = 8 + fixed + len(tail)          # from the record's start (common fields)
                length = 0 if data is None else len(data) + 1
                struct.pack_into("<I", out, at + 4 * k, length << 16 | where)
                if data is not None:
                    tail += data + b"\0"
            continue
        for k in range(a.count or 1):
            try:
                value = _scalar(env, a, k)
            except _Fault:
                value = 0
            out[at + k * a.type.size:at + (k + 1) * a.type.size] = value.to_bytes(a.type.size, "little")
    return bytes(out + tail)


def queue_record(m: Machine, event_id: int, payload: bytes, filtered: bool = False, file: int = 0) -> bool:
    """Queue a record for lab_emit_pending() (``filtered``: ask the event's filter
    first, on the record as it will be written); False when the mailbox is full or
    the event's ``file`` ignores this CPU's current task (set_event_pid)."""
    if file and ignores_this_pid(m, file):
        return False
    base = ctypes.addressof(m.mailbox)
    count = ctypes.c_uint32.from_address(base + PENDING_COUNT)
    at = PENDING_RECORDS
    for _ in range(count.value):
        length = ctypes.c_uint16.from_address(base + at + 2).value
        at += 8 + (length + 7) // 8 * 8
    if at + 8 + len(payload) > MAILBOX_SIZE or len(payload) > 0xFFFF:
        return False
    head = struct.pack("<HHI", event_id, len(payload), int(filtered))
    ctypes.memmove(base + at, head + payload, 8 + len(payload))
    count.value += 1
    return True


def _format(a: ProbeArg, value: int, sym: Callable[[int, bool], str]) -> str:
    t = a.type
    if t.name == "symbol":
        return sym(value, True) if value else "0x0"
    if t.name == "char":
        return f"'{chr(value & 0xFF)}'"
    if t.name.startswith("x"):
        return f"0x{value:x}"
    if t.name.startswith("s"):
        bits = 8 * t.size
        return str(value - (1 << bits) if value >> (bits - 1) & 1 else value)
    return str(value)


def print_args(args: Sequence[ProbeArg], rec: bytes, head: int, sym: Callable[[int, bool], str]) -> str:
    """trace_probe_print_args() over a whole record (common fields included; the
    arguments start after the ``head`` bytes of probe fields): `` name=value`` in
    each type's format, strings in quotes ("(fault)" when the fetch failed), arrays
    in braces."""
    out = []
    for a in args:
        at = 8 + head + a.offset
        items = []
        for k in range(a.count or 1):
            if a.type.is_string:
                loc = int.from_bytes(rec[at + 4 * k:at + 4 * k + 4], "little")
                length, where = loc >> 16, loc & 0xFFFF
                items.append(FAULT_STRING if length == 0 else
                             '"' + rec[where:where + length - 1].decode("utf-8", "backslashreplace") + '"')
            else:
                size = a.type.size
                raw = rec[at + k * size:at + (k + 1) * size]
                items.append(_format(a, int.from_bytes(raw, "little"), sym))
        out.append(f" {a.name}=" + ("{" + ",".join(items) + "}" if a.count else items[0]))
    return "".join(out)


@dataclass(eq=False)
class TraceProbe:
    """``struct trace_probe``: what every probe event shares (its name, whether it
    is a return probe, its arguments), the record layout and print format::

        entry:  struct trace_entry; unsigned long __probe_ip;              args from +16
        return: struct trace_entry; unsigned long __probe_func, __probe_ret_ip; args from +24

    printed as ``EVENT: (ip) args`` or ``EVENT: (ret_ip <- func) args``
    (print_kprobe_event(), print_fentry_event() and their return twins)."""

    group: str
    event: str
    symbol: str
    is_return: bool
    args: list[ProbeArg]
    maxactive: int = 0
    entry_args: list[int] = field(default_factory=list)
    trace_event: TraceEvent | None = None

    @property
    def head(self) -> int:
        return 16 if self.is_return else 8

    def fields(self) -> tuple[Field, ...]:
        head: tuple[Field, ...] = ((("unsigned long", "__probe_func", 8, 8, 0),
                                    ("unsigned long", "__probe_ret_ip", 16, 8, 0)) if self.is_return
                                   else (("unsigned long", "__probe_ip", 8, 8, 0),))
        out = list(head)
        for a in self.args:
            at = 8 + self.head + a.offset
            if a.type.is_string:
                out.append(("__data_loc char[]", a.name, at, 4, 1))
            else:
                decl = f"{a.name}[]" if a.count else a.name
                out.append((a.type.fmttype, decl, at, a.size, int(a.type.signed)))
        return tuple(out)

    def print_record(self, rec: bytes, sym: Callable[[int, bool], str]) -> str:
        if self.is_return:
            func, ret_ip = struct.unpack_from("<QQ", rec, 8)
            where = f"{sym(ret_ip, True)} <- {sym(func, False)}"
        else:
            where = sym(struct.unpack_from("<Q", rec, 8)[0], True)
        return f"{self.event}: ({where})" + print_args(self.args, rec, self.head, sym)

    def new_event(self) -> TraceEvent:
        """The trace event a new probe event gets (its ID is given when it is added)."""
        from .trace_events import TraceEvent  # trace_events imports this module
        ev = TraceEvent(self.group, self.event, 0, self.fields(), print_fmt(self.args, self.is_return))
        ev.printer = self.print_record
        return ev

    def show(self) -> str:
        """The definition as dynamic_events lists it (each kind has its own)."""
        raise NotImplementedError

    def match(self, system: str | None, event: str, argv: list[str]) -> bool:
        """Does a removal line ``-:[GRP/]EVENT [PLACE [ARGS...]]`` name this probe?"""
        raise NotImplementedError

    def arg_words(self) -> list[str]:
        return [f"{a.name}={a.comm}" for a in self.args]

    def match_args(self, argv: list[str]) -> bool:
        """trace_probe_match_command_args(): the leading ``NAME=FETCHARG`` words."""
        words = self.arg_words()
        return len(argv) <= len(words) and argv == words[:len(argv)]


def parse_args(log: ProbeLog, ctx: ParseContext, words: list[str]) -> list[ProbeArg]:
    """The FETCHARGS of a definition: meta-args expanded, at most MAX_TRACE_ARGS
    (E2BIG, no log entry), each parsed by traceprobe_parse_probe_arg()."""
    expand_meta_args(log, words, ctx)
    if len(words) > MAX_TRACE_ARGS:
        raise ProbeError(errno.E2BIG)
    args: list[ProbeArg] = []
    size = 0
    for i, word in enumerate(words):
        arg = parse_probe_arg(log, ctx, i, word, args, size)
        args.append(arg)
        size += arg.size
    return args


def compare_arg_types(new: list[ProbeArg], old: list[ProbeArg]) -> int:
    """trace_probe_compare_arg_type(): 0 if the same, else the 1-based index of the first
    argument that differs (min(len) + 1 when only the counts differ)."""
    for i, (a, b) in enumerate(zip(new, old, strict=False)):
        if (a.name, a.type.name, a.count) != (b.name, b.type.name, b.count):
            return i + 1
    return 0 if len(new) == len(old) else min(len(new), len(old)) + 1
