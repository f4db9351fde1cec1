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

from array import array
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["df_calls", "df_function_stats", "folded_stacks"]

TRACE_FLAG_HARDIRQ = 0x08


def _graph_events(df: pd.DataFrame) -> pd.DataFrame:
    need = {"event", "pid", "cpu", "ts", "depth"}
    missing = need - set(df.columns)
    if missing:
        raise KeyError(f"not a function_graph frame: no column {sorted(missing)} (use Trace.df_events())")
    graph = df["event"].isin(["funcgraph_entry", "funcgraph_exit"]).to_numpy(dtype=bool)
    ev = df if graph.all() else df[graph]                 # a function_graph trace needs no copy
    if len(ev) and ("calltime" not in ev.columns or "rettime" not in ev.columns):
        raise KeyError("funcgraph_exit events without calltime/rettime columns")
    return ev


def _names(ev: pd.DataFrame) -> pd.Categorical:
    if "func" in ev.columns:
        return pd.Categorical(ev["func"])
    return pd.Categorical(ev["field_func"].map(lambda a: hex(int(a)) if pd.notna(a) else None))


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
    n = len(ev)
    names = _names(ev)
    codes = names.codes.astype(np.int64)
    exits = (ev["event"] == "funcgraph_exit").to_numpy(dtype=bool)
    pids = ev["pid"].to_numpy(dtype=np.int64)
    cpus = ev["cpu"].to_numpy(dtype=np.int64)
    depths = ev["depth"].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    # the idle tasks (pid 0) are one per CPU; every other task is its pid
    tasks = np.where(pids == 0, -1 - cpus, pids)

    calls = _Calls()
    stacks: dict[int, list[int]] = {}                     # task -> open calls, outermost first
    depth_of, code_of, path_of = calls.depth, calls.code, calls.path_id
    for lo in range(0, n, _CHUNK):                        # bounded Python-object copies
        hi = min(lo + _CHUNK, n)
        chunk = zip(range(lo, hi), tasks[lo:hi].tolist(), exits[lo:hi].tolist(),
                    depths[lo:hi].tolist(), codes[lo:hi].tolist(), strict=True)
        for k, task, is_exit, d, code in chunk:
            stack = stacks.setdefault(task, [])
            if not is_exit:                               # funcgraph_entry
                while stack and depth_of[stack[-1]] >= d:
                    stack.pop()                           # their exits never came
                parent = stack[-1] if stack and depth_of[stack[-1]] == d - 1 else -1
                stack.append(calls.add(k, d, code, parent, path_of[parent] if parent >= 0 else -1))
                continue
            # funcgraph_exit: close the open call it belongs to, or record a call cut at its entry
            while stack and depth_of[stack[-1]] > d:
                stack.pop()
            if stack and depth_of[stack[-1]] == d and code_of[stack[-1]] == code:
                calls.exit_ev[stack.pop()] = k
                continue
            parent = stack[-1] if stack and depth_of[stack[-1]] == d - 1 else -1
            calls.exit_ev[calls.add(k, d, code, parent, path_of[parent] if parent >= 0 else -1)] = k
    del codes, pids, cpus, depths, tasks
    return calls.frame(ev, names, exits)


_CHUNK = 1 << 20


class _Calls:
    """The calls found so far, as compact parallel columns of event indices (the
    rest is gathered from the event columns at the end); call paths interned as
    (parent path, function)."""

    def __init__(self) -> None:
        self.first_ev = array("q")                        # the entry, or the exit if no entry
        self.exit_ev = array("q")                         # -1: no exit seen
        self.depth = array("q")
        self.code = array("q")                            # the function's category code
        self.parent = array("q")                          # -1: unknown
        self.path_id = array("q")
        self._path_ids: dict[tuple[int, int], int] = {}
        self.paths: list[tuple[int, ...]] = []

    def add(self, ev: int, depth: int, code: int, parent: int, parent_path: int) -> int:
        key = (parent_path, code)
        path = self._path_ids.get(key)
        if path is None:
            path = self._path_ids[key] = len(self.paths)
            self.paths.append((*(self.paths[parent_path] if parent_path >= 0 else ()), code))
        self.first_ev.append(ev)
        self.exit_ev.append(-1)
        self.depth.append(depth)
        self.code.append(code)
        self.parent.append(parent)
        self.path_id.append(path)
        return len(self.first_ev) - 1

    def frame(self, ev: pd.DataFrame, names: pd.Categorical, exits: np.ndarray) -> pd.DataFrame:
        first = np.frombuffer(self.first_ev, dtype=np.int64)
        exit_ev = np.frombuffer(self.exit_ev, dtype=np.int64)
        n = len(first)
        has_end = exit_ev >= 0
        at_exit = np.maximum(exit_ev, 0)
        entry_seen = ~exits[first]

        def column(name: str, fill: int) -> np.ndarray:
            if name not in ev.columns:
                return np.full(len(ev), fill, dtype=np.int64)
            return ev[name].astype("Int64").fillna(fill).to_numpy(dtype=np.int64)

        ts, calltime, rettime = column("ts", 0), column("calltime", 0), column("rettime", 0)
        start = np.where(has_end, calltime[at_exit], ts[first])
        end = np.where(has_end, rettime[at_exit], 0)
        dur = np.where(has_end, end - start, 0)
        parent = np.frombuffer(self.parent, dtype=np.int64)
        child = parent >= 0
        child_sum = np.zeros(n, dtype=np.int64)
        np.add.at(child_sum, parent[child], dur[child])
        child_open = np.zeros(n, dtype=bool)
        child_open[parent[child & ~has_end]] = True
        self_known = has_end & entry_seen & ~child_open
        codes = np.frombuffer(self.code, dtype=np.int64)
        comm = (pd.Categorical(ev["comm"])[first] if "comm" in ev.columns
                else pd.Categorical([None] * n))
        by_start = np.argsort(start, kind="stable")
        # entries come in start order, mostly: then no column needs a copy
        order: np.ndarray | slice = slice(None) if (by_start == np.arange(n)).all() else by_start
        out = pd.DataFrame({
            "func": pd.Categorical.from_codes(codes[order], dtype=names.dtype),
            "depth": np.frombuffer(self.depth, dtype=np.int64)[order].astype(np.int16),
            "pid": ev["pid"].to_numpy(dtype=np.int32)[first[order]],
            "comm": comm[order],
            "cpu": ev["cpu"].to_numpy(dtype=np.int16)[first[order]],
            "start": start[order],
            "end": pd.arrays.IntegerArray(end[order], ~has_end[order]),
            "duration": pd.arrays.IntegerArray(dur[order], ~has_end[order]),
            "self": pd.arrays.IntegerArray((dur - child_sum)[order], ~self_known[order]),
            "parent": pd.Categorical.from_codes(np.where(child, codes[np.maximum(parent, 0)], -1)[order],
                                                dtype=names.dtype),
            "path_id": np.frombuffer(self.path_id, dtype=np.int64)[order].astype(np.int32),
            "entry_seen": entry_seen[order],
            "exit_seen": has_end[order],
            "irq": (column("common_flags", 0)[first[order]] & TRACE_FLAG_HARDIRQ) != 0,
        }, index=pd.RangeIndex(n), copy=False)
        categories = names.categories.tolist()
        out.attrs["paths"] = {i: tuple(categories[c] for c in p) for i, p in enumerate(self.paths)}
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
