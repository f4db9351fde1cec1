"""``set_event_pid`` and ``set_event_notrace_pid``: kernel/trace/trace_events.c
(ftrace_event_pid_write(), event_pid_open(), ftrace_clear_event_pids(),
ignore_task_cpu()) over trace.c's pid lists (trace_pid_write(), trace_pid_show(),
trace_ignore_this_task()).

Writing pids (``>`` empties the list first, ``>>`` adds) makes every event file,
probe events' too, filter by pid (EVENT_FILE_FL_PID_FILTER): an event is kept only
while the CPU's current task is in ``set_event_pid`` (when that list is set) and not
in ``set_event_notrace_pid``. Each CPU's verdict (event_ignore_pid[] in the image)
is set for the task running now, then kept by the image's probes around
sched_switch (prev or next of interest records the switch) and the wakeups (the
woken task counts); with ``options/event-fork`` children join their parent's
lists at fork and leave at free. A word that is no number fails with EINVAL and
the list stays as the write found it (emptied, for ``>``).

The image's lists are bitmaps of EVENT_PID_MAX (32768) pids, the kernel's default
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

__all__ = ["EVENT_FILE_FL_PID_FILTER", "EVENT_PID_MAX", "EventPids", "ignores_this_pid"]

EVENT_PID_MAX = 32768
EVENT_FILE_FL_PID_FILTER = 1 << 9
FILES = {"set_event_pid": ("event_pids", "event_pids_set"),
         "set_event_notrace_pid": ("event_no_pids", "event_no_pids_set")}


class EventPids:
    """tr->filtered_pids and tr->filtered_no_pids, kept in the image's bitmaps."""

    def __init__(self, m: Machine, event_files: Callable[[], Iterable[int]]) -> None:
        self.m, self.event_files = m, event_files

    def pids(self, name: str) -> set[int] | None:
        """The list as the image holds it now (event-fork adds and drops children)."""
        m = self.m
        bits_sym, set_sym = FILES[name]
        if m.read(m.symbols[set_sym], 1) == b"\0":
            return None
        bitmap = int.from_bytes(m.read(m.symbols[bits_sym], EVENT_PID_MAX // 8), "little")
        return {pid for pid in range(bitmap.bit_length()) if bitmap >> pid & 1}

    @property
    def active(self) -> bool:
        return any(self.pids(name) is not None for name in FILES)

    def register(self, fs: TraceFS) -> None:
        for name in FILES:
            fs.add_file(name, read=partial(self.read, name), write=partial(self.write, name), mode=0o644)

    def read(self, name: str) -> str:
        """trace_pid_show(): one pid a line, in increasing order."""
        return "".join(f"{pid}\n" for pid in sorted(self.pids(name) or ()))

    def write(self, name: str, text: str, append: bool) -> None:
        """event_pid_open() with O_TRUNC empties the list; trace_pid_write() adds the words."""
        if not append:
            self._install(name, None)
        pids = set(self.pids(name) or ())
        nr = len(pids)
        for word in text.split():
            value = kstrtoul0(word)
            if value is None or value >= EVENT_PID_MAX:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), name)
            pids.add(value)
            nr += 1
        self._install(name, pids if nr else None)

    def _install(self, name: str, pids: set[int] | None) -> None:
        m = self.m
        bits_sym, set_sym = FILES[name]
        bitmap = bytearray(EVENT_PID_MAX // 8)
        for pid in pids or ():
            bitmap[pid // 8] |= 1 << (pid % 8)
        m.write(m.symbols[bits_sym], bytes(bitmap))
        m.write(m.symbols[set_sym], bytes([pids is not None]))
        m.write(m.symbols["event_pid_filtering"], bytes([self.active]))
        for file in self.event_files():                  # every event file filters, or none
            self.flag_file(file)
        for cpu in range(m.ncpus):                       # ignore_task_cpu() on each CPU
            task = m.percpu_u64(cpu, PCPU_CURRENT_TASK)
            pid = int.from_bytes(m.read(task + TASK_PID, 4), "little", signed=True)
            m.write(m.symbols["event_ignore_pid"] + cpu, bytes([self.ignores(pid)]))

    def flag_file(self, file: int) -> None:
        """EVENT_FILE_FL_PID_FILTER on one event file while a list is set (new events too)."""
        flags = self.m.read_u64(file) & ~EVENT_FILE_FL_PID_FILTER
        self.m.write_u64(file, flags | (EVENT_FILE_FL_PID_FILTER if self.active else 0))

    def ignores(self, pid: int) -> bool:
        """trace_ignore_this_task()."""
        keep, drop = self.pids("set_event_pid"), self.pids("set_event_notrace_pid")
        return (keep is not None and pid not in keep) or (drop is not None and pid in drop)

    def set_fork(self, on: bool) -> None:
        """options/event-fork: the fork and free probes follow children."""
        self.m.write(self.m.symbols["event_fork"], bytes([on]))



def ignores_this_pid(m: Machine, file: int) -> bool:
    """trace_event_ignore_this_pid(): does the event file filter by pid, and is this
    CPU's current task one it ignores? (Probe events ask before they fetch.)"""
    return bool(m.read_u64(file) & EVENT_FILE_FL_PID_FILTER) and \
        m.read(m.symbols["event_ignore_pid"] + m.cpu, 1) != b"\0"
