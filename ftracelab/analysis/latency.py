"""Latency views of :func:`~ftracelab.analysis.calls.df_calls` frames: log2
histograms as bcc's ``funclatency`` prints them (tools/funclatency.py with
``print_log2_hist()`` of src/python/bcc/table.py: buckets of ``bpf_log2l()``),
the slowest calls with their call paths, plots (latency histogram and CDF,
per-CPU timeline, an icicle of the call tree) and Chrome trace-event JSON, which
the Perfetto UI and chrome://tracing open.

Only calls with a duration count (``df_calls()`` leaves those cut by the end of
the buffer without one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["chrome_trace", "df_log2_hist", "df_slowest_calls", "funclatency", "plot_cpu_timeline",
           "plot_icicle", "plot_latency_cdf", "plot_latency_hist"]

STARS_MAX = 40
UNITS = {"nsecs": 1, "usecs": 1_000, "msecs": 1_000_000}


def _durations(calls: pd.DataFrame, func: str | None = None) -> npt.NDArray[np.int64]:
    done = calls[calls["duration"].notna()]
    if func is not None:
        done = done[done["func"].astype(str) == func]
    return done["duration"].to_numpy(dtype=np.int64)


def _log2l(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """bpf_log2l(): floor(log2(v)) + 1, and 1 for 0 (frexp's exponent; exact below 2**53)."""
    return np.frexp(np.maximum(values, 1).astype(np.float64))[1].astype(np.int64)


def df_log2_hist(calls: pd.DataFrame, func: str | None = None, unit: str = "nsecs") -> pd.DataFrame:
    """The log2 buckets of the durations (of ``func``'s calls, or all) in ``unit``
    (nsecs, usecs or msecs, as funclatency's -u/-m divide): ``low``, ``high``
    (int64, inclusive) and ``count`` (int64), from bucket 1 to the highest used."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {sorted(UNITS)}, not {unit!r}")
    values = _durations(calls, func) // UNITS[unit]
    slots = np.bincount(_log2l(values), minlength=2) if values.size else np.zeros(2, dtype=np.int64)
    top = int(np.flatnonzero(slots)[-1]) if slots.any() else 0
    idx = np.arange(1, top + 1)
    low, high = (1 << idx) >> 1, (1 << idx) - 1
    low = np.where(low == high, low - 1, low)
    return pd.DataFrame({"low": low.astype(np.int64), "high": high.astype(np.int64),
                         "count": slots[1:top + 1].astype(np.int64)})


def _stars(val: int, val_max: int, width: int) -> str:
    n = 0
    while n <= width * val / val_max - 1 and n <= width - 1:
        n += 1
    return "*" * n


def funclatency(calls: pd.DataFrame, func: str | None = None, unit: str = "nsecs") -> str:
    """The histogram as ``funclatency`` prints it (print_log2_hist(), leading empty
    buckets kept): the header, then one ``low -> high : count |stars|`` line per bucket."""
    hist = df_log2_hist(calls, func, unit)
    if hist.empty or not hist["count"].any():
        return ""
    counts = hist["count"].tolist()
    val_max = max(counts)
    if len(hist) <= 32:
        header, width = f"     {unit:<19} : count     distribution\n", STARS_MAX
        line = "{:10d} -> {:<10d} : {:<8d} |{:<" + str(width) + "}|\n"
    else:
        header, width = f"               {unit:<29} : count     distribution\n", STARS_MAX // 2
        line = "{:20d} -> {:<20d} : {:<8d} |{:<" + str(width) + "}|\n"
    return header + "".join(line.format(lo, hi, n, _stars(n, val_max, width))
                            for lo, hi, n in zip(hist["low"], hist["high"], counts, strict=True))


def df_slowest_calls(calls: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` longest calls (rows of ``calls``), longest first, with ``path``: their
    call path as ``outer;...;func`` (str)."""
    done = calls[calls["duration"].notna()]
    top = done.sort_values("duration", ascending=False, kind="stable").head(n).copy()
    paths: dict[int, tuple[str, ...]] = calls.attrs.get("paths", {})
    top["path"] = [";".join(paths.get(int(p), ())) for p in top["path_id"]]
    return top


def _ax(ax: Axes | None) -> Axes:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 3.5))
    return ax


def plot_latency_hist(calls: pd.DataFrame, func: str | None = None, unit: str = "usecs",
                      ax: Axes | None = None) -> Axes:
    """The log2 histogram as bars (one per bucket)."""
    ax = _ax(ax)
    hist = df_log2_hist(calls, func, unit)
    labels = [f"{lo}-{hi}" for lo, hi in zip(hist["low"], hist["high"], strict=True)]
    ax.bar(range(len(hist)), hist["count"], color="#4c72b0")
    ax.set_xticks(range(len(hist)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel(unit)
    ax.set_ylabel("calls")
    ax.set_title(f"latency of {func or 'all calls'}")
    return ax


def plot_latency_cdf(calls: pd.DataFrame, funcs: list[str] | None = None, ax: Axes | None = None) -> Axes:
    """The cumulative distribution of durations (µs, log scale), one line per function."""
    ax = _ax(ax)
    selected: list[str | None] = list(funcs) if funcs else [None]
    for func in selected:
        d = np.sort(_durations(calls, func)) / 1000
        if d.size:
            ax.plot(d, np.arange(1, d.size + 1) / d.size, drawstyle="steps-post", label=func or "all")
    ax.set_xscale("log")
    ax.set_xlabel("duration (µs)")
    ax.set_ylabel("fraction of calls")
    ax.legend(fontsize=8)
    return ax


def plot_cpu_timeline(calls: pd.DataFrame, depth: int = 0, ax: Axes | None = None) -> Axes:
    """The calls at ``depth`` (outermost by default) as bars on one row per CPU, one
    colour per function."""
    ax = _ax(ax)
    rows = calls[(calls["depth"] == depth) & calls["duration"].notna()]
    funcs = sorted(set(rows["func"].astype(str)))
    colours = {f: f"C{i % 10}" for i, f in enumerate(funcs)}
    for cpu, group in rows.groupby("cpu"):
        spans = list(zip((group["start"] / 1000).tolist(),
                         (group["duration"].astype(np.int64) / 1000).tolist(), strict=True))
        ax.broken_barh(spans, (int(str(cpu)) - 0.4, 0.8),
                       facecolors=[colours[str(f)] for f in group["func"]])
    ax.set_yticks(sorted(rows["cpu"].unique()))
    ax.set_ylabel("CPU")
    ax.set_xlabel("time (µs)")
    for f in funcs[:10]:
        ax.plot([], [], color=colours[f], linewidth=6, label=f)
    ax.legend(fontsize=7, loc="upper right")
    return ax


def plot_icicle(calls: pd.DataFrame, ax: Axes | None = None, min_fraction: float = 0.005) -> Axes:
    """The call tree as an icicle (a flame graph upside down): each call path one box,
    as wide as its total time, under its parent; paths under ``min_fraction`` of the
    total are not labelled."""
    ax = _ax(ax)
    paths: dict[int, tuple[str, ...]] = calls.attrs.get("paths", {})
    done = calls[calls["duration"].notna()]
    totals = done["duration"].astype(np.int64).groupby(done["path_id"]).sum()
    width = {paths[p]: t for p, t in zip(totals.index.tolist(), totals.tolist(), strict=True)}
    roots = sorted(p for p in width if len(p) == 1)
    grand = sum(width[p] for p in roots) or 1

    def draw(path: tuple[str, ...], x: float) -> None:
        w = width[path] / grand
        ax.add_patch(_box(x, len(path) - 1, w))
        if w >= min_fraction * 4:
            ax.text(x + w / 2, len(path) - 0.5, path[-1], ha="center", va="center", fontsize=7, clip_on=True)
        child_x = x
        for child in sorted(c for c in width if len(c) == len(path) + 1 and c[:-1] == path):
            draw(child, child_x)
            child_x += width[child] / grand

    x = 0.0
    for root in roots:
        draw(root, x)
        x += width[root] / grand
    depth = max((len(p) for p in width), default=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(depth, 0)
    ax.set_xlabel("fraction of the time in the outermost calls")
    ax.set_ylabel("depth")
    return ax


def _box(x: float, y: int, w: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, 1, facecolor="#e8a33d", edgecolor="white", linewidth=0.5)


def chrome_trace(calls: pd.DataFrame) -> str:
    """Chrome trace-event JSON ("X" complete events: ts and dur in µs, pid and tid the
    task, one track per task; calls without a duration left out)."""
    done = calls[calls["duration"].notna()]
    events: list[dict[str, Any]] = [
        {"name": str(f), "cat": "function_graph", "ph": "X", "ts": s / 1000, "dur": int(d) / 1000,
         "pid": int(p), "tid": int(p), "args": {"cpu": int(c), "depth": int(dp)}}
        for f, s, d, p, c, dp in zip(done["func"], done["start"], done["duration"], done["pid"],
                                     done["cpu"], done["depth"], strict=True)]
    names = {int(p): str(c) for p, c in zip(done["pid"], done["comm"], strict=True)}
    events += [{"name": "thread_name", "ph": "M", "pid": p, "tid": p, "args": {"name": f"{c}-{p}"}}
               for p, c in sorted(names.items())]
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ns"})
