"""Pages -> DataFrame benchmark for ftracelab: how fast ring-buffer pages become pandas.

Run from a clone (the package need not be installed)::

    python bench/bench_pages.py                   # aligned table
    python bench/bench_pages.py --json            # the same figures as JSON
    python bench/bench_pages.py --events 1000000  # a smaller input

**The input.** A large set of synthetic ``TRACE_FN`` sub-buffers, written the
way the kernel writes them: a lab (``Lab(cpus=2, seed=0)``) runs the function
tracer (filter ``*``) over ``fork-storm`` and ``cat``; the recorded 24-byte
``struct ftrace_entry`` payloads (real ips, parent ips, pids, flags and
preempt counts of the mini-kernel) and their per-CPU time deltas are written
into ``TEMPLATES`` distinct pages with
:func:`~ftracelab.formats.ring_buffer_page.encode_page` (some with a
TIME_EXTEND, as after an idle gap). Those pages are tiled up to the requested
number of events, and every page's ``time_stamp`` is rewritten so that time
runs forward on each CPU; half the pages go to each of two CPUs with
interleaved time ranges. The directory is tracefs-like: ``events/header_page``,
``events/header_event`` and ``events/ftrace/function/format`` as the lab's
tracefs prints them, ``per_cpu/cpuN/trace_pipe_raw``, ``saved_cmdlines`` and
``kallsyms`` (``lab.kallsyms.proc_kallsyms()``), in a temporary directory
(the files are read from the page cache).

**Measured** (median of ``REPEATS`` runs each; input MB = 10^6 bytes of
``trace_pipe_raw``):

* ``decode_pages`` alone on the concatenated pages, in memory;
* ``open_trace(dir).df_events()``: the whole path, reading the files,
  parsing kallsyms and format files, decoding, the per-CPU time merge and the
  frame with ``func``/``parent`` names; also split into its steps
  (``read_tracedir``, ``Trace()``: decode and merge order, ``df_events()``);
* peak memory of ``open_trace(dir).df_events()`` under ``tracemalloc``
  (numpy and pandas allocate through it, so their buffers count), against
  the frame's ``memory_usage(deep=True).sum()`` and the input bytes.

Budgets (shared/DESIGN.md, "Performance budget"): pages -> DataFrame at least
10 M events/s and 150 MB/s, checked for both ``decode_pages`` alone and the
whole ``open_trace().df_events()`` path; peak memory at most 2 x the frame
plus the input (read as ``2 * frame + input``).

**The native function tracer, end to end**: a fresh lab with the function
tracer on every traceable function (``set_ftrace_filter`` ``*``,
``buffer_size_kb`` large enough to keep every event) runs ``getpid``
with loops=50000; another fresh lab runs it untraced. One warm-up run each,
then ``REPEATS`` rounds time both in turn (the traced lab's buffer emptied
with ``echo > trace`` before each run). Traced calls are the events written
(``entries`` + ``overrun`` of every ``per_cpu/cpuN/stats``), cross-checked
against ``len(lab.trace().df_events())``. Reported: the end-to-end rate
(traced calls / traced run time) and the cost tracing adds per call
((traced - untraced time) / traced calls) with its inverse, the per-call
rate. As in ``bench_ftrace.py``, the design's ">= 5 M traced calls/s" budget
is checked against the per-call rate: the end-to-end rate also contains the
emulated kernel's own untraced work. A third lab, every traceable function
calling ``ftrace_stub`` through its ops' trampoline, is timed in the same
rounds: the design reads the budget as "tracing cost per call <= 3x the bare
trampoline cost", and that ratio is checked too.

The exit status is 1 if a budget is missed, else 0. The figures are medians
of a few runs on the machine at hand: compare them only with runs on the
same machine.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from benchtable import (  # bench/benchtable.py: a script's folder is on sys.path
    Row,
    arg_parser,
    finish,
    timed_run,
)

REPO = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from ftracelab.lab import Lab

DEFAULT_EVENTS = 4_000_000
TEMPLATES = 64                   # distinct pages, tiled
REPEATS = 5
PAGE_SIZE = 4096
DATA_SIZE = PAGE_SIZE - 16
EVENT_BYTES = 4 + 24             # type_len header + struct ftrace_entry
PAGE_GAP_NS = 1_000              # between one page's last event and the next page's first
LOOPS = 50_000
WARMUP_LOOPS = 2_000
TRACE_BUFFER_KB = 8192           # per CPU: holds a 50000-loop getpid run (~4.2 MB)

EVENTS_BUDGET_M = 10.0           # M events/s, at least
MB_BUDGET = 150.0                # MB/s, at least
MEMORY_BUDGET_FRAMES = 2.0       # peak <= 2 x frame + input
NATIVE_BUDGET_MCALLS = 5.0       # M traced calls/s (per-call rate), at least
TRAMPOLINE_RATIO_BUDGET = 3.0    # function tracer cost per call / bare trampoline cost, at most


def _fresh_lab() -> Lab:
    from ftracelab import Lab

    return Lab(cpus=2, seed=0)


def _text(lab: Lab, path: str) -> str:
    out = lab.tracefs.read(path)
    if not isinstance(out, str):
        raise TypeError(f"{path} is not a text file")
    return out


# ---- the input -------------------------------------------------------------------

@dataclass
class Input:
    root: Path
    raw: dict[int, bytes]           # cpu -> trace_pipe_raw bytes
    events: int
    pages: int

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.raw.values())


def _recorded_events() -> tuple[Lab, list[bytes], list[list[int]]]:
    """A lab's function-tracer payloads, and per CPU the deltas between its events."""
    lab = _fresh_lab()
    lab.tracefs.write("set_ftrace_filter", "*")
    lab.tracefs.write("current_tracer", "function")
    lab.run("fork-storm")
    lab.run("cat")
    pages = lab.trace().pages
    payloads = [pages.payload(i)[:24] for i in range(len(pages))]
    if not payloads or any(len(p) != 24 for p in payloads):
        raise RuntimeError("the lab's function tracer did not record 24-byte TRACE_FN entries")
    deltas: list[list[int]] = []
    for cpu in np.unique(pages.cpu).tolist():
        ts = pages.ts[pages.cpu == cpu].astype(np.int64)
        deltas.append(np.diff(ts).tolist())
    return lab, payloads, deltas


def _template_pages(payloads: list[bytes], deltas: list[list[int]]) -> npt.NDArray[np.uint8]:
    """TEMPLATES full pages from encode_page(), as a (TEMPLATES, PAGE_SIZE) array."""
    from ftracelab.formats.ring_buffer_page import RbEvent, encode_page

    per_page = DATA_SIZE // EVENT_BYTES
    flat_deltas = [d for cpu in deltas for d in cpu if d >= 0] or [50]
    pages: list[bytes] = []
    k = 0
    for t in range(TEMPLATES):
        ts = 1_000_000
        events = []
        for j in range(per_page):
            delta = flat_deltas[k % len(flat_deltas)]
            if t % 16 == 5 and j == per_page // 2:
                delta = 200_000_000             # an idle gap: >= 2**27 ns needs a TIME_EXTEND
            ts += delta
            events.append(RbEvent(ts, payloads[k % len(payloads)]))
            k += 1
        while True:                             # TIME_EXTENDs take room: drop events until it fits
            try:
                pages.append(encode_page(events, page_ts=1_000_000))
                break
            except ValueError:
                events.pop()
    return np.frombuffer(b"".join(pages), dtype=np.uint8).reshape(TEMPLATES, PAGE_SIZE)


def _page_events_and_span(tmpl: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    from ftracelab.formats.ring_buffer_page import decode_pages

    dec = decode_pages(tmpl.tobytes(), PAGE_SIZE)
    counts = np.bincount(dec.page, minlength=TEMPLATES).astype(np.int64)
    last = np.zeros(TEMPLATES, dtype=np.int64)
    np.maximum.at(last, dec.page, dec.ts.astype(np.int64) - dec.page_ts[dec.page].astype(np.int64))
    return counts, last


def build_input(target_events: int, root: Path) -> Input:
    """Write the tracefs-like directory (see the module docstring)."""
    lab, payloads, deltas = _recorded_events()
    tmpl = _template_pages(payloads, deltas)
    counts, span = _page_events_and_span(tmpl)
    npages = max(2, -(-target_events * TEMPLATES // int(counts.sum())))
    npages += npages % 2
    which = np.arange(npages) % TEMPLATES
    pages = tmpl[which]                                          # a copy
    # time runs forward per CPU: even pages on CPU 0, odd on CPU 1, interleaved in time
    step = span[which] + PAGE_GAP_NS
    page_ts = np.empty(npages, dtype=np.int64)
    for cpu in (0, 1):
        rows = np.arange(cpu, npages, 2)
        page_ts[rows] = 1_000_000_000 + cpu * 3_000 + np.concatenate(([0], np.cumsum(step[rows])[:-1]))
    pages[:, 0:8] = page_ts.astype("<u8").view(np.uint8).reshape(npages, 8)
    raw = {cpu: pages[cpu::2].tobytes() for cpu in (0, 1)}
    del pages

    (root / "events" / "ftrace" / "function").mkdir(parents=True)
    (root / "events" / "header_page").write_text(_text(lab, "events/header_page"))
    (root / "events" / "header_event").write_text(_text(lab, "events/header_event"))
    (root / "events" / "ftrace" / "function" / "format").write_text(
        _text(lab, "events/ftrace/function/format"))
    for cpu, data in raw.items():
        (root / "per_cpu" / f"cpu{cpu}").mkdir(parents=True)
        (root / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw").write_bytes(data)
    (root / "saved_cmdlines").write_text(_text(lab, "saved_cmdlines"))
    (root / "kallsyms").write_text(lab.kallsyms.proc_kallsyms())
    events = int(counts[which].sum())
    return Input(root, raw, events, npages)


# ---- pages -> DataFrame --------------------------------------------------------------

def _median_time(fn: Callable[[], object]) -> tuple[float, list[float]]:
    times = []
    for _ in range(REPEATS):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    return statistics.median(times), times


def bench_pages(inp: Input) -> tuple[list[Row], dict[str, Any]]:
    from ftracelab.analysis.events import Trace, open_trace
    from ftracelab.formats.ring_buffer_page import decode_pages
    from ftracelab.formats.tracedir import read_tracedir

    blob = b"".join(inp.raw[c] for c in sorted(inp.raw))
    cpus = np.repeat(np.array(sorted(inp.raw), dtype=np.int16), [len(inp.raw[c]) // PAGE_SIZE
                                                                 for c in sorted(inp.raw)])
    check = decode_pages(blob, PAGE_SIZE, cpu=cpus)
    if len(check) != inp.events:
        raise RuntimeError(f"decode_pages found {len(check):,} events, the input holds {inp.events:,}")
    del check
    decode_s, decode_times = _median_time(lambda: decode_pages(blob, PAGE_SIZE, cpu=cpus))
    blob = b""                          # let the copy go before the next measurements

    def full() -> object:
        return open_trace(inp.root).df_events()

    full_s, full_times = _median_time(full)
    # the steps, once more each (medians)
    steps: dict[str, list[float]] = {"read_tracedir": [], "Trace()": [], "df_events()": []}
    for _ in range(REPEATS):
        gc.collect()
        t0 = time.perf_counter()
        td = read_tracedir(inp.root)
        t1 = time.perf_counter()
        trace = Trace(td)
        t2 = time.perf_counter()
        df = trace.df_events()
        t3 = time.perf_counter()
        steps["read_tracedir"].append(t1 - t0)
        steps["Trace()"].append(t2 - t1)
        steps["df_events()"].append(t3 - t2)
        del td, trace, df
    gc.collect()

    # peak memory of the whole path, under tracemalloc (numpy allocations are traced)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    df = open_trace(inp.root).df_events()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    if len(df) != inp.events or "func" not in df.columns:
        raise RuntimeError(f"df_events() gave {len(df):,} rows, expected {inp.events:,} with names")
    frame = int(df.memory_usage(deep=True).sum())
    del df
    gc.collect()

    mb = inp.nbytes / 1e6
    mem_budget = MEMORY_BUDGET_FRAMES * frame + inp.nbytes
    rows = [
        Row("input", mb, "MB", note=f"{inp.events:,} TRACE_FN events in {inp.pages:,} pages on 2 CPUs "
                                    f"({inp.events / inp.pages:.0f} per page), from {TEMPLATES} "
                                    "encode_page() templates"),
        Row("decode_pages: time", decode_s, "s", note=f"median of {REPEATS}, in memory"),
        Row("decode_pages: events", inp.events / decode_s / 1e6, "M events/s", EVENTS_BUDGET_M,
            at_least=True),
        Row("decode_pages: bytes", mb / decode_s, "MB/s", MB_BUDGET, at_least=True),
        Row("open_trace().df_events(): time", full_s, "s",
            note=f"median of {REPEATS}: files, kallsyms, decode, merge, frame with names"),
        Row("open_trace().df_events(): events", inp.events / full_s / 1e6, "M events/s",
            EVENTS_BUDGET_M, at_least=True),
        Row("open_trace().df_events(): bytes", mb / full_s, "MB/s", MB_BUDGET, at_least=True),
    ]
    for name, times in steps.items():
        rows.append(Row(f"  step {name}", statistics.median(times), "s", note=f"median of {REPEATS}"))
    rows += [
        Row("frame memory", frame / 1e6, "MB",
            note=f"memory_usage(deep=True): {frame / inp.events:.1f} B/event"),
        Row("peak memory, open_trace().df_events()", peak / 1e6, "MB", mem_budget / 1e6,
            note=f"tracemalloc; budget 2 x frame + input; "
                 f"{peak / (frame + inp.nbytes):.1f} x (frame + input)"),
    ]
    figures = {"events": inp.events, "pages": inp.pages, "input_bytes": inp.nbytes,
               "decode_pages_s": decode_times, "open_trace_df_events_s": full_times, "steps_s": steps,
               "frame_bytes": frame, "peak_bytes": peak, "memory_budget_bytes": mem_budget}
    return rows, figures


# ---- the native function tracer ----------------------------------------------------

def _traced_lab() -> Lab:
    lab = _fresh_lab()
    lab.tracefs.write("buffer_size_kb", str(TRACE_BUFFER_KB))
    lab.tracefs.write("set_ftrace_filter", "*")
    lab.tracefs.write("current_tracer", "function")
    return lab


def _written(lab: Lab) -> tuple[int, int]:
    """(entries, overrun) summed over the CPUs' stats files."""
    entries = overrun = 0
    for cpu in range(lab.cpus):
        stats = dict(line.split(": ", 1) for line in _text(lab, f"per_cpu/cpu{cpu}/stats").splitlines())
        entries += int(stats["entries"])
        overrun += int(stats["overrun"])
    return entries, overrun


def _stub_lab() -> Lab:
    """Every traceable function calling ftrace_stub (a bare ``ret``) through its ops'
    trampoline: the cost of the call, the trampoline and the return alone."""
    from ftracelab.trace.ftrace_ops import FtraceOpsFlag

    lab = _fresh_lab()
    lab.ftrace.register("ftrace_stub", flags=FtraceOpsFlag.RECURSION, name="bench_stub")
    return lab


def bench_native() -> tuple[list[Row], dict[str, Any]]:
    base, traced, stub = _fresh_lab(), _traced_lab(), _stub_lab()
    for lab in (base, traced, stub):
        timed_run(lab, "getpid", loops=WARMUP_LOOPS)
    base_t: list[float] = []
    traced_t: list[float] = []
    stub_t: list[float] = []
    calls: list[int] = []
    for _ in range(REPEATS):
        traced.tracefs.write("trace", "")          # echo > trace: empty buffers
        traced_t.append(timed_run(traced, "getpid", loops=LOOPS))
        entries, overrun = _written(traced)
        calls.append(entries + overrun)
        base_t.append(timed_run(base, "getpid", loops=LOOPS))
        stub_t.append(timed_run(stub, "getpid", loops=LOOPS))
    entries, overrun = _written(traced)
    in_frame = len(traced.trace().df_events())
    if overrun or in_frame != entries:
        raise RuntimeError(f"events lost: {entries} entries, {overrun} overrun, {in_frame} in the frame")
    b, t, c = statistics.median(base_t), statistics.median(traced_t), statistics.median(calls)
    st = statistics.median(stub_t)
    per_call_ns = (t - b) / c * 1e9
    stub_ns = (st - b) / c * 1e9          # the same functions are traced: the same calls
    if per_call_ns <= 0 or stub_ns <= 0:
        raise RuntimeError("a traced run was not slower than the untraced one: the host is too noisy")
    rows = [
        Row("getpid untraced", b, "s", note=f"loops={LOOPS}, fresh Lab(cpus=2, seed=0), median of {REPEATS}"),
        Row("getpid, function tracer '*'", t, "s",
            note=f"{c:,.0f} events written ({c / LOOPS:.2f} per getpid), all in the frame"),
        Row("native tracer: end to end", c / t / 1e6, "M calls/s",
            note="traced calls / traced run time (untraced work included); not checked"),
        Row("native tracer: cost per traced call", per_call_ns, "ns",
            note="(traced - untraced) / traced calls"),
        Row("native tracer: per-call rate", 1e3 / per_call_ns, "M calls/s", NATIVE_BUDGET_MCALLS,
            at_least=True,
            note="1 / cost per call; the budget is checked against this rate (as bench_ftrace.py)"),
        Row("bare trampoline: cost per traced call", stub_ns, "ns",
            note="ftrace_stub through the ops trampoline on the same functions, same rounds"),
        Row("native tracer / bare trampoline", per_call_ns / stub_ns, "x", TRAMPOLINE_RATIO_BUDGET,
            note="cost per call of the function tracer over that of the bare trampoline"),
    ]
    return rows, {"loops": LOOPS, "untraced_s": base_t, "traced_s": traced_t, "stub_s": stub_t,
                  "traced_calls": calls, "cost_per_call_ns": per_call_ns, "stub_cost_per_call_ns": stub_ns}


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"synthetic events to decode (default {DEFAULT_EVENTS:,})")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be positive")
    if str(REPO) not in sys.path:       # run from a clone: no install needed
        sys.path.insert(0, str(REPO))

    with tempfile.TemporaryDirectory(prefix="ftracelab-bench-pages-") as tmp:
        inp = build_input(args.events, Path(tmp))
        rows, pages = bench_pages(inp)
        del inp
    native_rows, native = bench_native()
    rows += native_rows

    import pandas as pd

    return finish(rows, as_json=args.json, title="pages -> DataFrame benchmark",
                  figures={"pages": pages, "native": native},
                  versions={"numpy": np.__version__, "pandas": pd.__version__},
                  footnote="MB = 10^6 bytes of trace_pipe_raw. Input files are read from the page cache.")


if __name__ == "__main__":
    sys.exit(main())
