"""fgraph in the emulated kernel (kernel/trace/fgraph.c, return_to_handler, lab.fgraph):
return hijacking across workloads, the stacks read back mid-call, several fgraph_ops
and the LRU slot allocation."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from ftracelab import Lab
from ftracelab.errors import FtraceLabError
from ftracelab.trace.fgraph import FgraphType

WORKLOADS = ["cat", "getpid", "fork-storm", "write", "slow-read", "sleep", "lock-contention"]


def test_every_call_returns_through_its_frame(lab: Lab, idle_loop_only: Callable[[Lab], None]) -> None:
    """With every function graph-traced, each workload completes; every return finds
    the data its entry reserved; entries balance returns plus the frames exiting tasks
    take with them and the calls still in flight; the tasks left (the idle tasks) hold
    nothing but the idle loop they halt in."""
    gops = lab.fgraph.register()
    for workload in WORKLOADS:
        assert lab.run(workload).completed
        assert gops.bad_data == 0 and gops.unclaimed == 0
        assert gops.entries == gops.returns + lab.fgraph.frames_dropped + lab.fgraph.in_flight(gops)
    assert gops.entries > 10_000
    assert {t.comm for t in lab.fgraph.stacks()} == {"swapper/0", "swapper/1"}
    idle_loop_only(lab)


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
    assert every.entries == every.returns + lab.fgraph.frames_dropped + lab.fgraph.in_flight(every)
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
    assert gops.bad_data == 0
    assert gops.entries == gops.returns + lab.fgraph.frames_dropped + lab.fgraph.in_flight(gops)


def test_step_graph_events_replay_the_kernel(lab: Lab) -> None:
    """lab.step_graph() rebuilds the stack from the recorded writes: every push reserves
    a frame, then the data, then the bitmap; pops mirror pushes; the last event is the
    stack as it was before the call; each rebuilt stack equals what the frames say."""
    lab.fgraph.register(name="lab_graph")
    events = lab.step_graph("rw_verify_area")
    before, after = events[0].stack, events[-1].stack
    assert events[0].what == "before"
    assert after.curr_ret_stack == before.curr_ret_stack and after.frames() == before.frames()
    whats = [e.what for e in events[1:]]
    pushes = [w for w in whats if w.startswith("push:")]
    pops = [w for w in whats if w.startswith("pop ")]
    assert len(pushes) == len(pops) == 2      # rw_verify_area, and what it tail-calls
    assert whats[0].startswith("push:") and "vfs_read" in whats[0]
    assert whats[1] == "fgraph_reserve_data: 1 word(s) for ops 0"
    assert whats[2].startswith("rw_verify_area") and whats[2].endswith("taken: bitmap {0}")
    assert "(ret return_to_handler" in whats[3]          # the tail call: a hijacked slot again
    assert whats[-1].startswith("pop rw_verify_area") and "vfs_read" in whats[-1]
    depth = before.curr_ret_depth
    for e in events[1:]:
        depth += e.what.startswith("push:") - e.what.startswith("pop ")
        assert e.stack.curr_ret_depth == depth
        assert len(e.stack.frames()) == depth + 1


def test_shadow_stack_view_model(lab: Lab) -> None:
    from ftracelab.widgets import ShadowStackView

    lab.fgraph.register(name="lab_graph")
    view = ShadowStackView.from_lab(lab, "rw_verify_area")
    assert view.position == 0 and view.prev_button.disabled and "before" in view.header.value
    assert view.changed() == set()
    view.next()                                             # the first push
    assert "push:" in view.header.value
    new = view.changed()
    assert len(new) == 6                                    # 5 frame words + the control word
    assert view.table.value.count("class='changed'") == 6
    view.next()                                             # reserve data: 2 words more
    assert "fgraph_reserve_data" in view.header.value
    top = view.events[view.position].stack.curr_ret_stack
    assert {top - 2, top - 1} <= view.changed()             # (and the frame fields filled since)
    view.next()                                             # the bitmap word
    assert "taken: bitmap {0}" in view.header.value and "0:lab_graph" in view.table.value
    view.position = 10**6
    assert view.position == view.last and view.next_button.disabled
    assert "task var" not in view.table.value
    assert ShadowStackView([]).header.value.endswith("no events recorded")
    cut = lab.step_graph("vfs_read", max_steps=500)
    assert cut[-1].what.startswith("recording cut short after 500 instructions")
