"""Boot-time dynamic ftrace: ftrace_init() over __mcount_loc."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ftracelab import Lab
from ftracelab.arch.x86_64.insn import ENDBR64, NOP5, call_target
from ftracelab.errors import SymbolNotFoundError
from ftracelab.trace.ftrace import FtraceFlag, flag_names, ftrace_rec_count, mcount_locations

NOTRACE = ["do_syscall_64", "__schedule", "sysvec_apic_timer_interrupt", "sched_clock",
           "simulate_work", "memcpy", "copy_page_to_iter", "_copy_to_user", "default_idle",
           "__switch_to", "__switch_to_asm", "irqentry_exit", "start_kernel", "sched_init",
           "__fentry__", "ftrace_caller", "ftrace_stub", "entry_SYSCALL_64"]


def test_unbooted_image_has_calls_to_fentry() -> None:
    lab = Lab(boot=False)
    fentry = lab.symbol("__fentry__")
    locs = mcount_locations(lab.machine)
    assert locs and not lab.ftrace.records
    for ip in locs:
        assert call_target(ip, lab.machine.read(ip, 5)) == fentry


def test_boot_converts_every_site_to_nop5(booted_lab: Lab) -> None:
    m = booted_lab.machine
    locs = mcount_locations(m)
    recs = booted_lab.ftrace.records
    assert [r.ip for r in recs] == sorted(set(locs))
    assert len(booted_lab.ftrace.boot_log) == len(recs)
    fentry = booted_lab.symbol("__fentry__")
    for rec, entry in zip(recs, booted_lab.ftrace.boot_log, strict=True):
        assert m.read(rec.ip, 5) == NOP5
        assert entry.ip == rec.ip and entry.step == "early" and entry.after == NOP5
        assert call_target(rec.ip, entry.before) == fentry  # the original bytes are kept
        assert rec.flags == 0 and rec.ref_count == 0


def test_site_follows_endbr64_for_indirect_targets(booted_lab: Lab) -> None:
    m = booted_lab.machine
    vfs_read = booted_lab.symbol("vfs_read")
    assert m.read(vfs_read, 4) == ENDBR64
    assert booted_lab.fentry_site("vfs_read") == vfs_read + 4
    # A static function only called directly gets no endbr64: its site is at +0.
    assert booted_lab.fentry_site("alloc_fd") == booted_lab.symbol("alloc_fd")


def test_notrace_functions_are_not_traceable(booted_lab: Lab) -> None:
    afs = booted_lab.tracefs.read("available_filter_functions")
    assert isinstance(afs, str)
    names = afs.splitlines()
    for name in NOTRACE:
        assert name in booted_lab.kallsyms, name
        assert name not in names, name
    for name in ("vfs_read", "ksys_read", "x64_sys_call", "schedule", "__do_sys_getpid",
                 "getname_flags.part.0", "kmem_cache_alloc_noprof"):
        assert name in names, name


def test_available_filter_functions_golden(booted_lab: Lab,
                                           golden: Callable[[str, str], None]) -> None:
    text = booted_lab.tracefs.read("available_filter_functions")
    assert isinstance(text, str)
    golden("available_filter_functions.txt", text)
    addrs = booted_lab.tracefs.read("available_filter_functions_addrs")
    assert isinstance(addrs, str)
    golden("available_filter_functions_addrs.txt", addrs)
    assert [line.split(" ", 1)[1] for line in addrs.splitlines()] == text.splitlines()


def test_boot_is_idempotent_and_reset_reboots(lab: Lab) -> None:
    before = list(lab.ftrace.records)
    assert lab.boot() is lab.ftrace
    lab.reset()
    assert lab.booted and [r.ip for r in lab.ftrace.records] == [r.ip for r in before]


def test_flag_helpers() -> None:
    flags = FtraceFlag.ENABLED | FtraceFlag.TRAMP | 3
    assert ftrace_rec_count(flags) == 3
    assert flag_names(flags) == ["ENABLED", "TRAMP"]
    assert int(FtraceFlag.MODIFIED) == 1 << 19 and int(FtraceFlag.ENABLED) == 1 << 31


def test_fentry_site_errors_and_before_boot() -> None:
    lab = Lab(boot=False)
    assert lab.fentry_site("vfs_read") == lab.symbol("vfs_read") + 4   # from __mcount_loc
    with pytest.raises(SymbolNotFoundError, match="is notrace"):
        lab.fentry_site("do_syscall_64")
    with pytest.raises(SymbolNotFoundError, match="did you mean vfs_read"):
        lab.fentry_site("vfs_reed")
