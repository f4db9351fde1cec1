"""The trace array: tracers, tracing_on, the buffer and their tracefs files
(kernel/trace/trace.c: register_tracer(), tracing_set_tracer(),
tracing_buffers_read() for trace_pipe_raw, tracing_stats_read(),
tracing_entries_read()/write(), ring_buffer_print_page_header(),
ring_buffer_print_entry_header(); kernel/trace/trace_functions.c:
function_trace_init()).

Tracers follow ``struct tracer``: a name, and init/reset called when
``current_tracer`` switches to and from them. ``nop`` does nothing;
``function`` registers the global ops (the one set_ftrace_filter edits) with
the native callback ``function_trace_call``, which writes TRACE_FN entries
into the per-CPU ring buffers.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..formats.format_file import parse_format, parse_header_page
from ..formats.tracedir import TraceDir, parse_kallsyms
from ..kernel import PREEMPT_MODEL, UTS_RELEASE
from ..machine.cpu import Machine
from ..machine.memory import (
    PCPU_CURRENT_TASK,
    TASK_PID,
    TRACE_PAGES_BASE,
    TRACE_PAGES_SIZE,
    USER_ARGS,
)
from ..tracefs import TraceFS
from .error_log import ErrorLog
from .fgraph import Fgraph
from .ftrace_files import FilterFiles
from .ftrace_ops import FtraceOpsFlag, KernelArena
from .ftrace_update import Ftrace
from .ring_buffer import BUF_PAGE_SIZE, TRACE_BUF_SIZE_DEFAULT_KB, RingBuffer
from .trace_cpumask import format_mask, parse_mask
from .trace_entries import TRACE_FN, TRACE_RAW_DATA, ftrace_formats
from .trace_events import EventRegistry
from .trace_events_pid import set_fork_option
from .trace_events_print import EventPrinter
from .trace_functions_graph import GRAPH_OPTIONS, GraphFlags, GraphTracer, graph_header, graph_lines
from .trace_output import (
    LAT_HELP_HEADER,
    LatencyInfo,
    OutputOptions,
    binary_records,
    function_lines,
    header,
    latency_header,
    raw_data_text,
)
from .trace_snapshot import Snapshot
from .trace_stat import FunctionProfiler

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis.events import Trace

# struct saved_cmdlines_buffer (kernel/trace/trace_functions.c)
PID_MAP = 1024
SAVED_CMDLINES = 128
NO_CMDLINE_MAP = 0xFFFF_FFFF
SAVEDCMD_COMMS = PID_MAP * 4 + SAVED_CMDLINES * 4
SAVEDCMD_INIT = SAVEDCMD_COMMS + SAVED_CMDLINES * 16 + 4
SAVEDCMD_SIZE = SAVEDCMD_INIT + 4

TRACE_CLOCKS = ("local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot",
                "tai", "x86-tsc")

HEADER_EVENT = """# compressed entry header
\ttype_len    :    5 bits
\ttime_delta  :   27 bits
\tarray       :   32 bits

\tpadding     : type == 29
\ttime_extend : type == 30
\ttime_stamp : type == 31
\tdata max type_len  == 28
"""

# trace_options of Linux 6.12, in its order, with their defaults (trace.c TRACE_FLAGS).
CORE_OPTIONS: tuple[tuple[str, bool], ...] = (
    ("print-parent", True), ("sym-offset", False), ("sym-addr", False), ("verbose", False),
    ("raw", False), ("hex", False), ("bin", False), ("block", False), ("fields", False),
    ("trace_printk", True), ("annotate", True), ("userstacktrace", False),
    ("sym-userobj", False), ("printk-msg-only", False), ("context-info", True),
    ("latency-format", False), ("record-cmd", True), ("record-tgid", False),
    ("overwrite", True), ("disable_on_free", False), ("irq-info", True), ("markers", True),
    ("event-fork", False), ("trace_printk_dest", True), ("pause-on-trace", False),
    ("hash-ptr", True), ("function-trace", True), ("function-fork", False),
    ("display-graph", False), ("stacktrace", False))
TRACER_OPTIONS = {"nop": (("test_nop_accept", False), ("test_nop_refuse", False)),
                  "function": (("func_stack_trace", False), ("func-no-repeats", False)),
                  "function_graph": GRAPH_OPTIONS}


MARKER_OFFSET = 0x200      # where in the args page the lab puts a marker's text
MARKER_MAX = 0xC00
FAULT_SIZE_ID = len("<faulted>") + 4       # trace.c: a raw marker's record holds at least this


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


@dataclass(frozen=True)
class Tracer:
    """``struct tracer``: what current_tracer can be set to."""

    name: str
    init: Callable[[TraceArray], None]
    reset: Callable[[TraceArray], None]


def _function_init(tr: TraceArray) -> None:
    tr.buffer_cpu = tr.current_cpu        # function_trace_init() records array_buffer.cpu
    ops = tr.filter_files.global_ops
    ops.func = _function_func(tr)
    ops.flags = FtraceOpsFlag.RECURSION | FtraceOpsFlag.PID     # global_ops: set_ftrace_pid applies
    tr.ftrace.register_ops(ops)


def _function_func(tr: TraceArray) -> str:
    """select_trace_function(): the callback the function tracer's options ask for."""
    return "function_no_repeats_trace_call" if tr.options.get("func-no-repeats") else "function_trace_call"


def _function_reset(tr: TraceArray) -> None:
    tr.ftrace.unregister(tr.filter_files.global_ops)


def _nop(tr: TraceArray) -> None:
    return None


def _graph_init(tr: TraceArray) -> None:
    tr.buffer_cpu = tr.current_cpu
    tr.graph.init()


def _graph_reset(tr: TraceArray) -> None:
    tr.graph.reset()


TRACERS = {t.name: t for t in (Tracer("function", _function_init, _function_reset),
                               Tracer("function_graph", _graph_init, _graph_reset),
                               Tracer("nop", _nop, _nop))}


class TraceArray:
    """The top-level trace instance: its buffer, current tracer and control files."""

    def __init__(self, machine: Machine, ftrace: Ftrace, filter_files: FilterFiles,
                 fgraph: Fgraph) -> None:
        self.m, self.ftrace, self.filter_files = machine, ftrace, filter_files
        self.graph = GraphTracer(fgraph, filter_files)
        self.profiler = FunctionProfiler(fgraph, filter_files, lambda: self.graph.thresh_ns)
        self.events = EventRegistry(machine, ftrace.data)
        self.events.log_err = lambda loc, cmd, errs, code, pos: self.log_err(loc, cmd, errs, code, pos)
        pages = KernelArena(TRACE_PAGES_BASE, TRACE_PAGES_SIZE, align=4096)
        self.rings = [RingBuffer(machine, ftrace.data, pages)]   # and the snapshot's, once made
        self.cpumask = (1 << machine.ncpus) - 1                  # tracing_cpumask
        self.snapshot = Snapshot(self, pages)
        self.events.arm_snapshot = self.snapshot.arm
        filter_files.probes.arm_snapshot = self.snapshot.arm
        self.tracer = TRACERS["nop"]
        self.clock = "local"
        self.time_start = 0           # array_buffer.time_start
        self.buffer_cpu = 0           # array_buffer.cpu: where the tracer was set
        self.error_log = ErrorLog()
        # tgid_map: pid -> tgid. 6.12 fills it only from sched_switch for trace events
        # enabled with record-tgid; the function tracer never does, so with it alone
        # record-tgid prints "(-------)" and saved_tgids is empty (as the real a2 capture).
        self.tgid_map: dict[int, int] = {}
        self.dmesg: list[str] = []    # what ftrace_dump() printed (the kernel log)
        self.options = {name: value for name, value in CORE_OPTIONS}
        for opts in TRACER_OPTIONS.values():
            self.options.update(opts)

    @property
    def buffer(self) -> RingBuffer:
        """array_buffer: the live ring (a snapshot swaps it with the spare one)."""
        live = self.m.read_u64(self.m.symbols["global_trace_buffer"])
        return next(rb for rb in self.rings if rb.addr == live)

    # ---- control ---------------------------------------------------------------
    def set_tracer(self, name: str) -> None:
        """tracing_set_tracer(): reset the old tracer, init the new one."""
        if name not in TRACERS:
            raise _err(errno.EINVAL, "current_tracer")
        if name == self.tracer.name:
            return
        self.tracer.reset(self)
        self.tracer = TRACERS["nop"]
        self.reset_online_cpus()          # tracer_init() empties the buffer first
        TRACERS[name].init(self)
        self.tracer = TRACERS[name]

    @property
    def current_cpu(self) -> int:
        """raw_smp_processor_id() for a tracefs write: the running CPU, or CPU 0 when
        the host writes between runs."""
        return self.m.cpu if self.m.running else 0

    def reset_online_cpus(self) -> None:
        """tracing_reset_online_cpus(): empty every CPU's buffer and restart the
        latency format's time base (array_buffer.time_start) at the clock now."""
        self.buffer.reset()
        self.time_start = self.m.clock_ns(self.current_cpu)

    def log_err(self, loc: str, cmd: str, errs: list[str] | tuple[str, ...], err_type: int,
                pos: int) -> None:
        """tracing_log_err(): add an entry to ``error_log``, stamped with local_clock()."""
        self.error_log.log(self.m.clock_ns(self.current_cpu), loc, cmd, errs, err_type, pos)

    @property
    def tracing_on(self) -> bool:
        return not self.buffer.record_disabled

    # ---- tracefs ----------------------------------------------------------------
    def register(self, fs: TraceFS) -> None:
        fs.dumper = self.dump
        fs.add_file("available_tracers", read=lambda: " ".join(sorted(TRACERS, reverse=True)) + "\n")
        fs.add_file("current_tracer", read=lambda: self.tracer.name + "\n",
                    write=self._write_tracer, mode=0o644)
        fs.add_file("tracing_on", read=lambda: f"{int(self.tracing_on)}\n",
                    write=self._write_tracing_on, mode=0o644)
        fs.add_file("buffer_size_kb", read=self._read_size, write=self._write_size, mode=0o644)
        fs.add_file("free_buffer", write=self._free_buffer, mode=0o200)
        fs.add_file("buffer_total_size_kb",
                    read=lambda: f"{sum(self.buffer.size_bytes(c) >> 10 for c in range(self.m.ncpus))}\n")
        fs.add_file("trace_clock", read=self._read_clock, write=self._write_clock, mode=0o644)
        fs.add_file("timestamp_mode", read=self._const("[delta] absolute\n"))   # no absolute stamps
        fs.add_file("tracing_cpumask", read=lambda: format_mask(self.cpumask, self.m.ncpus) + "\n",
                    write=self._write_cpumask, mode=0o644)
        fs.add_file("error_log", read=self.error_log.read, write=self.error_log.write, mode=0o644)
        fs.add_file("trace_options", read=self._read_trace_options,
                    write=self._write_trace_options, mode=0o644)
        self.graph.register(fs)
        self.profiler.register(fs)
        self.events.register(fs)
        for name in self.options:
            fs.add_file(f"options/{name}", read=self._option_reader(name),
                        write=self._option_writer(name), mode=0o644)
        fs.add_file("trace", read=self.render_trace, write=self._write_trace, mode=0o644)
        fs.add_file("trace_pipe", read=self.render_pipe, mode=0o444)
        fs.add_file("saved_cmdlines", read=lambda: "".join(
            f"{pid} {comm}\n" for pid, comm in self.saved_cmdlines()))
        fs.add_file("saved_tgids", read=lambda: "".join(
            f"{pid} {tgid}\n" for pid, tgid in sorted(self.tgid_map.items())))
        fs.add_file("events/header_page", read=self._header_page)
        fs.add_file("events/header_event", read=lambda: HEADER_EVENT)
        for path, text in ftrace_formats().items():    # the events' own: EventRegistry
            fs.add_file(f"events/{path}/format", read=self._const(text))
        fs.add_file("trace_marker", write=self._write_marker, mode=0o220)
        fs.add_file("trace_marker_raw", write=self._write_marker_raw, mode=0o220)
        self.snapshot.register(fs)
        for cpu in range(self.m.ncpus):
            fs.add_file(f"per_cpu/cpu{cpu}/trace_pipe_raw", read=self._pipe_raw_reader(cpu))
            fs.add_file(f"per_cpu/cpu{cpu}/stats", read=self._stats_reader(cpu))
            fs.add_file(f"per_cpu/cpu{cpu}/buffer_size_kb", read=partial(self._read_size, cpu),
                        write=partial(self._write_size, cpu=cpu), mode=0o644)
            fs.add_file(f"per_cpu/cpu{cpu}/trace", read=self._cpu_reader(self.render_trace, cpu))
            fs.add_file(f"per_cpu/cpu{cpu}/trace_pipe", read=self._cpu_reader(self.render_pipe, cpu))

    def _pipe_raw_reader(self, cpu: int) -> Callable[[], bytes]:
        return lambda: b"".join(self.buffer.consume_all(cpu))

    @staticmethod
    def _cpu_reader(render: Callable[[int | None], str | bytes], cpu: int
                    ) -> Callable[[], str | bytes]:
        return lambda: render(cpu)

    def _stats_reader(self, cpu: int) -> Callable[[], str]:
        return lambda: self._stats(cpu)

    @staticmethod
    def _bool(text: str, path: str) -> bool:
        word = text.strip()
        if word not in ("0", "1"):
            raise _err(errno.EINVAL, path)
        return word == "1"

    def _write_tracer(self, text: str, append: bool) -> None:
        self.set_tracer(text.strip())

    def _write_tracing_on(self, text: str, append: bool) -> None:
        self.buffer.set_recording(self._bool(text, "tracing_on"))

    # ---- options ------------------------------------------------------------------
    def _visible_options(self) -> list[str]:
        core = [name for name, _ in CORE_OPTIONS]
        return core + [name for name, _ in TRACER_OPTIONS.get(self.tracer.name, ())]

    def _read_trace_options(self) -> str:
        return "".join(("" if self.options[n] else "no") + n + "\n" for n in self._visible_options())

    def _write_trace_options(self, text: str, append: bool) -> None:
        word = text.strip()
        value = not word.startswith("no")
        name = word[2:] if not value else word
        if name not in self._visible_options():
            raise _err(errno.EINVAL, "trace_options")
        self.set_option(name, value)

    def set_option(self, name: str, value: bool) -> None:
        if name == "test_nop_refuse":              # nop_set_flag(): "we refuse"
            raise _err(errno.EINVAL, f"options/{name}")
        self.options[name] = value
        if name == "overwrite":
            self.buffer.set_overwrite(value)
        elif name == "func_stack_trace":
            self.m.write_u32(self.m.symbols["ftrace_func_stack_trace"], int(value))
        elif name == "record-cmd":                  # trace_record_cmd in the image's writers
            self.m.write_u32(self.m.symbols["trace_record_cmd"], int(value))
        elif name == "stacktrace":                  # a kernel_stack after each event's record
            self.m.write_u32(self.m.symbols["trace_event_stacktrace"], int(value))
        elif name == "func-no-repeats" and self.tracer.name == "function":
            ops = self.filter_files.global_ops           # func_set_flag(): re-register
            if ops.func != _function_func(self):
                self.ftrace.unregister(ops)
                ops.func = _function_func(self)
                self.ftrace.register_ops(ops)
        elif name in dict(GRAPH_OPTIONS):
            self.graph.set_option(name, value)
        elif name in ("event-fork", "function-fork"):
            set_fork_option(self.m, name.replace("-", "_"), value)

    @staticmethod
    def _const(text: str) -> Callable[[], str]:
        return lambda: text

    def _write_marker(self, text: str, append: bool) -> None:
        """trace_marker: tracing_mark_write() in the image records a print entry; EINVAL
        with options/markers off, EBADF when the ring buffer takes nothing."""
        if not self.options["markers"]:
            raise _err(errno.EINVAL, "trace_marker")
        data = text.encode()[:MARKER_MAX]
        self.m.write(USER_ARGS + MARKER_OFFSET, data)
        ret = self.m.call(self.current_cpu, "tracing_mark_write", USER_ARGS + MARKER_OFFSET, len(data))
        if ret >= 1 << 63:                            # a negative errno
            raise _err((1 << 64) - ret, "trace_marker")

    def _write_marker_raw(self, text: str, append: bool) -> None:
        """trace_marker_raw (tracing_mark_raw_write()): an int tag then binary data, as
        a raw_data entry reserved at 12 + count bytes (at least 25), of which only the
        written bytes are filled, as the kernel leaves the rest. The bytes are the
        text's code points (TraceFS.write_bytes() passes them so)."""
        data = text.encode("latin-1")
        if not self.options["markers"] or len(data) < 4:
            raise _err(errno.EINVAL, "trace_marker_raw")
        size = 12 + max(len(data), FAULT_SIZE_ID)
        if size > BUF_PAGE_SIZE - 8:                  # ring_buffer_max_event_size()
            raise _err(errno.EINVAL, "trace_marker_raw")
        if not self.write_entry(TRACE_RAW_DATA, data, size):
            raise _err(errno.EBADF, "trace_marker_raw")

    def write_entry(self, entry_type: int, payload: bytes, size: int | None = None) -> bool:
        """Write one entry from Python with the kernel's own writer, on the current CPU
        as its current task: tracing_gen_ctx() for the flags, ring_buffer_lock_reserve()
        at sched_clock(), the common fields, ``payload``, ring_buffer_unlock_commit(),
        and the task's comm saved (trace_save_cmdline). Returns False when the buffer
        refused it (tracing off, or full in producer/consumer mode), as the kernel
        drops the event. ``size`` reserves more than header and payload (left as
        the page holds it). Python tracers use this to emit what native tracers do."""
        m, cpu = self.m, self.current_cpu
        buffer = m.read_u64(m.symbols["global_trace_buffer"])
        ctx = m.call(cpu, "tracing_gen_ctx") & 0xFFFF_FFFF
        entry = m.call(cpu, "ring_buffer_lock_reserve", buffer, size or 8 + len(payload), m.clock_ns(cpu))
        if not entry:
            return False
        task = m.percpu_u64(cpu, PCPU_CURRENT_TASK)
        pid = int.from_bytes(m.read(task + TASK_PID, 4), "little", signed=True)
        m.write(entry, struct.pack("<HBBi", entry_type, ctx >> 16 & 0xFF, ctx & 0xFF, pid)
                + payload)
        m.call(cpu, "ring_buffer_unlock_commit", buffer)
        if pid and self.options["record-cmd"]:        # not the idle task
            m.call(cpu, "trace_save_cmdline", task)
        return True

    def trace_function(self, ip: int, parent_ip: int) -> bool:
        """trace_function() from Python: a TRACE_FN entry for ``ip`` called from
        ``parent_ip``, byte for byte what the native function tracer writes."""
        return self.write_entry(TRACE_FN, struct.pack("<QQ", ip, parent_ip))

    def _option_reader(self, name: str) -> Callable[[], str]:
        return lambda: f"{int(self.options[name])}\n"

    def _option_writer(self, name: str) -> Callable[[str, bool], None]:
        return lambda text, append: self.set_option(name, self._bool(text, f"options/{name}"))

    # ---- the trace file ------------------------------------------------------------
    def output_options(self) -> OutputOptions:
        o = self.options
        return OutputOptions(print_parent=o["print-parent"], sym_offset=o["sym-offset"],
                             sym_addr=o["sym-addr"], context_info=o["context-info"],
                             irq_info=o["irq-info"], record_tgid=o["record-tgid"], raw=o["raw"],
                             hex=o["hex"], bin=o["bin"], latency_format=o["latency-format"],
                             verbose=o["verbose"], printk_msg_only=o["printk-msg-only"] and o["trace_printk"],
                             fields=o["fields"], annotate=o["annotate"] and self._overran())

    def _overran(self) -> bool:
        """ring_buffer_overruns(): did any CPU's ring lose its oldest entries?
        (__tracing_open() then sets TRACE_FILE_ANNOTATE.)"""
        return any(self.buffer.stats(cpu).overrun for cpu in range(self.m.ncpus))

    def _lines(self, raw: dict[int, bytes], first_idx: int = 0) -> str | bytes:
        """print_trace_line() for every entry; with options/bin the lines are bytes."""
        from ..analysis.events import Trace

        ks = self.m.kallsyms

        def sym(addr: int, offset: bool) -> str:
            return ks.format_ps(addr) if offset else ks.format_short(addr)

        trace = Trace(self.tracedir(raw))
        df = trace.df_events()
        if self.tracer.name == "function_graph":    # its print_line() comes before bin/hex/raw
            return "".join(self._graph_lines(trace, df))
        opts = self.output_options()
        if first_idx:                                 # trace_pipe: no TRACE_FILE_ANNOTATE
            opts = dataclasses.replace(opts, annotate=False)
        if opts.bin:
            return binary_records(df, opts)
        lines = function_lines(df, sym, opts, tgid=self.tgid_map.get,
                               time_start=self.time_start, record=trace.record,
                               first_idx=first_idx, events=self.event_printer(trace.formats))
        return "".join(line + "\n" for line in lines)

    def event_printer(self, formats: dict[int, Any]) -> EventPrinter:
        """How the trace file prints events: print fmts, and the probe events' own."""
        return EventPrinter(formats, {e.id: e.printer for e in self.events.events if e.printer})

    def _graph_lines(self, trace: Trace, df: pd.DataFrame) -> list[str]:
        """print_graph_function_flags() for every entry."""
        comms = dict(self.saved_cmdlines())

        def comm_of(pid: int) -> str:             # trace_find_cmdline()
            return "<idle>" if pid == 0 else comms.get(pid, "<...>")

        def comment(row: dict[str, Any]) -> str:  # print_graph_comment(): the event's own text
            if str(row["event"]) == "print":
                return str(row["buf"])
            return raw_data_text(trace.record(int(row["_row"])))

        irqentry = (self.m.symbols["__irqentry_text_start"], self.m.symbols["__irqentry_text_end"])
        return graph_lines(df.assign(_row=range(len(df))), self.m.kallsyms.format_short,
                           GraphFlags.from_options(self.options), self.m.ncpus, comm_of, comment,
                           irqentry)

    def _graph_header(self, in_buffer: int, written: int, empty: bool) -> str:
        """print_graph_headers_flags(): with latency-format, print_trace_header() first
        (nothing at all for an empty buffer)."""
        flags = GraphFlags.from_options(self.options)
        head = "# tracer: function_graph\n#\n"
        if not flags.context_info:
            return head
        if flags.latency:
            if empty:
                return head
            lat = LatencyInfo(UTS_RELEASE, PREEMPT_MODEL, self.buffer_cpu)
            head = latency_header("function_graph", in_buffer, written, self.m.ncpus, lat)
            head = head.removesuffix(LAT_HELP_HEADER)
        return head + graph_header(flags)

    def render_trace(self, cpu: int | None = None, ring: RingBuffer | None = None) -> str | bytes:
        """The ``trace`` file (or per_cpu/cpuN/trace): header and lines, not consuming.
        The header counts all CPUs, as print_event_info() does for both. With
        options/bin the entries are binary and the whole file is bytes. ``ring``:
        another buffer than the live one (the ``snapshot`` file's)."""
        rb = ring or self.buffer
        stats = [rb.stats(c) for c in range(self.m.ncpus)]
        in_buffer = sum(s.entries for s in stats)
        written = in_buffer + sum(s.overrun for s in stats)
        cpus = range(self.m.ncpus) if cpu is None else [cpu]
        raw = {c: b"".join(rb.snapshot(c)) for c in cpus}
        opts = self.output_options()
        if self.tracer.name == "function_graph":
            head = self._graph_header(in_buffer, written, empty=not sum(stats[c].entries for c in cpus))
        elif opts.latency_format and opts.context_info:
            lat = LatencyInfo(UTS_RELEASE, PREEMPT_MODEL, self.buffer_cpu)
            head = latency_header(self.tracer.name, in_buffer, written, self.m.ncpus, lat,
                                  empty=not sum(stats[c].entries for c in cpus),
                                  verbose=opts.verbose)
        else:
            head = header(self.tracer.name, in_buffer, written, self.m.ncpus, opts)
        lines = self._lines(raw)
        return head.encode() + lines if isinstance(lines, bytes) else head + lines

    def render_pipe(self, cpu: int | None = None) -> str | bytes:
        """``trace_pipe``: the lines of every event not read yet, consuming them.
        It never blocks: with nothing new it returns an empty string."""
        cpus = range(self.m.ncpus) if cpu is None else [cpu]
        # a read of trace_pipe opens a fresh iterator, whose first entry is idx 1
        return self._lines({c: b"".join(self.buffer.consume_all(c)) for c in cpus}, first_idx=1)

    def check_dump(self) -> None:
        """ftrace_dump(): a dump/cpudump command fired; print the buffer (all CPUs, or
        the CPU that fired) to the kernel log, consuming it, as the kernel does."""
        m = self.m
        request = int.from_bytes(m.read(m.symbols["ftrace_dump_request"], 4), "little")
        if not request:
            return
        cpu = int.from_bytes(m.read(m.symbols["ftrace_dump_cpu"], 4), "little")
        m.write_u32(m.symbols["ftrace_dump_request"], 0)
        body = self.render_pipe(cpu if request == 2 else None)
        if isinstance(body, bytes):       # options/bin: printk would emit the raw bytes
            body = body.decode(errors="backslashreplace")
        self.dmesg.append("Dumping ftrace buffer:\n---------------------------------\n"
                          + body + "---------------------------------\n")

    def _write_trace(self, text: str, append: bool) -> None:
        """``echo > trace`` empties the buffers (tracing_reset_online_cpus)."""
        if not append:
            self.reset_online_cpus()

    def _read_size(self, cpu: int | None = None) -> str:
        """tracing_entries_read(): each ring's size (whole pages of BUF_PAGE_SIZE) in KB,
        so 1408 reads back as 1410; ``X`` when the CPUs' rings differ."""
        sizes = {self.buffer.size_bytes(c) for c in (range(self.m.ncpus) if cpu is None else [cpu])}
        return f"{sizes.pop() >> 10}\n" if len(sizes) == 1 else "X\n"

    def _write_size(self, text: str, append: bool, cpu: int | None = None) -> None:
        """tracing_entries_write(): KB for every CPU's ring, or one CPU's."""
        path = "buffer_size_kb" if cpu is None else f"per_cpu/cpu{cpu}/buffer_size_kb"
        try:
            kb = int(text.strip(), 10)
        except ValueError:
            raise _err(errno.EINVAL, path) from None
        if kb <= 0:
            raise _err(errno.EINVAL, path)
        self.buffer.resize(kb, cpu)
        self.snapshot.resize()

    def _free_buffer(self, text: str, append: bool) -> None:
        """free_buffer (tracing_free_buffer_release(), at close): tracing off first with
        options/disable_on_free, then every ring (and the spare) shrunk to its two pages."""
        if self.options["disable_on_free"]:
            self.buffer.set_recording(False)
        self.buffer.resize(0)
        self.snapshot.resize()

    def _write_cpumask(self, text: str, append: bool) -> None:
        """tracing_cpumask_write() -> tracing_set_cpumask(): the live and spare rings
        of the CPUs leaving (joining) the mask stop (resume) recording."""
        try:
            self.cpumask = parse_mask(text, self.m.ncpus)
        except OSError as exc:
            raise _err(exc.errno or errno.EINVAL, "tracing_cpumask") from None
        self.apply_cpumask()

    def apply_cpumask(self) -> None:
        for ring in self.rings:
            for cpu in range(self.m.ncpus):
                ring.set_cpu_recording(cpu, bool(self.cpumask >> cpu & 1))

    def _read_clock(self) -> str:
        return " ".join(f"[{c}]" if c == self.clock else c for c in TRACE_CLOCKS) + "\n"

    def _write_clock(self, text: str, append: bool) -> None:
        name = text.strip()
        if name not in TRACE_CLOCKS:
            raise _err(errno.EINVAL, "trace_clock")
        if name != "local":
            # every clock of the lab is the virtual clock; say so instead of pretending
            raise _err(errno.EINVAL, "trace_clock")
        self.clock = name

    def _header_page(self) -> str:
        return ("\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
                "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
                "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
                f"\tfield: char data;\toffset:16;\tsize:{BUF_PAGE_SIZE};\tsigned:0;\n")

    def _stats(self, cpu: int) -> str:
        s = self.buffer.stats(cpu)
        oldest = self._oldest_ts(cpu)
        now = self.m.clock_ns(cpu)
        return (f"entries: {s.entries}\noverrun: {s.overrun}\ncommit overrun: {s.commit_overrun}\n"
                f"bytes: {s.bytes}\noldest event ts: {_sec(oldest)}\nnow ts: {_sec(now)}\n"
                f"dropped events: {s.dropped_events}\nread events: {s.read_events}\n")

    def saved_cmdlines(self) -> list[tuple[int, str]]:
        """(pid, comm) pairs of trace.c's savedcmd, in slot order (saved_cmdlines)."""
        base = self.m.symbols["savedcmd"]
        raw = self.m.read(base, SAVEDCMD_SIZE)
        if not int.from_bytes(raw[SAVEDCMD_INIT:SAVEDCMD_INIT + 4], "little"):
            return []
        out = []
        for idx in range(SAVED_CMDLINES):
            pid = int.from_bytes(raw[PID_MAP * 4 + 4 * idx:PID_MAP * 4 + 4 * idx + 4], "little")
            if pid != NO_CMDLINE_MAP:
                off = SAVEDCMD_COMMS + 16 * idx
                out.append((pid, raw[off:off + 16].split(b"\0")[0].decode(errors="replace")))
        return out

    def formats(self) -> dict[str, str]:
        """events/<system>/<event>/format texts of the entries this lab writes."""
        return {**ftrace_formats(), **self.events.formats()}

    def tracedir(self, raw: dict[int, bytes] | None = None) -> TraceDir:
        """The buffers as a parsed trace directory, without consuming them
        (or with the given per-CPU pages)."""
        formats = {}
        for path, text in self.formats().items():
            fmt = parse_format(text, system=path.split("/")[0], source=f"events/{path}/format")
            formats[fmt.id] = fmt
        if raw is None:
            raw = {cpu: b"".join(self.buffer.snapshot(cpu)) for cpu in range(self.m.ncpus)}
        return TraceDir(path=Path("<lab>"), header_page=parse_header_page(self._header_page()),
                        formats=formats, raw=raw,
                        symbols=parse_kallsyms(self.m.kallsyms.proc_kallsyms()),
                        cmdlines=dict(self.saved_cmdlines()))

    def dump(self, directory: str | os.PathLike[str]) -> Path:
        """Write a tracefs-like directory of the buffers, without consuming them:
        events/header_page, events/header_event, events/<sys>/<event>/format,
        per_cpu/cpuN/trace_pipe_raw, saved_cmdlines and kallsyms."""
        root = Path(directory)
        (root / "events").mkdir(parents=True, exist_ok=True)
        (root / "events" / "header_page").write_text(self._header_page())
        (root / "events" / "header_event").write_text(HEADER_EVENT)
        for path, text in self.formats().items():
            (root / "events" / path).mkdir(parents=True, exist_ok=True)
            (root / "events" / path / "format").write_text(text)
        for cpu in range(self.m.ncpus):
            (root / "per_cpu" / f"cpu{cpu}").mkdir(parents=True, exist_ok=True)
            (root / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw").write_bytes(
                b"".join(self.buffer.snapshot(cpu)))
            (root / "per_cpu" / f"cpu{cpu}" / "stats").write_text(self._stats(cpu))
        (root / "saved_cmdlines").write_text(
            "".join(f"{pid} {comm}\n" for pid, comm in self.saved_cmdlines()))
        (root / "kallsyms").write_text(self.m.kallsyms.proc_kallsyms())
        return root

    def _oldest_ts(self, cpu: int) -> int:
        pages = self.buffer.snapshot(cpu)
        return int.from_bytes(pages[0][:8], "little") if pages else 0


def _sec(ns: int) -> str:
    """``%5llu.%06lu``: seconds and microseconds, as the stats file prints them."""
    return f"{ns // 1_000_000_000:5d}.{(ns % 1_000_000_000) // 1000:06d}"


__all__ = ["TRACERS", "TRACE_BUF_SIZE_DEFAULT_KB", "TraceArray", "Tracer"]
