"""The ``error_log`` file (kernel/trace/trace.c: tracing_log_err(),
get_tracing_log_err(), tracing_err_log_seq_show(), tracing_err_log_show_pos(),
clear_tracing_err_log()).

Commands written to probe, filter and hist files log their errors here. An entry
reads::

    [  105.207497] trace_kprobe: error: Invalid probe point
      Command: p:myprobe do_sys_openat2+0x1000
                         ^

The caret sits ``pos`` characters into the command. At most 16 entries are kept;
a new one then replaces the oldest. ``echo > error_log`` (an O_TRUNC open) clears
the log; any other write is accepted and ignored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

TRACING_LOG_ERRS_MAX = 16
CMD_PREFIX = "  Command: "


@dataclass(frozen=True)
class LogErr:
    """One ``struct tracing_log_err``: where, what, the command and the caret."""

    ts: int          # local_clock() in ns when the error was logged
    loc: str         # the subsystem, e.g. "trace_kprobe"
    cmd: str
    text: str        # errs[type]
    pos: int

    def show(self) -> str:
        """tracing_err_log_seq_show(): stamp, location, message, command, caret."""
        sec, nsec = divmod(self.ts, 1_000_000_000)
        return (f"[{sec:5d}.{nsec // 1000:06d}] {self.loc}: error: {self.text}\n"
                f"{CMD_PREFIX}{self.cmd}\n" + " " * (len(CMD_PREFIX) + self.pos) + "^\n")


class ErrorLog:
    """A trace instance's error log."""

    def __init__(self) -> None:
        self.entries: deque[LogErr] = deque(maxlen=TRACING_LOG_ERRS_MAX)

    def log(self, ts: int, loc: str, cmd: str, errs: list[str] | tuple[str, ...],
            err_type: int, pos: int) -> LogErr:
        """tracing_log_err(): ``errs[err_type]`` is the message, ``pos`` the caret's
        offset in ``cmd`` (a u16 in the kernel)."""
        if not 0 <= err_type < len(errs):
            raise IndexError(f"error type {err_type} is not in the {len(errs)} messages")
        entry = LogErr(ts, loc, cmd, errs[err_type], pos & 0xFFFF)
        self.entries.append(entry)                 # a full log drops its oldest entry
        return entry

    def read(self) -> str:
        return "".join(e.show() for e in self.entries)

    def write(self, text: str, append: bool) -> None:
        """tracing_err_log_open(): O_TRUNC clears; the write itself consumes its input."""
        if not append:
            self.entries.clear()
