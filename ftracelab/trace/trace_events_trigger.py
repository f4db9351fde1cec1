"""kernel/trace/trace_events_trigger.c of Linux 6.12: the ``trigger`` file of each
event and the traceon, traceoff, snapshot and stacktrace commands
(``CMD[:COUNT] [if FILTER]``, ``!CMD`` to remove), and enable_event, disable_event,
enable_hist and disable_hist (``CMD:SYSTEM:EVENT[:COUNT] [if FILTER]``; hist itself:
trace_events_hist.py).

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

enable_event/disable_event put their target event in soft mode while they exist
and, firing, clear or set its SOFT_DISABLED bit (a counted one skips, keeping its
count, when the target is already as it wants); enable_hist/disable_hist unpause
or pause the target's hist triggers. One of each pair per target (EEXIST).
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .trace_events_filter import EventFilter

__all__ = ["COMMANDS", "Trigger", "parse_trigger", "split_command", "stack_frames", "stack_record",
           "triggers_text"]

#: the commands this kernel registers, in registration order (for the header)
COMMANDS = ("traceon", "traceoff", "snapshot", "stacktrace", "enable_event", "disable_event",
            "enable_hist", "disable_hist", "hist")
ENABLE_CMDS = ("enable_event", "disable_event", "enable_hist", "disable_hist")
TRIGGER_TYPE = {"traceon": 1, "traceoff": 1, "snapshot": 2, "stacktrace": 4, "enable_event": 8,
                "disable_event": 8, "hist": 16, "enable_hist": 32, "disable_hist": 32}
POST = {"traceoff", "stacktrace"}
FTRACE_STACK_ENTRIES = 8


@dataclass
class Trigger:
    """struct event_trigger_data: ``count`` -1 is unlimited."""

    cmd: str
    count: int = -1
    filter_str: str | None = None
    filter: EventFilter | None = None
    target: Any = None                  # enable_*/disable_*: the event they switch
    target_name: str = ""               # ... as SYSTEM:EVENT

    def line(self) -> str:
        """event_trigger_print(), event_enable_trigger_print()."""
        text = self.cmd + (f":{self.target_name}" if self.target_name else "")
        text += ":unlimited" if self.count == -1 else f":count={self.count}"
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


def split_command(text: str) -> tuple[str, str]:
    """trigger_process_regex(): the written text stripped, its first word (cut at ':',
    blank or tab: the command, ``!`` included) and what follows that separator."""
    text = text.strip()
    cut = next((k for k, c in enumerate(text) if c in ": \t"), len(text))
    return text[:cut], text[cut + 1:]


def parse_trigger(text: str, path: str, compile_filter: Callable[[str], EventFilter],
                  find_event: Callable[[str, str], Any] = lambda system, event: None) -> tuple[bool, Trigger]:
    """event_trigger_regex_write()/event_trigger_parse(): (removal?, the trigger);
    OSError with the kernel's errno for what it refuses."""
    if len(text.strip()) >= 4096:
        raise _err(errno.EINVAL, path)
    glob, rest = split_command(text)
    rest = rest.lstrip(" ")
    remove = glob.startswith("!")
    cmd = glob[1:] if remove else glob
    if cmd not in COMMANDS:
        raise _err(errno.EINVAL, path)
    if cmd in ENABLE_CMDS:
        return _parse_enable(cmd, remove, rest, path, compile_filter, find_event)
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
    _set_filter(trigger, filt, path, compile_filter)
    return False, trigger


def _set_filter(trigger: Trigger, filt: str | None, path: str,
                compile_filter: Callable[[str], EventFilter]) -> None:
    """set_trigger_filter(): ``if`` and a blank, then the event filter."""
    if filt is None:
        return
    if not (filt.startswith("if") and filt[2:3] in (" ", "\t") and filt[3:].strip()):
        raise _err(errno.EINVAL, path)
    trigger.filter_str = filt[3:]
    compiled = compile_filter(trigger.filter_str)
    if compiled.error is not None:
        raise _err(compiled.error.errno, path)
    trigger.filter = compiled


def _parse_enable(cmd: str, remove: bool, rest: str, path: str, compile_filter: Callable[[str], EventFilter],
                  find_event: Callable[[str, str], Any]) -> tuple[bool, Trigger]:
    """event_enable_trigger_parse(): ``SYSTEM:EVENT[:COUNT] [if FILTER]``; the
    target must exist, even for a removal."""
    if not rest:
        raise _err(errno.EINVAL, path)
    cut = next((k for k, c in enumerate(rest) if c in " \t"), len(rest))
    param, filt = rest[:cut], rest[cut + 1:].lstrip(" \t") or None
    system, sep, after = param.partition(":")
    if not sep:
        raise _err(errno.EINVAL, path)
    event, sep, number = after.partition(":")
    target = find_event(system, event)
    if target is None:
        raise _err(errno.EINVAL, path)
    trigger = Trigger(cmd, target=target, target_name=f"{system}:{event}")
    if remove:
        return True, trigger
    if sep:                                  # event_trigger_parse_num()
        value = kstrtoul0(number.split(":", 1)[0]) if number.split(":", 1)[0] else None
        if value is None:
            raise _err(errno.EINVAL, path)
        trigger.count = value
    _set_filter(trigger, filt, path, compile_filter)
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


def fire(triggers: Sequence[EventTrigger], rec: bytes, tracing_on: bool, cpu: int, comm: str,
         switch: Callable[[Trigger, bool], bool] = lambda t, act: False) -> tuple[bool, bool, bool, bool]:
    """event_triggers_call() for one record: (turn tracing on now, turn it off after,
    record a stack after, take a snapshot after). ``switch(t, apply)`` serves the
    enable/disable triggers: is t's target already as t wants it, and with
    ``apply`` make it so."""
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
        elif t.cmd in ENABLE_CMDS:
            assert isinstance(t, Trigger)
            # the counted event switch skips an event already as wanted (no count used)
            if t.count != -1 and t.cmd.endswith("_event") and switch(t, False):
                continue
            switch(t, True)
        else:
            stack = True
        if t.count > 0:
            t.count -= 1
    return on, off, stack, snap

