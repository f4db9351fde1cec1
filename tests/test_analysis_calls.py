"""df_calls() and friends on hand-made function_graph event frames: pairing per task,
the edges of the buffer, lost exits, context switches, interrupts, self time,
statistics and folded stacks."""

from __future__ import annotations

import pandas as pd
import pytest

from ftracelab.analysis.calls import df_calls, df_function_stats, folded_stacks


def events(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """(ts, cpu, pid, kind, func, depth[, calltime, rettime][, flags]) -> a df_events-like frame."""
    out = []
    for r in rows:
        ts, cpu, pid, kind, func, depth, *rest = r
        assert isinstance(pid, int)
        flags = rest.pop() if len(rest) in (1, 3) else 0
        call, ret = [*rest, None, None][:2]
        out.append({"ts": ts, "cpu": cpu, "pid": pid, "comm": f"t{pid}",
                    "event": "funcgraph_entry" if kind == "E" else "funcgraph_exit",
                    "common_flags": flags, "depth": depth, "calltime": call, "rettime": ret, "func": func})
    df = pd.DataFrame(out)
    df["event"] = df["event"].astype("category")
    for c in ("depth",):
        df[c] = df[c].astype("Int32")
    for c in ("calltime", "rettime"):
        df[c] = df[c].astype("UInt64")
    df["func"] = df["func"].astype("category")
    return df


def test_nesting_self_time_and_paths() -> None:
    df = events([
        (100, 0, 7, "E", "a", 0),
        (110, 0, 7, "E", "b", 1),
        (130, 0, 7, "X", "b", 1, 105, 130),
        (140, 0, 7, "E", "c", 1),
        (150, 0, 7, "E", "b", 2),
        (160, 0, 7, "X", "b", 2, 148, 158),
        (170, 0, 7, "X", "c", 1, 138, 168),
        (200, 0, 7, "X", "a", 0, 98, 199),
    ])
    calls = df_calls(df)
    assert calls["func"].astype(str).tolist() == ["a", "b", "c", "b"]
    assert calls["duration"].tolist() == [101, 25, 30, 10]
    assert calls["self"].tolist() == [101 - 25 - 30, 25, 20, 10]
    assert calls["parent"].astype(object).tolist()[1:] == ["a", "a", "c"]
    assert pd.isna(calls["parent"].iloc[0])
    assert calls["duration"].tolist() == (calls["end"] - calls["start"]).tolist()
    paths = calls.attrs["paths"]
    assert [paths[i] for i in calls["path_id"]] == [("a",), ("a", "b"), ("a", "c"), ("a", "c", "b")]
    assert folded_stacks(calls) == "a 46\na;b 25\na;c 20\na;c;b 10\n"
    assert folded_stacks(calls, "duration") == "a 101\na;b 25\na;c 30\na;c;b 10\n"
    stats = df_function_stats(calls)
    assert stats.loc["b", "count"] == 2 and stats.loc["b", "total"] == 35 and stats.loc["b", "max"] == 25
    assert stats.index[0] == "a" and stats.loc["a", "self"] == 46 and stats["cut"].sum() == 0
    assert stats.loc["b", "p50"] == pytest.approx(17.5)


def test_edges_lost_exits_and_switches() -> None:
    """An exit whose entry the buffer lost is a whole call with no parent and no self time;
    an entry whose exit never came has no end; two tasks interleave on one CPU; a task
    returns on another CPU than it entered."""
    df = events([
        (90, 0, 7, "X", "cut_start", 1, 50, 90),    # entered before the buffer began
        (95, 0, 7, "X", "outer", 0, 40, 95),
        (100, 0, 7, "E", "read", 0),
        (105, 0, 7, "E", "sleepy", 1),             # sleeps: task 8 runs on CPU 0 ...
        (110, 0, 8, "E", "other", 0),
        (120, 0, 8, "X", "other", 0, 109, 119),
        (130, 1, 7, "X", "sleepy", 1, 104, 129),   # ... and task 7 wakes on CPU 1
        (140, 1, 7, "E", "lost_exit", 1),          # its exit was lost
        (150, 1, 7, "X", "read", 0, 99, 149),
        (160, 1, 7, "E", "open_at_end", 0),        # the buffer ends before it returns
    ])
    calls = df_calls(df).set_index("func")
    na = calls[["self", "end", "duration", "parent"]].isna()
    assert not calls.loc["cut_start", "entry_seen"] and calls.loc["cut_start", "duration"] == 40
    assert na.loc["cut_start", "self"] and na.loc["cut_start", "parent"]   # outer's entry is cut too
    assert na.loc["outer", "self"]                        # its children may be missing
    assert calls.loc["sleepy", "duration"] == 25 and calls.loc["sleepy", "cpu"] == 0
    assert calls.loc["sleepy", "parent"] == "read"
    assert calls.loc["other", "pid"] == 8 and calls.loc["other", "duration"] == 10
    assert not calls.loc["lost_exit", "exit_seen"] and na.loc["lost_exit", "duration"]
    assert na.loc["read", "self"] and calls.loc["read", "duration"] == 50   # a child has no duration
    assert na.loc["open_at_end", "end"] and calls.loc["open_at_end", "start"] == 160
    stats = df_function_stats(df_calls(df))
    assert "lost_exit" not in stats.index and "open_at_end" not in stats.index   # no duration at all


def test_interrupts_nest_under_the_interrupted_call() -> None:
    df = events([
        (100, 0, 7, "E", "work", 0),
        (110, 0, 7, "E", "irq_handler", 1, 0x08),
        (115, 0, 7, "X", "irq_handler", 1, 109, 114, 0x08),
        (130, 0, 7, "X", "work", 0, 99, 129),
    ])
    calls = df_calls(df).set_index("func")
    assert calls.loc["irq_handler", "irq"] and not calls.loc["work", "irq"]
    assert calls.loc["irq_handler", "parent"] == "work"
    assert calls.loc["work", "self"] == 30 - 5


def test_idle_tasks_pair_per_cpu_and_errors() -> None:
    df = events([
        (100, 0, 0, "E", "idle", 0),
        (101, 1, 0, "E", "idle", 0),
        (110, 1, 0, "X", "idle", 0, 100, 110),
        (120, 0, 0, "X", "idle", 0, 99, 119),
    ])
    calls = df_calls(df)
    assert sorted(calls["duration"].tolist()) == [10, 20] and calls["entry_seen"].all()
    with pytest.raises(KeyError, match="function_graph"):
        df_calls(pd.DataFrame({"ts": [1]}))
    empty = df_calls(df.iloc[:0])
    assert list(empty.columns) == ["func", "depth", "pid", "comm", "cpu", "start", "end", "duration",
                                   "self", "parent", "path_id", "entry_seen", "exit_seen", "irq"]
    assert folded_stacks(empty) == "" and len(df_function_stats(empty)) == 0
