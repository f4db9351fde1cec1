"""How the ``trace`` file prints trace events (as opposed to the ftrace entries of
trace_output.py): kernel/trace/trace_output.c trace_raw_output_prep() and
trace_event_printf() running an event's TP_printk, i.e. its format file's
``print fmt`` (formats/print_fmt.py); kernel/trace/trace_syscalls.c
print_syscall_enter() and print_syscall_exit(), which the syscalls events use
instead of their print fmt::

    sched_switch: prev_comm=cat prev_pid=101 prev_prio=120 prev_state=S ==> next_comm=...
    sys_openat(dfd: ffffff9c, filename: 7fff8faa0f98, flags: 0, mode: 0)
    sys_read -> 0x237
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..formats.format_file import EventFormat
from ..formats.print_fmt import PrintFmt, PrintFmtError, Value, compile_print_fmt
from .trace_events_filter import field_kind

__all__ = ["EventPrinter", "RecordPrinter", "column_of"]

RecordPrinter = Callable[[bytes, Callable[[int, bool], str]], str]

#: df_events() names a field ``field_<name>`` when it clashes with its own columns
RESERVED = frozenset({"ts", "cpu", "pid", "comm", "event", "func", "parent"})
COMMON = frozenset({"common_type", "common_flags", "common_preempt_count", "common_pid"})


def _field_text(rec: bytes, f: Any, kind: str, fn: bool, sym: Callable[[int, bool], str]) -> str:
    """One field of print_fields()."""
    if f.offset + f.size > len(rec):
        return "<OVERFLOW>"
    raw = rec[f.offset:f.offset + f.size]
    if kind == "static_string":
        return raw.split(b"\0", 1)[0].decode("latin-1")
    if kind in ("dyn_string", "rdyn_string") or (f.size == 4 and (f.data_loc or f.rel_loc)):
        loc = int.from_bytes(raw[:4], "little")
        at, length = (loc & 0xFFFF) + (f.offset + 4 if f.rel_loc else 0), loc >> 16
        if at + length > len(rec):
            return "<OVERFLOW>"
        data = rec[at:at + length]
        if kind in ("dyn_string", "rdyn_string"):
            return data.split(b"\0", 1)[0].decode("latin-1")
        return ",".join(f"{b:02x}" for b in data)          # print_array()
    if kind == "ptr_string":
        return f"(0x{int.from_bytes(raw, 'little'):016x})"  # the lab does not read the pointer
    if fn:
        return sym(int.from_bytes(raw, "little"), True)      # FILTER_TRACE_FN: %pS
    value = int.from_bytes(raw, "little")
    if f.size == 1:
        return (f"'{chr(value)}'" if 0x20 <= value < 0x7F else "") + f"({value})"
    if f.size in (2, 4, 8):
        signed = value - (1 << (8 * f.size)) if f.size > 2 and value >> (8 * f.size - 1) else value
        return f"0x{value:x} ({signed})"
    return "<INVALID-SIZE>"


def column_of(field: str) -> str:
    """The df_events() column of a format field."""
    return f"field_{field}" if field in RESERVED else field


@dataclass(frozen=True)
class _Event:
    fmt: EventFormat
    print_fmt: PrintFmt | None        # None: the text could not be read
    args: tuple[str, ...]             # the fields after the common ones, in order


class EventPrinter:
    """The body of a trace event's line, from its df_events() row."""

    def __init__(self, formats: Mapping[int, EventFormat],
                 printers: Mapping[int, RecordPrinter] | None = None) -> None:
        self._printers = dict(printers or {})     # by event ID: probe events' own output
        self._events: dict[str, _Event] = {}
        self._by_id: dict[int, _Event] = {}
        shared: set[str] = set()
        for fmt in formats.values():
            try:
                pf: PrintFmt | None = compile_print_fmt(fmt.print_fmt)
            except PrintFmtError:
                pf = None
            args = tuple(f.name for f in fmt.fields if f.name not in COMMON)
            if fmt.name in self._events:
                shared.add(fmt.name)
            self._events.setdefault(fmt.name, _Event(fmt, pf, args))
            self._by_id[fmt.id] = _Event(fmt, pf, args)
        # names whose lines need the record's common_type to tell the event
        self._by_record = shared | {formats[i].name for i in self._printers if i in formats}

    def fields_text(self, rec: bytes, sym: Callable[[int, bool], str]) -> str:
        """print_event_fields() (options/fields): ``name:`` then `` field=value`` for each
        of the entry's own fields, formatted by filter type and size as print_fields()."""
        ev = self._by_id.get(int.from_bytes(rec[:2], "little"))
        if ev is None:
            return f"UNKNOWN TYPE {int.from_bytes(rec[:2], 'little')}"
        fn_fields = ("ip", "parent_ip") if ev.fmt.name == "function" else ()   # __field_fn
        out = [f"{ev.fmt.name}:"]
        for f in (f for f in ev.fmt.fields if f.name not in COMMON):
            out.append(f" {f.name}=" + _field_text(rec, f, field_kind(f), f.name in fn_fields, sym))
        return "".join(out)

    def knows(self, event: str) -> bool:
        return event in self._events

    def event_id(self, event: str) -> int:
        return self._events[event].fmt.id

    def wants_record(self, event: str) -> bool:
        """Does the event print from its raw record (its own print function, or a
        name several events share: tracepoints/sched_switch and sched/sched_switch)?"""
        return event in self._by_record

    def body(self, event: str, row: Mapping[str, Any], sym: Callable[[int, bool], str],
             verbose: bool = False, record: bytes | None = None) -> str:
        """``name: <print fmt text>``, the syscall printers' text, or the event's own
        print function on its ``record``."""
        ev = self._events[event]
        if record is not None:                    # the record's common_type says which
            tid = int.from_bytes(record[:2], "little")
            if tid in self._printers:
                return self._printers[tid](record, sym)
            ev = self._by_id.get(tid, ev)
        values = {name: _value(row.get(column_of(name))) for name in ev.args}
        if ev.fmt.system == "syscalls" and event.startswith("sys_enter_"):
            return _syscall_enter(ev, event[len("sys_enter_"):], values, verbose)
        if ev.fmt.system == "syscalls" and event.startswith("sys_exit_"):
            ret = _as_int(values.get("ret")) & ((1 << 64) - 1)
            return f"sys_{event[len('sys_exit_'):]} -> 0x{ret:x}"
        if ev.print_fmt is None:
            return f"{event}: [FAILED TO PARSE]"
        return f"{event}: {ev.print_fmt.format(values, sym)}"


def _syscall_enter(ev: _Event, name: str, values: Mapping[str, Value], verbose: bool) -> str:
    """print_syscall_enter(): ``sys_NAME(arg: %lx, ...)`` (with options/verbose, each
    argument's type first)."""
    types = {f.name: f.type for f in ev.fmt.fields}
    parts = []
    for arg in ev.args:
        if arg == "__syscall_nr":
            continue
        value = _as_int(values.get(arg)) & ((1 << 64) - 1)
        parts.append((f"{types[arg]} " if verbose else "") + f"{arg}: {value:x}")
    return f"sys_{name}(" + ", ".join(parts) + ")"


def _value(v: Any) -> Value:
    """A frame cell as the evaluator wants it: ints, str, tuples; NA as None."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, (str, bytes, tuple)):
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _as_int(v: Value) -> int:
    return v if isinstance(v, int) else 0
