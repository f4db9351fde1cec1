"""ftrace_ops registration and update_code: targets, record flags and reference
counts (kernel/trace/ftrace.c __ftrace_hash_rec_update, ftrace_get_addr_new),
trampolines, the list and assist functions, IPMODIFY, PID filtering, recursion,
the mid-poke int3 path and step-through."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.arch.x86_64.insn import NOP5, call_target
from ftracelab.errors import FtraceLabError, HookError, SymbolNotFoundError
from ftracelab.trace.ftrace import DynFtrace, FtraceState, ftrace_rec_count
from ftracelab.trace.ftrace import FtraceFlag as FL
from ftracelab.trace.ftrace_ops import FtraceOps, FtraceRegs, read_hash
from ftracelab.trace.ftrace_ops import FtraceOpsFlag as F
from ftracelab.trace.kprobes import Kprobe


def _target(lab: Lab, fn: str) -> str:
    site = lab.fentry_site(fn)
    raw = lab.machine.read(site, 5)
    if raw == NOP5:
        return "nop"
    target = call_target(site, raw)
    assert target is not None
    return lab.kallsyms.format_short(target)


def _rec(lab: Lab, fn: str) -> int:
    rec = lab.ftrace.record_for(fn)
    assert rec is not None
    return rec.flags


def _kernel_text(lab: Lab) -> bytes:
    seg = next(s for s in lab.machine.vmlinux.segments if s.execute)
    return lab.machine.read(seg.vaddr, seg.memsz)


def test_single_ops_gets_its_own_trampoline(lab: Lab) -> None:
    seen: list[tuple[str, str]] = []

    def cb(ip: int, parent_ip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
        seen.append((lab.kallsyms.format_ps(ip), lab.kallsyms.format_short(parent_ip)))

    ops = lab.ftrace.register(cb, filter="vfs_read")
    assert _target(lab, "vfs_read") == "ftrace_trampoline"
    flags = _rec(lab, "vfs_read")
    assert ftrace_rec_count(flags) == 1
    assert flags & FL.ENABLED and flags & FL.TRAMP and flags & FL.TRAMP_EN and flags & FL.TOUCHED
    assert not flags & FL.REGS
    assert _target(lab, "vfs_write") == "nop"
    lab.run("cat", path="/etc/motd")
    assert seen == [("vfs_read+0x4/" + seen[0][0].split("/")[1], "ksys_read")] * 2
    assert ops.calls == 2
    # the ops and its hashes really are in kernel memory, in the kernel's layout
    filt = lab.machine.read_u64(ops.addr + 0x30)
    assert read_hash(lab.machine, filt) == {lab.fentry_site("vfs_read")}
    assert "ftrace_trampoline" in lab.kallsyms.proc_kallsyms()


def test_shared_site_uses_ftrace_caller_and_the_list_func(lab: Lab) -> None:
    a = lab.ftrace.register("lab_count_func", filter="vfs_*", flags=F.RECURSION, name="a")
    b = lab.ftrace.register("lab_count_func", filter="vfs_read ksys_read", flags=F.RECURSION,
                            name="b")
    assert _target(lab, "vfs_read") == "ftrace_caller"          # two ops: shared caller
    assert _target(lab, "vfs_write") == "ftrace_trampoline"     # only a
    assert _target(lab, "ksys_read") == "ftrace_trampoline"     # only b
    assert ftrace_rec_count(_rec(lab, "vfs_read")) == 2
    assert not _rec(lab, "vfs_read") & FL.TRAMP
    call = lab.symbol("ftrace_call")
    assert call_target(call, lab.machine.read(call, 5)) == lab.symbol("ftrace_ops_list_func")
    lab.run("cat")
    assert (a.calls, b.calls) == (2 + 3 + 2, 3 + 3)   # opens, reads, writes / reads
    b.unregister()
    assert _target(lab, "vfs_read") == "ftrace_trampoline"
    assert call_target(call, lab.machine.read(call, 5)) == lab.symbol("lab_count_func")
    a.unregister()
    assert call_target(call, lab.machine.read(call, 5)) == lab.symbol("ftrace_stub")
    assert _target(lab, "vfs_read") == "nop" and ftrace_rec_count(_rec(lab, "vfs_read")) == 0
    assert _rec(lab, "vfs_read") & FL.TOUCHED                    # kept, as FTRACE_NOCLEAR_FLAGS


def test_save_regs_uses_ftrace_regs_caller(lab: Lab) -> None:
    regs: list[int] = []
    lab.ftrace.register("lab_count_func", filter="vfs_read", flags=F.RECURSION)
    lab.ftrace.register(lambda ip, pip, ops, fregs: regs.append(fregs.rbx), filter="vfs_read",
                        flags=F.SAVE_REGS)
    assert _target(lab, "vfs_read") == "ftrace_regs_caller"
    assert _rec(lab, "vfs_read") & FL.REGS and _rec(lab, "vfs_read") & FL.REGS_EN
    assert lab.run("cat").completed and len(regs) == 3


def test_fregs_reads_arguments_and_changes_them(lab: Lab) -> None:
    counts: list[int] = []

    def shrink(ip: int, pip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
        counts.append(fregs.arg(3))
        fregs.rdx = 5                         # write(fd, buf, 5)

    lab.ftrace.register(shrink, filter="ksys_write")
    lab.run("write", path="/tmp/out", size=100, chunk=100)
    assert counts == [100]
    out = lab.run("cat", path="/tmp/out", count_calls=False)
    assert out.syscalls == 8                      # the file now holds 5 bytes: one read + EOF


def test_ip_needs_ipmodify(lab: Lab) -> None:
    def redirect(ip: int, pip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
        fregs.ip = lab.symbol("ktime_get")

    lab.ftrace.register(redirect, filter="__task_pid_nr_ns")
    with pytest.raises(HookError, match="IPMODIFY"):
        lab.run("getpid", loops=1)


def test_ipmodify_redirects_like_livepatch(lab: Lab) -> None:
    task = lab.machine.percpu_u64(0, 0x08)            # the idle task: pid 0
    assert lab.call("__task_pid_nr_ns", task, 1) == 0

    def redirect(ip: int, pip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
        fregs.ip = lab.symbol("ktime_get")

    ops = lab.ftrace.register(redirect, filter="__task_pid_nr_ns", flags=F.IPMODIFY)
    assert _rec(lab, "__task_pid_nr_ns") & FL.IPMODIFY
    assert lab.call("__task_pid_nr_ns", task, 1) == lab.machine.clock_ns(0)
    with pytest.raises(FtraceLabError, match="EBUSY"):
        lab.ftrace.register(redirect, filter="__task_pid_nr_ns", flags=F.IPMODIFY)
    ops.unregister()
    assert lab.call("__task_pid_nr_ns", task, 1) == 0
    assert _rec(lab, "__task_pid_nr_ns") & FL.MODIFIED


def test_pid_filtering_follows_set_ftrace_pid(lab: Lab) -> None:
    seen: list[int] = []
    m = lab.machine

    def who(ip: int, pip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
        task = m.percpu_u64(m.cpu, 0x08)
        seen.append(int.from_bytes(m.read(task, 4), "little"))

    ops = lab.ftrace.register(who, filter="__do_sys_getpid", flags=F.PID)
    lab.tracefs.write("set_ftrace_pid", "103")
    lab.run("fork-storm", loops=1, tasks=3)            # parent 101, children 102-104
    assert seen == [103]
    ops.unregister()
    all_ops = lab.ftrace.register(who, filter="__do_sys_getpid")
    seen.clear()
    lab.run("fork-storm", loops=1, tasks=3)
    assert sorted(seen) == [106, 107, 108] and all_ops.calls == 3


def test_recursion_is_stopped_and_counted(lab: Lab) -> None:
    results: list[int] = []

    def reenter(ip: int, pip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
        results.append(lab.call("ktime_get"))          # ktime_get is traced by this very ops

    ops = lab.ftrace.register(reenter, filter="ktime_get")
    before = lab.ftrace.recursion_count
    lab.run("cat", path="/etc/motd")                  # touch_atime() calls ktime_get
    stopped = lab.ftrace.recursion_count - before
    # trace_test_and_set_recursion() lets one nested level through (the TRANSITION
    # bit), so each real call runs the callback twice and the third level is stopped.
    assert stopped >= 1 and ops.calls == len(results) == 2 * stopped
    assert all(r > 0 for r in results)


def test_code_update_mid_poke_runs_through_int3(lab: Lab) -> None:
    ops = lab.ftrace.register("lab_count_func", filter="vfs_read vfs_write",
                              flags=F.RECURSION, apply=False)
    update = lab.ftrace.pending
    assert update is not None and not update.finished
    site = lab.fentry_site("vfs_read")
    assert lab.machine.read(site, 5) == NOP5                # nothing written yet
    msgs: list[str] = []
    while lab.machine.read(site, 1) != b"\xcc":             # ftrace_call first, then the sites
        msgs.append(update.step())
    assert msgs[-1].endswith("int3 on 2 site(s)")
    lab.run("cat", path="/etc/motd")                        # CPUs hit the int3s
    assert ops.calls == 2 + 1                               # emulated as the new call
    msgs.append(update.step())                              # the tails: still int3 in front
    assert msgs[-1].endswith("tail on 2 site(s)")
    lab.run("cat", path="/etc/motd")
    assert ops.calls == 6
    while not update.finished:
        msgs.append(update.step())
    assert lab.machine.read(site, 1) == b"\xe8"
    lab.run("cat", path="/etc/motd")
    assert ops.calls == 9


def test_bad_registrations(lab: Lab) -> None:
    with pytest.raises(FtraceLabError, match="not supported"):
        lab.ftrace.register("lab_count_func", flags=F.DIRECT)
    with pytest.raises(SymbolNotFoundError, match="lab_count_func"):
        lab.ftrace.register("lab_count_fun")
    with pytest.raises(FtraceLabError, match="matches no traceable function"):
        lab.ftrace.register("lab_count_func", filter="do_syscall_64")
    with pytest.raises(TypeError):
        lab.ftrace.register(42)  # type: ignore[arg-type]
    assert lab.ftrace.ops == []


def test_step_through_the_trampoline(lab: Lab) -> None:
    lab.ftrace.register(lambda ip, pip, ops, fregs: None, filter="vfs_read")
    trace = lab.step_through("vfs_read", workload="cat", path="/etc/motd")
    assert trace.complete
    assert trace[0].text.startswith("callq") and trace[0].writes     # pushes a return address
    assert trace.symbols()[:3] == ["vfs_read", "ftrace_trampoline", "ftrace_ops_assist_func"]
    assert "lab_python_hook" in trace.symbols()
    assert trace[-1].text.startswith("ret")
    assert "StepTrace" in trace._repr_html_()


OPS_GLOBS = ["vfs_*", "*lock*", "ksys_read", "*sys_*", "schedule", "kmem_cache_*", "*"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["register", "unregister", "refilter"]),
                          st.sampled_from(OPS_GLOBS), st.booleans(), st.booleans()),
                min_size=1, max_size=6))
def test_any_sequence_restores_the_text(steps: list[tuple[str, str, bool, bool]]) -> None:
    lab = Lab(cpus=2, seed=0)
    clean = _kernel_text(lab)
    live: list[FtraceOps] = []
    for action, glob, native, regs in steps:
        if action == "register" or not live:
            func: Any = "lab_count_func" if native else (lambda ip, pip, ops, fregs: None)
            flags = (F.SAVE_REGS if regs else 0) | (F.RECURSION if native else 0)
            live.append(lab.ftrace.register(func, filter=glob, flags=flags))
        elif action == "unregister":
            live.pop(0).unregister()
        else:
            live[-1].set_filter(glob)
        for rec in lab.ftrace.records[::7]:
            want = lab.ftrace.wanted(rec.ip)
            assert ftrace_rec_count(rec.flags) == len(want)
            assert (lab.machine.read(rec.ip, 5) == NOP5) == (not want)
    assert lab.run("getpid", loops=3).completed
    for ops in live:
        ops.unregister()
    assert _kernel_text(lab) == clean
    assert all(ftrace_rec_count(r.flags) == 0 for r in lab.ftrace.records)


def test_enabled_and_touched_functions(lab: Lab) -> None:
    """enabled_functions as t_show() prints it: ref count, the R/I/D/O/M columns, the
    ops' own trampoline and what it calls, or the shared caller's call once several ops
    share a site; touched_functions keeps every record ever traced (MODIFIED sticks)."""
    fs, ks = lab.tracefs, lab.kallsyms
    assert fs.read("enabled_functions") == "" and fs.read("touched_functions") == ""
    fs.write("set_ftrace_filter", "vfs_read")
    fs.write("current_tracer", "function")
    ops = lab.filter_files.global_ops
    tramp = f"{ks.format_ps(ops.trampoline)} ({ks.format_ps(ks['function_trace_call'])})"
    assert fs.read("enabled_functions") == (
        f"vfs_read (1)           \ttramp: {tramp} ->{ks.format_ps(ks['function_trace_call'])}\n")
    assert "[__builtin__ftrace]" in tramp
    kp = lab.kprobes.register(Kprobe("vfs_read", 0))           # a kprobe on ftrace: REGS, IPMODIFY
    list_func = ks.format_ps(ks["ftrace_ops_list_func"])
    assert fs.read("enabled_functions") == f"vfs_read (2) R I     M  ->{list_func}\n"
    lab.kprobes.unregister(kp)
    fs.write("current_tracer", "nop")
    assert fs.read("enabled_functions") == ""
    assert str(fs.read("touched_functions")).startswith("vfs_read (0)         M  ->")


def test_dyn_ftrace_total_info_and_timestamp_mode(booted_lab: Lab) -> None:
    """tracing_read_dyn_info(): the boot's records, the pages and groups that
    ftrace_allocate_pages() takes for them (256 records a page, power-of-two groups)."""
    n = len(booted_lab.ftrace.records)
    assert booted_lab.tracefs.read("dyn_ftrace_total_info") == f"{n} pages:1 groups: 1\n"
    state = FtraceState(records=[DynFtrace(i) for i in range(60000)])
    assert state.dyn_ftrace_total_info() == "60000 pages:235 groups: 6\n"     # 128+64+32+8+2+1
    assert booted_lab.tracefs.read("timestamp_mode") == "[delta] absolute\n"
