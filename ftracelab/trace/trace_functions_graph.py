"""kernel/trace/trace_functions_graph.c of Linux 6.12, the text side: the
function_graph tracer's options, its header (__print_graph_headers_flags())
and its lines (print_graph_function_flags(): print_graph_entry() with the leaf
lookahead of get_return_for_leaf(), print_graph_return(), print_graph_comment(),
the context-switch separator of verif_pid() and the duration column of
print_graph_duration() / trace_print_graph_duration() with trace_find_mark()).

An entry whose next event in the same CPU's buffer is its own return (same pid
and function) prints as one ``func();`` leaf line and the return is consumed;
otherwise ``func() {`` and, later, ``}`` (``} /* func */`` when the entry was not
seen or with funcgraph-tail). Events of other types print as ``/* ... */``
comments. Calls of functions in ``__irqentry_text`` get ``==========>`` and
``<==========`` marker lines (print_graph_irq()); on x86 that section holds only
the assembly IDT stubs, which are not traceable, so the markers never appear on
a real 6.12 x86 kernel nor on the lab's (they do on arm64, whose
``gic_handle_irq`` is ``__irq_entry``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .ftrace_ops import write_hash
from .ftrace_regex import filter_parse_regex, match_records
from .trace_output import delay_mark, lat_fmt

if TYPE_CHECKING:
    from ..tracefs import TraceFS
    from .fgraph import Fgraph, FgraphOps
    from .ftrace_files import FilterFiles

__all__ = ["GRAPH_OPTIONS", "GraphFlags", "GraphTracer", "graph_duration", "graph_header", "graph_lines"]

#: options/ of the function_graph tracer, in the kernel's order, with their defaults
#: (graph-time is read by the function profiler only: trace_stat.py).
GRAPH_OPTIONS: tuple[tuple[str, bool], ...] = (
    ("funcgraph-overrun", False), ("funcgraph-cpu", True), ("funcgraph-overhead", True),
    ("funcgraph-proc", False), ("funcgraph-duration", True), ("funcgraph-abstime", False),
    ("funcgraph-irqs", True), ("funcgraph-tail", False), ("funcgraph-retval", False),
    ("funcgraph-retval-hex", False), ("sleep-time", True), ("graph-time", True))

INDENT = 2
PROCINFO_LENGTH = 14
SEPARATOR = " ------------------------------------------\n"
MAX_ERRNO = 4095


@dataclass(frozen=True)
class GraphFlags:
    """The tracer flags and the trace options print_graph_*() look at."""

    overrun: bool = False
    cpu: bool = True
    overhead: bool = True
    proc: bool = False
    duration: bool = True
    abstime: bool = False
    tail: bool = False
    retval: bool = False
    retval_hex: bool = False
    context_info: bool = True
    latency: bool = False
    irqs: bool = True

    @classmethod
    def from_options(cls, o: Mapping[str, bool]) -> GraphFlags:
        return cls(o["funcgraph-overrun"], o["funcgraph-cpu"], o["funcgraph-overhead"],
                   o["funcgraph-proc"], o["funcgraph-duration"], o["funcgraph-abstime"],
                   o["funcgraph-tail"], o["funcgraph-retval"], o["funcgraph-retval-hex"],
                   o["context-info"], o["latency-format"], o["funcgraph-irqs"])


def graph_duration(ns: int) -> str:
    """trace_print_graph_duration(): microseconds, three decimals while they fit in
    eight characters, then `` us `` padded to the column."""
    usecs, nsecs = divmod(ns, 1000)
    text = str(usecs)
    width = len(text)
    if width < 7:
        frac = f"{nsecs:03d}"[:min(5, 8 - width) - 1]     # snprintf(buf, slen, "%03lu")
        text += "." + frac
        width += len(frac) + 1
    return text + " us " + " " * max(0, 8 - width)


def graph_header(flags: GraphFlags) -> str:
    """The two ``#`` lines (and, with latency-format, the flags legend first)."""
    if not flags.context_info:
        return ""
    out = ""
    if flags.latency:
        size = 16 * flags.abstime + 4 * flags.cpu + 17 * flags.proc
        pad = (" " * 37)[:size]
        out += (f"#{pad}  _-----=> irqs-off        \n#{pad} / _----=> need-resched    \n"
                f"#{pad}| / _---=> hardirq/softirq \n#{pad}|| / _--=> preempt-depth   \n"
                f"#{pad}||| /                      \n")
    line1 = "#" + "     TIME       " * flags.abstime + " CPU" * flags.cpu + "  TASK/PID       " * flags.proc
    line2 = "#" + "      |         " * flags.abstime + " |  " * flags.cpu + "   |    |        " * flags.proc
    if flags.latency:
        line1, line2 = line1 + "||||   ", line2 + "||||   "
    if flags.duration:
        line1, line2 = line1 + "  DURATION   ", line2 + "   |   |      "
    return out + line1 + "               FUNCTION CALLS\n" + line2 + "               |   |   |   |\n"


def _proc(comm: str, pid: int) -> str:
    """print_graph_proc(): comm (7 characters at most)-pid, centred in 14 columns."""
    text = f"{comm[:7]}-{pid}"
    spaces = max(0, PROCINFO_LENGTH - len(text))
    return " " * (spaces // 2) + text + " " * (spaces - spaces // 2)


def _retval(value: int, hex_format: bool) -> str:
    """print_graph_retval()'s value: an error code in decimal, else hex."""
    err = 0
    if value and not hex_format:
        err = value - (1 << 32) if value & (1 << 31) and value >> 32 == 0 else value
        if err >= 1 << 63:
            err -= 1 << 64
        if not -MAX_ERRNO <= err < 0:              # IS_ERR_VALUE()
            err = 0
    return f"= 0x{value:x}" if hex_format or err == 0 else f"= {err}"


@dataclass
class _CpuState:
    """struct fgraph_cpu_data."""

    last_pid: int = -1
    depth: int = 0
    enter_funcs: dict[int, int] | None = None
    depth_irq: int = -1      # funcgraph-irqs off: the depth at which irq code was entered


def graph_lines(df: pd.DataFrame, sym: Callable[[int], str], flags: GraphFlags, nr_cpus: int,
                comm_of: Callable[[int], str], comment: Callable[[dict[str, Any]], str],
                irqentry: tuple[int, int] | None = None) -> list[str]:
    """The lines of a function_graph trace: ``df`` is the events in the order the
    trace file reads them (``df_events()``: CPUs merged, each CPU in buffer order);
    ``sym`` is %ps, ``comm_of`` trace_find_cmdline() and ``comment`` the text of any
    other event; ``irqentry`` is ``[__irqentry_text_start, __irqentry_text_end)``:
    calls of functions there get the ``==========>`` / ``<==========`` lines
    (print_graph_irq()), or, with funcgraph-irqs off, are hidden with everything
    they call (check_irq_entry()/check_irq_return()). Each element is one or more
    whole lines (newlines included)."""
    cpu_width = len(str(max(nr_cpus - 1, 0)))
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]
    nxt: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, row in enumerate(rows):                   # each event's successor on its CPU
        c = int(row["cpu"])
        if c in last:
            nxt[last[c]] = i
        last[c] = i
    states: dict[int, _CpuState] = {}
    consumed: set[int] = set()
    out: list[str] = []

    def duration(ns: int | None, fill: str = "") -> str:
        if not flags.duration or not flags.context_info:
            return ""
        if fill == "full":
            return "              |  "
        if ns is None:
            return ""
        mark = delay_mark(ns) if flags.overhead else " "     # trace_find_mark()
        return f"{mark} {graph_duration(ns)}|  "

    def verif_pid(row: dict[str, Any], st: _CpuState) -> str:
        cpu, pid = int(row["cpu"]), int(row["pid"])
        if st.last_pid == pid:
            return ""
        last, st.last_pid = st.last_pid, pid
        if last == -1:
            return ""
        return (SEPARATOR + f" {cpu:>{cpu_width}d}) " + _proc(comm_of(last), last)
                + " => " + _proc(comm_of(pid), pid) + "\n" + SEPARATOR + "\n")

    def context(row: dict[str, Any]) -> str:
        """The abstime, CPU, task and latency columns."""
        if not flags.context_info:
            return ""
        cpu, pid = int(row["cpu"]), int(row["pid"])
        text = ""
        if flags.abstime:
            ts = int(row["ts"])
            text += f"{ts // 1_000_000_000:5d}.{ts % 1_000_000_000 // 1000:06d} |  "
        if flags.cpu:
            text += f" {cpu:>{cpu_width}d}) "
        if flags.proc:
            text += _proc(comm_of(pid), pid) + " | "
        if flags.latency:
            text += " " + lat_fmt(int(row["common_flags"]), int(row["common_preempt_count"])) + " | "
        return text

    def in_irqentry(func: int) -> bool:
        return irqentry is not None and irqentry[0] <= func < irqentry[1]

    def irq_line(row: dict[str, Any], func: int, entering: bool) -> str:
        """print_graph_irq(): a marker line when ``func`` is irq entry code."""
        if not in_irqentry(func):
            return ""
        fill = flags.duration and flags.context_info         # FLAGS_FILL_START / _END
        arrow = "==========>" if entering else "<=========="
        return context(row) + "  " * fill + arrow + " |" * fill + "\n"

    for i, row in enumerate(rows):
        if i in consumed:
            continue
        st = states.setdefault(int(row["cpu"]), _CpuState(enter_funcs={}))
        assert st.enter_funcs is not None
        event = str(row["event"])
        if event == "funcgraph_entry":
            func, depth = int(row["field_func"]), int(row["depth"])
            if not flags.irqs:                       # check_irq_entry()
                if st.depth_irq >= 0:
                    continue
                if in_irqentry(func):
                    st.depth_irq = depth
                    continue
            head = verif_pid(row, st) + irq_line(row, func, True) + context(row)
            j = nxt.get(i, -1)
            ret = rows[j] if j >= 0 else None
            if ret is not None and str(ret["event"]) == "funcgraph_exit" \
                    and int(ret["pid"]) == int(row["pid"]) and int(ret["field_func"]) == func:
                consumed.add(j)                      # a leaf: the return is printed with it
                st.depth = depth - 1
                st.enter_funcs.pop(depth, None)
                ns = int(ret["rettime"]) - int(ret["calltime"])
                body = f"{sym(func)}();"
                if flags.retval:
                    body += f" /* {_retval(int(ret['retval']), flags.retval_hex)} */"
                out.append(f"{head}{duration(ns)}{' ' * depth * INDENT}{body}\n"
                           + irq_line(row, func, False))
            else:
                st.depth = depth
                st.enter_funcs[depth] = func
                out.append(f"{head}{duration(None, 'full')}{' ' * depth * INDENT}{sym(func)}() {{\n")
        elif event == "funcgraph_exit":
            func, depth = int(row["field_func"]), int(row["depth"])
            if not flags.irqs and st.depth_irq != -1:    # check_irq_return()
                if st.depth_irq >= depth:
                    st.depth_irq = -1
                continue
            st.depth = depth - 1
            match = st.enter_funcs.pop(depth, None) == func
            head = verif_pid(row, st) + context(row)
            ns = int(row["rettime"]) - int(row["calltime"])
            if flags.retval:
                body = f"}} /* {sym(func)} {_retval(int(row['retval']), flags.retval_hex)} */"
            elif match and not flags.tail:
                body = "}"
            else:
                body = f"}} /* {sym(func)} */"
            text = f"{head}{duration(ns)}{' ' * depth * INDENT}{body}\n"
            if flags.overrun:
                text += f" (Overruns: {int(row['overrun'])})\n"
            out.append(text + irq_line(row, func, False))
        elif event in ("function", "kernel_stack"):
            continue                                 # not printed as comments
        else:
            head = verif_pid(row, st) + context(row)
            indent = " " * ((st.depth + 1) * INDENT) if st.depth > 0 else ""
            out.append(f"{head}{duration(None, 'full')}{indent}/* {comment(row).rstrip(chr(10))} */\n")
    return out


# ---- the tracer: graph_trace_init() and its control files --------------------------

class GraphTracer:
    """The function_graph tracer of a trace array: its fgraph_ops (the kernel's
    ``trace_graph_entry`` and ``trace_graph_return``, or ``trace_graph_thresh_return``
    with tracing_thresh, on the functions of set_ftrace_filter/set_ftrace_notrace),
    and set_graph_function, set_graph_notrace, max_graph_depth and tracing_thresh,
    which it keeps in the kernel variables those callbacks read."""

    def __init__(self, fgraph: Fgraph, filter_files: FilterFiles) -> None:
        self.fgraph, self.filter_files = fgraph, filter_files
        self.ftrace, self.m = fgraph.ftrace, fgraph.machine
        self.graph_ips: set[int] = set()
        self.notrace_ips: set[int] = set()
        self.max_depth = 0
        self.thresh_ns = 0
        self.gops: FgraphOps | None = None
        filter_files.hash_listeners.append(self._hashes_changed)

    # graph_trace_init() / graph_trace_reset()
    def init(self) -> None:
        ret = "trace_graph_thresh_return" if self.thresh_ns else "trace_graph_return"
        self.gops = self.fgraph.register("trace_graph_entry", ret, name="function_graph",
                                         hashes=self.filter_files.global_ops)

    def reset(self) -> None:
        if self.gops is not None:
            self.fgraph.unregister(self.gops)
            self.gops = None

    def _hashes_changed(self) -> None:
        if self.gops is not None:
            self.fgraph.refresh(self.gops)

    def register(self, fs: TraceFS) -> None:
        fs.add_file("set_graph_function", read=lambda: self._read_graph(False),
                    write=lambda t, a: self._write_graph(t, a, False), mode=0o644)
        fs.add_file("set_graph_notrace", read=lambda: self._read_graph(True),
                    write=lambda t, a: self._write_graph(t, a, True), mode=0o644)
        fs.add_file("max_graph_depth", read=self._read_depth,
                    write=self._write_depth, mode=0o644)
        fs.add_file("tracing_thresh", read=lambda: f"{self.thresh_ns // 1000}\n",
                    write=self._write_thresh, mode=0o644)

    def set_option(self, name: str, value: bool) -> None:
        """What the kernel does when one of GRAPH_OPTIONS changes."""
        if name == "funcgraph-irqs":
            self.m.write_u32(self.m.symbols["ftrace_graph_skip_irqs"], int(not value))
        elif name == "sleep-time":
            self.m.write_u32(self.m.symbols["fgraph_sleep_time"], int(value))
        elif name == "graph-time":                # ftrace_graph_graph_time_control()
            self.m.write_u32(self.m.symbols["fgraph_graph_time"], int(value))

    # set_graph_function / set_graph_notrace: ftrace_graph_write(), g_show()
    def _read_graph(self, notrace: bool) -> str:
        ips = self.notrace_ips if notrace else self.graph_ips
        if not ips:
            return "#### no functions disabled ####\n" if notrace else "#### all functions enabled ####\n"
        return "".join(f"{r.function}\n" for r in self.ftrace.records if r.ip in ips)

    def _write_graph(self, text: str, append: bool, notrace: bool) -> None:
        path = "set_graph_notrace" if notrace else "set_graph_function"
        working = set(self.notrace_ips if notrace else self.graph_ips) if append else set()
        names = [r.function for r in self.ftrace.records]
        for word in text.split():
            pat = filter_parse_regex(word)
            hits = match_records(names, pat)
            if not hits:                              # ftrace_graph_set_hash(): no match
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
            chosen = {self.ftrace.records[i].ip for i in hits}
            working = working - chosen if pat.negate else working | chosen
        if notrace:
            self.notrace_ips = working
        else:
            self.graph_ips = working
        var = "ftrace_graph_notrace_hash" if notrace else "ftrace_graph_hash"
        self.m.write_u64(self.m.symbols[var], write_hash(self.m, self.ftrace.data, working))

    def _read_depth(self) -> str:
        """graph_depth_read(): the unsigned int printed with %d."""
        return f"{self.max_depth - (1 << 32) if self.max_depth >= 1 << 31 else self.max_depth}\n"

    def _write_depth(self, text: str, append: bool) -> None:
        """graph_depth_write(): kstrtoul() into the unsigned int fgraph_max_depth."""
        self.max_depth = _uint(text, "max_graph_depth", 1 << 64) & 0xFFFF_FFFF
        self.m.write_u32(self.m.symbols["fgraph_max_depth"], self.max_depth)

    def _write_thresh(self, text: str, append: bool) -> None:
        """tracing_thresh_write(): microseconds; the tracer restarts with the other
        return function (graph_trace_update_thresh())."""
        self.thresh_ns = _uint(text, "tracing_thresh", 1 << 54) * 1000
        self.m.write_u64(self.m.symbols["tracing_thresh"], self.thresh_ns)
        if self.gops is not None:
            self.reset()
            self.init()


def _uint(text: str, path: str, limit: int) -> int:
    """kstrtoul()/kstrtouint(): a decimal number, else -EINVAL."""
    word = text.strip()
    if not word.isdigit() or int(word) >= limit:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
    return int(word)
