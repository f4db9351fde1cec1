"""The stack tracer: kernel/trace/trace_stack.c (stack_trace_call(), check_stack(),
t_show(), stack_max_size_read()/write(), the stack_trace_filter file).

Enabled (``lab.stack_tracer.enable()``, what ``echo 1 >
/proc/sys/kernel/stack_tracer_enabled`` does), an ftrace_ops on every function (or
those in ``stack_trace_filter``) measures how deep the kernel stack is at each
call. A new maximum saves the call chain, and each entry's depth is where its
return address sits on the stack (check_stack()'s search), so ``stack_trace`` reads::

            Depth    Size   Location    (12 entries)
            -----    ----   --------
      0)     2928     224   update_sd_lb_stats+0xbc/0x4ac
      ...

The first maximum also measures the tracer's own frames (tracer_frame) and takes
them off, as the kernel does. The lab's callback is Python, so a traced call costs
microseconds of host time, none of virtual time; the chain comes from the frame
pointers (the kernel's unwinder gives the same return addresses).
"""

from __future__ import annotations

import errno
import html
import os
from typing import TYPE_CHECKING, Any

from ..machine.memory import PCPU_CURRENT_TASK, TASK_STACK, THREAD_SIZE
from .ftrace_files import edit_hash, hash_text
from .ftrace_ops import FtraceOps, FtraceOpsFlag

if TYPE_CHECKING:
    from ..tracefs import TraceFS
    from .ftrace_update import Ftrace

__all__ = ["StackTracer"]

STACK_TRACE_ENTRIES = 64              # stack_dump_trace[] (the last slot stays 0)
MCOUNT_INSN_SIZE = 5
DISABLED_HELP = ("#\n#  Stack tracer disabled\n#\n"
                 "# To enable the stack tracer, either add 'stacktrace' to the\n"
                 "# kernel command line\n"
                 "# or 'echo 1 > /proc/sys/kernel/stack_tracer_enabled'\n#\n")


class StackTracer:
    """stack_trace_max_size, stack_dump_trace[], stack_trace_index[] and trace_ops."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace, self.m = ftrace, ftrace.machine
        self.max_size = 0
        self.entries: list[int] = []         # return addresses, deepest first
        self.index: list[int] = []           # each one's depth in bytes
        self.tracer_frame = 0
        self.filter_ips: set[int] = set()
        self.ops: FtraceOps | None = None

    @property
    def enabled(self) -> bool:
        return self.ops is not None

    def enable(self) -> None:
        """stack_tracer_enabled = 1: register trace_ops (RECURSION_SAFE: one level)."""
        if self.ops is None:
            self.ops = self.ftrace.register(self._call, flags=FtraceOpsFlag.RECURSION, name="trace_ops")
            self._apply_filter()

    def disable(self) -> None:
        if self.ops is not None:
            self.ops.unregister()
            self.ops = None

    # ---- stack_trace_call() / check_stack() -------------------------------------------
    def _call(self, ip: int, parent_ip: int, ops: FtraceOps, fregs: Any) -> None:
        m = self.m
        stack = m.reg("rsp")                 # where stack_trace_call()'s local would be
        task = m.percpu_u64(m.cpu, PCPU_CURRENT_TASK)
        base = m.read_u64(task + TASK_STACK)
        top = base + THREAD_SIZE
        if not base <= stack < top:          # object_is_on_stack(): not on an irq stack
            return
        this_size = top - stack - self.tracer_frame
        if this_size <= self.max_size:
            return
        self.max_size = this_size
        dump = self._save(ip + MCOUNT_INSN_SIZE, parent_ip, int(fregs.rbp), base, top)
        words = m.read(stack, top - stack)
        slots = [int.from_bytes(words[k:k + 8], "little") for k in range(0, len(words) - 7, 8)]
        entries, index, start, i = [], [], 0, 0
        while i < len(dump):                 # find each entry on the stack, deepest first
            found = False
            for p in range(start, len(slots)):
                if i >= len(dump):
                    break
                if slots[p] == dump[i]:
                    entries.append(dump[i])
                    i += 1
                    this_size = (len(slots) - p) * 8
                    index.append(this_size)
                    found, start = True, p + 1
                    if not self.tracer_frame:    # the tracer's own frames, measured once
                        self.tracer_frame = p * 8
                        self.max_size -= self.tracer_frame
            if not found:
                i += 1
        self.entries, self.index = entries, index

    def _save(self, ip: int, parent_ip: int, fp: int, base: int, top: int) -> list[int]:
        """stack_trace_save() as seen from the traced function: its return address into
        itself (the fentry call's), its caller's, then up the frame pointers."""
        ks, m = self.m.kallsyms, self.m
        dump = [ip, parent_ip]
        while base <= fp < top - 16 and len(dump) < STACK_TRACE_ENTRIES - 1:
            ret = m.read_u64(fp + 8)
            if ks.lookup(ret) is None:
                break
            dump.append(ret)
            fp = m.read_u64(fp)
        return dump

    # ---- files ------------------------------------------------------------------------
    def register(self, fs: TraceFS) -> None:
        fs.add_file("stack_trace", read=self.text, mode=0o444)
        fs.add_file("stack_max_size", read=lambda: f"{self.max_size}\n", write=self._write_max, mode=0o644)
        fs.add_file("stack_trace_filter", read=lambda: hash_text(self.ftrace, self.filter_ips),
                    write=self._write_filter, mode=0o644)

    def text(self) -> str:
        """t_show(): the header, the disabled note, then depth, size and location."""
        out = [f"        Depth    Size   Location    ({len(self.entries)} entries)\n"
               "        -----    ----   --------\n"]
        if not self.enabled and not self.max_size:
            out.append(DISABLED_HELP)
        for i, (addr, depth) in enumerate(zip(self.entries, self.index, strict=True)):
            size = depth - (self.index[i + 1] if i + 1 < len(self.index) else 0)
            out.append(f"{i:3d}) {depth:8d}   {size:5d}   {self.m.kallsyms.format_ps(addr)}\n")
        return "".join(out)

    def _write_max(self, text: str, append: bool) -> None:
        """stack_max_size_write(): kstrtoul(, 10)."""
        word = text.strip()
        if not word.isdigit():
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), "stack_max_size")
        self.max_size = int(word)

    def _write_filter(self, text: str, append: bool) -> None:
        """stack_trace_filter: set_ftrace_filter's grammar for trace_ops' filter."""
        working, error = edit_hash(self.ftrace, set(self.filter_ips) if append else set(), text,
                                   "stack_trace_filter")
        self.filter_ips = working
        self._apply_filter()
        if error is not None:
            raise error

    def _apply_filter(self) -> None:
        if self.ops is not None:
            self.ops.filter_ips = set(self.filter_ips)
            self.ftrace.refresh(self.ops)

    def _repr_html_(self) -> str:
        return f"<b>stack tracer</b> (max {self.max_size} bytes)<pre>{html.escape(self.text())}</pre>"
