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
* **emulation** -- kernel function calls per second with tracing off, for
  ``getpid`` (loops=20000) and ``cat`` (loops=200). Each workload is run once
  with ``count_calls=True`` to learn how many kernel function entries it makes,
  then three times with ``count_calls=False`` (no counting hooks); calls/s and
  syscalls/s are those counts over the median uncounted time. The counted run's
  own rate is shown for comparison: it is what the counting hooks cost.

The figures are single-run ratios on this machine, not a statistical study:
expect a few percent of noise between runs and much more between machines.
The exit status is 1 if a figure misses its budget, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from ftracelab.lab import Lab

IMPORT_REPEATS = 5
BOOT_REPEATS = 5
RUN_REPEATS = 3
IMPORT_BUDGET_S = 1.0
BOOT_BUDGET_S = 0.5
WORKLOADS: list[tuple[str, int]] = [     # (workload, loops); other parameters default
    ("getpid", 20000),
    ("cat", 200),
]


@dataclass(frozen=True)
class Row:
    """One measured figure, with its budget if it has one."""

    name: str
    value: float
    unit: str
    budget: float | None = None     # an upper bound in the same unit
    note: str = ""

    @property
    def status(self) -> str:
        if self.budget is None:
            return ""
        return "ok" if self.value < self.budget else "OVER"


# ---- helpers ----------------------------------------------------------------

def _subprocess_env() -> dict[str, str]:
    return dict(os.environ)


def _time_python(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:,.1f} ms"
    if unit == "bool":
        return "yes" if value else "no"
    return f"{value:,.0f} {unit}"


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
            f"median of {IMPORT_REPEATS}, minus bare interpreter start ({base * 1000:.0f} ms)"),
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
            f"median of {BOOT_REPEATS}, includes ftrace_init()"),
        Row("lab.boot() alone", statistics.median(boot_only), "s", None,
            f"ftrace_init(): {sites} sites, median of {BOOT_REPEATS}"),
    ]


def bench_emulation(lab_cls: type[Lab]) -> list[Row]:
    rows: list[Row] = []
    for workload, loops in WORKLOADS:
        lab = lab_cls(cpus=2, seed=0)
        t0 = time.perf_counter()
        counted = lab.run(workload, count_calls=True, loops=loops)
        counted_s = time.perf_counter() - t0
        calls = counted.function_calls
        if not counted.completed or calls is None:
            raise RuntimeError(f"{workload}: counted run did not complete: {counted.stop}")
        times: list[float] = []
        for _ in range(RUN_REPEATS):
            t0 = time.perf_counter()
            rec = lab.run(workload, count_calls=False, loops=loops)
            times.append(time.perf_counter() - t0)
            if not rec.completed or rec.syscalls != counted.syscalls:
                raise RuntimeError(f"{workload}: uncounted run differs from the counted one "
                                   f"({rec.syscalls} vs {counted.syscalls} syscalls, {rec.stop})")
        median = statistics.median(times)
        args = ", ".join(f"{k}={v}" for k, v in counted.params.items())
        rows += [
            Row(f"{workload}: calls/s untraced", calls / median, "calls/s", None,
                f"{args}: {calls:,} calls in {median * 1000:,.0f} ms, median of {RUN_REPEATS}"),
            Row(f"{workload}: syscalls/s untraced", counted.syscalls / median, "syscalls/s", None,
                f"{counted.syscalls:,} syscalls"),
            Row(f"{workload}: calls/s counted", calls / counted_s, "calls/s", None,
                f"count_calls=True, one run of {counted_s * 1000:,.0f} ms"),
        ]
    return rows


# ---- output -----------------------------------------------------------------

def render_table(rows: list[Row]) -> str:
    header = ("measure", "value", "budget", "", "note")
    cells = [(r.name, _fmt(r.value, r.unit),
              "" if r.budget is None else f"< {_fmt(r.budget, r.unit)}", r.status, r.note)
             for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    lines = [f"{c[0]:<{widths[0]}}  {c[1]:>{widths[1]}}  {c[2]:>{widths[2]}}  "
             f"{c[3]:<{widths[3]}}  {c[4]}".rstrip() for c in [header, *cells]]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    rows = bench_import()
    lab_class, row = first_use()
    rows += [row, *bench_boot(lab_class), *bench_emulation(lab_class)]
    over = [r.name for r in rows if r.status == "OVER"]
    if args.json:
        out: dict[str, Any] = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "results": [{**asdict(r), "status": r.status or None} for r in rows],
            "over_budget": over,
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"ftracelab foundation benchmarks (Python {platform.python_version()}, "
              f"{platform.machine()}; single-run figures on this machine)\n")
        print(render_table(rows))
        print(f"\n{'all budgets met' if not over else 'OVER budget: ' + ', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
