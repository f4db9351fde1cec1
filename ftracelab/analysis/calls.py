"""Calls from function_graph events, and their latencies: what
kernel/trace/trace_functions_graph.c prints as nested ``func() {`` ... ``}`` lines
(``funcgraph_entry``: func and depth; ``funcgraph_exit``: func, depth, overrun,
``calltime`` and ``rettime``), turned into one row per call, with per-function
statistics as the function profiler's ``trace_stat/function<cpu>`` and bcc's
``funclatency`` show them, and the folded stacks flamegraph.pl reads.

Calls are paired per task (a task's entries and exits nest; it may move between
CPUs while asleep in a call); the idle tasks, all pid 0, per CPU. Nothing is
invented at the edges of what the ring buffer kept:

* an exit whose entry is not in the buffer (cut by the buffer's start, or by lost
  events) is still a whole call: its exit carries ``calltime`` and ``rettime``.
  Its parent and self time are unknown (``entry_seen`` False);
* an entry whose exit is not there (the buffer ended first, the exit was lost, or
  the task exited mid-call) has no end or duration (``exit_seen`` False);
* a call that slept (a context switch inside it) keeps its wall duration, as the
  kernel prints it (sleep-time on, the default);
* calls made in hard interrupt context (``TRACE_FLAG_HARDIRQ`` in the entry's
  flags) are children of the call they interrupted, as their depth says, and
  marked ``irq``; the interrupted call's self time does not include them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["df_calls", "df_function_stats", "folded_stacks"]

TRACE_FLAG_HARDIRQ = 0x08
_CALL_COLUMNS = ("func", "depth", "pid", "comm", "cpu", "start", "end", "duration", "self",
                 "parent", "path_id", "entry_seen", "exit_seen", "irq")


def _graph_events(df: pd.DataFrame) -> pd.DataFrame:
    need = {"event", "pid", "cpu", "ts", "depth"}
    missing = need - set(df.columns)
    if missing:
        raise KeyError(f"not a function_graph frame: no column {sorted(missing)} (use Trace.df_events())")
    ev = df[df["event"].isin(["funcgraph_entry", "funcgraph_exit"])]
    if len(ev) and ("calltime" not in ev.columns or "rettime" not in ev.columns):
        raise KeyError("funcgraph_exit events without calltime/rettime columns")
    return ev


def _names(ev: pd.DataFrame) -> pd.Series:
    if "func" in ev.columns:
        return ev["func"].astype(object)
    return ev["field_func"].map(lambda a: hex(int(a)) if pd.notna(a) else None)


def df_calls(df: pd.DataFrame) -> pd.DataFrame:
    """One row per call found in a ``df_events()`` frame of function_graph events,
    in order of start.

    ==============  ===========================================================
    ``func``        category: the function (``%ps`` name, ``0x…`` without kallsyms)
    ``depth``       int16: the graph depth the kernel recorded (0 = outermost)
    ``pid``         int32, ``comm`` category, ``cpu`` int16 (where it was entered,
                    or where it returned when its entry is not in the buffer)
    ``start``       int64 ns: ``calltime`` (the entry's timestamp when the exit is
                    missing)
    ``end``         Int64 ns: ``rettime``; NA when the exit is missing
    ``duration``    Int64 ns: ``rettime - calltime``, what the kernel prints; NA
                    when the exit is missing
    ``self``        Int64 ns: duration minus the durations of its children; NA when
                    it or a child has no duration, or its entry is missing (its
                    children before the buffer's start are unknown)
    ``parent``      category: the enclosing call's function; NaN when unknown
    ``path_id``     int32: the call path (outermost function ... func) as a number;
                    :func:`folded_stacks` names them
    ``entry_seen``  bool, ``exit_seen`` bool: which records the buffer holds
    ``irq``         bool: entered in hard interrupt context
    ==============  ===========================================================

    ``df.attrs["paths"]`` maps each ``path_id`` to its path tuple (outermost first).
    """
    ev = _graph_events(df)
    names = _names(ev).tolist()
    kinds = (ev["event"].astype(object) == "funcgraph_exit").tolist()
    pids, cpus, ts = ev["pid"].tolist(), ev["cpu"].tolist(), ev["ts"].tolist()
    depths = ev["depth"].astype("Int64").fillna(-1).astype(np.int64).tolist()
    flags = (ev["common_flags"].tolist() if "common_flags" in ev.columns else [0] * len(ev))
    calltime = ev["calltime"].astype("Int64").fillna(-1).astype(np.int64).tolist() if len(ev) else []
    rettime = ev["rettime"].astype("Int64").fillna(-1).astype(np.int64).tolist() if len(ev) else []
    comms = ev["comm"].astype(object).tolist() if "comm" in ev.columns else [None] * len(ev)

    rows: list[dict[str, Any]] = []
    stacks: dict[tuple[int, int], list[int]] = {}        # task -> open rows, outermost first
    paths: dict[tuple[str, ...], int] = {}

    def path_of(stack: list[int], func: str) -> int:
        key = (*(rows[i]["func"] for i in stack), func)
        return paths.setdefault(key, len(paths))

    for k in range(len(names)):
        task = (pids[k], cpus[k] if pids[k] == 0 else -1)
        stack = stacks.setdefault(task, [])
        if not kinds[k]:                                  # funcgraph_entry
            while stack and rows[stack[-1]]["depth"] >= depths[k]:
                stack.pop()                               # their exits never came
            parent = stack[-1] if stack and rows[stack[-1]]["depth"] == depths[k] - 1 else None
            rows.append({"func": names[k], "depth": depths[k], "pid": pids[k], "comm": comms[k],
                         "cpu": cpus[k], "start": ts[k], "end": None, "parent_row": parent,
                         "path_id": path_of(stack if parent is not None else [], names[k]),
                         "entry_seen": True, "exit_seen": False,
                         "irq": bool(flags[k] & TRACE_FLAG_HARDIRQ)})
            stack.append(len(rows) - 1)
            continue
        # funcgraph_exit: close the open call it belongs to, or record a call cut at its entry
        while stack and rows[stack[-1]]["depth"] > depths[k]:
            stack.pop()
        if stack and rows[stack[-1]]["depth"] == depths[k] and rows[stack[-1]]["func"] == names[k]:
            row = rows[stack.pop()]
            row.update(start=calltime[k], end=rettime[k], exit_seen=True)
            continue
        parent = stack[-1] if stack and rows[stack[-1]]["depth"] == depths[k] - 1 else None
        rows.append({"func": names[k], "depth": depths[k], "pid": pids[k], "comm": comms[k],
                     "cpu": cpus[k], "start": calltime[k], "end": rettime[k], "parent_row": parent,
                     "path_id": path_of(stack if parent is not None else [], names[k]),
                     "entry_seen": False, "exit_seen": True, "irq": bool(flags[k] & TRACE_FLAG_HARDIRQ)})
    return _frame(rows, paths)


def _frame(rows: list[dict[str, Any]], paths: dict[tuple[str, ...], int]) -> pd.DataFrame:
    n = len(rows)
    start = np.array([r["start"] for r in rows], dtype=np.int64)
    has_end = np.array([r["end"] is not None for r in rows], dtype=bool)
    end = np.array([r["end"] if r["end"] is not None else 0 for r in rows], dtype=np.int64)
    dur = np.where(has_end, end - start, 0)
    parent = np.array([r["parent_row"] if r["parent_row"] is not None else -1 for r in rows], dtype=np.int64)
    entry_seen = np.array([r["entry_seen"] for r in rows], dtype=bool)
    child = parent >= 0
    child_sum = np.zeros(n, dtype=np.int64)
    np.add.at(child_sum, parent[child], dur[child])
    child_open = np.zeros(n, dtype=bool)
    child_open[parent[child & ~has_end]] = True
    self_known = has_end & entry_seen & ~child_open
    parent_names = [rows[p]["func"] if p >= 0 else None for p in parent.tolist()]
    out = pd.DataFrame({
        "func": pd.Categorical([r["func"] for r in rows]),
        "depth": np.array([r["depth"] for r in rows], dtype=np.int16),
        "pid": np.array([r["pid"] for r in rows], dtype=np.int32),
        "comm": pd.Categorical([r["comm"] for r in rows]),
        "cpu": np.array([r["cpu"] for r in rows], dtype=np.int16),
        "start": start,
        "end": pd.arrays.IntegerArray(end, ~has_end),
        "duration": pd.arrays.IntegerArray(dur, ~has_end),
        "self": pd.arrays.IntegerArray(dur - child_sum, ~self_known),
        "parent": pd.Categorical(parent_names),
        "path_id": np.array([r["path_id"] for r in rows], dtype=np.int32),
        "entry_seen": entry_seen,
        "exit_seen": np.array([r["exit_seen"] for r in rows], dtype=bool),
        "irq": np.array([r["irq"] for r in rows], dtype=bool),
    }, index=pd.RangeIndex(n))
    order = np.argsort(start, kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    out.attrs["paths"] = {i: p for p, i in paths.items()}
    return out


def df_function_stats(calls: pd.DataFrame) -> pd.DataFrame:
    """Per function, over the calls with a duration (:func:`df_calls`): ``count``
    (int64), ``total``, ``self`` (int64 ns, self over the calls that have one),
    ``mean`` (float64 ns), ``p50``, ``p90``, ``p99`` (float64 ns, linear
    interpolation) and ``max`` (int64 ns); ``cut`` (int64) counts its calls
    without a duration. Sorted by total, largest first; indexed by ``func``."""
    done = calls[calls["duration"].notna()]
    dur = done["duration"].astype(np.int64)
    grouped = dur.groupby(done["func"], observed=True)
    stats = pd.DataFrame({
        "count": grouped.count().astype(np.int64),
        "total": grouped.sum().astype(np.int64),
        "self": done["self"].astype("Int64").groupby(done["func"], observed=True).sum()
                .astype(np.int64),
        "mean": grouped.mean().astype(np.float64),
        "p50": grouped.quantile(0.5).astype(np.float64),
        "p90": grouped.quantile(0.9).astype(np.float64),
        "p99": grouped.quantile(0.99).astype(np.float64),
        "max": grouped.max().astype(np.int64),
    })
    cut = calls[calls["duration"].isna()].groupby("func", observed=True).size()
    stats["cut"] = cut.reindex(stats.index, fill_value=0).astype(np.int64)
    stats.index.name = "func"
    return stats.sort_values("total", ascending=False, kind="stable")


def folded_stacks(calls: pd.DataFrame, weight: str = "self") -> str:
    """flamegraph.pl's folded format: ``outer;...;func <ns>`` per call path, weighted by
    self time (``weight="self"``, so that each frame's width is its total) or by
    ``"duration"``; calls without that figure are left out."""
    paths: dict[int, tuple[str, ...]] = calls.attrs.get("paths", {})
    w = calls[weight]
    ok = w.notna()
    sums = w[ok].astype(np.int64).groupby(calls.loc[ok, "path_id"]).sum()
    lines: Iterable[str] = (f"{';'.join(paths[pid])} {ns}"
                            for pid, ns in zip(sums.index.tolist(), sums.tolist(), strict=True) if ns > 0)
    return "".join(f"{line}\n" for line in sorted(lines))
