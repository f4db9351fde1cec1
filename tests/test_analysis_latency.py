"""funclatency histograms, slowest calls, plots and Chrome trace JSON of df_calls()."""

from __future__ import annotations

import json
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from ftracelab import Lab
from ftracelab.analysis.calls import df_calls
from ftracelab.analysis.latency import (
    chrome_trace,
    df_log2_hist,
    df_slowest_calls,
    funclatency,
    plot_cpu_timeline,
    plot_icicle,
    plot_latency_cdf,
    plot_latency_hist,
)


def calls_of(durations: list[int], func: str = "f") -> pd.DataFrame:
    n = len(durations)
    df = pd.DataFrame({"func": pd.Categorical([func] * n), "depth": [0] * n, "pid": [1] * n,
                       "comm": pd.Categorical(["t"] * n), "cpu": [0] * n,
                       "start": [i * 10_000 for i in range(n)],
                       "duration": pd.array(durations, dtype="Int64"), "path_id": [0] * n})
    df.attrs["paths"] = {0: (func,)}
    return df


def test_log2_buckets_are_bcc_s() -> None:
    """bpf_log2l(): 0 and 1 share bucket 1 ("0 -> 1"), 2-3 bucket 2, 4-7 bucket 3 ..."""
    hist = df_log2_hist(calls_of([0, 1, 2, 3, 4, 7, 8, 1000]))
    assert hist[["low", "high"]].values.tolist()[:4] == [[0, 1], [2, 3], [4, 7], [8, 15]]
    assert hist["count"].tolist()[:4] == [2, 2, 2, 1]
    assert hist.iloc[-1].tolist() == [512, 1023, 1] and len(hist) == 10
    assert df_log2_hist(calls_of([5000]), unit="usecs")["count"].tolist() == [0, 0, 1]


def test_funclatency_text(golden: Callable[[str, str], None]) -> None:
    text = funclatency(calls_of([3] * 5 + [700] * 40 + [1500] * 11 + [70_000]))
    lines = text.splitlines()
    assert lines[0] == "     nsecs               : count     distribution"
    assert lines[10] == "       512 -> 1023       : 40       |****************************************|"
    assert lines[11].startswith("      1024 -> 2047       : 11       |***********")
    golden("funclatency.txt", text)
    assert funclatency(calls_of([])) == ""


def test_on_a_graph_trace() -> None:
    lab = Lab(cpus=2, seed=0)
    lab.tracefs.write("set_graph_function", "ksys_read do_sys_openat2")
    lab.tracefs.write("current_tracer", "function_graph")
    assert lab.run("cat").completed
    calls = df_calls(lab.trace().df_events())
    slow = df_slowest_calls(calls, 3)
    assert slow["duration"].is_monotonic_decreasing and len(slow) == 3
    assert all(p.split(";")[-1] == str(f) for p, f in zip(slow["path"], slow["func"], strict=True))
    trace = json.loads(chrome_trace(calls))
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == calls["duration"].notna().sum()
    assert {e["name"] for e in trace["traceEvents"] if e["ph"] == "M"} == {"thread_name"}
    for plot in (plot_latency_hist(calls, "ksys_read"), plot_latency_cdf(calls, ["ksys_read", "vfs_read"]),
                 plot_cpu_timeline(calls), plot_icicle(calls)):
        assert plot.figure is not None
    assert "ksys_read" in {t.get_text() for t in plot_icicle(calls).texts}
