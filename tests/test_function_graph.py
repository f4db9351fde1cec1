"""The function_graph tracer: the kernel's callbacks writing funcgraph_entry/exit, its
control files, and the text in each option variant (golden files); df_calls() on it."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pandas as pd
import pytest

from ftracelab import Lab
from ftracelab.analysis.calls import df_calls
from ftracelab.trace.trace_functions_graph import GraphFlags, graph_lines

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "proc-abstime": {"funcgraph-proc": "1", "funcgraph-abstime": "1"},
    "tail": {"funcgraph-tail": "1"},
    "retval": {"funcgraph-retval": "1"},
    "retval-hex": {"funcgraph-retval": "1", "funcgraph-retval-hex": "1"},
    "overrun": {"funcgraph-overrun": "1"},
    "nocpu-noduration": {"funcgraph-cpu": "0", "funcgraph-duration": "0"},
    "nooverhead": {"funcgraph-overhead": "0"},
    "latency-format": {"latency-format": "1"},
    "nocontext-info": {"context-info": "0"},
}


def graph_lab(**files: str) -> Lab:
    lab = Lab(cpus=2, seed=0)
    for name, value in files.items():
        lab.tracefs.write(name, value)
    lab.tracefs.write("current_tracer", "function_graph")
    return lab


@pytest.fixture(scope="module")
def traced() -> Lab:
    lab = graph_lab(set_graph_function="ksys_read do_sys_openat2", max_graph_depth="4")
    lab.tracefs.write("trace_marker", "before cat")
    assert lab.run("cat").completed
    assert lab.run("fork-storm", loops=1, tasks=2).completed
    return lab


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_graph_text_golden(traced: Lab, variant: str, golden: Callable[[str, str], None]) -> None:
    for name, value in VARIANTS[variant].items():
        traced.tracefs.write(f"options/{name}", value)
    try:
        text = traced.tracefs.read("trace")
    finally:
        for name in VARIANTS[variant]:
            default = {"funcgraph-cpu": "1", "funcgraph-duration": "1", "funcgraph-overhead": "1",
                       "context-info": "1"}.get(name, "0")
            traced.tracefs.write(f"options/{name}", default)
    assert isinstance(text, str)
    golden(f"function_graph_{variant}.txt", text)


def test_the_text_is_the_events(traced: Lab) -> None:
    """Every duration printed is rettime - calltime of an exit; depth never passes
    max_graph_depth; only ksys_read and do_sys_openat2 (and what they call) appear."""
    df = traced.trace().df_events()
    graph = df[df["event"].isin(["funcgraph_entry", "funcgraph_exit"])]
    assert len(graph) > 50 and int(graph["depth"].max()) == 3
    tops = set(graph.loc[graph["depth"] == 0, "func"].astype(str))
    assert tops == {"ksys_read", "do_sys_openat2"}
    calls = df_calls(df)
    assert calls["exit_seen"].all() and calls["entry_seen"].all()
    exits = graph[graph["event"] == "funcgraph_exit"]
    assert sorted(calls["duration"].astype(int)) == sorted(
        (exits["rettime"].astype("int64") - exits["calltime"].astype("int64")).tolist())
    assert (calls["self"] >= 0).all()
    text = traced.tracefs.read("trace")
    assert isinstance(text, str) and "ksys_read() {" in text and "/* before cat */" in text


def test_control_files_behave_as_the_kernel() -> None:
    lab = Lab(cpus=2, seed=0)
    fs = lab.tracefs
    assert fs.read("set_graph_function") == "#### all functions enabled ####\n"
    assert fs.read("set_graph_notrace") == "#### no functions disabled ####\n"
    assert fs.read("max_graph_depth") == "0\n" and fs.read("tracing_thresh") == "0\n"
    fs.write("set_graph_function", "vfs_*")
    fs.append("set_graph_function", "!vfs_open")
    assert "vfs_read\n" in str(fs.read("set_graph_function"))
    assert "vfs_open" not in str(fs.read("set_graph_function"))
    for path, bad in (("set_graph_function", "no_such_function"), ("max_graph_depth", "-1"),
                      ("tracing_thresh", "abc")):
        with pytest.raises(OSError) as e:
            fs.write(path, bad)
        assert e.value.errno == errno.EINVAL
    assert "vfs_read\n" in str(fs.read("set_graph_function"))        # a failed write keeps it
    fs.write("max_graph_depth", str((1 << 32) + 3))            # kstrtoul into an unsigned int
    assert fs.read("max_graph_depth") == "3\n"
    fs.write("max_graph_depth", str(1 << 31))                  # printed with %d
    assert fs.read("max_graph_depth") == f"{-(1 << 31)}\n"
    fs.write("max_graph_depth", "0")
    options = str(fs.read("trace_options"))
    assert "funcgraph-proc" not in options
    fs.write("current_tracer", "function_graph")
    assert "nofuncgraph-proc\n" in str(fs.read("trace_options"))
    assert "funcgraph-irqs\n" in str(fs.read("trace_options"))


def test_notrace_thresh_and_stack_balance() -> None:
    """set_graph_notrace hides a function and its callees; with tracing_thresh only
    returns at least that long are written (printed as "} /* func */"); afterwards
    every shadow stack is empty again."""
    lab = graph_lab(set_graph_function="ksys_read", set_graph_notrace="rw_verify_area")
    assert lab.run("cat").completed
    df = lab.trace().df_events()
    funcs = set(df["func"].dropna().astype(str))
    assert "vfs_read" in funcs and not funcs & {"rw_verify_area", "security_file_permission"}
    lab.tracefs.write("trace", "")
    lab.tracefs.write("tracing_thresh", "1")                          # 1 us
    assert lab.run("slow-read").completed                             # reads that wait for the disk
    df = lab.trace().df_events()
    assert set(df["event"].astype(str)) == {"funcgraph_exit"}
    assert ((df["rettime"].astype("int64") - df["calltime"].astype("int64")) >= 1000).all()
    text = str(lab.tracefs.read("trace"))
    assert "} /* ksys_read */" in text and "() {" not in text
    lab.tracefs.write("current_tracer", "nop")
    for task in lab.fgraph.stacks():
        assert task.stack.frames() == []


def test_irqs_and_sleep_time_options() -> None:
    """funcgraph-irqs off: nothing traced in hard interrupt context; sleep-time off: a
    call that slept no longer counts the time it was switched out."""
    lab = graph_lab(set_graph_function="hrtimer_interrupt do_nanosleep")
    assert lab.run("sleep").completed
    df = lab.trace().df_events()
    assert (df["common_flags"] & 0x08).any()                          # irq-context calls
    slept = df_calls(df).query("func == 'do_nanosleep'")["duration"].max()
    lab.tracefs.write("options/funcgraph-irqs", "0")
    lab.tracefs.write("options/sleep-time", "0")
    lab.tracefs.write("trace", "")
    assert lab.run("sleep").completed
    df = lab.trace().df_events()
    assert not (df["common_flags"] & 0x08).any()
    awake = df_calls(df).query("func == 'do_nanosleep'")["duration"].max()
    assert awake < slept / 10


def _graph_events(*events: tuple[str, int, int, int]) -> pd.DataFrame:
    """(event, func, depth, ts) on CPU 0, pid 7; an exit's call started 100 ns before."""
    rows = [{"event": e, "cpu": 0, "pid": 7, "ts": ts, "field_func": f, "depth": d,
             "calltime": ts - 100, "rettime": ts, "retval": 0, "overrun": 0,
             "common_flags": 0, "common_preempt_count": 0} for e, f, d, ts in events]
    return pd.DataFrame(rows)


IRQ = (0x1000, 0x2000)                  # [__irqentry_text_start, __irqentry_text_end)
NAMES = {0x100: "outer", 0x1100: "gic_handle_irq", 0x1200: "irq_leaf", 0x300: "handle_irq", 0x400: "after"}


@pytest.mark.parametrize("irqs", [True, False])
def test_irq_entry_markers(irqs: bool) -> None:
    """print_graph_irq() around calls of __irqentry_text functions, nested and leaf, and
    check_irq_entry()/check_irq_return() hiding them with funcgraph-irqs off (the arm64
    kind of trace: x86 has no traceable function there)."""
    df = _graph_events(("funcgraph_entry", 0x100, 0, 1000),
                       ("funcgraph_entry", 0x1100, 1, 1100),
                       ("funcgraph_entry", 0x300, 2, 1200),
                       ("funcgraph_exit", 0x300, 2, 1300),
                       ("funcgraph_exit", 0x1100, 1, 1400),
                       ("funcgraph_entry", 0x1200, 1, 1500),
                       ("funcgraph_exit", 0x1200, 1, 1600),
                       ("funcgraph_entry", 0x400, 1, 1700),
                       ("funcgraph_exit", 0x400, 1, 1800),
                       ("funcgraph_exit", 0x100, 0, 1900))
    lines = "".join(graph_lines(df, NAMES.__getitem__, GraphFlags(irqs=irqs), 2, str, str, IRQ))
    if irqs:
        assert lines == (" 0)               |  outer() {\n"
                         " 0)   ==========> |\n"
                         " 0)               |    gic_handle_irq() {\n"
                         " 0)   0.100 us    |      handle_irq();\n"
                         " 0)   0.100 us    |    }\n"
                         " 0)   <========== |\n"
                         " 0)   ==========> |\n"
                         " 0)   0.100 us    |    irq_leaf();\n"
                         " 0)   <========== |\n"
                         " 0)   0.100 us    |    after();\n"
                         " 0)   0.100 us    |  }\n")
    else:
        assert lines == (" 0)               |  outer() {\n"
                         " 0)   0.100 us    |    after();\n"
                         " 0)   0.100 us    |  }\n")
    plain = "".join(graph_lines(df, NAMES.__getitem__, GraphFlags(duration=False, proc=True), 2,
                                lambda pid: "task", str, IRQ))
    assert " 0)     task-7     | ==========>\n" in plain and " 0)     task-7     | <==========\n" in plain
    none = "".join(graph_lines(df, NAMES.__getitem__, GraphFlags(), 2, str, str, None))
    assert "=====" not in none
