"""ftracelab.analysis.functions: function-tracer frames into counts, edges and rates.

Two kinds of input: small frames built by hand (every figure known in advance,
plus the awkward cases: other events mixed in, no kallsyms, missing names,
empty frames), and a real lab run of the function tracer (filter ``*``,
``fork-storm`` then ``cat``), where the tables must agree with each other, with
plain pandas, with the kernel's own counters (per-CPU ``stats`` entries, the
``trace`` header) and with what the workloads are known to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from ftracelab import Lab
from ftracelab.analysis import open_trace
from ftracelab.analysis.functions import (
    MAX_RATE_CELLS,
    df_call_edges,
    df_calls_by_cpu,
    df_calls_by_task,
    df_function_counts,
    df_rate,
    function_events,
    plot_calls_over_time,
    plot_top_functions,
)
from ftracelab.formats.ring_buffer_page import RbEvent, encode_page
from ftracelab.runner import RunRecord

ADDR = {"vfs_read": 0xFFFFFFFF81001000, "ksys_read": 0xFFFFFFFF81002000,
        "_raw_spin_lock": 0xFFFFFFFF81003000, "do_syscall_64": 0xFFFFFFFF81004000}

# (ts, cpu, pid, comm, func, parent)
ROWS = [
    (100, 0, 7, "cat", "ksys_read", "do_syscall_64"),
    (110, 0, 7, "cat", "vfs_read", "ksys_read"),
    (120, 0, 7, "cat", "_raw_spin_lock", "vfs_read"),
    (130, 1, 0, "<idle>", "_raw_spin_lock", "do_syscall_64"),
    (250, 1, 9, "sh", "ksys_read", "do_syscall_64"),
    (260, 1, 9, "sh", "vfs_read", "ksys_read"),
    (270, 1, 9, "sh", "_raw_spin_lock", "vfs_read"),
    (280, 0, 7, "cat", "_raw_spin_lock", "vfs_read"),
]


def hand_frame(rows: list[tuple[int, int, int, str, str, str]] = ROWS) -> pd.DataFrame:
    """A frame shaped like df_events() of a function trace."""
    ts, cpu, pid, comm, func, parent = (list(c) for c in zip(*rows, strict=True))
    return pd.DataFrame({
        "ts": np.array(ts, dtype=np.int64), "cpu": np.array(cpu, dtype=np.int16),
        "pid": np.array(pid, dtype=np.int32), "comm": pd.Categorical(comm),
        "event": pd.Categorical(["function"] * len(rows)),
        "common_flags": np.zeros(len(rows), dtype=np.uint8),
        "common_preempt_count": np.zeros(len(rows), dtype=np.uint8),
        "ip": np.array([ADDR[f] + 4 for f in func], dtype=np.uint64),
        "parent_ip": np.array([ADDR[p] + 0x40 for p in parent], dtype=np.uint64),
        "func": pd.Categorical(func), "parent": pd.Categorical(parent)})


def as_dict(df: pd.DataFrame, key: str | list[str], value: str = "calls") -> dict[object, int]:
    """{key: value} of a result table; a tuple key for several key columns."""
    if isinstance(key, str):
        keys: list[object] = df[key].astype(object).tolist()
    else:
        keys = list(zip(*(df[k].astype(object).tolist() for k in key), strict=True))
    return {k: int(v) for k, v in zip(keys, df[value].tolist(), strict=True)}


def text(lab: Lab, path: str) -> str:
    out = lab.tracefs.read(path)
    assert isinstance(out, str)
    return out


def close(ax: Axes) -> None:
    plt.close(ax.get_figure(root=True))


# ---- frames built by hand -------------------------------------------------------

def test_function_counts_by_hand() -> None:
    out = df_function_counts(hand_frame())
    assert list(out.columns) == ["func", "calls", "share"]
    assert out["func"].tolist() == ["_raw_spin_lock", "ksys_read", "vfs_read"]   # ties by name
    assert out["calls"].tolist() == [4, 2, 2]
    assert out["share"].tolist() == [0.5, 0.25, 0.25]
    assert isinstance(out["func"].dtype, pd.CategoricalDtype)
    assert out["calls"].dtype == np.int64 and out["share"].dtype == np.float64
    assert list(out.index) == [0, 1, 2]


def test_calls_by_task_by_hand() -> None:
    out = df_calls_by_task(hand_frame())
    assert list(out.columns) == ["comm", "pid", "calls", "functions", "share"]
    assert out["comm"].tolist() == ["cat", "sh", "<idle>"]
    assert out["pid"].tolist() == [7, 9, 0]
    assert out["calls"].tolist() == [4, 3, 1]
    assert out["functions"].tolist() == [3, 3, 1]
    assert out["pid"].dtype == np.int32 and out["functions"].dtype == np.int64
    assert out["share"].sum() == pytest.approx(1.0)


def test_calls_by_cpu_long_and_wide() -> None:
    out = df_calls_by_cpu(hand_frame())
    assert list(out.columns) == ["cpu", "func", "calls", "share"]
    assert out["cpu"].dtype == np.int16
    assert list(zip(out["cpu"].tolist(), out["func"].astype(str), out["calls"].tolist(), strict=True)) == [
        (0, "_raw_spin_lock", 2), (0, "ksys_read", 1), (0, "vfs_read", 1),
        (1, "_raw_spin_lock", 2), (1, "ksys_read", 1), (1, "vfs_read", 1)]
    assert out.groupby("cpu")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    wide = df_calls_by_cpu(hand_frame(), wide=True)
    assert wide.index.name == "func" and wide.columns.name == "cpu"
    assert [int(c) for c in wide.columns] == [0, 1]
    assert wide.index.tolist() == ["_raw_spin_lock", "ksys_read", "vfs_read"]
    assert wide.to_numpy().tolist() == [[2, 2], [1, 1], [1, 1]]
    assert all(wide.dtypes == np.int64)


def test_call_edges_by_hand() -> None:
    out = df_call_edges(hand_frame())
    assert list(out.columns) == ["parent", "func", "calls", "share"]
    assert as_dict(out, ["parent", "func"]) == {
        ("vfs_read", "_raw_spin_lock"): 3, ("do_syscall_64", "ksys_read"): 2,
        ("ksys_read", "vfs_read"): 2, ("do_syscall_64", "_raw_spin_lock"): 1}
    assert out["calls"].tolist() == [3, 2, 2, 1]
    assert out["parent"].tolist()[1:3] == ["do_syscall_64", "ksys_read"]       # ties by parent


def test_rate_by_hand() -> None:
    out = df_rate(hand_frame(), 100)
    assert list(out.columns) == ["bin_ts", "cpu", "calls", "calls_per_s"]
    assert out.dtypes.tolist() == [np.int64, np.int16, np.int64, np.float64]
    # bins 100, 200 (empty on both CPUs: still there) and ... the full grid
    assert list(zip(out["bin_ts"].tolist(), out["cpu"].tolist(), out["calls"].tolist(), strict=True)) == [
        (100, 0, 3), (100, 1, 1), (200, 0, 1), (200, 1, 3)]
    assert out["calls_per_s"].tolist() == [3e7, 1e7, 1e7, 3e7]
    gappy = df_rate(hand_frame(), 40)
    assert gappy["bin_ts"].tolist() == [b for b in range(80, 281, 40) for _ in (0, 1)]
    assert int(gappy["calls"].sum()) == len(ROWS)
    assert (gappy["bin_ts"] % 40 == 0).all()


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "100"])
def test_rate_rejects_bad_bins(bad: object) -> None:
    with pytest.raises(ValueError, match="bin_ns"):
        df_rate(hand_frame(), bad)  # type: ignore[arg-type]


def test_rate_refuses_a_huge_grid() -> None:
    df = hand_frame()
    df.loc[len(df) - 1, "ts"] = MAX_RATE_CELLS * 10
    with pytest.raises(ValueError, match="wider bin"):
        df_rate(df, 1)


def test_other_events_are_ignored() -> None:
    df = hand_frame()
    extra = df.iloc[[0, 1]].copy()
    extra["event"] = "funcgraph_exit"
    mixed = pd.concat([df, extra], ignore_index=True)
    mixed["event"] = pd.Categorical(mixed["event"].astype(str))
    assert len(function_events(mixed)) == len(df)
    assert function_events(df) is df
    for fn in (df_function_counts, df_calls_by_task, df_calls_by_cpu, df_call_edges):
        pd.testing.assert_frame_equal(fn(mixed), fn(df), check_categorical=False)


def test_without_kallsyms_addresses_are_hex() -> None:
    df = hand_frame().drop(columns=["func", "parent"])
    counts = df_function_counts(df)
    assert counts["func"].tolist()[0] == hex(ADDR["_raw_spin_lock"] + 4)
    assert counts["calls"].tolist() == [4, 2, 2]
    edges = df_call_edges(df)
    pair = (hex(ADDR["vfs_read"] + 0x40), hex(ADDR["_raw_spin_lock"] + 4))
    assert pair in as_dict(edges, ["parent", "func"])


def test_missing_names_keep_their_calls() -> None:
    df = hand_frame()
    df["func"] = df["func"].astype(object)
    df.loc[[0, 4], "func"] = None                   # plain object column with gaps
    counts = df_function_counts(df)
    assert int(counts["calls"].sum()) == len(df)
    assert counts["func"].isna().sum() == 1
    assert int(counts.loc[counts["func"].isna(), "calls"].iloc[0]) == 2
    wide = df_calls_by_cpu(df, wide=True)
    assert int(wide.to_numpy().sum()) == len(df)


EMPTY_COLUMNS = {
    df_function_counts: ["func", "calls", "share"],
    df_calls_by_task: ["comm", "pid", "calls", "functions", "share"],
    df_calls_by_cpu: ["cpu", "func", "calls", "share"],
    df_call_edges: ["parent", "func", "calls", "share"],
}


@pytest.mark.parametrize("empty", [hand_frame().iloc[:0], pd.DataFrame()], ids=["no-rows", "no-columns"])
def test_empty_frames(empty: pd.DataFrame) -> None:
    full = hand_frame()
    for fn, columns in EMPTY_COLUMNS.items():
        out = fn(empty)
        assert len(out) == 0 and list(out.columns) == columns
        assert [str(d) for d in out.dtypes] == [str(d) for d in fn(full).dtypes]
    rate = df_rate(empty, 10)
    assert len(rate) == 0 and rate.dtypes.tolist() == [np.int64, np.int16, np.int64, np.float64]
    wide = df_calls_by_cpu(empty, wide=True)
    assert wide.shape == (0, 0) and wide.index.name == "func"
    only_sched = full.assign(event=pd.Categorical(["sched_switch"] * len(full)))
    assert len(df_function_counts(only_sched)) == 0
    for plot in (plot_top_functions, plot_calls_over_time):
        ax = plot(empty)
        assert isinstance(ax, Axes) and not ax.patches and not ax.lines
        close(ax)


def test_plots_by_hand() -> None:
    fig, ax = plt.subplots()
    assert plot_top_functions(hand_frame(), n=2, ax=ax) is ax
    assert len(ax.patches) == 2
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ksys_read", "_raw_spin_lock"]  # top = most
    plt.close(fig)
    ax = plot_calls_over_time(hand_frame(), bin_ns=50)
    assert isinstance(ax, Axes) and len(ax.lines) == 2
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["CPU 0", "CPU 1"]
    close(ax)


def test_through_encoded_pages(tmp_path: Path) -> None:
    """Hand-made ring-buffer pages, through open_trace(), into the tables."""
    from ftracelab.trace.trace_entries import FUNCTION_FORMAT

    root = tmp_path
    (root / "events" / "ftrace" / "function").mkdir(parents=True)
    (root / "events" / "ftrace" / "function" / "format").write_text(FUNCTION_FORMAT)
    (root / "kallsyms").write_text("".join(f"{a:016x} T {n}\n" for n, a in sorted(ADDR.items())))
    (root / "saved_cmdlines").write_text("7 cat\n9 sh\n")
    for cpu in (0, 1):
        events = [RbEvent(ts, (1).to_bytes(2, "little") + b"\0\0" + pid.to_bytes(4, "little")
                          + (ADDR[f] + 4).to_bytes(8, "little") + (ADDR[p] + 0x40).to_bytes(8, "little"))
                  for ts, c, pid, _, f, p in ROWS if c == cpu]
        (root / "per_cpu" / f"cpu{cpu}").mkdir(parents=True)
        (root / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw").write_bytes(encode_page(events))
    df = open_trace(root).df_events()
    assert len(df) == len(ROWS)
    for fn in (df_function_counts, df_calls_by_task, df_calls_by_cpu, df_call_edges):
        pd.testing.assert_frame_equal(fn(df), fn(hand_frame()), check_categorical=False)
    pd.testing.assert_frame_equal(df_rate(df, 100), df_rate(hand_frame(), 100))


# ---- a real lab run ----------------------------------------------------------------

@pytest.fixture(scope="module")
def traced() -> tuple[Lab, pd.DataFrame, list[RunRecord]]:
    lab = Lab(cpus=2, seed=0)
    lab.tracefs.write("set_ftrace_filter", "*")
    lab.tracefs.write("current_tracer", "function")
    records = [lab.run("fork-storm"), lab.run("cat")]
    assert all(r.completed for r in records)
    return lab, lab.trace().df_events(), records


def test_lab_invariants(traced: tuple[Lab, pd.DataFrame, list[RunRecord]]) -> None:
    lab, df, _ = traced
    assert len(df) > 1000 and df.attrs["lost_events"] == {0: 0, 1: 0}
    counts, tasks = df_function_counts(df), df_calls_by_task(df)
    by_cpu, edges = df_calls_by_cpu(df), df_call_edges(df)
    rate = df_rate(df, 5_000)
    for table in (counts, tasks, by_cpu, edges, rate):
        assert int(table["calls"].sum()) == len(df)
    assert counts["share"].sum() == pytest.approx(1.0)
    # the same figures as plain pandas
    assert as_dict(counts, "func") == {k: int(v) for k, v in
                                       df["func"].astype(object).value_counts().items()}
    assert (counts["calls"].diff().dropna() <= 0).all()
    pandas_tasks = df.groupby(["pid", "comm"], observed=True).agg(calls=("func", "size"),
                                                                  functions=("func", "nunique"))
    assert as_dict(tasks, ["pid", "comm"]) == as_dict(pandas_tasks.reset_index(), ["pid", "comm"])
    assert as_dict(tasks, ["pid", "comm"], "functions") == \
        as_dict(pandas_tasks.reset_index(), ["pid", "comm"], "functions")
    # per CPU: the ring buffer's own entry counts (per_cpu/cpuN/stats)
    per_cpu = by_cpu.groupby("cpu")["calls"].sum()
    for cpu in range(lab.cpus):
        entries = re.search(r"^entries: (\d+)$", text(lab, f"per_cpu/cpu{cpu}/stats"), re.M)
        assert entries and int(per_cpu.get(cpu, 0)) == int(entries[1])
    header = re.search(r"entries-in-buffer/entries-written: (\d+)/(\d+)", text(lab, "trace"))
    assert header and int(header[1]) == int(header[2]) == len(df)
    # edges: every (parent, func) pair occurs in the frame, and they add up per func
    seen = set(zip(df["parent"].astype(str), df["func"].astype(str), strict=True))
    pairs = set(zip(edges["parent"].astype(str), edges["func"].astype(str), strict=True))
    assert pairs == seen
    assert as_dict(edges.groupby("func", observed=True)["calls"].sum().reset_index(), "func") == \
        as_dict(counts, "func")
    wide = df_calls_by_cpu(df, wide=True)
    assert wide.sum(axis=1).to_dict() == as_dict(counts, "func")
    rate_cpu = rate.groupby("cpu")["calls"].sum()
    assert rate_cpu.to_dict() == per_cpu.to_dict()


def test_lab_known_facts(traced: tuple[Lab, pd.DataFrame, list[RunRecord]]) -> None:
    """What fork-storm (4 rounds of 6 children) and cat are known to do."""
    _, df, records = traced
    calls = as_dict(df_function_counts(df), "func")
    syscalls = sum(r.syscalls for r in records)
    assert calls["x64_sys_call"] == syscalls                    # the dispatcher, once per syscall
    assert calls["__do_sys_getpid"] == 4 * 6                    # every child calls getpid once
    assert calls["kernel_clone"] == calls["do_exit"] == 4 * 6 + 2   # + the two workloads' tasks
    assert calls["_raw_spin_lock"] == calls["_raw_spin_unlock"]
    assert calls["vfs_read"] == calls["ksys_read"]
    tasks = df_calls_by_task(df)
    storm = tasks[tasks["comm"] == "fork-storm"]
    assert len(storm) == 4 * 6 + 1 and storm["pid"].is_unique
    assert (tasks["comm"] == "cat").sum() == 1
    edges = as_dict(df_call_edges(df), ["parent", "func"])
    assert edges[("ksys_read", "vfs_read")] == calls["vfs_read"]
    assert edges[("do_syscall_64", "x64_sys_call")] == calls["x64_sys_call"]


def test_lab_plots(traced: tuple[Lab, pd.DataFrame, list[RunRecord]]) -> None:
    _, df, _ = traced
    ax = plot_top_functions(df, n=10)
    assert isinstance(ax, Axes) and len(ax.patches) == 10
    heights = [p.get_width() for p in ax.patches if isinstance(p, Rectangle)]
    assert heights == sorted(heights)                           # drawn bottom-up: the most on top
    close(ax)
    ax = plot_calls_over_time(df)
    assert isinstance(ax, Axes) and len(ax.lines) == 2
    drawn = sum(float(np.asarray(line.get_ydata())[:-1].sum()) for line in ax.lines)  # minus the closing step
    assert drawn == len(df)
    close(ax)
