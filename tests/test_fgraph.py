"""fgraph in the emulated kernel (kernel/trace/fgraph.c, return_to_handler, lab.fgraph):
return hijacking across workloads, the stacks read back mid-call, several fgraph_ops
and the LRU slot allocation."""

from __future__ import annotations

import itertools

import pytest

from ftracelab import Lab
from ftracelab.errors import FtraceLabError
from ftracelab.trace.fgraph import FgraphType

WORKLOADS = ["cat", "getpid", "fork-storm", "write", "slow-read", "sleep", "lock-contention"]


def test_every_call_returns_through_its_frame(lab: Lab) -> None:
    """With every function graph-traced, each workload completes; every return finds
    the data its entry reserved; entries balance returns plus the frames exiting tasks
    take with them; the tasks left (the idle tasks) have empty stacks."""
    gops = lab.fgraph.register()
    for workload in WORKLOADS:
        assert lab.run(workload).completed
        assert gops.bad_data == 0 and gops.unclaimed == 0
        assert gops.entries == gops.returns + lab.fgraph.frames_dropped
    assert gops.entries > 10_000
    left = lab.fgraph.stacks()
    assert {t.comm for t in left} == {"swapper/0", "swapper/1"}
    for task in left:
        assert task.stack.curr_ret_stack == 0 and task.stack.curr_ret_depth == -1
        assert task.stack.frames() == [] and task.stack.trace_overrun == 0


def test_stack_mid_call_holds_the_call_chain(lab: Lab) -> None:
    """Paused inside rw_verify_area: the reader's shadow stack holds the chain of calls
    innermost first, each frame's ret is the real return address into its caller, and
    the real stack slot it came from now holds return_to_handler."""
    lab.fgraph.register()
    m = lab.machine
    site = lab.fentry_site("rw_verify_area")
    m.add_breakpoint(site + 5)                # after the site: its frame is pushed
    try:
        rec = lab.run("cat", path="/etc/motd")
        assert not rec.completed
    finally:
        m.remove_breakpoint(site + 5)
    task = next(t for t in lab.fgraph.stacks() if t.comm == "cat")
    frames = task.stack.frames()
    funcs = [lab.kallsyms.format_short(f.func) for f in frames]
    assert funcs[:4] == ["rw_verify_area", "vfs_read", "ksys_read", "__x64_sys_read"]
    handler = lab.symbol("return_to_handler")
    tail_calls = 0
    for inner, outer in itertools.pairwise(frames):
        assert m.read_u64(inner.retp) == handler
        if inner.ret == handler:          # a tail call: the caller's slot, hijacked already
            assert inner.retp == outer.retp
            tail_calls += 1
        else:
            assert lab.kallsyms.function_at(inner.ret) == lab.kallsyms.function_at(outer.func)
        assert inner.control.type is FgraphType.BITMAP and inner.control.bitmap == 1
        assert set(inner.data) == {0} and inner.data[0] == (inner.func,)   # lab_graph_entry's word
        assert inner.calltime >= outer.calltime
    assert task.stack.curr_ret_depth == len(frames) - 1
    assert tail_calls >= 1                    # x64_sys_call -> __x64_sys_read -> ksys_read jmp
    rows = task.stack.inspect(lab.kallsyms.format_ps, {0: "lab_graph"})
    assert any(r.kind == "func" and "rw_verify_area" in r.detail for r in rows)
    assert sum("tail call" in r.detail for r in rows) == tail_calls
    assert lab.resume().completed


def test_two_fgraph_ops_and_lru_slots(lab: Lab) -> None:
    """Two fgraph_ops share frames through the bitmap. Slot 0 also gets the returns of
    calls only the other took (bit 0 is always set), and counts them apart. A released
    slot is reused last (the LRU table)."""
    vfs = lab.fgraph.register(filter="vfs_*", name="vfs")
    every = lab.fgraph.register(name="every")
    assert (vfs.idx, every.idx) == (0, 1)
    assert lab.run("cat").completed
    assert vfs.bad_data == every.bad_data == 0
    assert vfs.entries == vfs.returns > 0 and vfs.unclaimed > 0
    assert every.entries == every.returns + lab.fgraph.frames_dropped
    vfs.unregister()
    third = lab.fgraph.register(name="third")
    assert third.idx == 2                     # slot 0 went to the back of the table
    assert lab.run("getpid").completed and third.bad_data == 0
    for g in (every, third):
        g.unregister()
    assert lab.fgraph.graph_ops is None
    with pytest.raises(FtraceLabError, match="not registered"):
        third.unregister()


def test_sixteen_slots_then_enospc(lab: Lab) -> None:
    taken = [lab.fgraph.register(filter="vfs_read", name=f"g{i}") for i in range(16)]
    assert sorted(g.idx for g in taken) == list(range(16))
    with pytest.raises(FtraceLabError, match="ENOSPC"):
        lab.fgraph.register(filter="vfs_read")
    assert lab.run("cat").completed
    assert all(g.entries == g.returns > 0 and g.bad_data == 0 for g in taken)


def test_graph_and_function_tracer_together(lab: Lab) -> None:
    """Both on every function (ftrace_ops_list_func calls both). A function entered by a
    tail call from a graph-traced one shows return_to_handler as its parent, as in Linux:
    its return slot is its caller's, hijacked already."""
    lab.tracefs.write("current_tracer", "function")
    gops = lab.fgraph.register()
    assert lab.run("cat").completed
    df = lab.trace().df_events()
    assert len(df) > 100 and set(df["func"].astype(str)) >= {"vfs_read", "ksys_read"}
    hijacked = set(df.loc[df["parent"] == "return_to_handler", "func"].astype(str))
    assert hijacked and "ksys_read" in hijacked and "vfs_read" not in hijacked
    assert gops.bad_data == 0 and gops.entries == gops.returns + lab.fgraph.frames_dropped
