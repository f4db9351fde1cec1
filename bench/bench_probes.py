"""Probe-event benchmarks for ftracelab: fprobe and kprobe events with two fetch
arguments against the plain function tracer, on the same function, in the same rounds.

Run from a clone (the package need not be installed)::

    python bench/bench_probes.py            # aligned table
    python bench/bench_probes.py --json     # the same figures as JSON

Five fresh ``Lab(cpus=2, seed=0)``: untraced; the function tracer on
``__do_sys_getpid`` (set_ftrace_filter); an fprobe event on the same function with
two fetch arguments (``f:bench __do_sys_getpid a=$arg1 c=$comm``); a kprobe event
there (``p:bench __do_sys_getpid a=%di c=$comm``, a kprobe on ftrace); and a kprobe
event mid-function (``+0xa``, an int3 with the instruction run out of line). Each
runs ``getpid`` (loops=20000) once to warm up, then ``REPEATS`` rounds time them all
in turn. Events are counted in the buffers (``entries`` + ``overrun`` of
``per_cpu/cpuN/stats``). Reported: events per host second of traced run for each,
the cost each adds per event, and the ratio of the two costs. The design sets no
budget for these; they are reported.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchtable import Row, arg_parser, finish, timed_run

REPO = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from ftracelab.lab import Lab

LOOPS = 20_000
REPEATS = 3
FUNCTION = "__do_sys_getpid"


def _lab(kind: str) -> Lab:
    from ftracelab import Lab

    lab = Lab(cpus=2, seed=0)
    lab.tracefs.write("buffer_size_kb", "8192")
    if kind == "function":
        lab.tracefs.write("set_ftrace_filter", FUNCTION)
        lab.tracefs.write("current_tracer", "function")
    elif kind == "fprobe":
        lab.tracefs.write("dynamic_events", f"f:bench {FUNCTION} a=$arg1 c=$comm")
        lab.tracefs.write("events/fprobes/bench/enable", "1")
    elif kind in ("kprobe", "kprobe-int3"):
        where = FUNCTION if kind == "kprobe" else f"{FUNCTION}+0xa"
        lab.tracefs.write("kprobe_events", f"p:bench {where} a=%di c=$comm")
        lab.tracefs.write("events/kprobes/bench/enable", "1")
    return lab


def _events(lab: Lab) -> int:
    total = 0
    for cpu in range(lab.cpus):
        text = str(lab.tracefs.read(f"per_cpu/cpu{cpu}/stats"))
        stats = dict(line.split(": ", 1) for line in text.splitlines())
        total += int(stats["entries"]) + int(stats["overrun"])
    return total


def bench() -> tuple[list[Row], dict[str, Any]]:
    probes = ("function", "fprobe", "kprobe", "kprobe-int3")
    labs = {kind: _lab(kind) for kind in ("base", *probes)}
    for lab in labs.values():
        timed_run(lab, "getpid", loops=2_000)
    times: dict[str, list[float]] = {kind: [] for kind in labs}
    events: dict[str, list[int]] = {kind: [] for kind in probes}
    for _ in range(REPEATS):
        for kind, lab in labs.items():
            lab.tracefs.write("trace", "")
            times[kind].append(timed_run(lab, "getpid", loops=LOOPS))
            if kind in events:
                events[kind].append(_events(lab))
    med = {kind: statistics.median(t) for kind, t in times.items()}
    n = {kind: statistics.median(e) for kind, e in events.items()}
    if min(n.values()) < LOOPS:
        raise RuntimeError(f"expected one event per getpid, got {n}")
    cost = {kind: (med[kind] - med["base"]) / n[kind] * 1e9 for kind in n}
    rows = [
        Row("getpid untraced", med["base"], "s", note=f"loops={LOOPS}, median of {REPEATS}"),
        Row("function tracer: events", n["function"] / med["function"] / 1e6, "M events/s",
            note=f"{n['function']:,.0f} events; reported only"),
        Row("fprobe event, 2 fetch args: events", n["fprobe"] / med["fprobe"] / 1e6, "M events/s",
            note=f"{n['fprobe']:,.0f} events; reported only"),
        Row("function tracer: cost per event", cost["function"], "ns", note="(traced - untraced) / events"),
        Row("fprobe event: cost per event", cost["fprobe"], "ns",
            note="an fgraph entry, a Python handler, the record written natively"),
        Row("fprobe event / function tracer", cost["fprobe"] / cost["function"], "x", note="reported only"),
        Row("kprobe event on ftrace: events", n["kprobe"] / med["kprobe"] / 1e6, "M events/s",
            note=f"{n['kprobe']:,.0f} events; reported only"),
        Row("kprobe event on ftrace: cost per event", cost["kprobe"], "ns",
            note="an IPMODIFY ftrace_ops, a Python handler, the record written natively"),
        Row("int3 kprobe event: cost per event", cost["kprobe-int3"], "ns",
            note="int3, Python handler, the insn out of line, a second int3, lab_kprobe_emit"),
        Row("int3 kprobe / kprobe on ftrace", cost["kprobe-int3"] / cost["kprobe"], "x",
            note="reported only"),
    ]
    return rows, {"times_s": times, "events": events, "cost_ns": cost}


def main() -> int:
    args = arg_parser(__doc__).parse_args()
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    rows, figures = bench()
    return finish(rows, as_json=args.json, title="probe events benchmark", figures=figures)


if __name__ == "__main__":
    sys.exit(main())
