"""What the function profiler of kernel/trace/ftrace.c (function_profile_enabled,
``trace_stat/function<cpu>``: its Function and Hit columns) would show, computed from
function tracer events (kernel/trace/trace_functions.c function_trace_call(): one
TRACE_FN entry, ``ip`` and ``parent_ip``, per traced call), plus who called whom
and when.

Every helper takes a :meth:`~ftracelab.analysis.events.Trace.df_events` frame.
Only function-tracer events count: when the frame has an ``event`` column, rows
whose event is not ``function`` (sched events, funcgraph_entry/exit of a
function_graph capture ...) are ignored. Names come from the ``func`` and
``parent`` columns (kallsyms names, as ``%ps`` prints them); a frame opened
without kallsyms has no such columns, and the raw ``ip``/``parent_ip`` are
named in hex instead, as ``%ps`` prints an unknown address (a frame with neither
raises KeyError).

The profiler counts per CPU in the kernel (one ``trace_stat/function<cpu>`` file
each); :func:`df_calls_by_cpu` is that view, :func:`df_function_counts` the sum
over CPUs. Unlike the profiler these counts see only what the ring buffer kept:
events lost to an overwritten or full buffer (``df.attrs["lost_events"]``) are
not counted.

Everything is vectorised (integer codes, ``np.unique``, ``np.bincount``): no
Python loop per event. Name columns of the results are ``category`` (only the
names that occur), as in ``df_events()``; a missing name stays missing (NaN),
its calls still counted. Empty input gives empty frames with the documented
columns and dtypes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["df_call_edges", "df_calls_by_cpu", "df_calls_by_task", "df_function_counts", "df_rate",
           "function_events", "plot_calls_over_time", "plot_top_functions"]

I64 = npt.NDArray[np.int64]

#: The ``name`` of the function tracer's event (events/ftrace/function/format).
FUNCTION_EVENT = "function"
#: df_rate() refuses to build a grid larger than this many (bin, CPU) cells.
MAX_RATE_CELLS = 20_000_000


# ---- selecting and naming -------------------------------------------------------

def function_events(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` that are function-tracer events (``event == "function"``);
    all of them when ``df`` has no ``event`` column. Returns ``df`` itself when
    nothing is dropped."""
    if "event" not in df.columns or len(df) == 0:
        return df
    mask = (df["event"] == FUNCTION_EVENT).to_numpy(dtype=bool, na_value=False)
    return df if bool(mask.all()) else df.loc[mask]


def _names(df: pd.DataFrame, col: str, addr_col: str) -> tuple[I64, list[str]]:
    """Integer codes (-1 = missing) and the names they index, for ``col``; from the
    addresses in ``addr_col`` in hex when ``col`` is absent."""
    if col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            return (s.cat.codes.to_numpy().astype(np.int64),
                    [str(c) for c in s.cat.categories])
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]
    if addr_col in df.columns:
        addr = df[addr_col].to_numpy(dtype=np.uint64, na_value=0)
        uniq, inverse = np.unique(addr, return_inverse=True)
        return inverse.astype(np.int64).reshape(-1), [hex(int(a)) for a in uniq.tolist()]
    raise KeyError(f"the frame has neither a {col!r} nor an {addr_col!r} column: "
                   "is it a df_events() frame of function events?")


def _categorical(codes: I64, names: list[str]) -> pd.Categorical:
    """A categorical of ``names[codes]`` (-1 = NaN) whose categories are the names used, sorted."""
    used = np.unique(codes[codes >= 0])
    cats = sorted({names[i] for i in used.tolist()})
    pos = {name: k for k, name in enumerate(cats)}
    remap = np.full(len(names) + 1, -1, dtype=np.int64)     # remap[-1] (the last slot) stays -1
    for i in used.tolist():
        remap[i] = pos[names[i]]
    return pd.Categorical.from_codes(remap[codes], categories=pd.Index(cats, dtype=object))


def _empty_categorical() -> pd.Categorical:
    return pd.Categorical.from_codes(np.zeros(0, dtype=np.int64), categories=pd.Index([], dtype=object))


def _pair_counts(a: I64, b: I64) -> tuple[I64, I64, I64]:
    """Distinct (a, b) pairs of codes (-1 allowed) and how often each occurs."""
    if a.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    span = int(b.max()) + 2
    key = (a + 1) * span + (b + 1)
    uniq, counts = np.unique(key, return_counts=True)
    return (uniq // span - 1).astype(np.int64), (uniq % span - 1).astype(np.int64), counts.astype(np.int64)


def _sort_rank(cat: pd.Categorical) -> I64:
    """Sort keys for a categorical: its (sorted) category order, missing last."""
    codes = np.asarray(cat.codes, dtype=np.int64)
    return np.where(codes < 0, len(cat.categories), codes)


# ---- counts ----------------------------------------------------------------------

def df_function_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Calls per function, most called first: the profiler's Hit column summed over CPUs.

    ==========  =========  ===================================================
    ``func``    category   the traced function (``ip``'s kallsyms name)
    ``calls``   int64      function events for it
    ``share``   float64    ``calls`` / all function events (0..1)
    ==========  =========  ===================================================

    Sorted by ``calls`` descending, then ``func``; a RangeIndex.
    ``calls.sum()`` is the number of function events in ``df``.
    """
    fn = function_events(df)
    if len(fn) == 0:
        return pd.DataFrame({"func": _empty_categorical(), "calls": np.zeros(0, dtype=np.int64),
                             "share": np.zeros(0, dtype=np.float64)})
    codes, names = _names(fn, "func", "ip")
    shifted = codes + 1                                    # slot 0 = missing name
    counts = np.bincount(shifted, minlength=len(names) + 1)
    slots = np.flatnonzero(counts)
    func = _categorical(slots - 1, names)
    calls = counts[slots].astype(np.int64)
    order = np.lexsort((_sort_rank(func), -calls))
    return pd.DataFrame({"func": func[order], "calls": calls[order],
                         "share": calls[order] / float(len(fn))})


def df_calls_by_task(df: pd.DataFrame) -> pd.DataFrame:
    """Calls per task: who was running when the traced functions were entered.

    =============  =========  ==============================================
    ``comm``       category   the task's command (``<idle>`` for pid 0)
    ``pid``        int32      ``common_pid``
    ``calls``      int64      function events in that task's context
    ``functions``  int64      distinct functions among them
    ``share``      float64    ``calls`` / all function events (0..1)
    =============  =========  ==============================================

    One row per (pid, comm) pair seen (in a ``df_events()`` frame the comm
    follows from the pid: all idle tasks are ``<idle>``-0, whatever the CPU).
    Sorted by ``calls`` descending, then ``pid``; a RangeIndex.
    """
    fn = function_events(df)
    if len(fn) == 0:
        return pd.DataFrame({"comm": _empty_categorical(), "pid": np.zeros(0, dtype=np.int32),
                             "calls": np.zeros(0, dtype=np.int64), "functions": np.zeros(0, dtype=np.int64),
                             "share": np.zeros(0, dtype=np.float64)})
    upid, pid_code = np.unique(fn["pid"].to_numpy(dtype=np.int64), return_inverse=True)
    pid_code = pid_code.astype(np.int64).reshape(-1)
    if "comm" in fn.columns:
        comm_code, comm_names = _names(fn, "comm", "pid")
    else:
        comm_code, comm_names = np.full(len(fn), -1, dtype=np.int64), []
    task_pid, task_comm, calls = _pair_counts(pid_code, comm_code)
    # the task of every row, then distinct (task, func) pairs
    span = int(comm_code.max()) + 2
    task_key = (task_pid + 1) * span + (task_comm + 1)
    row_task = np.searchsorted(task_key, (pid_code + 1) * span + (comm_code + 1)).astype(np.int64)
    func_code, _ = _names(fn, "func", "ip")
    pair_task, _, _ = _pair_counts(row_task, func_code)
    functions = np.bincount(pair_task, minlength=task_key.size).astype(np.int64)
    comm = _categorical(task_comm, comm_names)
    pid = upid[task_pid].astype(np.int32)
    order = np.lexsort((pid, -calls))
    return pd.DataFrame({"comm": comm[order], "pid": pid[order], "calls": calls[order],
                         "functions": functions[order], "share": calls[order] / float(len(fn))})


def df_calls_by_cpu(df: pd.DataFrame, wide: bool = False) -> pd.DataFrame:
    """Calls per CPU and function: the profiler's per-CPU ``trace_stat/function<cpu>`` Hit counts.

    Long form (the default), one row per (CPU, function) seen:

    ==========  =========  ====================================================
    ``cpu``     int16      the CPU whose ring buffer held the events
    ``func``    category   the traced function
    ``calls``   int64      function events of ``func`` on ``cpu``
    ``share``   float64    ``calls`` / all function events on that CPU (0..1)
    ==========  =========  ====================================================

    Sorted by ``cpu``, then ``calls`` descending, then ``func``; a RangeIndex.

    ``wide=True`` gives the cpu x func pivot instead: index ``func`` (object,
    str), one int64 column per CPU (the column labels are the CPU numbers,
    int; the columns' name is ``"cpu"``), 0 where a CPU never entered the
    function; rows sorted by total calls descending, then name. Empty input
    gives an empty frame with an empty ``func`` index and no columns.
    """
    fn = function_events(df)
    if len(fn) == 0:
        if wide:
            empty = pd.DataFrame(index=pd.Index([], dtype=object, name="func"))
            empty.columns.name = "cpu"
            return empty
        return pd.DataFrame({"cpu": np.zeros(0, dtype=np.int16), "func": _empty_categorical(),
                             "calls": np.zeros(0, dtype=np.int64), "share": np.zeros(0, dtype=np.float64)})
    ucpu, cpu_code = np.unique(fn["cpu"].to_numpy(dtype=np.int64), return_inverse=True)
    cpu_code = cpu_code.astype(np.int64).reshape(-1)
    func_code, names = _names(fn, "func", "ip")
    pc, pf, calls = _pair_counts(cpu_code, func_code)
    func = _categorical(pf, names)
    cpu = ucpu[pc].astype(np.int16)
    if wide:
        rows = np.asarray(func.codes, dtype=np.int64)
        labels = list(func.categories)
        has_nan = bool((rows < 0).any())
        if has_nan:
            rows = np.where(rows < 0, len(labels), rows)
        table = np.zeros((len(labels) + has_nan, ucpu.size), dtype=np.int64)
        table[rows, pc] = calls
        total = table.sum(axis=1)
        order = np.lexsort((np.arange(total.size), -total))
        index = pd.Index([*labels, *([np.nan] if has_nan else [])], dtype=object, name="func")[order]
        out = pd.DataFrame(table[order], index=index, columns=pd.Index(ucpu.tolist(), name="cpu"))
        return out
    per_cpu = np.bincount(pc, weights=calls, minlength=ucpu.size)
    order = np.lexsort((_sort_rank(func), -calls, cpu))
    return pd.DataFrame({"cpu": cpu[order], "func": func[order], "calls": calls[order],
                         "share": calls[order] / per_cpu[pc[order]]})


def df_call_edges(df: pd.DataFrame) -> pd.DataFrame:
    """The call-graph edges the function tracer saw: caller (``parent_ip``) -> callee (``ip``).

    ==========  =========  ===================================================
    ``parent``  category   the caller, the function holding ``parent_ip`` (the
                           return address): may be notrace, then it has no
                           row of its own in :func:`df_function_counts`
    ``func``    category   the traced function it called
    ``calls``   int64      function events with that (parent, func)
    ``share``   float64    ``calls`` / all function events (0..1)
    ==========  =========  ===================================================

    Sorted by ``calls`` descending, then ``parent``, then ``func``; a
    RangeIndex. ``calls`` summed per ``func`` gives :func:`df_function_counts`.
    A tail call shows up with the tail caller's caller as ``parent``, as the
    kernel prints it.
    """
    fn = function_events(df)
    if len(fn) == 0:
        return pd.DataFrame({"parent": _empty_categorical(), "func": _empty_categorical(),
                             "calls": np.zeros(0, dtype=np.int64), "share": np.zeros(0, dtype=np.float64)})
    parent_code, parent_names = _names(fn, "parent", "parent_ip")
    func_code, func_names = _names(fn, "func", "ip")
    pp, pf, calls = _pair_counts(parent_code, func_code)
    parent = _categorical(pp, parent_names)
    func = _categorical(pf, func_names)
    order = np.lexsort((_sort_rank(func), _sort_rank(parent), -calls))
    return pd.DataFrame({"parent": parent[order], "func": func[order], "calls": calls[order],
                         "share": calls[order] / float(len(fn))})


def df_rate(df: pd.DataFrame, bin_ns: int) -> pd.DataFrame:
    """Function calls per time bin and CPU.

    ===============  =======  ======================================================
    ``bin_ts``       int64    the bin's start, trace-clock ns (a multiple of ``bin_ns``)
    ``cpu``          int16    the CPU
    ``calls``        int64    function events with ``bin_ts <= ts < bin_ts + bin_ns``
    ``calls_per_s``  float64  ``calls`` * 1e9 / ``bin_ns``
    ===============  =======  ======================================================

    A full grid: every bin from the first event's to the last event's, for
    every CPU that has function events, with 0 where a CPU entered no traced
    function (idle, or running notrace code). Sorted by ``bin_ts``, then
    ``cpu``; a RangeIndex. Raises ValueError for ``bin_ns`` < 1 or a grid of
    more than :data:`MAX_RATE_CELLS` cells (choose a wider bin).
    """
    if isinstance(bin_ns, bool) or not isinstance(bin_ns, (int, np.integer)) or bin_ns < 1:
        raise ValueError(f"bin_ns must be a positive integer number of nanoseconds, not {bin_ns!r}")
    bin_ns = int(bin_ns)
    fn = function_events(df)
    if len(fn) == 0:
        return pd.DataFrame({"bin_ts": np.zeros(0, dtype=np.int64), "cpu": np.zeros(0, dtype=np.int16),
                             "calls": np.zeros(0, dtype=np.int64),
                             "calls_per_s": np.zeros(0, dtype=np.float64)})
    ts = fn["ts"].to_numpy(dtype=np.int64)
    b = ts // bin_ns
    first, nbins = int(b.min()), int(b.max() - b.min()) + 1
    ucpu, cpu_code = np.unique(fn["cpu"].to_numpy(dtype=np.int64), return_inverse=True)
    cells = nbins * ucpu.size
    if cells > MAX_RATE_CELLS:
        raise ValueError(f"{nbins:,} bins of {bin_ns:,} ns x {ucpu.size} CPUs is more than "
                         f"{MAX_RATE_CELLS:,} cells: choose a wider bin")
    flat = (b - first) * ucpu.size + cpu_code.astype(np.int64).reshape(-1)
    calls = np.bincount(flat, minlength=cells).astype(np.int64)
    bin_ts = (np.repeat(np.arange(nbins, dtype=np.int64), ucpu.size) + first) * bin_ns
    return pd.DataFrame({"bin_ts": bin_ts, "cpu": np.tile(ucpu.astype(np.int16), nbins),
                         "calls": calls, "calls_per_s": calls * (1e9 / bin_ns)})


# ---- plots ----------------------------------------------------------------------

def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new_ax = plt.subplots(figsize=figsize, layout="constrained")
    return new_ax


def _nice_bin(span_ns: int, target: int = 100) -> int:
    """A 1-2-5 x 10^k bin width giving about ``target`` bins over ``span_ns``."""
    raw = max(span_ns / target, 1.0)
    exp = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * exp >= raw:
            return int(step * exp)
    return int(10 * exp)        # pragma: no cover - the loop always returns


def _time_unit(span_ns: float) -> tuple[str, float]:
    """A readable unit for a time span: (name, ns per unit)."""
    for name, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if span_ns >= 10 * scale:
            return name, scale
    return "ns", 1.0


def _fmt_ns(ns: int) -> str:
    """A bin width for a label: ``500 ns``, ``20 µs``, ``1.5 ms``, ``2 s``."""
    for name, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:g} {name}"
    return f"{ns} ns"


def plot_top_functions(df: pd.DataFrame, n: int = 15, ax: Axes | None = None) -> Axes:
    """Horizontal bars of the ``n`` most called functions (:func:`df_function_counts`),
    the most called on top, each labelled with its count. Returns the Axes."""
    counts = df_function_counts(df).head(n)
    ax = _axes(ax, (7.0, 1.0 + 0.28 * max(len(counts), 1)))
    if len(counts) == 0:
        ax.text(0.5, 0.5, "no function events", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("most called functions")
        return ax
    labels = [str(f) for f in counts["func"].astype(object).fillna("?")][::-1]
    bars = ax.barh(labels, counts["calls"].to_numpy()[::-1], color="tab:blue")
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts["calls"].tolist()[::-1]], padding=2, fontsize=8)
    ax.set_xlabel("calls (function tracer events)")
    ax.margins(x=0.12)
    total = len(function_events(df))
    ax.set_title(f"the {len(counts)} most called functions ({total:,} calls in all)")
    return ax


def plot_calls_over_time(df: pd.DataFrame, bin_ns: int | None = None, ax: Axes | None = None) -> Axes:
    """Function calls per time bin, one step line per CPU (:func:`df_rate`). ``bin_ns``
    defaults to a 1-2-5 width giving about 100 bins. Time runs from the first bin's
    start, in a unit fitted to the span. Returns the Axes."""
    ax = _axes(ax, (8.0, 3.5))
    fn = function_events(df)
    if len(fn) == 0:
        ax.text(0.5, 0.5, "no function events", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("function calls over time")
        return ax
    ts = fn["ts"].to_numpy(dtype=np.int64)
    if bin_ns is None:
        bin_ns = _nice_bin(int(ts.max() - ts.min()))
    rate = df_rate(fn, bin_ns)
    start = int(rate["bin_ts"].iloc[0])
    unit, scale = _time_unit(float(rate["bin_ts"].iloc[-1] - start + bin_ns))
    for cpu, group in rate.groupby("cpu", sort=True):
        x = (group["bin_ts"].to_numpy() - start) / scale
        y = group["calls"].to_numpy()
        # a step per bin, closed at the last bin's end
        ax.step(np.append(x, x[-1] + bin_ns / scale), np.append(y, y[-1]), where="post", label=f"CPU {cpu}")
    width = _fmt_ns(bin_ns)
    ax.set_xlabel(f"time since {start / 1e9:.6f} s ({unit})")
    ax.set_ylabel(f"calls per {width}")
    ax.set_title(f"function calls over time, {width} bins")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8)
    return ax
