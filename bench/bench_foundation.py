"""Foundation benchmarks for ftracelab: import cost, boot cost, untraced emulation speed.

Run from a clone (the package need not be installed)::

    python bench/bench_foundation.py          # aligned table
    python bench/bench_foundation.py --json   # the same figures as JSON

What it measures, all with ``time.perf_counter`` in one run of this script:

* **import** -- wall time of ``python -c "import ftracelab"`` minus that of
  ``python -c "pass"`` in fresh subprocesses (median of 5 each), so interpreter
  start-up is not counted. Also whether that import pulled in ``unicorn``: the
  package promises to load the emulator lazily. Budget: < 1 s. For reference,
  the first ``from ftracelab import Lab`` in this process (it loads unicorn,
  capstone and pyelftools) is timed too; it is paid once, at first use.
* **boot** -- ``Lab(cpus=2, seed=0)`` construction: load the images, set up the
  machine, unpack the root file system, run ``ftrace_init()`` (median of 5;
  the first, cold construction also parses the ELF images, which are then
  cached, and is shown on its own). Budget: < 0.5 s. Then ``lab.boot()``
  alone, i.e. ``ftrace_init()`` on a ``Lab(boot=False)`` (median of 5, fresh
  lab each time).
* **emulation** -- for every workload in ``ftracelab.kernel.workloads.WORKLOADS``,
  with its default parameters except where ``WORKLOAD_PARAMS`` raises ``loops``
  so that a run takes tens of milliseconds (``getpid`` loops=20000, ``cat`` and
  ``write`` loops=200, ``fork-storm`` loops=8, ``sleep`` loops=40). Each workload
  gets a fresh ``Lab(cpus=2, seed=0)``; it is run once with ``count_calls=True``
  to learn how many kernel function entries it makes, then three times with
  ``count_calls=False`` (no counting hooks). Every uncounted run must complete
  with the counted run's syscall count, or the script raises: the counting
  hooks cost host time, they must not change what the kernel does. Reported:
  calls/s and syscalls/s (those counts over the median uncounted time), the
  counted run's own rate (what the counting hooks cost), its context switches,
  interrupts and tasks, and **virtual time against host time**: the run's
  virtual nanoseconds over its host nanoseconds (median over the uncounted
  runs). A ratio below 1 means the emulated machine runs slower than real
  time; idle time (sleeps, disk waits) is skipped over, so workloads that wait
  a lot get a much higher ratio than CPU-bound ones.
  ``slow-read`` keeps its defaults: its disk reads happen once per run (later
  loops hit the page cache), so more loops would only measure ``cat``.

The figures are medians of a few runs on this machine, not a statistical study:
expect tens of percent of noise between runs and much more between machines.
The exit status is 1 if a figure misses its budget, else 0.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchtable import Row, arg_parser, finish  # bench/benchtable.py: a script's folder is on sys.path

REPO = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from ftracelab.lab import Lab

IMPORT_REPEATS = 5
BOOT_REPEATS = 5
RUN_REPEATS = 3
IMPORT_BUDGET_S = 1.0
BOOT_BUDGET_S = 0.5
# Parameters that differ from a workload's defaults: more loops for the ones whose
# default run is too short to time. Workloads not listed run with their defaults.
# (Any: lab.run's **params share the call with its int/str keyword arguments.)
WORKLOAD_PARAMS: dict[str, dict[str, Any]] = {
    "getpid": {"loops": 20000},
    "cat": {"loops": 200},
    "write": {"loops": 200},
    "fork-storm": {"loops": 8},
    "sleep": {"loops": 40},
}


# ---- helpers ----------------------------------------------------------------

def _subprocess_env() -> dict[str, str]:
    return dict(os.environ)


def _time_python(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


# ---- measurements -----------------------------------------------------------

def bench_import() -> list[Row]:
    env = _subprocess_env()
    base = statistics.median(_time_python("pass", env) for _ in range(IMPORT_REPEATS))
    full = statistics.median(_time_python("import ftracelab", env) for _ in range(IMPORT_REPEATS))
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, ftracelab; print('unicorn' in sys.modules)"],
        check=True, env=env, cwd=REPO, capture_output=True, text=True)
    pulled = probe.stdout.strip() == "True"
    return [
        Row("import ftracelab", full - base, "s", IMPORT_BUDGET_S,
            f"median of {IMPORT_REPEATS}, minus bare interpreter start ({base * 1000:.0f} ms)",
            strict=True),
        Row("import pulls in unicorn", float(pulled), "bool", None,
            "should be no: the emulator loads on first use"),
    ]


def first_use() -> tuple[type[Lab], Row]:
    t0 = time.perf_counter()
    from ftracelab import Lab
    elapsed = time.perf_counter() - t0
    return Lab, Row("first use of ftracelab.Lab", elapsed, "s", None,
                    "lazy imports: unicorn, capstone, pyelftools; paid once")


def bench_boot(lab_cls: type[Lab]) -> list[Row]:
    times: list[float] = []
    for _ in range(BOOT_REPEATS):
        t0 = time.perf_counter()
        lab_cls(cpus=2, seed=0)
        times.append(time.perf_counter() - t0)
    boot_only: list[float] = []
    for _ in range(BOOT_REPEATS):
        lab = lab_cls(cpus=2, seed=0, boot=False)
        t0 = time.perf_counter()
        lab.boot()
        boot_only.append(time.perf_counter() - t0)
        sites = len(lab.ftrace.records)
    return [
        Row("Lab(cpus=2, seed=0), cold", times[0], "s", None,
            "first construction: also parses the ELF images (then cached)"),
        Row("Lab(cpus=2, seed=0)", statistics.median(times), "s", BOOT_BUDGET_S,
            f"median of {BOOT_REPEATS}, includes ftrace_init()", strict=True),
        Row("lab.boot() alone", statistics.median(boot_only), "s", None,
            f"ftrace_init(): {sites} sites, median of {BOOT_REPEATS}"),
    ]


def bench_emulation(lab_cls: type[Lab]) -> tuple[list[Row], list[dict[str, Any]]]:
    """Rows for the table, and the same figures per workload for --json."""
    from ftracelab.kernel.workloads import WORKLOADS

    unknown = set(WORKLOAD_PARAMS) - set(WORKLOADS)
    if unknown:
        raise RuntimeError(f"WORKLOAD_PARAMS names unknown workloads: {sorted(unknown)}")
    rows: list[Row] = []
    figures: list[dict[str, Any]] = []
    for workload in WORKLOADS:
        params = WORKLOAD_PARAMS.get(workload, {})
        lab = lab_cls(cpus=2, seed=0)
        t0 = time.perf_counter()
        counted = lab.run(workload, count_calls=True, **params)
        counted_s = time.perf_counter() - t0
        calls = counted.function_calls
        if not counted.completed or calls is None:
            raise RuntimeError(f"{workload}: counted run did not complete: {counted.stop}")
        times: list[float] = []
        ratios: list[float] = []
        virtual: list[int] = []
        for _ in range(RUN_REPEATS):
            t0 = time.perf_counter()
            rec = lab.run(workload, count_calls=False, **params)
            elapsed = time.perf_counter() - t0
            if not rec.completed or rec.syscalls != counted.syscalls:
                raise RuntimeError(f"{workload}: uncounted run differs from the counted one "
                                   f"({rec.syscalls} vs {counted.syscalls} syscalls, {rec.stop})")
            times.append(elapsed)
            ratios.append(rec.virtual_ns / (elapsed * 1e9))
            virtual.append(rec.virtual_ns)
        median = statistics.median(times)
        ratio = statistics.median(ratios)
        defaults = lab.workload_params(workload)
        args = ", ".join(f"{k}={v}" + (f" (default {defaults[k]})" if k in params else "")
                         for k, v in counted.params.items())
        rows += [
            Row(f"{workload}: calls/s untraced", calls / median, "calls/s", None,
                f"{args}: {calls:,} calls in {median * 1000:,.1f} ms, median of {RUN_REPEATS}"),
            Row(f"{workload}: syscalls/s untraced", counted.syscalls / median, "syscalls/s", None,
                f"{counted.syscalls:,} syscalls; context switches {counted.context_switches:,}, "
                f"interrupts {counted.interrupts:,}, tasks {counted.tasks} (counted run)"),
            Row(f"{workload}: calls/s counted", calls / counted_s, "calls/s", None,
                f"count_calls=True, one run of {counted_s * 1000:,.0f} ms"),
            Row(f"{workload}: virtual/host time", ratio, "x", None,
                f"{statistics.median(virtual) / 1e6:,.3f} ms virtual in {median * 1000:,.1f} ms "
                f"host, median of {RUN_REPEATS}", spec=".3g"),
        ]
        figures.append({
            "workload": workload,
            "params": counted.params,
            "changed_params": params,
            "function_calls": calls,
            "syscalls": counted.syscalls,
            "context_switches": counted.context_switches,
            "interrupts": counted.interrupts,
            "tasks": counted.tasks,
            "virtual_ns": counted.virtual_ns,
            "untraced_virtual_ns": virtual,
            "untraced_host_s": times,
            "counted_host_s": counted_s,
            "calls_per_s": calls / median,
            "syscalls_per_s": counted.syscalls / median,
            "virtual_per_host": ratio,
        })
    return rows, figures


def main() -> int:
    args = arg_parser(__doc__).parse_args()
    if str(REPO) not in sys.path:       # run from a clone: no install needed
        sys.path.insert(0, str(REPO))

    rows = bench_import()
    lab_class, row = first_use()
    emulation, figures = bench_emulation(lab_class)
    rows += [row, *bench_boot(lab_class), *emulation]
    return finish(rows, as_json=args.json, title="foundation benchmarks",
                  figures={"workloads": figures})


if __name__ == "__main__":
    raise SystemExit(main())
