"""Pid lists (kernel/trace/trace.c: trace_pid_write(), trace_pid_show(),
trace_ignore_this_task(), trace_filter_add_remove_task()) and the files that
use them: ``set_event_pid``/``set_event_notrace_pid`` (trace_events.c:
ftrace_event_pid_write(), event_pid_open(), ignore_task_cpu()) and
``set_ftrace_pid``/``set_ftrace_notrace_pid`` (ftrace.c: ftrace_pid_write(),
fpid_show(), ftrace_update_pid_func()).

Writing pids (``>`` empties the list first, ``>>`` adds; words as kstrtoul()
reads them) sets the list; a word that is no number fails with EINVAL and the
list stays as the write found it (emptied, for ``>``). A task is ignored when the
first list is set and lacks it, or the second has it.

* Events: every event file, probe events' and later ones' too, filters by pid
  (EVENT_FILE_FL_PID_FILTER) while a list is set. Each CPU's verdict
  (event_ignore_pid[] in the image) is set for the task running now, then kept
  by the image's probes around sched_switch (prev or next of interest records
  the switch) and the wakeups (the woken task counts).
* Functions: ops with FTRACE_OPS_FL_PID (the function tracer's) call
  ftrace_pid_func() while a list is set; the function_graph tracer's entry asks
  the lists too (ftrace_trace_task()).

With ``options/event-fork`` or ``options/function-fork`` children join their
parent's lists at fork and leave at free (the image does it, so reading a list
shows them). Lists are bitmaps of PID_LIST_MAX (32768) pids, the kernel's default
pid_max; a larger pid fails with EINVAL, where the kernel's sparse lists reach
PID_MAX_LIMIT.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from ..machine.memory import PCPU_CURRENT_TASK, TASK_PID
from .trace_events_trigger import kstrtoul0

if TYPE_CHECKING:
    from ..machine.cpu import Machine
    from ..tracefs import TraceFS

__all__ = ["EVENT_FILE_FL_PID_FILTER", "PID_LIST_MAX", "EventPids", "FtracePids", "PidLists",
           "ignores_this_pid", "set_fork_option", "update_fork_following"]

PID_LIST_MAX = 32768
EVENT_FILE_FL_PID_FILTER = 1 << 9
EVENT_FILES = {"set_event_pid": ("event_pids", "event_pids_set"),
               "set_event_notrace_pid": ("event_no_pids", "event_no_pids_set")}
FTRACE_FILES = {"set_ftrace_pid": ("ftrace_pid_bits", "ftrace_pids_set"),
                "set_ftrace_notrace_pid": ("ftrace_no_pid_bits", "ftrace_no_pids_set")}


def _byte(m: Machine, symbol: str) -> bool:
    return m.read(m.symbols[symbol], 1) != b"\0"


def update_fork_following(m: Machine) -> None:
    """Do the fork/free probes run? (event-fork with an event list set, or
    function-fork with a function list set.)"""
    on = (_byte(m, "event_fork") and any(_byte(m, s) for _, s in EVENT_FILES.values())) or \
        (_byte(m, "function_fork") and any(_byte(m, s) for _, s in FTRACE_FILES.values()))
    m.write(m.symbols["pid_fork_following"], bytes([on]))


class PidLists:
    """A pair of pid lists (to trace, not to trace) in the image's bitmaps."""

    def __init__(self, m: Machine, files: dict[str, tuple[str, str]], empty: str = "") -> None:
        self.m, self.files, self.empty = m, files, empty

    def pids(self, name: str) -> set[int] | None:
        """The list as the image holds it now (fork following adds and drops children)."""
        bits_sym, set_sym = self.files[name]
        if not _byte(self.m, set_sym):
            return None
        bitmap = int.from_bytes(self.m.read(self.m.symbols[bits_sym], PID_LIST_MAX // 8), "little")
        return {pid for pid in range(bitmap.bit_length()) if bitmap >> pid & 1}

    @property
    def active(self) -> bool:
        """Is either list set? (Its flag byte says, without reading the bitmap.)"""
        return any(_byte(self.m, set_sym) for _, set_sym in self.files.values())

    def register(self, fs: TraceFS) -> None:
        for name in self.files:
            fs.add_file(name, read=partial(self.read, name), write=partial(self.write, name), mode=0o644)

    def read(self, name: str) -> str:
        """trace_pid_show(): one pid a line, in increasing order (or the empty text)."""
        pids = self.pids(name)
        return self.empty if pids is None else "".join(f"{pid}\n" for pid in sorted(pids))

    def write(self, name: str, text: str, append: bool) -> None:
        """O_TRUNC empties the list; trace_pid_write() adds the words."""
        if not append:
            self._install(name, None)
        pids = set(self.pids(name) or ())
        nr = len(pids)
        for word in text.split():
            value = kstrtoul0(word)
            if value is None or value >= PID_LIST_MAX:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), name)
            pids.add(value)
            nr += 1
        self._install(name, pids if nr else None)

    def _install(self, name: str, pids: set[int] | None) -> None:
        m = self.m
        bits_sym, set_sym = self.files[name]
        bitmap = bytearray(PID_LIST_MAX // 8)
        for pid in pids or ():
            bitmap[pid // 8] |= 1 << (pid % 8)
        m.write(m.symbols[bits_sym], bytes(bitmap))
        m.write(m.symbols[set_sym], bytes([pids is not None]))
        update_fork_following(m)
        self.changed()

    def changed(self) -> None:
        """What a change of the lists sets off (ftrace_update_pid_func(), ...)."""


class FtracePids(PidLists):
    """set_ftrace_pid and set_ftrace_notrace_pid; ``on_change`` redirects PID ops."""

    def __init__(self, m: Machine, on_change: Callable[[], None]) -> None:
        super().__init__(m, FTRACE_FILES, "no pid\n")
        self.on_change = on_change

    def changed(self) -> None:
        self.on_change()


class EventPids(PidLists):
    """set_event_pid and set_event_notrace_pid over the registry's event files."""

    def __init__(self, m: Machine, event_files: Callable[[], Iterable[int]]) -> None:
        super().__init__(m, EVENT_FILES)
        self.event_files = event_files

    def changed(self) -> None:
        m = self.m
        active = self.active
        m.write(m.symbols["event_pid_filtering"], bytes([active]))
        for file in self.event_files():                  # every event file filters, or none
            self.flag_file(file, active)
        keep, drop = (self.pids(name) for name in self.files)   # for trace_ignore_this_task()
        for cpu in range(m.ncpus):                       # ignore_task_cpu() on each CPU
            task = m.percpu_u64(cpu, PCPU_CURRENT_TASK)
            pid = int.from_bytes(m.read(task + TASK_PID, 4), "little", signed=True)
            ignored = (keep is not None and pid not in keep) or (drop is not None and pid in drop)
            m.write(m.symbols["event_ignore_pid"] + cpu, bytes([ignored]))

    def flag_file(self, file: int, on: bool) -> None:
        """EVENT_FILE_FL_PID_FILTER on one event file: set while a list is set."""
        flags = self.m.read_u64(file) & ~EVENT_FILE_FL_PID_FILTER
        self.m.write_u64(file, flags | (EVENT_FILE_FL_PID_FILTER if on else 0))


def set_fork_option(m: Machine, symbol: str, on: bool) -> None:
    """options/event-fork (``event_fork``) and options/function-fork (``function_fork``)."""
    m.write(m.symbols[symbol], bytes([on]))
    update_fork_following(m)


def ignores_this_pid(m: Machine, file: int) -> bool:
    """trace_event_ignore_this_pid(): does the event file filter by pid, and is this
    CPU's current task one it ignores? (Probe events ask before they fetch.)"""
    return bool(m.read_u64(file) & EVENT_FILE_FL_PID_FILTER) and \
        m.read(m.symbols["event_ignore_pid"] + m.cpu, 1) != b"\0"
