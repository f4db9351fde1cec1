"""function_graph benchmarks for ftracelab: the native tracer's cost per traced call,
and df_calls() on a large number of graph events.

Run from a clone (the package need not be installed)::

    python bench/bench_graph.py                    # aligned table
    python bench/bench_graph.py --json             # the same figures as JSON
    python bench/bench_graph.py --events 2000000   # a smaller df_calls input

**The native tracer.** Three fresh ``Lab(cpus=2, seed=0)``: untraced, the
function_graph tracer on every function (``buffer_size_kb`` large enough to keep
every event) and, for the ratio, every function calling ``ftrace_stub`` through
its ops' trampoline. Each runs ``getpid`` (loops=50000) once to warm up, then
``REPEATS`` rounds time all three in turn. Traced calls are the funcgraph_exit
events written (half the entries + overruns of every ``per_cpu/cpuN/stats``).
Reported: the cost tracing adds per call ((traced - untraced) / calls), its
inverse against the design's ">= 3 M calls/s" budget, and the ratio to the bare
trampoline's cost.

**Instructions.** One ``__do_sys_getpid`` call tree single-stepped from its
fentry site to its return in each kind of lab: the instructions tracing adds
per traced call, for function_graph and for the bare trampoline. They are the
host-independent part of the cost: at Unicorn's rate the budget cannot be met
by fewer than budget-time / per-instruction-time instructions.

**df_calls.** A synthetic df_events() frame of ``--events`` function_graph
events (a task calling a three-level tree of functions over and over, on two
CPUs), then ``df_calls()`` on it: time and events/s, then (in a second run, as
tracemalloc slows what it counts) the peak of the memory it allocates, against
the frame's own size. The design asks only to report these.

The exit status is 1 if a budget is missed, else 0. The figures are medians of
a few runs on the machine at hand.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from benchtable import Row, arg_parser, finish, timed_run

REPO = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from ftracelab.lab import Lab

LOOPS = 50_000
WARMUP_LOOPS = 2_000
REPEATS = 3
TRACE_BUFFER_KB = 16384
GRAPH_BUDGET_MCALLS = 3.0
DEFAULT_EVENTS = 10_000_000


def _lab(kind: str) -> Lab:
    from ftracelab import Lab
    from ftracelab.trace.ftrace_ops import FtraceOpsFlag

    lab = Lab(cpus=2, seed=0)
    if kind == "graph":
        lab.tracefs.write("buffer_size_kb", str(TRACE_BUFFER_KB))
        lab.tracefs.write("current_tracer", "function_graph")
    elif kind == "stub":
        lab.ftrace.register("ftrace_stub", flags=FtraceOpsFlag.RECURSION, name="bench_stub")
    return lab


def _graph_calls(lab: Lab) -> int:
    events = 0
    for cpu in range(lab.cpus):
        text = lab.tracefs.read(f"per_cpu/cpu{cpu}/stats")
        stats = dict(line.split(": ", 1) for line in str(text).splitlines())
        events += int(stats["entries"]) + int(stats["overrun"])
    return events // 2


def bench_tracer() -> tuple[list[Row], dict[str, Any]]:
    labs = {kind: _lab(kind) for kind in ("base", "graph", "stub")}
    for lab in labs.values():
        timed_run(lab, "getpid", loops=WARMUP_LOOPS)
    times: dict[str, list[float]] = {kind: [] for kind in labs}
    calls: list[int] = []
    for _ in range(REPEATS):
        for kind, lab in labs.items():
            if kind == "graph":
                lab.tracefs.write("trace", "")
            times[kind].append(timed_run(lab, "getpid", loops=LOOPS))
            if kind == "graph":
                calls.append(_graph_calls(lab))
    med = {kind: statistics.median(t) for kind, t in times.items()}
    c = statistics.median(calls)
    graph_ns = (med["graph"] - med["base"]) / c * 1e9
    stub_ns = (med["stub"] - med["base"]) / c * 1e9
    if graph_ns <= 0 or stub_ns <= 0:
        raise RuntimeError("a traced run was not slower than the untraced one: the host is too noisy")
    rows = [
        Row("getpid untraced", med["base"], "s", note=f"loops={LOOPS}, median of {REPEATS}"),
        Row("getpid, function_graph on every function", med["graph"], "s",
            note=f"{c:,.0f} traced calls (funcgraph_exit events), {c / LOOPS:.2f} per getpid"),
        Row("function_graph: cost per traced call", graph_ns, "ns", note="(traced - untraced) / calls"),
        Row("function_graph: per-call rate", 1e3 / graph_ns, "M calls/s", GRAPH_BUDGET_MCALLS, at_least=True,
            note="1 / cost per call"),
        Row("bare trampoline: cost per traced call", stub_ns, "ns", note="ftrace_stub on every function"),
        Row("function_graph / bare trampoline", graph_ns / stub_ns, "x", note="reported only"),
    ]
    return rows, {"times_s": times, "calls": calls, "graph_ns": graph_ns, "stub_ns": stub_ns}


def path_instructions(kind: str, function: str = "__do_sys_getpid") -> tuple[int, int]:
    """(instructions, traced calls) of one whole call of ``function`` (from its fentry
    site to its return, callees included) in a fresh lab of ``kind``, single-stepped:
    what the emulator must execute, whatever the host."""
    from ftracelab.machine.stepper import record_until

    lab = _lab(kind)
    m = lab.machine
    site = lab.fentry_site(function)
    sites = {r.ip for r in lab.ftrace.records}
    m.add_breakpoint(site)
    try:
        lab.run("getpid", count_calls=False, loops=3)
        m.remove_breakpoint(site)
        path = record_until(m, m.read_u64(m.reg("rsp")), 100_000)
    finally:
        m.remove_breakpoint(site)
    lab.resume()
    if not path.complete:
        raise RuntimeError(f"the {function} call did not return within 100,000 instructions")
    return len(path), sum(step.address in sites for step in path.steps)


def bench_instructions() -> tuple[list[Row], dict[str, Any]]:
    counts = {kind: path_instructions(kind) for kind in ("base", "graph", "stub")}
    calls = counts["base"][1]
    per = {kind: (n - counts["base"][0]) / calls for kind, (n, _) in counts.items() if kind != "base"}
    rows = [
        Row("function_graph: instructions per traced call", per["graph"], "insns",
            note=f"single-stepped __do_sys_getpid call tree ({calls} traced calls), minus untraced"),
        Row("bare trampoline: instructions per traced call", per["stub"], "insns", note="the same"),
    ]
    return rows, {"instructions": counts, "per_call": per}


def synthetic_graph_events(n: int) -> pd.DataFrame:
    """``n`` function_graph events (a multiple of 8): a(){ b(){ c(); } d(); } over and
    over, the task alternating between two CPUs every call tree, 8 events a tree."""
    pattern = [("E", "a", 0), ("E", "b", 1), ("E", "c", 2), ("X", "c", 2), ("X", "b", 1),
               ("E", "d", 1), ("X", "d", 1), ("X", "a", 0)]
    trees = -(-n // len(pattern))
    k = len(pattern)
    ts = np.arange(trees * k, dtype=np.int64) * 100
    kinds = np.tile([p[0] == "X" for p in pattern], trees)[:n]
    names = np.tile([p[1] for p in pattern], trees)[:n]
    depth = np.tile([p[2] for p in pattern], trees)[:n]
    ts = ts[:n]
    # an exit's calltime is its entry's timestamp (that many events back), rettime its own
    offsets = np.tile([0, 0, 0, 1, 3, 0, 1, 7], trees)[:n]
    calltime = np.where(kinds, ts - offsets * 100, 0).astype(np.uint64)
    rettime = np.where(kinds, ts, 0).astype(np.uint64)
    tree = np.arange(n) // k
    return pd.DataFrame({
        "ts": ts, "cpu": (tree % 2).astype(np.int16), "pid": np.full(n, 100, dtype=np.int32),
        "comm": pd.Categorical(np.full(n, "bench")),
        "event": pd.Categorical(np.where(kinds, "funcgraph_exit", "funcgraph_entry")),
        "common_flags": np.zeros(n, dtype=np.uint8), "depth": pd.array(depth, dtype="Int32"),
        "calltime": pd.arrays.IntegerArray(calltime, ~kinds),
        "rettime": pd.arrays.IntegerArray(rettime, ~kinds),
        "func": pd.Categorical(names),
    })


def bench_df_calls(n: int) -> tuple[list[Row], dict[str, Any]]:
    from ftracelab.analysis.calls import df_calls

    n -= n % 8
    df = synthetic_graph_events(n)
    frame_bytes = int(df.memory_usage(deep=True).sum())
    t0 = time.perf_counter()
    calls = df_calls(df)
    elapsed = time.perf_counter() - t0
    del calls
    # a second run for the peak: tracemalloc slows the allocations it counts
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    calls = df_calls(df)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    if calls["duration"].isna().any() or len(calls) != n // 2:
        raise RuntimeError(f"df_calls found {len(calls):,} calls in {n:,} events")
    rows = [
        Row("df_calls: time", elapsed, "s", note=f"{n:,} synthetic graph events, {len(calls):,} calls"),
        Row("df_calls: events", n / elapsed / 1e6, "M events/s", note="reported only"),
        Row("df_calls: peak memory", peak / 1e6, "MB",
            note=f"tracemalloc; the events frame is {frame_bytes / 1e6:,.1f} MB, the calls frame "
                 f"{calls.memory_usage(deep=True).sum() / 1e6:,.1f} MB"),
    ]
    return rows, {"events": n, "seconds": elapsed, "peak_bytes": peak, "frame_bytes": frame_bytes}


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"graph events for df_calls (default {DEFAULT_EVENTS:,})")
    args = parser.parse_args()
    if args.events < 8:
        parser.error("--events must be at least 8")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    rows, tracer = bench_tracer()
    insns, counted = bench_instructions()
    more, calls = bench_df_calls(args.events)
    return finish(rows + insns + more, as_json=args.json, title="function_graph benchmark",
                  figures={"tracer": tracer, "instructions": counted, "df_calls": calls})


if __name__ == "__main__":
    sys.exit(main())
