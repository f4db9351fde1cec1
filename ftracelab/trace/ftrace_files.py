"""The tracefs files of function filtering (kernel/trace/ftrace.c:
ftrace_regex_open/write/release(), ftrace_process_regex(), t_show(),
ftrace_pid_write(), fpid_show()).

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

Function commands (``func:traceon`` ...) arrive with the triggers issue; here
any ``:command`` is rejected with EINVAL.
"""

from __future__ import annotations

import errno
import os

from ..tracefs import TraceFS
from .ftrace_ops import FtraceOps
from .ftrace_regex import filter_parse_regex, match_records
from .ftrace_update import Ftrace

FTRACE_MAX_PIDS = 64


def _einval(path: str) -> OSError:
    return OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)


class FilterFiles:
    """set_ftrace_filter, set_ftrace_notrace and set_ftrace_pid of one tracefs."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace = ftrace
        self.global_ops = FtraceOps(ftrace, "ftrace_stub", ftrace.default_flags(), "global_ops")
        self.pids: list[int] = []

    def register(self, tracefs: TraceFS) -> None:
        add = tracefs.add_file
        add("set_ftrace_filter", read=lambda: self.read_hash(notrace=False),
            write=lambda text, append: self.write_hash(text, append, notrace=False),
            mode=0o644)
        add("set_ftrace_notrace", read=lambda: self.read_hash(notrace=True),
            write=lambda text, append: self.write_hash(text, append, notrace=True),
            mode=0o644)
        add("set_ftrace_pid", read=self.read_pids, write=self.write_pids, mode=0o644)

    # ---- set_ftrace_filter / set_ftrace_notrace ---------------------------------
    def read_hash(self, notrace: bool) -> str:
        """t_show(): the hash's functions in record order; an empty filter says so."""
        ips = self.global_ops.notrace_ips if notrace else self.global_ops.filter_ips
        if not ips:
            return "" if notrace else "#### all functions enabled ####\n"
        return "".join(f"{r.function}\n" for r in self.ftrace.records if r.ip in ips)

    def write_hash(self, text: str, append: bool, notrace: bool) -> None:
        path = "set_ftrace_notrace" if notrace else "set_ftrace_filter"
        current = self.global_ops.notrace_ips if notrace else self.global_ops.filter_ips
        working = set(current) if append else set()
        names = [r.function for r in self.ftrace.records]
        error: OSError | None = None
        for word in text.split():
            if ":" in word:
                error = _einval(path)            # no function commands registered yet
                break
            pat = filter_parse_regex(word)
            hits = match_records(names, pat)
            if not hits:
                error = _einval(path)
                break
            chosen = {self.ftrace.records[i].ip for i in hits}
            working = working - chosen if pat.negate else working | chosen
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

    # ---- set_ftrace_pid -----------------------------------------------------------
    def read_pids(self) -> str:
        """fpid_show(): ascending pids, or "no pid"."""
        if not self.pids:
            return "no pid\n"
        return "".join(f"{pid}\n" for pid in sorted(self.pids))

    def write_pids(self, text: str, append: bool) -> None:
        pids = set(self.pids) if append else set()
        for word in text.split():
            try:
                pid = int(word, 10)
            except ValueError:
                raise _einval("set_ftrace_pid") from None
            if pid < 0:
                raise _einval("set_ftrace_pid")
            pids.add(pid)
        if len(pids) > FTRACE_MAX_PIDS:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "set_ftrace_pid")
        self.pids = sorted(pids)
        self.ftrace.set_pids(self.pids)
