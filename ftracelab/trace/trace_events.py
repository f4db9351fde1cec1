"""Trace events: kernel/trace/trace_events.c (the ``events/`` tree, ``set_event``,
``available_events``, enabling); the events themselves are declared in
trace_event_defs.py.

Each event has a ``struct trace_event_file`` in kernel memory (flags, ID)::

    +0x00 flags       EVENT_FILE_FL_* (bit 0 ENABLED, 3 FILTERED, 5 SOFT_MODE,
                      6 SOFT_DISABLED, 7 TRIGGER_MODE, 8 TRIGGER_COND)
    +0x08 type        the event's ID, written as common_type
    +0x10 nr_written  records written through it

A tracepoint of the image (include/trace_events.h) writes its event when the
file it points to (``tp_files[]``) is enabled; the syscalls events are found by
syscall number in ``enter_syscall_files[]``/``exit_syscall_files[]``, set only
while enabled, as tr->enter_syscall_files[] is.

IDs are given in registration order from __TRACE_LAST_TYPE (20) on, as
alloc_trace_event_type() does; ``available_events`` and ``set_event`` list
events newest first, the order of the kernel's ftrace_events list.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..formats.format_file import parse_format
from ..machine.hooks import RawCallHook
from ..machine.memory import PCPU_CURRENT_TASK, TASK_COMM, TASK_STACK, THREAD_SIZE
from .trace_entries import TRACE_STACK, Field, format_file
from .trace_event_defs import STATIC_EVENTS, SYSCALLS, syscall_formats
from .trace_events_filter import FILTER_ERRORS, EventFilter, FilterError, parse_filter
from .trace_events_hist import (
    HIST_ERRORS,
    HIST_STACKTRACE_DEPTH,
    HistContext,
    HistError,
    HistTrigger,
    hist_text,
    parse_hist,
    register_hist,
)
from .trace_events_pid import EventPids
from .trace_events_trigger import (
    FTRACE_STACK_ENTRIES,
    TRIGGER_TYPE,
    Trigger,
    fire,
    parse_trigger,
    split_command,
    stack_frames,
    stack_record,
    triggers_text,
)
from .trace_probe_tmpl import queue_record

if TYPE_CHECKING:
    from ..machine.cpu import Machine
    from ..tracefs import TraceFS
    from .ftrace_ops import KernelArena

__all__ = ["EventRegistry", "TraceEvent"]

TRACE_LAST_TYPE = 20
ERRNO_CODE = FILTER_ERRORS.index("Error")
BAD_SUBSYS_FILTER = FILTER_ERRORS.index("Couldn't find or set field in one of a subsystem's events")
EVENT_FILE_FL_FILTERED = 1 << 3
EVENT_FILE_FL_TRIGGER_MODE = 1 << 7
SUBSYSTEM_FILTER_HELP = ("### global filter ###\n# Use this to set filters for multiple events.\n"
                         "# Only events with the given fields will be affected.\n"
                         "# If no events are modified, an error message will be displayed here\n")
EVENT_FILE_FL_ENABLED = 1 << 0
EVENT_FILE_FL_SOFT_MODE = 1 << 5
EVENT_FILE_FL_SOFT_DISABLED = 1 << 6
FILE_SIZE = 0x18
FILE_FLAGS, FILE_TYPE, FILE_NR_WRITTEN = 0x00, 0x08, 0x10
POST_TRACEOFF, POST_SNAPSHOT = 1, 2          # the mailbox's post-trigger word (trace_events.c)
NR_SYSCALLS = 512


@dataclass
class TraceEvent:
    """One event: its format and its struct trace_event_file in kernel memory."""

    system: str
    name: str
    id: int
    fields: tuple[Field, ...]
    print_fmt: str
    file: int = 0                       # struct trace_event_file address
    tracepoint: str | None = None       # the image's tracepoint it hangs on
    syscall: tuple[int, bool] | None = None   # (nr, is_enter) for syscalls events
    enabled: bool = False
    soft: int = 0                       # soft-mode users: enable_event/disable_event probes
    on_enable: Callable[[bool], None] | None = None   # a dynamic event's probes
    probe_on: bool = False              # ...registered (enabled, soft mode or triggers)
    filter: EventFilter | None = None                  # set (parsed) filter, or the failed one
    triggers: list[Trigger | HistTrigger] = field(default_factory=list)   # newest first
    printer: Callable[[bytes, Callable[[int, bool], str]], str] | None = None   # its own output

    @property
    def judged(self) -> bool:
        """Does the lab judge each record (a filter, triggers, or soft mode)?"""
        return self.filter is not None or bool(self.triggers) or self.soft > 0

    @property
    def path(self) -> str:
        return f"{self.system}/{self.name}"

    @property
    def format(self) -> str:
        return format_file(self.name, self.id, self.fields, self.print_fmt)


@dataclass
class EventRegistry:
    """The events of a trace array: their files, and turning them on and off."""

    m: Machine
    arena: KernelArena
    events: list[TraceEvent] = field(default_factory=list)
    _fs: TraceFS | None = None
    log_err: Callable[[str, str, tuple[str, ...], int, int], None] = lambda loc, cmd, errs, code, pos: None
    arm_snapshot: Callable[[int], None] | None = None     # tracing_(dis)arm_snapshot()
    _hook: RawCallHook | None = None

    def __post_init__(self) -> None:
        self.pids = EventPids(self.m, lambda: [e.file for e in self.events])   # set_event_pid
        names = self.m.read(self.m.symbols["lab_tp_names"], 512).split(b"\0\0")[0].split(b"\0")
        self._tp_index = {n.decode(): i for i, n in enumerate(names)}
        for system, name, tp, fields, fmt in STATIC_EVENTS:
            self._add(TraceEvent(system, name, 0, fields, fmt, tracepoint=tp))
        nb_args = self.m.symbols["syscall_nb_args"]
        for nr, name, args in SYSCALLS:
            enter, efmt, exit_fields, xfmt = syscall_formats(name, args)
            self._add(TraceEvent("syscalls", f"sys_enter_{name}", 0, enter, efmt, syscall=(nr, True)))
            self._add(TraceEvent("syscalls", f"sys_exit_{name}", 0, exit_fields, xfmt, syscall=(nr, False)))
            self.m.write(nb_args + nr, bytes([len(args)]))

    def _add(self, ev: TraceEvent) -> None:
        taken = {e.id for e in self.events}
        ev.id = next(i for i in range(TRACE_LAST_TYPE, 1 << 16) if i not in taken)   # ida: lowest free
        ev.file = self.arena.alloc(FILE_SIZE)
        self.m.write(ev.file, struct.pack("<QHxxxxxxQ", 0, ev.id, 0))
        if ev.tracepoint is not None:
            self.m.write_u64(self.m.symbols["tp_files"] + 8 * self._tp_index[ev.tracepoint], ev.file)
        if self.pids.active:                     # trace_create_new_event(): PID_FILTER if filtering
            self.pids.flag_file(ev.file, True)
        self.events.append(ev)

    def add_dynamic(self, ev: TraceEvent) -> TraceEvent:
        """trace_probe_register_event_call(): a probe event joins the events/ tree."""
        self._add(ev)
        if self._fs is not None:
            self._register_event(self._fs, ev)
            self._register_system(self._fs, ev.system)
        return ev

    def remove_dynamic(self, ev: TraceEvent) -> None:
        """trace_probe_unregister_event_call(): its files go (the caller checked it is idle)."""
        self.events.remove(ev)
        if self._fs is not None:
            for name in ("enable", "id", "format", "filter", "trigger", "hist"):
                self._fs.remove_file(f"events/{ev.path}/{name}")
            if not any(e.system == ev.system for e in self.events):
                self._fs.remove_file(f"events/{ev.system}/enable")
                self._fs.remove_file(f"events/{ev.system}/filter")
            else:
                self._register_system(self._fs, ev.system)

    def tracepoint_index(self, name: str) -> int | None:
        """find_tracepoint(): the image's TP_<name>, None if it has no such tracepoint."""
        return self._tp_index.get(name)

    def find(self, system: str, name: str) -> TraceEvent | None:
        return next((e for e in self.events if e.system == system and e.name == name), None)

    def newest_first(self) -> Iterator[TraceEvent]:
        return reversed(self.events)

    def formats(self) -> dict[str, str]:
        return {ev.path: ev.format for ev in self.events}

    def written(self, ev: TraceEvent) -> int:
        return self.m.read_u64(ev.file + FILE_NR_WRITTEN)

    # ---- enabling: __ftrace_event_enable_disable() ---------------------------------
    def set_enabled(self, ev: TraceEvent, on: bool) -> None:
        """__ftrace_event_enable_disable(file, on, 0): in soft mode only the
        SOFT_DISABLED bit changes (the tracepoint stays registered)."""
        if ev.soft:
            ev.enabled = on
            self._soft_disable(ev, not on)
            self._update_flags(ev)
            return
        if ev.enabled == on:
            return
        ev.enabled = on
        self._update_flags(ev)

    def soft_mode(self, ev: TraceEvent, delta: int) -> None:
        """An enable_event/disable_event probe takes (+1) or drops (-1) the event's
        soft mode: the tracepoint (or probe) runs, and records are kept only while
        the SOFT_DISABLED bit, which the probes flip, is clear. Leaving soft mode
        keeps the event as the bit left it: on if it was soft-enabled."""
        before = ev.soft
        ev.soft = max(ev.soft + delta, 0)
        if not before and ev.soft:
            self._soft_disable(ev, not ev.enabled)
        elif before and not ev.soft:
            on = self.recording_bit(ev)
            self._soft_disable(ev, False)
            ev.enabled = on
        self._update_flags(ev)

    def recording_bit(self, ev: TraceEvent) -> bool:
        return not self.m.read_u64(ev.file + FILE_FLAGS) & EVENT_FILE_FL_SOFT_DISABLED

    def _soft_disable(self, ev: TraceEvent, on: bool) -> None:
        flags = self.m.read_u64(ev.file + FILE_FLAGS) & ~EVENT_FILE_FL_SOFT_DISABLED
        self.m.write_u64(ev.file + FILE_FLAGS, flags | (EVENT_FILE_FL_SOFT_DISABLED if on else 0))

    def recording(self, ev: TraceEvent) -> bool:
        """Does the event keep its records now (enabled, or soft-enabled by a probe)?"""
        return self.recording_bit(ev) if ev.soft else ev.enabled

    def set_clr_event(self, text: str, on: bool) -> int:
        """ftrace_set_clr_event(): ``system:event``, where an empty or ``*`` part
        matches all (``sched:``, ``:sched_switch``, ``*:*``), or a bare word naming
        an event or a system. Names compare exactly (no globs). Returns how many
        events matched (none: the write fails with EINVAL)."""
        system: str | None
        event: str | None
        match: str | None = None
        if ":" in text:
            system, event = text.split(":", 1)
            system = None if system in ("", "*") else system
            event = None if event in ("", "*") else event
        else:
            system = event = None
            match = text
        hits = [ev for ev in self.events
                if (match is None or match in (ev.name, ev.system))
                and (system is None or system == ev.system)
                and (event is None or event == ev.name)]
        for ev in hits:
            self.set_enabled(ev, on)
        return len(hits)

    # ---- tracefs ---------------------------------------------------------------------
    def register(self, fs: TraceFS) -> None:
        fs.add_file("available_events", read=lambda: "".join(
            f"{e.system}:{e.name}\n" for e in self.newest_first()), mode=0o444)
        fs.add_file("set_event", read=lambda: "".join(
            f"{e.system}:{e.name}\n" for e in self.newest_first() if _registered(e)),
            write=self._write_set_event, mode=0o644)
        self.pids.register(fs)
        fs.add_file("events/enable", read=lambda: self._state(self.events),
                    write=lambda t, a: self._write_enable(t, self.events, "events/enable"), mode=0o644)
        self._fs = fs
        for system in dict.fromkeys(e.system for e in self.events):
            self._register_system(fs, system)
        for ev in self.events:
            self._register_event(fs, ev)

    def _register_system(self, fs: TraceFS, system: str) -> None:
        evs = [e for e in self.events if e.system == system]
        fs.add_file(f"events/{system}/enable", read=self._state_reader(evs),
                    write=self._enable_writer(evs, f"events/{system}/enable"), mode=0o644)
        fs.add_file(f"events/{system}/filter", read=lambda: SUBSYSTEM_FILTER_HELP,
                    write=lambda t, a: self._write_system_filter(system, t), mode=0o644)

    # ---- filters: event_filter_write(), apply_subsystem_event_filter() ---------------------
    def _write_filter(self, ev: TraceEvent, text: str) -> None:
        if len(text) >= 4096:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), f"events/{ev.path}/filter")
        stored = text.rstrip(" \t\n\v\f\r")
        if stored.strip() == "0":
            self._set_filter(ev, None)
            return
        err = self._apply_filter(ev, stored)
        if err is not None:
            self.log_err("event filter parse error", stored, FILTER_ERRORS, err.code or ERRNO_CODE,
                         err.pos if err.code else 0)
            raise OSError(err.errno, os.strerror(err.errno), f"events/{ev.path}/filter")

    def _apply_filter(self, ev: TraceEvent, text: str) -> FilterError | None:
        """Parse ``text`` against the event's fields; the event keeps the result (the
        failed filter too: it then passes every record)."""
        fmt = parse_format(ev.format, system=ev.system)
        try:
            tree = parse_filter(text, fmt, self.m.ncpus, self._function_span)
        except FilterError as exc:
            self._set_filter(ev, EventFilter(text, None, exc))
            return exc
        self._set_filter(ev, EventFilter(text, tree))
        return None

    def _write_system_filter(self, system: str, text: str) -> None:
        stored = text.rstrip(" \t\n\v\f\r")
        if len(text) >= 4096:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), f"events/{system}/filter")
        for ev in [e for e in self.newest_first() if e.system == system]:
            if stored.strip() == "0":
                self._set_filter(ev, None)
            elif self._apply_filter(ev, stored) is not None:
                bad = FilterError(BAD_SUBSYS_FILTER, 0, errno.EINVAL)
                self._set_filter(ev, EventFilter(stored, None, bad))
                self.log_err("event filter parse error", stored, FILTER_ERRORS, BAD_SUBSYS_FILTER, 0)

    # ---- triggers: event_trigger_write() -------------------------------------------------
    def _write_trigger(self, ev: TraceEvent, text: str) -> None:
        path = f"events/{ev.path}/trigger"

        def compile_filter(filter_text: str) -> EventFilter:
            fmt = parse_format(ev.format, system=ev.system)
            try:
                tree = parse_filter(filter_text, fmt, self.m.ncpus, self._function_span)
                return EventFilter(filter_text, tree)
            except FilterError as exc:
                self.log_err("event filter parse error", filter_text, FILTER_ERRORS, exc.code or ERRNO_CODE,
                             exc.pos if exc.code else 0)
                return EventFilter(filter_text, None, exc)
        glob, rest = split_command(text)
        if glob in ("hist", "!hist"):                    # trigger_process_regex(): the hist command
            self._write_hist(ev, glob, rest.lstrip() or None, path, compile_filter)
            return
        remove, trigger = parse_trigger(text, path, compile_filter, self.find)
        same = [t for t in ev.triggers if TRIGGER_TYPE[t.cmd] == TRIGGER_TYPE[trigger.cmd]
                and getattr(t, "target", None) is trigger.target]     # enable_*: per target
        if remove:
            if same:
                ev.triggers.remove(same[0])
                if trigger.cmd == "snapshot" and self.arm_snapshot is not None:
                    self.arm_snapshot(-1)            # unregister_snapshot_trigger()
                if trigger.target is not None:
                    self.soft_mode(trigger.target, -1)   # event_enable_trigger_free()
        elif same:
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        else:
            if trigger.cmd == "snapshot" and self.arm_snapshot is not None:
                self.arm_snapshot(+1)                # register_snapshot_trigger()
            if trigger.target is not None:
                self.soft_mode(trigger.target, +1)   # trace_event_enable_disable(target, 1, 1)
            ev.triggers.insert(0, trigger)
        self._update_flags(ev)

    def _write_hist(self, ev: TraceEvent, glob: str, param: str | None, path: str,
                    compile_filter: Callable[[str], EventFilter]) -> None:
        """event_hist_trigger_parse(): errors logged as hist:SYSTEM:EVENT."""
        ks = self.m.kallsyms

        def log(cmd: str, code: int, pos: int) -> None:
            self.log_err(f"hist:{ev.system}:{ev.name}", cmd, HIST_ERRORS, code, pos)
        ctx = HistContext(parse_format(ev.format, system=ev.system), log, compile_filter, self._syscall_name,
                          lambda a, off: ks.format_ps(a) if off else ks.format_short(a))
        try:
            new = parse_hist(param, ctx)
            register_hist(ev.triggers, new, glob.startswith("!"), lambda code: log(f"hist:{param}", code, 0))
        except HistError as exc:
            raise OSError(exc.errno, str(exc), path) from None
        self._update_flags(ev)

    def _syscall_name(self, nr: int) -> str | None:
        """get_syscall_name(): the syscall's metadata name (sys_read)."""
        ev = next((e for e in self.events if e.syscall == (nr, True)), None)
        return None if ev is None else "sys_" + ev.name.removeprefix("sys_enter_")

    def _update_flags(self, ev: TraceEvent) -> None:
        """The file's flags for the image: ENABLED, FILTERED, TRIGGER_MODE (soft mode:
        the tracepoint runs for the triggers even while the event is off)."""
        if ev.on_enable is not None and ev.probe_on != _registered(ev):
            ev.probe_on = _registered(ev)            # a probe event's probes follow its users
            ev.on_enable(ev.probe_on)
        flags = self.m.read_u64(ev.file + FILE_FLAGS)
        flags &= ~(EVENT_FILE_FL_ENABLED | EVENT_FILE_FL_FILTERED | EVENT_FILE_FL_TRIGGER_MODE
                   | EVENT_FILE_FL_SOFT_MODE)
        if ev.enabled:
            flags |= EVENT_FILE_FL_ENABLED
        if ev.filter is not None and ev.filter.tree is not None:
            flags |= EVENT_FILE_FL_FILTERED
        if ev.triggers or ev.soft:       # the lab judges soft-mode records (SOFT_DISABLED)
            flags |= EVENT_FILE_FL_TRIGGER_MODE
        if ev.soft:
            flags |= EVENT_FILE_FL_SOFT_MODE
        self.m.write_u64(ev.file + FILE_FLAGS, flags)
        if ev.syscall is not None:                   # reg_event_syscall_enter/exit()
            nr, enter = ev.syscall
            table = self.m.symbols["enter_syscall_files" if enter else "exit_syscall_files"]
            self.m.write_u64(table + 8 * nr, ev.file if _registered(ev) else 0)
        on_syscall = any(_registered(e) and (e.syscall is not None or e.system == "raw_syscalls")
                         for e in self.events)
        self.m.write_u32(self.m.symbols["syscall_tracepoints"], int(on_syscall))
        if (flags & (EVENT_FILE_FL_FILTERED | EVENT_FILE_FL_TRIGGER_MODE)) and self._hook is None:
            self._hook = RawCallHook(self.m, self.m.symbols["lab_python_event_hook"], self._on_event)

    def _set_filter(self, ev: TraceEvent, filt: EventFilter | None) -> None:
        ev.filter = filt
        self._update_flags(ev)

    def _function_span(self, name: str) -> tuple[int, int] | None:
        """.function: the [start, end) of the function named (or containing the address)."""
        ks = self.m.kallsyms
        try:
            addr = int(name, 16) if name.startswith("0x") else ks.lookup_name(name).addr
        except (KeyError, ValueError):
            return None
        hit = ks.lookup(addr)
        return None if hit is None else (hit[0].addr, hit[0].addr + hit[0].size)

    def _on_event(self, kind: int, file: int, entry: int, size: int) -> None:
        """lab_python_event_call(): a filtered or triggering event's record (kind 1:
        from its file, kind 2: a probe event's, by ID); keep it? Runs inside the
        emulation: the triggers fire here (traceon now, traceoff and stacktrace after
        the record, through the mailbox)."""
        m = self.m
        ev = next((e for e in self.events if (e.file == file if kind == 1 else e.id == file)), None)
        if ev is None:
            m.mailbox[5] = 1
            return
        task = m.percpu_u64(m.cpu, PCPU_CURRENT_TASK)
        comm = m.read(task + TASK_COMM, 16).split(b"\0")[0].decode(errors="replace")
        rec = m.read(entry, size)
        keep = self.recording(ev) and (ev.filter is None or ev.filter.match(rec, m.cpu, comm, self._read_str))
        if ev.triggers:
            buffer = m.read_u64(m.symbols["global_trace_buffer"])
            tracing_on = m.read(buffer, 4) == bytes(4)
            on, off, stack, snap = fire(ev.triggers, rec, tracing_on, m.cpu, comm, self._switch)
            if on:
                m.write_u32(buffer, 0)                   # tracer_tracing_on(), before the record
            if off:
                m.mailbox[6] |= POST_TRACEOFF
            if snap:
                m.mailbox[6] |= POST_SNAPSHOT
            if stack:
                queue_record(m, TRACE_STACK, stack_record(self._stack(task)))
            hists = [t for t in ev.triggers if isinstance(t, HistTrigger) and not t.paused
                     and (t.filter is None or t.filter.match(rec, m.cpu, comm, self._read_str))]
            frames = self._stack(task, HIST_STACKTRACE_DEPTH) if any(h.needs_stack() for h in hists) else []
            for h in hists:                              # event_hist_trigger(); save_comm() for execname
                h.update(rec, entry, m.cpu, comm if int.from_bytes(rec[4:8], "little") else "<idle>", frames)
        m.mailbox[5] = int(keep)

    def _switch(self, t: Trigger, apply: bool) -> bool:
        """event_enable_trigger()/hist_enable_trigger(): is the target as ``t`` wants it
        (an event's SOFT_DISABLED bit; its hist triggers' pause); ``apply``: make it so."""
        target, enable = t.target, t.cmd.startswith("enable")
        if t.cmd.endswith("_hist"):
            for h in target.triggers:
                if apply and isinstance(h, HistTrigger):
                    h.paused = not enable
            return False
        if apply:
            self._soft_disable(target, not enable)
        return self.recording_bit(target) == enable

    def _stack(self, task: int, depth: int = FTRACE_STACK_ENTRIES) -> list[int]:
        """The frames above the event's tracing code (the stacktrace trigger's and
        hist's common_stacktrace)."""
        m, ks = self.m, self.m.kallsyms
        base = m.read_u64(task + TASK_STACK)

        def on_stack(addr: int) -> bool:
            return base <= addr < base + THREAD_SIZE - 16

        def tracing(ret: int) -> bool:
            hit = ks.lookup(ret)
            name = hit[0].name if hit else ""
            return name.startswith(("trace_event_raw_event_", "event_commit", "ftrace_syscall_"))
        return stack_frames(m.read_u64, m.reg("rbp"), on_stack, tracing, depth)

    def _read_str(self, addr: int) -> bytes:
        try:
            return self.m.read(addr, 1024).split(b"\0")[0]
        except Exception:               # an unreadable pointer compares as empty  # noqa: BLE001
            return b""

    def _register_event(self, fs: TraceFS, ev: TraceEvent) -> None:
        fs.add_file(f"events/{ev.path}/enable", read=self._state_reader([ev]),
                    write=self._enable_writer([ev], f"events/{ev.path}/enable"), mode=0o644)
        fs.add_file(f"events/{ev.path}/filter", read=lambda: ev.filter.show() if ev.filter else "none\n",
                    write=lambda t, a: self._write_filter(ev, t), mode=0o644)
        fs.add_file(f"events/{ev.path}/trigger", read=lambda: triggers_text(ev.triggers),
                    write=lambda t, a: self._write_trigger(ev, t), mode=0o640)
        fs.add_file(f"events/{ev.path}/hist", read=lambda: hist_text(ev.triggers), mode=0o444)
        fs.add_file(f"events/{ev.path}/id", read=self._text(f"{ev.id}\n"), mode=0o444)
        fs.add_file(f"events/{ev.path}/format", read=lambda: ev.format, mode=0o444)

    @staticmethod
    def _text(text: str) -> Callable[[], str]:
        return lambda: text

    def _state_reader(self, evs: list[TraceEvent]) -> Callable[[], str]:
        return lambda: self._state(evs)

    def _state(self, evs: list[TraceEvent]) -> str:
        """event_enable_read(): 1 when recording, ``*`` in soft mode (triggers or
        enable_event probes attached); system_enable_read(): 0, 1, or X when mixed,
        from the ENABLED bit, which soft mode sets too."""
        if len(evs) == 1:
            ev = evs[0]
            return f"{int(self.recording(ev))}{'*' if ev.triggers or ev.soft else ''}\n"
        states = {_registered(ev) for ev in evs}
        return "X\n" if len(states) > 1 else ("1\n" if True in states else "0\n")

    def _enable_writer(self, evs: list[TraceEvent], path: str) -> Callable[[str, bool], None]:
        return lambda text, append: self._write_enable(text, evs, path)

    def _write_enable(self, text: str, evs: list[TraceEvent], path: str) -> None:
        """event_enable_write()/system_enable_write(): kstrtoul, then 0 or 1 only."""
        word = text.strip()
        if not word.isdigit() or int(word) > 1:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        for ev in evs:
            self.set_enabled(ev, word == "1")

    def _write_set_event(self, text: str, append: bool) -> None:
        """ftrace_event_write(): an opening write (no O_APPEND) clears every event first;
        each word enables (or with ``!`` disables) what it names; a word matching
        nothing is EINVAL (the words before it stay done)."""
        if not append:
            for ev in self.events:
                self.set_enabled(ev, False)
        for word in text.split():
            on = not word.startswith("!")
            if not self.set_clr_event(word.lstrip("!"), on):
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), "set_event")


def _registered(ev: TraceEvent) -> bool:
    """EVENT_FILE_FL_ENABLED as the kernel keeps it: set while the tracepoint is
    registered, which soft mode (triggers, enable_event probes) does too."""
    return ev.enabled or bool(ev.triggers) or ev.soft > 0
