"""The tracefs files of function filtering (kernel/trace/ftrace.c:
ftrace_regex_open/write/release(), ftrace_process_regex(), t_show(),
and the pid files: trace_events_pid.py).

``set_ftrace_filter`` and ``set_ftrace_notrace`` edit the hashes of the
global ops (the one the function tracers register). Their write semantics
are the kernel's:

* ``>`` (open with O_TRUNC) starts from an empty hash, ``>>`` from a copy;
* each word is processed in turn (echo's write() returns after one word and
  is called again for the rest); ``!word`` removes what it matches;
* a word that matches nothing fails that write with EINVAL and stops there;
* at close the hash built so far is installed, whatever happened: so
  ``echo nomatch > set_ftrace_filter`` leaves an empty filter (everything is
  traced) while ``>>`` leaves the filter as it was.

Function commands (trace_functions.c: ``func:traceon[:count]``, ``traceoff``,
``stacktrace``, ``dump``, ``cpudump``) register probes on the matched
functions instead of editing the filter; they read back after the filter as
``schedule:traceoff:unlimited`` or ``...:count=N`` and ``!func:cmd`` removes
them. A native callback (function_trace_probe_call) runs them, with its own
ftrace_ops. ``mod:`` is refused: the mini-kernel has no modules.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..machine.memory import FTRACE_DATA_BASE
from ..tracefs import TraceFS
from .ftrace_ops import FtraceOps, FtraceOpsFlag
from .ftrace_regex import filter_parse_regex, match_records
from .ftrace_update import Ftrace
from .trace_events_pid import FtracePids

if TYPE_CHECKING:
    from .trace_events import EventRegistry, TraceEvent

def _einval(path: str) -> OSError:
    return OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)


def edit_hash(ftrace: Ftrace, working: set[int], text: str, path: str,
              command: Callable[[str], bool] = lambda word: False) -> tuple[set[int], OSError | None]:
    """ftrace_process_regex() word by word: a glob adds (``!glob`` removes) the records it
    matches; ``func:cmd`` words go to ``command``. The first word that matches nothing
    (or a command refused) stops with EINVAL; what was done before it stays."""
    names = [r.function for r in ftrace.records]
    for word in text.split():
        if ":" in word:
            if not command(word):
                return working, _einval(path)
            continue
        pat = filter_parse_regex(word)
        hits = match_records(names, pat)
        if not hits:
            return working, _einval(path)
        chosen = {ftrace.records[i].ip for i in hits}
        working = working - chosen if pat.negate else working | chosen
    return working, None


def hash_text(ftrace: Ftrace, ips: set[int]) -> str:
    """t_show() of a filter hash: its functions in record order, or that all are."""
    if not ips:
        return "#### all functions enabled ####\n"
    return "".join(f"{r.function}\n" for r in ftrace.records if r.ip in ips)


class FilterFiles:
    """set_ftrace_filter, set_ftrace_notrace and set_ftrace_pid of one tracefs."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace = ftrace
        # global_ops has FTRACE_OPS_FL_PID: set_ftrace_pid narrows the function tracer
        self.global_ops = FtraceOps(ftrace, "ftrace_stub", ftrace.default_flags() | FtraceOpsFlag.PID,
                                    "global_ops")
        self.pids = FtracePids(ftrace.machine, ftrace.update_pid_func)
        self.probes = FuncProbes(ftrace)
        self.hash_listeners: list[Callable[[], None]] = []   # told when a hash changes

    def register(self, tracefs: TraceFS) -> None:
        add = tracefs.add_file
        add("set_ftrace_filter", read=lambda: self.read_hash(notrace=False),
            write=lambda text, append: self.write_hash(text, append, notrace=False),
            mode=0o644)
        add("set_ftrace_notrace", read=lambda: self.read_hash(notrace=True),
            write=lambda text, append: self.write_hash(text, append, notrace=True),
            mode=0o644)
        self.pids.register(tracefs)             # set_ftrace_pid, set_ftrace_notrace_pid

    # ---- set_ftrace_filter / set_ftrace_notrace ---------------------------------
    def read_hash(self, notrace: bool) -> str:
        """t_show(): the hash's functions in record order; an empty filter says so."""
        ips = self.global_ops.notrace_ips if notrace else self.global_ops.filter_ips
        if notrace:
            return hash_text(self.ftrace, ips) if ips else ""
        return hash_text(self.ftrace, ips) + self.probes.show()

    def write_hash(self, text: str, append: bool, notrace: bool) -> None:
        path = "set_ftrace_notrace" if notrace else "set_ftrace_filter"
        current = self.global_ops.notrace_ips if notrace else self.global_ops.filter_ips
        command = (lambda word: False) if notrace else self.probes.command
        working, error = edit_hash(self.ftrace, set(current) if append else set(), text, path, command)
        # ftrace_regex_release(): the iterator's hash is installed at close
        self._install(working, notrace)
        if error is not None:
            raise error

    def _install(self, ips: set[int], notrace: bool) -> None:
        ops = self.global_ops
        if notrace:
            ops.notrace_ips = ips
        else:
            ops.filter_ips = ips
        if ops.enabled:
            self.ftrace.refresh(ops)
        for listener in self.hash_listeners:   # the function_graph tracer shares the hashes
            listener()

    # ---- set_ftrace_pid -----------------------------------------------------------


PROBE_COMMANDS = {"traceon": 1, "traceoff": 2, "stacktrace": 3, "dump": 4, "cpudump": 5,
                  "enable_event": 6, "disable_event": 7, "snapshot": 8}
EVENT_COMMANDS = ("enable_event", "disable_event")
PROBE_DEFAULT_COUNT = {"dump": 1, "cpudump": 1}
MAX_FUNC_PROBES = 512
PROBE_ENTRY = struct.Struct("<QiiQ")          # struct func_probe_entry (trace_functions.c)


class FuncProbes:
    """The function commands and the ftrace_ops that runs them."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace = ftrace
        # (ip, cmd) -> count, -1 unlimited; an event command's cmd is "enable_event:SYS:EVENT"
        self.entries: dict[tuple[int, str], int] = {}
        self.order: list[str] = []                         # commands in registration order
        self.events: EventRegistry | None = None           # for enable_event/disable_event
        self.arm_snapshot: Callable[[int], None] | None = None   # for snapshot
        self.ops = FtraceOps(ftrace, "function_trace_probe_call", FtraceOpsFlag.RECURSION,
                             "func_probes")

    def command(self, word: str) -> bool:
        """Apply ``[!]glob:cmd[:param]``; False if it is not a valid command."""
        negate = word.startswith("!")
        glob, _, rest = word.lstrip("!").partition(":")
        cmd, _, param = rest.partition(":")
        if cmd not in PROBE_COMMANDS or not glob:
            return False
        event = None
        if cmd in EVENT_COMMANDS:                 # event_enable_func(): SYS:EVENT[:count]
            system, _, param = param.partition(":")
            name, _, param = param.partition(":")
            event = self.events.find(system, name) if self.events is not None else None
            if event is None:
                return False
            cmd = f"{cmd}:{system}:{name}"
        if param and not negate:
            try:
                count = int(param, 10)
            except ValueError:
                return False
        else:
            count = PROBE_DEFAULT_COUNT.get(cmd, -1)
        names = [r.function for r in self.ftrace.records]
        hits = match_records(names, filter_parse_regex(glob))
        if not hits:
            return False
        self._sync_counts()
        for i in hits:
            key = (self.ftrace.records[i].ip, cmd)
            if negate and key in self.entries:
                del self.entries[key]
                self._uses(cmd, event, -1)
            elif not negate:
                if key not in self.entries:
                    self._uses(cmd, event, +1)
                self.entries[key] = count
        if cmd not in self.order:
            self.order.append(cmd)
        self._install()
        return True

    def _uses(self, cmd: str, event: TraceEvent | None, delta: int) -> None:
        """What a probe holds while it exists: its event's soft mode
        (__ftrace_event_enable_disable(file, on, 1)) or the snapshot (armed)."""
        if event is not None and self.events is not None:
            self.events.soft_mode(event, delta)
        elif cmd == "snapshot" and self.arm_snapshot is not None:
            self.arm_snapshot(delta)

    def _sync_counts(self) -> None:
        """Counts run down in the kernel: read them back before changing the table."""
        m = self.ftrace.machine
        n = int.from_bytes(m.read(m.symbols["nr_func_probes"], 4), "little")
        raw = m.read(m.symbols["func_probes"], PROBE_ENTRY.size * n) if n else b""
        by_row = {(ip, *self._code(cmd)): (ip, cmd) for ip, cmd in self.entries}
        for ip, code, pad, count in PROBE_ENTRY.iter_unpack(raw):
            key = by_row.get((ip, code, pad))
            if key is not None:
                self.entries[key] = count - (1 << 64) if count >= 1 << 63 else count

    def _code(self, cmd: str) -> tuple[int, int]:
        """The entry's cmd and pad: an event command's pad is its trace_event_file,
        as an offset into the ftrace data arena."""
        name, _, spec = cmd.partition(":")
        if not spec or self.events is None:
            return PROBE_COMMANDS[name], 0
        system, _, event = spec.partition(":")
        ev = self.events.find(system, event)
        return PROBE_COMMANDS[name], (ev.file - FTRACE_DATA_BASE) if ev is not None else 0

    def _install(self) -> None:
        m = self.ftrace.machine
        rows = sorted((ip, *self._code(cmd), count) for (ip, cmd), count in self.entries.items())
        if len(rows) > MAX_FUNC_PROBES:
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM), "set_ftrace_filter")
        m.write(m.symbols["func_probes"],
                b"".join(PROBE_ENTRY.pack(ip, code, pad, count & 0xFFFF_FFFF_FFFF_FFFF)
                         for ip, code, pad, count in rows))
        m.write_u32(m.symbols["nr_func_probes"], len(rows))
        self.ops.filter_ips = {row[0] for row in rows}
        if rows and not self.ops.enabled:
            self.ftrace.register_ops(self.ops)
        elif rows:
            self.ftrace.refresh(self.ops)
        elif self.ops.enabled:
            self.ftrace.unregister(self.ops)

    def show(self) -> str:
        """The probes' lines of set_ftrace_filter (ftrace_probe_print())."""
        self._sync_counts()
        out = []
        for cmd in self.order:
            for rec in self.ftrace.records:
                count = self.entries.get((rec.ip, cmd))
                if count is None:
                    continue
                tail = "unlimited" if count == -1 else f"count={count}"
                out.append(f"{rec.function}:{cmd}:{tail}\n")
        return "".join(out)

