"""The SMP mini-kernel: determinism, task life cycles, preemption by the tick,
the traceable/notrace sets against a real Linux 6.12, and the call-path shapes
(recursion, tail calls, many arguments) the tracers will meet."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ftracelab import Lab
from ftracelab.arch.x86_64.insn import gen_call
from ftracelab.kernel.workloads import WORKLOADS
from ftracelab.machine.cpu import EntryCounter
from ftracelab.machine.memory import PCPU_CURRENT_TASK, PCPU_NEED_RESCHED, percpu_addr
from ftracelab.runner import RunRecord

# ../shared/real-traces beside the clone (optional: tests that need it skip)
META = Path(__file__).resolve().parents[2] / "shared" / "real-traces" / "linux-6.12" / "meta"
TASK_USED = 0xCC         # offsetof(struct task_struct, used), include/kernel.h


def _record(rec: RunRecord) -> dict[str, object]:
    d: dict[str, object] = asdict(rec)
    d.pop("host_s")
    return d


def _state_digest(lab: Lab) -> str:
    """Hash of the kernel's data and bss: same workload and seed, same bytes."""
    m = lab.machine
    h = hashlib.sha256()
    for seg in m.vmlinux.segments:
        if seg.write:
            h.update(m.read(seg.vaddr, seg.memsz))
    for cpu in range(m.ncpus):
        h.update(m.read(percpu_addr(cpu), 0x90))
    return h.hexdigest()


@pytest.mark.parametrize("workload", ["fork-storm", "lock-contention", "slow-read", "sleep"])
def test_same_seed_same_everything(workload: str) -> None:
    a, b = Lab(cpus=2, seed=11), Lab(cpus=2, seed=11)
    ra, rb = a.run(workload), b.run(workload)
    assert _record(ra) == _record(rb)
    assert _state_digest(a) == _state_digest(b)


def test_other_seed_other_latencies() -> None:
    recs = {seed: Lab(seed=seed).run("slow-read").virtual_ns for seed in (1, 2)}
    assert recs[1] != recs[2]


def _task_slots_in_use(lab: Lab) -> list[int]:
    base = lab.machine.symbols["task_table"]
    used = []
    for i in range(64):
        raw = lab.machine.read(base + i * lab.fgraph.offsets.task_size + TASK_USED, 4)
        if int.from_bytes(raw, "little"):
            used.append(i)
    return used


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_every_task_ends_where_it_should(workload: str) -> None:
    lab = Lab(cpus=2, seed=0)
    params: dict[str, Any] = {"loops": 2} if "loops" in WORKLOADS[workload].defaults else {}
    rec = lab.run(workload, **params)
    m = lab.machine
    assert rec.completed
    assert int.from_bytes(m.read(m.symbols["nr_user_tasks"], 4), "little") == 0
    assert _task_slots_in_use(lab) == [0, 1]          # only the idle tasks remain
    expected_tasks = 1 + {"fork-storm": 2 * 6, "sleep": 1, "cpu-hog": 3,
                          "lock-contention": 4}.get(workload, 0)
    assert rec.tasks == expected_tasks
    idle = m.symbols["task_table"]
    for cpu in range(m.ncpus):
        m.select_cpu(cpu)
        assert m.where(m.reg("rip")).startswith("default_idle+")     # halted in the idle loop
        assert m.percpu_u64(cpu, PCPU_CURRENT_TASK) == idle + cpu * lab.fgraph.offsets.task_size
        assert m.read(percpu_addr(cpu) + PCPU_NEED_RESCHED, 4) == b"\0\0\0\0"
    assert lab.run("getpid", loops=3).completed                       # and the lab goes on


def test_timer_tick_preempts_busy_tasks() -> None:
    lab = Lab(cpus=1, seed=0)
    preempt = EntryCounter(lab.machine, [lab.symbol("preempt_schedule_irq")])
    tick = EntryCounter(lab.machine, [lab.symbol("sched_tick")])
    rec = lab.run("cpu-hog", count_calls=False, loops=200_000, tasks=3)
    assert rec.completed and rec.virtual_ns > 8 * 4_000_000     # several 4 ms ticks
    ticks = tick.close()
    assert ticks >= rec.virtual_ns // 4_000_000           # one tick per 4 ms, on time
    assert preempt.close() >= ticks - 1                   # each tick slices the busy tasks
    assert rec.context_switches > rec.tasks


def test_sleep_is_woken_by_the_timer() -> None:
    lab = Lab(cpus=2, seed=0)
    wakeups = EntryCounter(lab.machine, [lab.symbol("hrtimer_wakeup")])
    rec = lab.run("sleep", loops=3, sleep_ns=2_000_000)
    assert wakeups.close() == 3
    assert 6_000_000 <= rec.virtual_ns < 6_500_000


def test_lock_contention_sleeps_on_the_mutex() -> None:
    lab = Lab(cpus=2, seed=0)
    slow = EntryCounter(lab.machine, [lab.symbol("__mutex_lock_slowpath")])
    assert lab.run("lock-contention").completed
    assert slow.close() > 0


def test_many_traceable_functions(booted_lab: Lab) -> None:
    afs = booted_lab.tracefs.read("available_filter_functions")
    assert isinstance(afs, str) and len(afs.splitlines()) >= 80


def test_call_path_shapes(booted_lab: Lab) -> None:
    walk = booted_lab.disassemble("walk_component")
    assert "<walk_component>" in walk.split("\n", 1)[1]            # calls itself
    assert re.search(r"jmp 0x[0-9a-f]+ <ksys_read>", booted_lab.disassemble("__x64_sys_read"))
    # vm_mmap_pgoff passes do_mmap's 7th to 9th arguments on the stack
    mmap = booted_lab.disassemble("vm_mmap_pgoff")
    assert "pushq" in mmap and "<do_mmap>" in mmap


def _real_names(name: str) -> set[str]:
    path = META / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the real 6.12 captures are optional)")
    with gzip.open(path, "rt") as f:
        return {line.split()[-1] if name.startswith("kallsyms") else line.split()[0]
                for line in f if line.strip()}


def test_traceable_and_notrace_match_linux_6_12(booted_lab: Lab) -> None:
    real_traceable = _real_names("available_filter_functions.txt.gz")
    real_exists = _real_names("kallsyms.txt.gz")
    afs = booted_lab.tracefs.read("available_filter_functions")
    assert isinstance(afs, str)
    ours = set(afs.split())
    functions = {k.name for k in booted_lab.kallsyms if k.is_function}
    shared = {n for n in functions if n in real_exists or n in real_traceable}
    assert len(shared) >= 150
    wrong = sorted(n for n in shared if (n in ours) != (n in real_traceable))
    assert wrong == []


def test_workload_listing_has_parameters(booted_lab: Lab) -> None:
    assert set(booted_lab.workloads) == set(WORKLOADS)
    for name, line in booted_lab.workloads.items():
        for param, default in Lab.workload_params(name).items():
            assert f"{param}={default}" in line


def test_smallest_functions_charge_time(booted_lab: Lab) -> None:
    """Every traceable function costs virtual time on every path into it: it calls
    simulate_work() or a function that (transitively) does, before any return."""
    ks = booted_lab.kallsyms
    charges = {"simulate_work"}
    afs = booted_lab.tracefs.read("available_filter_functions")
    assert isinstance(afs, str)
    names = afs.split()
    calls = {n: set(re.findall(r"(?:call|jmp)q? 0x[0-9a-f]+ <([\w.]+)>", booted_lab.disassemble(n)))
             for n in names}
    calls |= {n: set(re.findall(r"(?:call|jmp)q? 0x[0-9a-f]+ <([\w.]+)>", booted_lab.disassemble(n)))
              for n in ("memcpy", "memset", "_copy_to_user", "_copy_from_user",
                        "copy_page_to_iter", "copy_page_from_iter", "__schedule")}
    changed = True
    while changed:
        changed = False
        for fn, callees in calls.items():
            if fn not in charges and callees & charges:
                charges.add(fn)
                changed = True
    assert sorted(set(names) - charges) == []
    assert "simulate_work" in ks


def test_trampoline_charges_its_own_cost() -> None:
    """Tracing overhead shows in virtual time: ftrace_caller costs 20 ns a call."""
    def run(traced: bool) -> RunRecord:
        lab = Lab(seed=5)
        if traced:
            site = lab.fentry_site("vfs_read")
            lab.text_poker.poke(site, gen_call(site, lab.symbol("ftrace_caller")))
        return lab.run("cat", path="/etc/motd")
    plain, traced = run(False), run(True)
    assert traced.completed and traced.syscalls == plain.syscalls
    assert traced.virtual_ns - plain.virtual_ns == 2 * 20       # two vfs_read() calls
