"""open_trace() on real Linux 6.12 captures agrees with the kernel's own text output.

The captures live outside the repository (../shared/real-traces/linux-6.12); the
tests skip when they are absent. Each scenario folder holds the raw
``trace_pipe_raw`` pages and the kernel's ``trace`` text of the same buffer, so
every decoded event can be checked against the line the kernel printed for it.
Timestamps are compared as the kernel prints them: trace_print_time() rounds
to the nearest microsecond (ns2usecs(): (ns + 500) / 1000), while the
function_graph abstime column (print_graph_abs_time()) truncates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ftracelab.analysis import Trace, open_trace
from ftracelab.trace.trace_entries import ftrace_formats

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-traces"
LINUX = REAL / "linux-6.12"
META = LINUX / "meta"
KALLSYMS = META / "kallsyms.txt.gz"

pytestmark = pytest.mark.skipif(not LINUX.is_dir(), reason=f"real traces not present at {LINUX}")

# "            init-1       (-------) [001] .....     6.670211: vfs_write <-ksys_write"
FN_LINE = re.compile(r"^(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\([-\s\d]*\)\s+)?\[(?P<cpu>\d+)\]\s+"
                     r"(?P<lat>\S{5})\s+(?P<ts>\d+\.\d{6}): (?P<body>.*)$")
# "   56.850427 |   1)     init-1     | + 21.392 us   |  vfs_open();"  (time and proc optional)
GRAPH_LINE = re.compile(r"^\s*(?:(?P<ts>\d+\.\d{6}) \|\s+)?(?P<cpu>\d+)\)\s+"
                        r"(?:(?P<comm>\S+)-(?P<pid>\d+)\s+\|\s)?(?P<dur>[^|]*)\|  (?P<body>.*)$")


def kernel_time(ns: int) -> str:
    """trace_print_time(): ns2usecs() rounds, then seconds.microseconds."""
    us = (ns + 500) // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def graph_time(ns: int) -> str:
    """print_graph_abs_time(): do_div() by 10^9, then the remainder / 1000 truncates."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000 // 1000:06d}"


def scenario(name: str, **kw: Any) -> Trace:
    path = LINUX / name
    cmdlines = path / "saved_cmdlines.txt"
    return open_trace(path, kallsyms=KALLSYMS, cmdlines=cmdlines if cmdlines.exists() else None,
                      events=[META / "events"], **kw)


def function_text(path: Path) -> list[dict[str, object]]:
    """Events of a function-tracer text file, with their ``=>`` stack lines attached."""
    out: list[dict[str, object]] = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(" => "):
            stack = out[-1].setdefault("stack", [])
            assert isinstance(stack, list)
            stack.append(line[4:])
            continue
        m = FN_LINE.match(line)
        assert m, f"unparsed kernel line {line!r}"
        out.append({"comm": m["comm"].strip(), "pid": int(m["pid"]), "cpu": int(m["cpu"]),
                    "ts": m["ts"], "body": m["body"]})
    return out


def check_function_scenario(trace: Trace, name: str) -> int:
    df = trace.df_events()
    assert df["ts"].dtype == np.int64 and df["pid"].dtype == np.int32
    assert df["cpu"].dtype == np.int16
    checked = 0
    for cpu in trace.cpus:
        text = function_text(LINUX / name / "per_cpu" / f"cpu{cpu}" / "trace.txt")
        mine = df[df["cpu"] == cpu].reset_index(drop=True)
        assert len(mine) == len(text), f"cpu{cpu}: {len(mine)} events decoded, kernel printed {len(text)}"
        for row, line in zip(mine.to_dict("records"), text, strict=True):
            assert kernel_time(int(row["ts"])) == line["ts"], (row, line)
            assert (row["pid"], row["cpu"]) == (line["pid"], line["cpu"]), (row, line)
            if trace.cmdlines:                        # a4 saved no saved_cmdlines
                assert row["comm"] == line["comm"], (row, line)
            body = str(line["body"])
            if row["event"] == "function":
                assert body == f"{row['func']} <-{row['parent']}", (row, line)
            elif row["event"] == "kernel_stack":
                assert body == "<stack trace>" and trace.symbols is not None
                callers = np.array(row["caller"], dtype=np.uint64)
                frames = ["[FTRACE TRAMPOLINE]" if a == 0x7FFFFFFF else str(s)
                          for a, s in zip(callers.tolist(), trace.symbols.lookup(callers), strict=True)]
                assert frames == line.get("stack"), (row, line)
            elif row["event"] == "print":
                assert body == f"{row['func']}: {str(row['buf']).rstrip(chr(10))}", (row, line)
            elif row["event"] == "raw_data":
                assert body.startswith(f"# {row['id']:x} buf:"), (row, line)
            else:
                pytest.fail(f"unexpected event {row['event']}")
            checked += 1
    return checked


def test_a2_function_and_stack_trace() -> None:
    trace = scenario("a2_function_stacktrace")
    assert check_function_scenario(trace, "a2_function_stacktrace") > 40
    df = trace.df_events()
    assert set(df["event"].unique()) == {"function", "kernel_stack", "print", "raw_data"}
    assert df["ip"].dtype == "UInt64" and df["parent_ip"].dtype == "UInt64"
    stacks = df[df["event"] == "kernel_stack"]
    assert {len(c) for c in stacks["caller"]} == {5}      # shorter than caller[8]: frames captured
    assert trace.lost_events == {0: 0, 1: 0} == df.attrs["lost_events"]


def test_a2_without_extra_formats_uses_the_ftrace_entries_of_6_12() -> None:
    """raw_data has no format file in the capture: the ftrace entries' fixed IDs
    decode with 6.12's layouts, the same as the kernel's own format files."""
    path = LINUX / "a2_function_stacktrace"
    df = open_trace(path, kallsyms=KALLSYMS, cmdlines=path / "saved_cmdlines.txt").df_events()
    assert "raw_data" in set(df["event"].unique())
    assert df.loc[df["event"] == "function", "func"].notna().all()
    for name in ("function", "kernel_stack", "print", "raw_data", "func_repeats"):
        real = (META / "events" / "ftrace" / name / "format").read_text()
        assert ftrace_formats()[f"ftrace/{name}"] == real


def test_a4_time_extend() -> None:
    trace = scenario("a4_trace_clock/local")
    assert check_function_scenario(trace, "a4_trace_clock/local") == 15
    df = trace.df_events()
    gaps = df.groupby("cpu")["ts"].diff().dropna()
    assert (gaps >= 1 << 27).any()                         # only a TIME_EXTEND can carry this gap


def graph_text(path: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip() or line.startswith(" ---") or "=>" in line:
            continue
        m = GRAPH_LINE.match(line)
        assert m, f"unparsed graph line {line!r}"
        body = m["body"]
        indent = len(body) - len(body.lstrip(" "))
        out.append({"ts": m["ts"], "cpu": int(m["cpu"]), "comm": m["comm"],
                    "pid": int(m["pid"]) if m["pid"] else None, "dur": m["dur"].strip(" +!#*@$"),
                    "depth": indent // 2, "body": body.strip()})
    return out


def graph_lines(df: pd.DataFrame) -> list[dict[str, object]]:
    """What print_graph_entry()/print_graph_return() print for each event, in df order.

    An entry whose next event on the same CPU is the return of the same pid and
    function prints as one ``func();`` leaf line (get_return_for_leaf()).
    """
    lines: list[dict[str, object]] = []
    events = df.to_dict("records")
    nxt: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, ev in enumerate(events):
        if int(ev["cpu"]) in last:
            nxt[last[int(ev["cpu"])]] = i
        last[int(ev["cpu"])] = i
    consumed: set[int] = set()
    for i, ev in enumerate(events):
        if i in consumed:
            continue
        base = {"ts": graph_time(int(ev["ts"])), "cpu": int(ev["cpu"]), "pid": int(ev["pid"]),
                "comm": str(ev["comm"])}
        if ev["event"] == "funcgraph_entry":
            j = nxt.get(i)
            if j is not None and events[j]["event"] == "funcgraph_exit" \
                    and (events[j]["pid"], events[j]["field_func"]) == (ev["pid"], ev["field_func"]):
                consumed.add(j)
                dur = int(events[j]["rettime"]) - int(events[j]["calltime"])
                lines.append({**base, "depth": int(ev["depth"]), "body": f"{ev['func']}();", "ns": dur})
            else:
                lines.append({**base, "depth": int(ev["depth"]), "body": f"{ev['func']}() {{"})
        elif ev["event"] == "funcgraph_exit":
            dur = int(ev["rettime"]) - int(ev["calltime"])
            lines.append({**base, "depth": int(ev["depth"]), "body": "}", "ns": dur})
        elif ev["event"] == "print":
            lines.append({**base, "body": f"/* {str(ev['buf']).rstrip(chr(10))} */"})
        elif ev["event"] == "raw_data":                 # "# id buf: hex bytes" as a comment
            hexed = " ".join(f"{b:02x}" for b in str(ev["buf"])[:4].encode())   # "raw!"
            lines.append({**base, "body": f"/* # {ev['id']:x} buf: {hexed}", "prefix": True})
    return lines


def check_graph(mine: list[dict[str, object]], text: list[dict[str, object]]) -> None:
    assert len(mine) == len(text), f"{len(mine)} lines rebuilt, kernel printed {len(text)}"
    for a, b in zip(mine, text, strict=True):
        assert a["cpu"] == b["cpu"], (a, b)
        body = str(b["body"])
        if body.startswith("} /*"):                    # "} /* func */": the tail form
            body = "}"
        if a.get("prefix"):
            assert body.startswith(str(a["body"])), (a, b)
        else:
            assert a["body"] == body, (a, b)
        if "depth" in a:
            assert a["depth"] == b["depth"], (a, b)
        if b["ts"] is not None:
            assert a["ts"] == b["ts"], (a, b)
        if b["pid"] is not None:
            assert a["pid"] == b["pid"], (a, b)
            if a["comm"] != "<...>":                  # no saved_cmdlines in these folders
                assert str(a["comm"])[:7] == b["comm"], (a, b)
        if "ns" in a and b["dur"] and int(str(a["ns"])) < 10_000_000:
            assert round(float(str(b["dur"]).split()[0]) * 1000) == a["ns"], (a, b)


@pytest.mark.parametrize("name", ["b2_function_graph_openat", "b3_function_graph_leaf"])
def test_function_graph(name: str) -> None:
    trace = scenario(name)
    df = trace.df_events()
    assert {"funcgraph_entry", "funcgraph_exit"} <= set(df["event"].unique())
    assert df["field_func"].dtype == "UInt64" and df["calltime"].dtype == "UInt64"
    for cpu in trace.cpus:       # per-CPU text, in that CPU's buffer order
        check_graph(graph_lines(df[df["cpu"] == cpu]),
                    graph_text(LINUX / name / "per_cpu" / f"cpu{cpu}" / "trace.txt"))
    check_graph(graph_lines(df), graph_text(LINUX / name / "trace.abstime-proc.txt"))


def test_g_events_static_events() -> None:
    trace = scenario("g_events")
    df = trace.df_events()
    wake = df[df["event"] == "sched_wakeup"]
    assert len(wake) > 0 and all(isinstance(c, str) for c in wake["field_comm"])
    assert wake["field_pid"].notna().all() and wake["target_cpu"].notna().all()
    execs = df[df["event"] == "sched_process_exec"]
    assert execs["filename"].str.startswith("/").all()       # __data_loc char[]
    assert "<idle>" in set(df["comm"].astype(str))
    assert trace._repr_html_().startswith("<div>")


@pytest.mark.parametrize(("options", "text"), [
    ({}, "trace.txt"), ({"raw": True}, "trace.opt-raw.txt"),
    ({}, "per_cpu/cpu0/trace.txt"), ({}, "per_cpu/cpu1/trace.txt")])
def test_g_events_text_is_the_kernels(options: dict[str, bool], text: str) -> None:
    """Static events (sched_*, syscalls with their own printers, print, raw_data) print
    from the raw pages as the kernel printed them, line for line."""
    from ftracelab.trace.trace_events_print import EventPrinter
    from ftracelab.trace.trace_output import OutputOptions, function_lines

    trace = scenario("g_events")
    df = trace.df_events()
    if text.startswith("per_cpu/"):
        df = df[df["cpu"] == int(text.split("/")[1][3:])]
    syms = trace.symbols
    assert syms is not None
    lines = function_lines(df, lambda a, off: str(syms.lookup([a])[0]), OutputOptions(**options),
                           record=trace.record, events=EventPrinter(trace.formats))
    want = [line for line in (LINUX / "g_events" / text).read_text().splitlines() if not line.startswith("#")]
    assert lines == want and len(want) > 80


@pytest.mark.parametrize("name", ["b2_function_graph_openat", "b3_function_graph_leaf"])
def test_df_calls_agree_with_the_kernels_graph_text(name: str) -> None:
    """Every duration the kernel printed (leaf lines and closing braces) is one call of
    df_calls(), to the nanosecond; calls the kernel left open ("func() {" with no
    "}") are the ones without an exit; durations are rettime - calltime."""
    from collections import Counter

    from ftracelab.analysis.calls import df_calls

    df = scenario(name).df_events()
    calls = df_calls(df)
    text = graph_text(LINUX / name / "trace.txt")
    printed = Counter(round(float(str(t["dur"]).split()[0]) * 1000) for t in text if t["dur"])
    closed = calls[calls["exit_seen"]]
    assert Counter(int(d) for d in closed["duration"]) == printed
    exits = df[df["event"] == "funcgraph_exit"]
    assert sorted(closed["duration"].astype(int)) == sorted(
        (exits["rettime"].astype("int64") - exits["calltime"].astype("int64")).tolist())
    opened = sum(1 for t in text if str(t["body"]).endswith("{"))
    assert (calls["entry_seen"] & calls["exit_seen"]).sum() + (~calls["exit_seen"]).sum() >= opened
    known = calls.dropna(subset=["self"])
    assert (known["self"] >= 0).all() and (known["self"] <= known["duration"]).all()


@pytest.mark.parametrize("name", ["b2_function_graph_openat", "b3_function_graph_leaf"])
def test_function_graph_text_is_the_kernels(name: str) -> None:
    """The graph printer renders the real raw pages exactly as the kernel printed them:
    trace.txt, the funcgraph-proc + funcgraph-abstime variant and each CPU's trace.
    Task names come from the kernel's own text (the folders have no saved_cmdlines)."""
    from ftracelab.trace.trace_functions_graph import GraphFlags, graph_header, graph_lines
    from ftracelab.trace.trace_output import raw_data_text

    comms: dict[int, str] = {}
    for f in ("trace.txt", "trace.abstime-proc.txt"):
        comms.update((int(m[2]), m[1]) for m in re.finditer(r"(\S+)-(\d+)\s", (LINUX / name / f).read_text()))
    trace = scenario(name)
    df = trace.df_events()
    df = df.assign(_row=range(len(df)))
    syms = trace.symbols
    assert syms is not None

    def sym(addr: int) -> str:
        return str(syms.lookup([addr])[0])

    def comment(row: dict[str, Any]) -> str:
        return str(row["buf"]) if row["event"] == "print" else raw_data_text(trace.record(int(row["_row"])))

    def render(frame: pd.DataFrame, flags: GraphFlags) -> str:
        return "# tracer: function_graph\n#\n" + graph_header(flags) + "".join(
            graph_lines(frame, sym, flags, 2, lambda pid: comms.get(pid, "<...>"), comment,
                        syms.section("irqentry")))

    assert syms.section("irqentry") is not None      # x86: the IDT stubs, none traceable

    assert render(df, GraphFlags()) == (LINUX / name / "trace.txt").read_text()
    variant = (LINUX / name / "trace.abstime-proc.txt").read_text()
    assert render(df, GraphFlags(proc=True, abstime=True)) == variant
    # per_cpu/cpuN/trace was read with the options of that moment (commands.log)
    log = (LINUX / name / "commands.log").read_text()
    before = log[:log.index("per_cpu/cpu0/trace >")]
    sets = re.findall(r"echo '(\d)' > \S*/options/funcgraph-proc", before)
    flags = GraphFlags(proc=True, abstime=True) if sets and sets[-1] == "1" else GraphFlags()
    for cpu in trace.cpus:
        assert render(df[df["cpu"] == cpu], flags) == \
            (LINUX / name / "per_cpu" / f"cpu{cpu}" / "trace.txt").read_text()
