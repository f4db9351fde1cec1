"""Workloads and the run record; determinism of the virtual clock."""

from __future__ import annotations

import pytest

from ftracelab import Lab
from ftracelab.errors import WorkloadError


def test_workloads_listing(booted_lab: Lab) -> None:
    assert {"cat", "write", "getpid", "slow-read"} <= set(booted_lab.workloads)
    assert all(isinstance(d, str) and d for d in booted_lab.workloads.values())


def test_cat_record(lab: Lab) -> None:
    rec = lab.run("cat", path="/etc/passwd", loops=2)
    # per loop: 2 openat, 2 reads (data, EOF), 1 write, 2 close; then exit_group
    assert rec.completed and rec.syscalls == 2 * 7 + 1
    assert rec.function_calls is not None and rec.function_calls > 20 * rec.syscalls // 2
    assert rec.virtual_ns > 0 and "RunRecord" in rec._repr_html_()


def test_getpid_calls_per_syscall(lab: Lab) -> None:
    a = lab.run("getpid", loops=10)
    b = lab.run("getpid", loops=110)
    assert b.syscalls - a.syscalls == 100
    # entry_SYSCALL_64, do_syscall_64, x64_sys_call, __do_sys_getpid, __task_pid_nr_ns,
    # restore_regs_and_return and simulate_work twice (the entry cost, one KCOST)
    assert (b.function_calls or 0) - (a.function_calls or 0) == 100 * 8


def test_same_seed_same_virtual_time() -> None:
    runs = [Lab(seed=7).run("slow-read").virtual_ns for _ in range(2)]
    other = Lab(seed=8).run("slow-read").virtual_ns
    assert runs[0] == runs[1] != other


def test_written_data_reads_back(lab: Lab) -> None:
    lab.run("write", path="/tmp/out", size=1000, chunk=300)
    assert lab.run("cat", path="/tmp/out", chunk=4096).syscalls == 8
    missing = lab.run("cat", path="/nope")
    assert missing.syscalls == 3   # openat /dev/null, failed openat, exit_group


@pytest.mark.parametrize("name, params, match", [
    ("nope", {}, "unknown workload"),
    ("cat", {"bogus": 1}, "takes"),
    ("cat", {"loops": -1}, "loops"),
    ("cat", {"path": "relative"}, "absolute"),
])
def test_bad_workload_input(booted_lab: Lab, name: str, params: dict[str, object],
                            match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        booted_lab.run(name, **params)  # type: ignore[arg-type]
