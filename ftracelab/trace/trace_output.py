"""The text of the ``trace`` file for the function tracer (kernel/trace/trace.c:
trace_default_header(), print_event_info(), print_func_help_header_irq(),
print_trace_header(), print_lat_help_header(), trace_print_context(), print_raw_fmt(),
print_hex_fmt(), print_bin_fmt(); kernel/trace/trace_output.c: trace_print_lat_fmt(),
trace_print_lat_context(), lat_print_timestamp(), trace_find_mark(), trace_fn_trace()
and its raw, hex and binary siblings, trace_raw_data(), trace_nop_print(),
seq_print_ip_sym()).

A line, with the default options (print-parent, context-info, irq-info)::

                cat-101     [000] .....     0.000003: vfs_read <-ksys_read
    %16s-%-7d    [%03d] flags  %5lu.%06lu: sym <-parent

Timestamps are ns rounded to the nearest microsecond, as ns2usecs() does.
Rendering works on a :meth:`~ftracelab.analysis.events.Trace.df_events`
frame, so real captures and the lab's buffers print the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .trace_entries import TRACE_FN, TRACE_FUNC_REPEATS, TRACE_PRINT, TRACE_RAW_DATA, TRACE_STACK
from .trace_events_print import EventPrinter

TRACE_FLAG_IRQS_OFF = 0x01
TRACE_FLAG_NEED_RESCHED = 0x04
TRACE_FLAG_HARDIRQ = 0x08
TRACE_FLAG_SOFTIRQ = 0x10
TRACE_FLAG_PREEMPT_RESCHED = 0x20
TRACE_FLAG_NMI = 0x40
TRACE_FLAG_BH_OFF = 0x80

IRQ_HEADER = """#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""
IRQ_HEADER_TGID = """#                                          _-----=> irqs-off/BH-disabled
#                                         / _----=> need-resched
#                                        | / _---=> hardirq/softirq
#                                        || / _--=> preempt-depth
#                                        ||| / _-=> migrate-disable
#                                        |||| /     delay
#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION
#              | |           |       |   |||||     |         |
"""
PLAIN_HEADER = """#           TASK-PID     CPU#     TIMESTAMP  FUNCTION
#              | |         |         |         |
"""
PLAIN_HEADER_TGID = """#           TASK-PID       TGID    CPU#     TIMESTAMP  FUNCTION
#              | |           |       |         |         |
"""


@dataclass(frozen=True)
class OutputOptions:
    """The trace_options that change the function tracer's text."""

    print_parent: bool = True
    sym_offset: bool = False
    sym_addr: bool = False
    context_info: bool = True
    irq_info: bool = True
    record_tgid: bool = False
    raw: bool = False
    hex: bool = False
    bin: bool = False
    latency_format: bool = False
    verbose: bool = False
    printk_msg_only: bool = False       # with trace_printk: print entries show their text alone
    fields: bool = False                # every entry as name: field=value ...
    annotate: bool = False              # options/annotate, and the buffer overran


def lat_fmt(flags: int, preempt_count: int) -> str:
    """trace_print_lat_fmt(): irqs-off, need-resched, hard/softirq, preempt, migrate."""
    irqs_off = flags & TRACE_FLAG_IRQS_OFF
    bh_off = flags & TRACE_FLAG_BH_OFF
    irq = "D" if irqs_off and bh_off else "d" if irqs_off else "b" if bh_off else "."
    nr, pr = flags & TRACE_FLAG_NEED_RESCHED, flags & TRACE_FLAG_PREEMPT_RESCHED
    resched = "N" if nr and pr else "n" if nr else "p" if pr else "."
    nmi, hard, soft = flags & TRACE_FLAG_NMI, flags & TRACE_FLAG_HARDIRQ, flags & TRACE_FLAG_SOFTIRQ
    ctx = ("Z" if nmi and hard else "z" if nmi else "H" if hard and soft else "h" if hard
           else "s" if soft else ".")
    depth = f"{preempt_count & 0xF:x}" if preempt_count & 0xF else "."
    migrate = f"{preempt_count >> 4:x}" if preempt_count >> 4 else "."
    return irq + resched + ctx + depth + migrate


def timestamps(ts: npt.NDArray[np.integer[Any]]) -> list[str]:
    """``%5lu.%06lu`` of ns2usecs(ts): rounded to the nearest microsecond."""
    usecs = (ts.astype(np.int64) + 500) // 1000
    secs, rem = np.divmod(usecs, 1_000_000)
    return [f"{s:5d}.{r:06d}" for s, r in zip(secs.tolist(), rem.tolist(), strict=True)]


def header(tracer: str, in_buffer: int, written: int, nr_cpus: int,
           opts: OutputOptions = OutputOptions()) -> str:
    """s_show()'s header: tracer name, entry counts, the column legend."""
    if not opts.context_info or opts.verbose:     # trace_default_header(): nothing more
        return f"# tracer: {tracer}\n#\n"
    head = (f"# tracer: {tracer}\n#\n"
            f"# entries-in-buffer/entries-written: {in_buffer}/{written}   #P:{nr_cpus}\n#\n")
    if opts.irq_info:
        return head + (IRQ_HEADER_TGID if opts.record_tgid else IRQ_HEADER)
    return head + (PLAIN_HEADER_TGID if opts.record_tgid else PLAIN_HEADER)


LAT_HELP_HEADER = ("#                    _------=> CPU#            \n"
                   "#                   / _-----=> irqs-off/BH-disabled\n"
                   "#                  | / _----=> need-resched    \n"
                   "#                  || / _---=> hardirq/softirq \n"
                   "#                  ||| / _--=> preempt-depth   \n"
                   "#                  |||| / _-=> migrate-disable \n"
                   "#                  ||||| /     delay           \n"
                   "#  cmd     pid     |||||| time  |   caller     \n"
                   "#     \\   /        ||||||  \\    |    /       \n")


@dataclass(frozen=True)
class LatencyInfo:
    """What print_trace_header() reads besides the counts: the kernel release, the
    preemption model and array_buffer.cpu."""

    release: str
    preempt_model: str
    cpu: int = 0


def latency_header(tracer: str, in_buffer: int, written: int, nr_cpus: int,
                   lat: LatencyInfo, empty: bool = False, verbose: bool = False) -> str:
    """trace_default_header() with latency-format: nothing after the tracer line for
    an empty buffer, else print_trace_header() and print_lat_help_header(). The
    max-latency fields stay zero and the task empty: only latency tracers set them."""
    head = f"# tracer: {tracer}\n#\n"
    if empty or not in_buffer:            # trace_empty(iter): the file's CPUs hold nothing
        return head
    return (head + f"# {tracer} latency trace v1.1.5 on {lat.release}\n"
            "# " + "-" * 68 + "\n"
            f"# latency: 0 us, #{in_buffer}/{written}, CPU#{lat.cpu} |"
            f" (M:{lat.preempt_model} VP:0, KP:0, SP:0 HP:0 #P:{nr_cpus})\n"
            "#    -----------------\n"
            "#    | task: -0 (uid:0 nice:0 policy:0 rt_prio:0)\n"
            "#    -----------------\n#\n" + ("" if verbose else LAT_HELP_HEADER))


# trace_find_mark(): a delay above each threshold (ns) gets its symbol
DELAY_MARKS = ((1_000_000_000, "$"), (100_000_000, "@"), (10_000_000, "*"),
               (1_000_000, "#"), (100_000, "!"), (10_000, "+"))


def delay_mark(delay_ns: int) -> str:
    return next((sym for limit, sym in DELAY_MARKS if delay_ns > limit), " ")


def _ns2usecs(ns: int) -> int:
    return (ns + 500) // 1000


def lat_context(comm: str, pid: int, cpu: int, flags: int, pc: int, ts: int,
                next_ts: int, time_start: int, idx: int | None = None) -> str:
    """trace_print_lat_context(): lat_print_generic() (comm cut to 8 characters) and
    lat_print_timestamp(): µs since time_start, and the mark of the gap to the next
    entry. With ``idx`` (the iterator's entry index) the verbose form: comm, pid, cpu,
    raw flags, preempt depth and idx, then [µs stamp in hex] ms since time_start and
    (+ms to the next entry)."""
    rel = _ns2usecs(next_ts - ts)
    if idx is not None:
        abs_ms, abs_us = divmod(_ns2usecs(ts - time_start), 1000)
        rel_ms, rel_us = divmod(rel, 1000)
        return (f"{comm:>16} {pid:7d} {cpu:3d} {flags:d} {pc & 0xF:08x} {idx:08x} "
                f"[{_ns2usecs(ts):08x}] {abs_ms}.{abs_us:03d}ms (+{rel_ms}.{rel_us:03d}ms): ")
    return (f"{comm[:8]:>8}-{pid:<7} {cpu:3d}{lat_fmt(flags, pc)}"
            f" {_ns2usecs(ts - time_start):4d}us{delay_mark(rel * 1000)}: ")


FTRACE_TRAMPOLINE_MARKER = 0x7FFF_FFFF


def function_lines(df: pd.DataFrame, sym: Callable[[int, bool], str],
                   opts: OutputOptions = OutputOptions(),
                   tgid: Callable[[int], int | None] | None = None,
                   time_start: int = 0,
                   record: Callable[[int], bytes] | None = None,
                   first_idx: int = 0,
                   events: EventPrinter | None = None) -> list[str]:
    """The text of ``df``'s function, kernel_stack and print events, in order
    (trace_fn_trace, trace_stack_print, trace_print_print with their context),
    and, given ``events``, of every trace event it has a format for.
    ``time_start`` is the latency format's time base (array_buffer.time_start).
    Given ``record`` (row label -> the record's bytes, e.g. :meth:`Trace.record`),
    raw_data entries (trace_marker_raw) print too, as trace_raw_data() does.
    ``first_idx`` is the iterator's index of the first entry, which verbose latency
    lines print: 0 for ``trace``, 1 for a ``trace_pipe`` read."""
    kinds = ["function", "kernel_stack", "print", "func_repeats"] + (["raw_data"] if record else [])
    others = ([e for e in df["event"].unique().tolist() if e not in kinds and events.knows(str(e))]
              if events is not None and len(df) else [])
    ev = df[df["event"].isin(kinds + others)]
    if ev.empty:
        return []
    event_rows = ev[ev["event"].isin(others)].to_dict("index") if others else {}
    rows: dict[Any, dict[str, Any]] = {k: {str(c): v for c, v in r.items()} for k, r in event_rows.items()}
    stamps = timestamps(ev["ts"].to_numpy())
    names = ("event", "comm", "pid", "cpu", "common_flags", "common_preempt_count")
    cols = [ev[c].tolist() for c in names]
    extra: dict[str, list[Any]] = {c: ev[c].tolist() if c in ev else [0] * len(ev)
                                   for c in ("ip", "parent_ip", "caller", "buf", "count",
                                             "top_delta_ts", "bottom_delta_ts")}
    lines: list[str] = []
    started: set[int] = set()
    raw_ts = ev["ts"].tolist()
    labels = ev.index.tolist()
    for i, (ts, event, comm, pid, cpu, flags, pc) in enumerate(zip(stamps, *cols, strict=True)):
        if event == "raw_data" and record:  # its trace and raw handlers print the same
            extra["buf"][i] = raw_data_text(record(labels[i]))
        row = rows.get(labels[i])
        if event == "print" and opts.printk_msg_only:   # trace_print_printk_msg_only(): first
            lines.append(str(extra["buf"][i]).removesuffix("\n"))
            continue
        if opts.hex:                      # print_hex_fmt(): checked before raw, as the kernel does
            ctx = (_hex(pid, 4) + _hex(cpu, 4) + _hex(raw_ts[i], 8)) if opts.context_info else ""
            lines.append(ctx + (_hex_body(event, extra, i) if row is None or events is None
                                else f"type: {events.event_id(event)}\n"))
            continue
        if opts.raw:                      # print_raw_fmt(): pid cpu ts, then the raw handler
            ctx = f"{pid} {cpu} {raw_ts[i]} " if opts.context_info else ""
            lines.append(ctx + (_raw_body(event, extra, i) if row is None or events is None
                                else f"type: {events.event_id(event)}"))
            continue
        if opts.annotate and cpu not in started:     # test_cpu_buff_start()
            started.add(cpu)
            if first_idx + i > 1:                    # not for the trace's first entries
                lines.append(f"##### CPU {cpu} buffer started ####")
        if opts.fields and events is not None and record is not None:   # print_event_fields()
            body = events.fields_text(record(labels[i]), sym)
        elif row is not None and events is not None:   # a trace event: TP_printk or syscall text
            raw = record(labels[i]) if record is not None and events.wants_record(str(event)) else None
            body = events.body(str(event), row, sym, opts.verbose, raw)
        elif event == "function":
            body = _sym(sym, int(extra["ip"][i]), opts)
            if opts.print_parent:
                body += " <-" + _sym(sym, int(extra["parent_ip"][i]), opts)
        elif event == "kernel_stack":
            frames = extra["caller"][i] or ()
            body = "<stack trace>" + "".join(
                "\n => " + ("[FTRACE TRAMPOLINE]" if int(f) == FTRACE_TRAMPOLINE_MARKER
                            else _sym(sym, int(f), opts)) for f in frames)
        elif event == "raw_data":
            body = str(extra["buf"][i])
        elif event == "func_repeats":     # trace_func_repeats_print()
            body = _sym(sym, int(extra["ip"][i]), opts)
            if opts.print_parent:
                body += " <-" + _sym(sym, int(extra["parent_ip"][i]), opts)
            last = raw_ts[i] - _repeats_delta(extra, i)
            body += f" (repeats: {int(extra['count'][i])}, last_ts: {timestamps(np.array([last]))[0]})"
        else:
            body = _sym(sym, int(extra["ip"][i]), opts) + ": " + str(extra["buf"][i]).rstrip("\n")
        if not opts.context_info:
            lines.append(body)
            continue
        if opts.latency_format:           # the next entry's stamp gives the delay mark
            next_ts = raw_ts[i + 1] if i + 1 < len(raw_ts) else raw_ts[i]
            idx = first_idx + i if opts.verbose else None
            lines.append(lat_context(str(comm), int(pid), int(cpu), int(flags), int(pc),
                                     raw_ts[i], next_ts, time_start, idx) + body)
            continue
        ctx = f"{comm:>16}-{pid:<7} "
        if opts.record_tgid:
            t = tgid(int(pid)) if tgid else None
            ctx += f"({t:7d}) " if t is not None else "(-------) "
        ctx += f"[{cpu:03d}] "
        if opts.irq_info:
            ctx += lat_fmt(int(flags), int(pc)) + " "
        lines.append(f"{ctx}{ts}: {body}")
    return lines


def _raw_body(event: str, extra: dict[str, list[Any]], i: int) -> str:
    """The raw handlers: trace_fn_raw "%lx %lx", trace_print_raw "# %lx %s", and
    trace_nop_print "type: %d" for entries without one (kernel_stack)."""
    if event == "function":
        return f"{int(extra['ip'][i]):x} {int(extra['parent_ip'][i]):x}"
    if event == "print":
        return f"# {int(extra['ip'][i]):x} " + str(extra["buf"][i]).rstrip("\n")
    if event == "raw_data":
        return str(extra["buf"][i])
    if event == "func_repeats":           # trace_func_repeats_raw(): "%lu %lu %u %llu"
        return (f"{int(extra['ip'][i])} {int(extra['parent_ip'][i])} {int(extra['count'][i])} "
                f"{_repeats_delta(extra, i)}")
    return _nop_print(event)


def _repeats_delta(extra: dict[str, list[Any]], i: int) -> int:
    """FUNC_REPEATS_GET_DELTA_TS(): how long before the entry the last repeat was."""
    return (int(extra["top_delta_ts"][i]) << 32) | int(extra["bottom_delta_ts"][i])


RAW_DATA_BUF = 12      # offsetof(struct raw_data_entry, buf): after the entry and the id


def raw_data_text(rec: bytes) -> str:
    """trace_raw_data(): the id, then every byte of the record after it in hex."""
    return (f"# {int.from_bytes(rec[8:12], 'little'):x} buf:"
            + "".join(f" {b:02x}" for b in rec[RAW_DATA_BUF:]))


def _nop_print(event: str) -> str:
    """trace_nop_print(), the handler an entry gets when it registers none."""
    return f"type: {_TYPES[event]}"


_TYPES = {"function": TRACE_FN, "kernel_stack": TRACE_STACK, "print": TRACE_PRINT,
          "raw_data": TRACE_RAW_DATA, "func_repeats": TRACE_FUNC_REPEATS}


def _hex(value: int, size: int) -> str:
    """trace_seq_putmem_hex() of a little-endian field: the value's ``size`` bytes,
    most significant first, two digits a byte, then a space."""
    return f"{value & ((1 << 8 * size) - 1):0{2 * size}x} "


def _hex_body(event: str, extra: dict[str, list[Any]], i: int) -> str:
    """trace_fn_hex(); others fall back to trace_nop_print, whose own newline comes
    before print_hex_fmt()'s (so such entries are followed by an empty line)."""
    if event == "function":
        return _hex(int(extra["ip"][i]), 8) + _hex(int(extra["parent_ip"][i]), 8)
    return _nop_print(event) + "\n"


def binary_records(df: pd.DataFrame, opts: OutputOptions = OutputOptions()) -> bytes:
    """print_bin_fmt(): for each entry pid (s32), cpu (s32) and ts (u64) as raw
    little-endian memory when context-info is set, then trace_fn_bin's ip and
    parent_ip (u64 each); entries without a binary handler print trace_nop_print's
    text. No newlines: the ``trace`` file is then a byte stream."""
    ev = df[df["event"].isin(list(_TYPES))]
    out = bytearray()
    cols = [ev[c].tolist() if c in ev else [0] * len(ev)
            for c in ("event", "pid", "cpu", "ts", "ip", "parent_ip", "buf")]
    for event, pid, cpu, ts, ip, parent, buf in zip(*cols, strict=True):
        if event == "print" and opts.printk_msg_only:   # its text alone, before bin
            out += str(buf).encode()
            continue
        if opts.context_info:
            out += int(pid).to_bytes(4, "little", signed=True)
            out += int(cpu).to_bytes(4, "little", signed=True)
            out += int(ts).to_bytes(8, "little")
        if event == "function":
            out += int(ip).to_bytes(8, "little") + int(parent).to_bytes(8, "little")
        else:
            out += (_nop_print(event) + "\n").encode()
    return bytes(out)


def _sym(sym: Callable[[int, bool], str], addr: int, opts: OutputOptions) -> str:
    """seq_print_ip_sym(): %ps, or %pS with sym-offset, then <addr> with sym-addr."""
    text = sym(addr, opts.sym_offset)
    return f"{text} <{addr:016x}>" if opts.sym_addr else text
