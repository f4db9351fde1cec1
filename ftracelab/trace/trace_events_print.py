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

__all__ = ["EventPrinter", "RecordPrinter", "column_of"]

RecordPrinter = Callable[[bytes, Callable[[int, bool], str]], str]

#: df_events() names a field ``field_<name>`` when it clashes with its own columns
RESERVED = frozenset({"ts", "cpu", "pid", "comm", "event", "func", "parent"})
COMMON = frozenset({"common_type", "common_flags", "common_preempt_count", "common_pid"})


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
