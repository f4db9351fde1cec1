"""kernel/trace/trace_events_trigger.c of Linux 6.12: the ``trigger`` file of each
event and the traceon, traceoff, snapshot and stacktrace commands (hist:
trace_events_hist.py)
(``CMD[:COUNT] [if FILTER]``, ``!CMD`` to remove).

One write is one command: the first word (cut at ':', blank or tab) names it,
a number after it is the count, ``if ...`` a filter on the triggering event (its
errors go to error_log as event filters' do). An event holds one trigger of each
type; traceon and traceoff share one. The first trigger puts the event in soft
mode: its tracepoint runs (so the triggers can fire) even while the event itself
is not enabled, and ``enable`` then reads ``0*``.

Firing (event_triggers_call()): newest first, each trigger whose filter passes
and whose count is not spent; traceon and traceoff count only when they change
tracing_on; traceon acts before the event is written, traceoff and stacktrace
(post triggers) after it. snapshot (trace_snapshot.py) swaps the buffers; the
kernel swaps before committing the record it had already reserved in the old
live buffer, so the record ends in the snapshot: the lab swaps right after
writing it, to the same effect. A snapshot trigger arms (allocates) the snapshot.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .trace_events_filter import EventFilter

__all__ = ["COMMANDS", "Trigger", "parse_trigger", "stack_frames", "stack_record", "triggers_text"]

#: the commands this kernel registers, in registration order (for the header)
COMMANDS = ("traceon", "traceoff", "snapshot", "stacktrace", "hist")
TRIGGER_TYPE = {"traceon": 1, "traceoff": 1, "snapshot": 2, "stacktrace": 4, "hist": 16}
POST = {"traceoff", "stacktrace"}
FTRACE_STACK_ENTRIES = 8


@dataclass
class Trigger:
    """struct event_trigger_data: ``count`` -1 is unlimited."""

    cmd: str
    count: int = -1
    filter_str: str | None = None
    filter: EventFilter | None = None

    def line(self) -> str:
        """event_trigger_print()."""
        text = self.cmd + (":unlimited" if self.count == -1 else f":count={self.count}")
        return text + (f" if {self.filter_str}" if self.filter_str is not None else "") + "\n"


class EventTrigger(Protocol):
    """What an event's trigger list holds: a Trigger here, or a hist trigger."""

    cmd: str
    count: int
    filter: EventFilter | None

    def line(self) -> str: ...


def triggers_text(triggers: Sequence[EventTrigger]) -> str:
    """What ``cat trigger`` shows: the available commands, or the triggers newest first."""
    if not triggers:
        return "# Available triggers:\n# " + " ".join(COMMANDS) + "\n"
    return "".join(t.line() for t in triggers)


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def kstrtoul0(text: str) -> int | None:
    try:
        if text.lower().startswith("0x"):
            return int(text[2:], 16) if text[2:] else None
        if text.startswith("0") and len(text) > 1:
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def parse_trigger(text: str, path: str, compile_filter: Callable[[str], EventFilter]) -> tuple[bool, Trigger]:
    """event_trigger_regex_write()/event_trigger_parse(): (removal?, the trigger);
    OSError with the kernel's errno for what it refuses."""
    text = text.strip()
    if len(text) >= 4096:
        raise _err(errno.EINVAL, path)
    cut = next((k for k, c in enumerate(text) if c in ": \t"), len(text))
    glob, rest = text[:cut], text[cut + 1:].lstrip(" ") if cut < len(text) else ""
    remove = glob.startswith("!")
    cmd = glob[1:] if remove else glob
    if cmd not in COMMANDS:
        raise _err(errno.EINVAL, path)
    if remove:
        return True, Trigger(cmd)
    param, filt = None, None
    if rest:
        if not rest[:1].isdigit():
            filt = rest
        else:
            end = next((k for k, c in enumerate(rest) if c in " \t"), len(rest))
            param, filt = rest[:end], rest[end:].lstrip(" \t") or None
    count = -1
    if param is not None:
        value = kstrtoul0(param.split(":", 1)[0])
        if value is None:
            raise _err(errno.EINVAL, path)
        count = value
    trigger = Trigger(cmd, count)
    if filt is not None:
        if not (filt.startswith("if") and filt[2:3] in (" ", "\t") and filt[3:].strip()):
            raise _err(errno.EINVAL, path)
        trigger.filter_str = filt[3:]
        compiled = compile_filter(trigger.filter_str)
        if compiled.error is not None:
            raise _err(compiled.error.errno, path)
        trigger.filter = compiled
    return False, trigger


def stack_frames(read_u64: Callable[[int], int], rbp: int, on_stack: Callable[[int], bool],
                 skip: Callable[[int], bool], depth: int = FTRACE_STACK_ENTRIES) -> list[int]:
    """The return addresses up the frame pointers, at most ``depth``, leaving out the
    tracing code's own frames (``skip``)."""
    calls: list[int] = []
    fp = rbp
    while on_stack(fp) and len(calls) < depth:
        ret = read_u64(fp + 8)
        if not (skip(ret) and not calls):
            calls.append(ret)
        fp = read_u64(fp)
    return calls


def stack_record(calls: list[int]) -> bytes:
    """A kernel_stack entry's payload."""
    return struct.pack("<i4x", len(calls)) + b"".join(struct.pack("<Q", c) for c in calls)


def fire(triggers: Sequence[EventTrigger], rec: bytes, tracing_on: bool, cpu: int,
         comm: str) -> tuple[bool, bool, bool, bool]:
    """event_triggers_call() for one record: (turn tracing on now, turn it off after,
    record a stack after, take a snapshot after)."""
    on = off = stack = snap = False
    for t in triggers:
        if t.count == 0 or t.cmd == "hist":     # hist triggers: trace_events_hist.py
            continue
        if t.filter is not None and not t.filter.match(rec, cpu, comm):
            continue
        if t.cmd == "traceon":
            if tracing_on or on:
                continue
            on = True
        elif t.cmd == "traceoff":
            if not tracing_on and not on:
                continue
            off = True
        elif t.cmd == "snapshot":
            snap = True
        else:
            stack = True
        if t.count > 0:
            t.count -= 1
    return on, off, stack, snap

