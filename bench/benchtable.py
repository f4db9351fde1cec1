"""Shared result rows and table printing for the benchmarks in this folder.

Each ``bench_*.py`` script measures its figures as :class:`Row` objects, then
hands them to :func:`finish`, which prints them as an aligned table (or, with
``--json``, as JSON together with the script's other figures) and gives the
exit status: 1 if a figure misses its budget, else 0.

The scripts import this module as ``benchtable``: run as ``python
bench/bench_X.py``, Python puts this folder first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import operator
import platform
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftracelab.lab import Lab

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}

# How a value is printed, by unit (fmt): the format spec, then the unit. Other units: ",.3f".
_SPECS = {"ns": ",.0f", "x": ".2f", "MB": ",.1f", "MB/s": ",.1f", "calls/s": ",.0f", "syscalls/s": ",.0f"}


@dataclass(frozen=True)
class Row:
    """One measured figure, with its budget if it has one.

    The budget is an upper bound (``value <= budget``) unless ``at_least``
    (``value >= budget``); ``strict`` makes the bound exclusive (``<``, ``>``).
    ``spec`` overrides the unit's format spec in the table (see :func:`fmt`).
    """

    name: str
    value: float
    unit: str
    budget: float | None = None     # a bound in the same unit
    note: str = ""
    _: KW_ONLY
    at_least: bool = False          # the budget is a lower bound
    strict: bool = False            # the value may not equal the budget
    spec: str = ""

    @property
    def bound(self) -> str:
        """The comparison the value must pass against the budget: <, <=, > or >=."""
        return (">" if self.at_least else "<") + ("" if self.strict else "=")

    @property
    def status(self) -> str:
        """"" without a budget, else "ok" or "OVER" (the budget is missed)."""
        if self.budget is None:
            return ""
        return "ok" if _COMPARE[self.bound](self.value, self.budget) else "OVER"

    def as_json(self) -> dict[str, Any]:
        """The row's fields for --json (not the table's format spec), with its status or None."""
        out = asdict(self)
        del out["spec"]
        return {**out, "status": self.status or None}


def timed_run(lab: Lab, workload: str, **params: Any) -> float:
    """Wall-clock seconds of one uncounted ``lab.run(workload, **params)``; a run
    that does not complete is an error, not a figure."""
    t0 = time.perf_counter()
    rec = lab.run(workload, count_calls=False, **params)
    elapsed = time.perf_counter() - t0
    if not rec.completed:
        raise RuntimeError(f"{workload} run did not complete: {rec.stop}")
    return elapsed


def fmt(value: float, unit: str, spec: str = "") -> str:
    """A value in the table: seconds as ms, bool as yes/no, else with spec (or the unit's) and the unit."""
    if unit == "s":
        return f"{value * 1000:,.1f} ms"
    if unit == "bool":
        return "yes" if value else "no"
    return f"{value:{spec or _SPECS.get(unit, ',.3f')}} {unit}"


def render_table(rows: list[Row]) -> str:
    """The rows as aligned columns: measure, value, budget, status, note."""
    header = ("measure", "value", "budget", "", "note")
    cells = [(r.name, fmt(r.value, r.unit, r.spec),
              "" if r.budget is None else f"{r.bound} {fmt(r.budget, r.unit, r.spec)}",
              r.status, r.note)
             for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    lines = [f"{c[0]:<{widths[0]}}  {c[1]:>{widths[1]}}  {c[2]:>{widths[2]}}  "
             f"{c[3]:<{widths[3]}}  {c[4]}".rstrip() for c in [header, *cells]]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of doc (a script's docstring), with --json."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def finish(rows: list[Row], *, as_json: bool, title: str, figures: dict[str, Any],
           versions: dict[str, str] | None = None, footnote: str = "") -> int:
    """Print the rows and return the exit status: 1 if a row misses its budget, else 0.

    As a table: a heading (``ftracelab`` + title, the Python and other versions,
    the machine), the table, the footnote if any and the budgets' verdict. As
    JSON: the versions, the platform, the rows, the script's other figures and
    the names of the rows over budget.
    """
    over = [r.name for r in rows if r.status == "OVER"]
    versions = versions or {}
    if as_json:
        out: dict[str, Any] = {
            "python": platform.python_version(),
            **versions,
            "platform": platform.platform(),
            "results": [r.as_json() for r in rows],
            **figures,
            "over_budget": over,
        }
        print(json.dumps(out, indent=2))
    else:
        about = ", ".join([f"Python {platform.python_version()}",
                           *(f"{name} {version}" for name, version in versions.items()),
                           platform.machine()])
        print(f"ftracelab {title} ({about}; figures from this machine only)\n")
        print(render_table(rows))
        if footnote:
            print(f"\n{footnote}")
        print(f"\n{'all budgets met' if not over else 'OVER budget: ' + ', '.join(over)}")
    return 1 if over else 0
