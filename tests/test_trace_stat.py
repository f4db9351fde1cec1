"""The function profiler: function_profile_enabled, trace_stat/function<cpu> in the
kernel's format (golden file), its figures against the function_graph events of the
same run, graph-time, tracing_thresh, filters, and bad writes."""

from __future__ import annotations

import errno
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.analysis.calls import df_calls
from ftracelab.trace.trace_stat import STAT_HEADERS, ProfileRecord, function_stat_show, function_stat_text


def profiled(graph: bool = True, files: dict[str, str] | None = None) -> Lab:
    """A lab running cat and a fork storm with the profiler on (and, for the cross-
    checks, the function_graph tracer on the same functions, keeping every event)."""
    lab = Lab(cpus=2, seed=0)
    for name, value in (files or {}).items():
        lab.tracefs.write(name, value)
    if graph:
        lab.tracefs.write("buffer_size_kb", "8192")
        lab.tracefs.write("current_tracer", "function_graph")
    lab.tracefs.write("function_profile_enabled", "1")
    assert lab.run("cat").completed
    assert lab.run("fork-storm", loops=1, tasks=2).completed
    lab.tracefs.write("function_profile_enabled", "0")
    return lab


@pytest.fixture(scope="module")
def lab() -> Lab:
    return profiled()


def _graph_events(lab: Lab) -> pd.DataFrame:
    for cpu in range(lab.cpus):
        stats = str(lab.tracefs.read(f"per_cpu/cpu{cpu}/stats"))
        assert "overrun: 0\n" in stats, "the cross-check needs every event"
    return lab.trace().df_events()


def _counted_exits(ev: pd.DataFrame) -> pd.DataFrame:
    """The returns whose time the profiler adds: profile_graph_return() looks the
    function up in the hash of the CPU it returns on, so a call that migrated counts
    only if that CPU had already recorded a hit of the function."""
    entries = ev[ev["event"] == "funcgraph_entry"]
    first_hit = entries.groupby(["func", "cpu"], observed=True)["ts"].min()
    exits = ev[ev["event"] == "funcgraph_exit"]
    first = first_hit.reindex(pd.MultiIndex.from_arrays([exits["func"], exits["cpu"]])).to_numpy()
    counted: pd.DataFrame = exits[~np.isnan(first) & (first <= exits["ts"].to_numpy())]
    return counted


def _per_func(values: pd.Series, funcs: pd.Series) -> dict[str, int]:
    sums = values.astype(np.int64).groupby(funcs.astype(str)).sum()
    return {str(f): int(v) for f, v in sums.items() if v}


def test_hits_and_times_equal_the_graph_events(lab: Lab) -> None:
    prof = lab.profiler.df()
    assert len(prof) > 50 and (prof["hit"] > 0).all()
    ev = _graph_events(lab)
    entries = ev[ev["event"] == "funcgraph_entry"]
    ones = pd.Series(1, index=entries.index)
    assert _per_func(prof["hit"], prof["func"]) == _per_func(ones, entries["func"])
    exits = _counted_exits(ev)
    assert len(exits) < (ev["event"] == "funcgraph_exit").sum()        # some calls migrated
    durations = exits["rettime"].astype(np.int64) - exits["calltime"].astype(np.int64)
    assert _per_func(prof["time"], prof["func"]) == _per_func(durations, exits["func"])


def test_graph_time_off_counts_self_time() -> None:
    lab = profiled(files={"options/graph-time": "0"})
    ev = _graph_events(lab)
    calls = df_calls(ev)
    exits = _counted_exits(ev)
    keys = ["pid", "func", "end"]
    mine = exits.assign(end=exits["rettime"].astype(np.int64), func=exits["func"].astype(str))[keys]
    done = calls[calls["exit_seen"]].assign(end=lambda c: c["end"].astype(np.int64),
                                            func=lambda c: c["func"].astype(str))
    joined = mine.merge(done[[*keys, "self"]], on=keys, how="left", validate="one_to_one")
    assert joined["self"].notna().all()
    prof = lab.profiler.df()
    assert _per_func(prof["time"], prof["func"]) == _per_func(joined["self"], joined["func"])
    with_graph_time = profiled().profiler.df()
    assert prof["time"].sum() < with_graph_time["time"].sum()


def test_stat_file_golden(lab: Lab, golden: Callable[[str, str], None]) -> None:
    text = lab.tracefs.read("trace_stat/function0")
    assert isinstance(text, str) and text.startswith(STAT_HEADERS)
    golden("trace_stat_function0.txt", text)


def test_stat_file_is_sorted_by_total_time(lab: Lab) -> None:
    for cpu in range(lab.cpus):
        lines = str(lab.tracefs.read(f"trace_stat/function{cpu}")).splitlines()[2:]
        prof = lab.profiler.df()
        mine = prof[prof["cpu"] == cpu]
        assert len(lines) == len(mine)
        by_name = dict(zip(mine["func"].astype(str), mine["time"], strict=True))
        totals = [by_name[line.split()[0]] for line in lines]
        assert totals == sorted(totals, reverse=True)


def test_records_stay_until_reenabled(lab: Lab, idle_loop_only: Callable[[Lab], None]) -> None:
    assert lab.tracefs.read("function_profile_enabled") == "0\n"
    before = lab.tracefs.read("trace_stat/function1")
    assert lab.run("getpid", loops=10).completed           # the profiler is off
    assert lab.tracefs.read("trace_stat/function1") == before
    assert [g.name for g in lab.fgraph.gops] == ["function_graph"]      # fprofiler_ops has gone
    idle_loop_only(lab)


def test_reenabling_starts_over() -> None:
    lab = profiled(graph=False)
    lab.tracefs.write("function_profile_enabled", "1")
    assert lab.profiler.df().empty
    assert lab.run("getpid", loops=5).completed
    prof = lab.profiler.df()
    assert prof.loc[prof["func"] == "__do_sys_getpid", "hit"].sum() == 5


def test_tracing_thresh_hides_fast_functions(lab: Lab) -> None:
    prof = lab.profiler.df()
    prof = prof[prof["cpu"] == 0]
    lab.tracefs.write("tracing_thresh", "1")                  # µs
    try:
        lines = str(lab.tracefs.read("trace_stat/function0")).splitlines()[2:]
    finally:
        lab.tracefs.write("tracing_thresh", "0")
    assert len(lines) == (prof["avg"] >= 1000).sum() > 0


def test_set_ftrace_filter_limits_the_profiler() -> None:
    lab = profiled(graph=False, files={"set_ftrace_filter": "vfs_* ksys_read"})
    funcs = set(lab.profiler.df()["func"].astype(str))
    assert {"ksys_read", "vfs_read"} <= funcs
    assert all(f.startswith("vfs_") or f == "ksys_read" for f in funcs)


def test_bad_writes_are_einval_and_change_nothing(lab: Lab) -> None:
    for bad in ("on", "-1", "1x", ""):
        with pytest.raises(OSError) as exc:
            lab.tracefs.write("function_profile_enabled", bad)
        assert exc.value.errno == errno.EINVAL
    assert lab.tracefs.read("function_profile_enabled") == "0\n"
    assert "fprofiler_ops" not in [g.name for g in lab.fgraph.gops]


def test_function_stat_show_format() -> None:
    rec = ProfileRecord(0, 923, 20_703_657_000, 0)
    line = function_stat_show(rec, "a_function_name_longer_than_thirty_chars")
    assert line.startswith("  a_function_name_longer_than_th         923    20703657 us     22430.83 us     ")
    assert function_stat_show(ProfileRecord(0, 1, 1500, 1500 * 1500), "f") == (
        "  f                                        1    1.500 us        1.500 us        0.000 us    \n")


def test_ties_come_out_newest_first() -> None:
    recs = [ProfileRecord(1, 1, 10, 100), ProfileRecord(2, 1, 10, 100), ProfileRecord(3, 1, 20, 400)]
    text = function_stat_text(recs, lambda ip: f"f{ip}")
    assert [line.split()[0] for line in text.splitlines()[2:]] == ["f3", "f2", "f1"]


@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=40))
def test_variance_is_the_kernels(durations: list[int]) -> None:
    n, total, squares = len(durations), sum(durations), sum(d * d for d in durations)
    rec = ProfileRecord(0, n, total, squares)
    assert rec.avg == total // n
    expected = 0 if n == 1 else (n * squares - total * total) // (n * (n - 1) * 1000)
    assert rec.s2 == expected
    if n > 1:       # it is the sample variance, in ns^2 / 1000
        assert abs(rec.s2 - np.var(durations, ddof=1) / 1000) <= 1 + 1e-9 * rec.s2
