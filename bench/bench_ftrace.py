"""Function-tracing benchmarks for ftracelab: what a traced call costs, native and Python.

Run from a clone (the package need not be installed)::

    python bench/bench_ftrace.py          # aligned table
    python bench/bench_ftrace.py --json   # the same figures as JSON

Everything is measured in one run of this script, with ``time.perf_counter``
around ``lab.run("getpid", loops=50000, count_calls=False)`` (no counting
hooks while timing). Each configuration gets a fresh ``Lab(cpus=2, seed=0)``
and one untimed warm-up run (Unicorn translates the code on first execution).
Then ``REPEATS`` rounds each time every configuration once, in turn, so that a
busy moment of the host slows all of them alike; figures are medians.

* **baseline** -- no ftrace_ops: every fentry site is the 5-byte NOP.
* **native** -- ``lab_count_func`` (a C callback in the image that counts its
  calls in ``ops->nr_calls``) on every traceable function, flags RECURSION
  (no assist function in between): each site calls the ops' own trampoline,
  which calls lab_count_func. Traced calls: ``ops.calls`` per run.
* **trampoline only** -- the same with ``ftrace_stub`` (a bare ``ret``) as the
  ops function: what the call, the trampoline's register save/restore and the
  return cost without any callback. ftrace_stub counts nothing, so its traced
  calls come from one extra, untimed run with an ``EntryCounter`` (one code
  hook per fentry site).
* **fgraph** -- ``lab.fgraph.register()`` on every function: the native
  ``lab_graph_entry``/``lab_graph_return`` through ``ftrace_graph_func``,
  ``function_graph_enter``, the shadow stack and ``return_to_handler``.
  Traced calls: the fgraph_ops' entries per run.
* **python** -- a trivial Python callback (``lambda *args: None``), flags
  RECURSION: the raw hook path (trampoline, lab_python_func, the lab's hook,
  the Python call). Traced calls: ``ops.calls`` per run.

For each traced configuration:

* **per traced call** -- (median traced time - median baseline time) / traced
  calls: the cost tracing adds to one call, in ns, and its inverse in M calls/s;
* **end to end** -- traced calls / median traced time: traced calls per host
  second of the whole run, untraced work included;
* **native / trampoline only** -- the ratio of the two per-call costs.

Budgets (shared/DESIGN.md, "Performance budget"), checked against the
per-call rate, which is what the budgets are about (the cost of tracing a
call); the end-to-end rates are reported alongside and not checked, since
they also contain the workload's own untraced cost:

* native function tracer >= 5 M traced calls/s;
* Python ftrace_ops callbacks >= 0.5 M calls/s;
* function_graph (native) >= 3 M calls/s, checked on the fgraph core;
* tracing cost per call <= 3x the bare trampoline cost.

Finally **enable/disable**: ``lab.ftrace.register()`` of an ops on every
traceable function with apply=True (the int3 code update of every site), then
``ops.unregister()`` (back to NOPs), on one fresh lab, median of
``SITE_REPEATS``.

The figures are medians of a few runs on this machine, not a statistical
study: expect tens of percent of noise between runs and much more between
machines. The exit status is 1 if a figure misses its budget, else 0.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchtable import (  # bench/benchtable.py: a script's folder is on sys.path
    Row,
    arg_parser,
    finish,
    timed_run,
)

REPO = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from ftracelab.lab import Lab
    from ftracelab.trace.fgraph import FgraphOps
    from ftracelab.trace.ftrace_ops import FtraceOps

LOOPS = 50_000
WARMUP_LOOPS = 2_000
REPEATS = 3
SITE_REPEATS = 5
NATIVE_BUDGET_MCALLS = 5.0       # M traced calls/s, at least
PYTHON_BUDGET_MCALLS = 0.5       # M calls/s, at least
FGRAPH_BUDGET_MCALLS = 3.0       # M calls/s, at least (function_graph's budget, for its fgraph core)
TRAMPOLINE_RATIO_BUDGET = 3.0    # native cost per call / bare trampoline cost, at most


@dataclass
class Config:
    """One measured configuration: host times of the timed runs and traced calls."""

    name: str
    times: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)    # traced calls per timed run
    calls_source: str = ""

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)

    @property
    def median_calls(self) -> float:
        return statistics.median(self.calls) if self.calls else 0.0


# ---- measurements -----------------------------------------------------------

def _fresh_lab() -> Lab:
    from ftracelab import Lab

    return Lab(cpus=2, seed=0)


def _count_sites(lab: Lab) -> int:
    """Traced calls of one (untimed) run: an EntryCounter on every fentry site."""
    from ftracelab.machine.cpu import EntryCounter

    counter = EntryCounter(lab.machine, [r.ip for r in lab.ftrace.records])
    try:
        lab.run("getpid", loops=LOOPS, count_calls=False)
    finally:
        count = counter.close()
    return count


@dataclass
class _Setup:
    cfg: Config
    lab: Lab
    ops: FtraceOps | FgraphOps | None
    counts_itself: bool


def measure(configs: list[tuple[str, Callable[[Lab], FtraceOps | FgraphOps | None], bool]]) -> list[Config]:
    """Per configuration a fresh lab, the ops its function registers and a warm-up
    run; then REPEATS rounds that time each configuration once, in turn, so that a
    busy moment of the host slows all of them rather than one."""
    setups: list[_Setup] = []
    for name, register, counts_itself in configs:
        lab = _fresh_lab()
        ops = register(lab)
        lab.run("getpid", loops=WARMUP_LOOPS, count_calls=False)
        setups.append(_Setup(Config(name), lab, ops, counts_itself))
    for _ in range(REPEATS):
        for s in setups:
            before = s.ops.calls if s.ops is not None else 0
            s.cfg.times.append(timed_run(s.lab, "getpid", loops=LOOPS))
            if s.ops is not None and s.counts_itself:
                s.cfg.calls.append(s.ops.calls - before)
    for s in setups:
        if s.ops is None:
            continue
        if s.counts_itself:
            s.cfg.calls_source = "ops.calls of each timed run"
        else:
            s.cfg.calls = [_count_sites(s.lab)]
            s.cfg.calls_source = "EntryCounter on every fentry site, one untimed run"
        s.ops.unregister()
    return [s.cfg for s in setups]


def _native(lab: Lab) -> FtraceOps:
    from ftracelab.trace.ftrace_ops import FtraceOpsFlag

    return lab.ftrace.register("lab_count_func", flags=FtraceOpsFlag.RECURSION, name="bench_native")


def _trampoline(lab: Lab) -> FtraceOps:
    from ftracelab.trace.ftrace_ops import FtraceOpsFlag

    return lab.ftrace.register("ftrace_stub", flags=FtraceOpsFlag.RECURSION, name="bench_stub")


def _python(lab: Lab) -> FtraceOps:
    from ftracelab.trace.ftrace_ops import FtraceOpsFlag

    def callback(ip: int, parent_ip: int, ops: object, fregs: object) -> None:
        return None

    return lab.ftrace.register(callback, flags=FtraceOpsFlag.RECURSION, name="bench_python")


def _fgraph(lab: Lab) -> FgraphOps:
    """lab_graph_entry/lab_graph_return (count, one word of reserved data) on every
    function: ftrace_graph_func, function_graph_enter, the shadow stack and the
    return through return_to_handler."""
    return lab.fgraph.register(name="bench_fgraph")


def bench_tracing() -> tuple[list[Row], dict[str, Any]]:
    base, native, tramp, python, fgraph = measure([
        ("baseline", lambda lab: None, False),
        ("native", _native, True),
        ("trampoline only", _trampoline, False),
        ("python", _python, True),
        ("fgraph", _fgraph, True),
    ])
    # The tracer's own callbacks must not change what the kernel does: same functions
    # traced, so the trampoline-only run sees the native run's calls (ticks aside).
    if abs(tramp.median_calls - native.median_calls) > 0.01 * native.median_calls:
        raise RuntimeError(f"trampoline-only run traced {tramp.median_calls:,.0f} calls, "
                           f"the native one {native.median_calls:,.0f}")

    def per_call_ns(cfg: Config) -> float:
        return (cfg.median_s - base.median_s) / cfg.median_calls * 1e9

    costs = {cfg.name: per_call_ns(cfg) for cfg in (native, tramp, python, fgraph)}
    if min(costs.values()) <= 0:
        raise RuntimeError(f"a traced run was not slower than the untraced one: {costs}; "
                           "the host is too noisy to measure")
    rows = [Row("baseline getpid, untraced", base.median_s, "s", None,
                note=f"loops={LOOPS}, fresh Lab(cpus=2, seed=0), median of {REPEATS}")]
    budgets = {"native": NATIVE_BUDGET_MCALLS, "python": PYTHON_BUDGET_MCALLS,
               "fgraph": FGRAPH_BUDGET_MCALLS}
    for cfg in (native, tramp, python, fgraph):
        ns = costs[cfg.name]
        calls = cfg.median_calls
        budget = budgets.get(cfg.name)
        rows += [
            Row(f"{cfg.name}: run time", cfg.median_s, "s",
                note=f"{calls:,.0f} traced calls ({cfg.calls_source}), "
                     f"{calls / LOOPS:.2f} per getpid"),
            Row(f"{cfg.name}: cost per traced call", ns, "ns",
                note="(traced - baseline) / traced calls"),
            Row(f"{cfg.name}: per-call rate", 1e3 / ns, "M calls/s", budget, at_least=True,
                note=("1 / cost per call; the budget is checked against this rate"
                      if budget is not None else "1 / cost per call")),
            Row(f"{cfg.name}: end to end", calls / cfg.median_s / 1e6, "M calls/s",
                note="traced calls / whole run time (untraced work included); not checked"),
        ]
    ratio = costs["native"] / costs["trampoline only"]
    rows.append(Row("native / trampoline-only cost", ratio, "x", TRAMPOLINE_RATIO_BUDGET,
                    note="cost per traced call with lab_count_func over that with ftrace_stub"))
    figures = {
        "loops": LOOPS,
        "repeats": REPEATS,
        "configs": [{"name": c.name, "host_s": c.times, "traced_calls": c.calls,
                     "calls_source": c.calls_source, "median_s": c.median_s,
                     "cost_per_call_ns": costs.get(c.name),
                     "end_to_end_calls_per_s": (c.median_calls / c.median_s
                                                if c.calls else None)}
                    for c in (base, native, tramp, python, fgraph)],
        "native_over_trampoline": ratio,
    }
    return rows, figures


def bench_enable_disable() -> tuple[list[Row], dict[str, Any]]:
    from ftracelab.trace.ftrace_ops import FtraceOpsFlag

    lab = _fresh_lab()
    enable: list[float] = []
    disable: list[float] = []
    sites = 0
    for _ in range(SITE_REPEATS):
        t0 = time.perf_counter()
        ops = lab.ftrace.register("lab_count_func", flags=FtraceOpsFlag.RECURSION,
                                  name="bench_sites", apply=True)
        t1 = time.perf_counter()
        sites = len(ops.functions)
        ops.unregister()
        enable.append(t1 - t0)
        disable.append(time.perf_counter() - t1)
    if any(lab.machine.read(r.ip, 5) != bytes.fromhex("0f1f440000") for r in lab.ftrace.records):
        raise RuntimeError("a fentry site is not the NOP after unregistering")
    en, dis = statistics.median(enable), statistics.median(disable)
    rows = [
        Row("enable all sites", en, "s",
            note=f"register() with apply=True: {sites} sites, {en / sites * 1e6:,.0f} us/site, "
                 f"median of {SITE_REPEATS}"),
        Row("disable all sites", dis, "s",
            note=f"unregister(): back to the NOP, {dis / sites * 1e6:,.0f} us/site, "
                 f"median of {SITE_REPEATS}"),
    ]
    return rows, {"sites": sites, "enable_s": enable, "disable_s": disable}


def main() -> int:
    args = arg_parser(__doc__).parse_args()
    if str(REPO) not in sys.path:       # run from a clone: no install needed
        sys.path.insert(0, str(REPO))

    rows, tracing = bench_tracing()
    site_rows, sites = bench_enable_disable()
    rows += site_rows
    return finish(rows, as_json=args.json, title="function-tracing benchmarks",
                  figures={"tracing": tracing, "enable_disable": sites})


if __name__ == "__main__":
    raise SystemExit(main())
