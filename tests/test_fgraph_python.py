"""fgraph_ops written in Python (lab.fgraph.register(entry_callable, return_callable)):
the image's lab_python_graph_entry/return run them with the kernel's structures, their
reserved data lives on the shadow stack as DATA words, and they share frames with
native fgraph_ops."""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pytest

from ftracelab import Lab
from ftracelab.analysis.calls import df_calls
from ftracelab.errors import FtraceLabError, HookError
from ftracelab.machine.memory import PCPU_CURRENT_TASK
from ftracelab.trace.fgraph import FgraphOps, FgraphType
from ftracelab.trace.fgraph.ops import GraphEnt, GraphRet

FUNCS = ["vfs_read", "vfs_write", "ksys_read", "rw_verify_area", "do_sys_openat2"]


def test_python_ops_see_what_function_graph_sees(lab: Lab) -> None:
    """The same calls with the same durations as the function_graph tracer's events."""
    lab.tracefs.write("set_ftrace_filter", " ".join(FUNCS))
    lab.tracefs.write("current_tracer", "function_graph")
    returns: list[tuple[str, int, int]] = []

    def entry(trace: GraphEnt, gops: FgraphOps) -> bool:
        return True

    def ret(trace: GraphRet, gops: FgraphOps) -> None:
        returns.append((trace.name, trace.depth, trace.duration))

    gops = lab.fgraph.register(entry, ret, filter=FUNCS)
    assert lab.run("cat").completed and lab.run("write").completed
    calls = df_calls(lab.trace().df_events())
    graph = Counter(zip(calls["func"].astype(str), calls["depth"].astype(int),
                        calls["duration"].astype(np.int64), strict=True))
    assert Counter(returns) == graph and len(returns) > 10
    assert gops.entries == gops.returns == len(returns)


def test_reserved_data_is_a_data_word_and_comes_back(lab: Lab) -> None:
    m = lab.machine
    seen: list[tuple[int, int, int]] = []     # (func, data read back, DATA words of ours on top)

    def entry(trace: GraphEnt, gops: FgraphOps) -> bool:
        struct.pack_into("<QQ", trace.data, 0, trace.func, trace.depth + 1000)
        return True

    def ret(trace: GraphRet, gops: FgraphOps) -> None:
        task = lab.fgraph.task_stack(m.percpu_u64(m.cpu, PCPU_CURRENT_TASK))
        assert task is not None
        top = task.stack.top()
        assert top is not None and top.func == trace.func
        seen.append((trace.func, struct.unpack("<QQ", trace.data)[1] - 1000 - trace.depth,
                     len(top.data.get(gops.idx, ()))))
        assert struct.unpack("<QQ", trace.data)[0] == trace.func

    gops = lab.fgraph.register(entry, ret, filter=FUNCS, data_size=16)
    assert lab.run("cat").completed
    assert seen and all(s == (s[0], 0, 2) for s in seen)     # 16 bytes: two data words
    assert all(t.stack.curr_ret_stack == 0 for t in lab.fgraph.stacks())
    assert gops.entries == gops.returns == len(seen)


def test_a_refused_call_never_returns_to_the_ops(lab: Lab) -> None:
    names: list[str] = []
    gops = lab.fgraph.register(lambda t, g: t.name == "vfs_read", lambda t, g: names.append(t.name),
                               filter=FUNCS, data_size=8)
    assert lab.run("cat").completed
    assert set(names) == {"vfs_read"} and gops.entries == len(names) > 0


def test_python_and_native_ops_share_frames(lab: Lab) -> None:
    native = lab.fgraph.register(filter=FUNCS)                       # lab_graph_entry, slot 0
    bitmaps: set[int] = set()

    def ret(trace: GraphRet, gops: FgraphOps) -> None:
        m = lab.machine
        task = lab.fgraph.task_stack(m.percpu_u64(m.cpu, PCPU_CURRENT_TASK))
        assert task is not None and task.stack.top() is not None
        top = task.stack.top()
        assert top is not None and top.control.type is FgraphType.BITMAP
        bitmaps.add(top.control.bitmap)

    python = lab.fgraph.register(lambda t, g: t.name.startswith("vfs_"), ret, filter=FUNCS, data_size=8)
    assert python.idx == 1
    assert lab.run("cat").completed
    assert native.bad_data == 0 and native.entries == native.returns > python.entries > 0
    assert bitmaps == {0b11}                 # both took every call the Python ops saw
    assert python.returns == python.entries


def test_a_python_error_is_a_hook_error_and_the_lab_goes_on(lab: Lab) -> None:
    def entry(trace: GraphEnt, gops: FgraphOps) -> bool:
        raise ValueError("student bug")

    gops = lab.fgraph.register(entry, None, filter=FUNCS)
    with pytest.raises(HookError, match="student bug"):
        lab.run("cat")
    gops.unregister()
    lab.reset()
    assert lab.run("cat").completed


def test_bad_registrations(lab: Lab) -> None:
    with pytest.raises(FtraceLabError, match="FGRAPH_MAX_DATA_SIZE"):
        lab.fgraph.register(lambda t, g: True, None, data_size=300)
    with pytest.raises(FtraceLabError, match="Python entryfunc"):
        lab.fgraph.register("lab_graph_entry", "lab_graph_return", data_size=8)
    assert lab.fgraph.gops == []
