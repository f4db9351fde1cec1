"""kprobes (trace/kprobes.py, arch/x86_64/kprobes.py): where a probe may go and the
errno when it may not, kprobes on ftrace at fentry sites, int3 probes at any
instruction boundary with the probed instruction run out of line or emulated, the
handlers' view of the registers, skipping, nmissed, and the text put back."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from ftracelab import Lab
from ftracelab.arch.x86_64.kprobes import analyse, boundaries, jcc_taken, xol_copy
from ftracelab.trace.kprobes import Kprobe, KprobeError, Kretprobe, KretprobeInstance


def _unprobed(workload: str) -> tuple[int, int, int, int | None]:
    lab = Lab(cpus=2)
    lab.boot()
    rec = lab.run(workload)
    return rec.virtual_ns, rec.syscalls, rec.context_switches, rec.function_calls


def _same(rec: Any, want: tuple[int, int, int, int | None]) -> None:
    assert rec.completed
    assert (rec.virtual_ns, rec.syscalls, rec.context_switches, rec.function_calls) == want


def test_refused_places(lab: Lab) -> None:
    cases = [
        (Kprobe("no_such_function"), errno.ENOENT),
        (Kprobe("ksys_read", 0x37), errno.EILSEQ),          # inside 'je' at +0x36
        (Kprobe("ksys_read", 0x1000), errno.EINVAL),        # past the function
        (Kprobe("do_syscall_64", 0x4), errno.EINVAL),       # noinstr text
        (Kprobe("do_syscall_64", 0x1f), errno.EINVAL),      # and 'sti' anyway
        (Kprobe(addr=0x1234), errno.EINVAL),                # not kernel text
    ]
    before = lab.machine.read(lab.machine.kallsyms.lookup_name("ksys_read").addr, 176)
    for kp, err in cases:
        with pytest.raises(KprobeError) as info:
            lab.kprobes.register(kp)
        assert info.value.errno == err, kp
    assert lab.machine.read(lab.machine.kallsyms.lookup_name("ksys_read").addr, 176) == before
    assert not lab.kprobes.by_addr
    kp = lab.kprobes.register(Kprobe("ksys_read", 0x38))
    with pytest.raises(KprobeError) as info:
        lab.kprobes.register(kp)                            # the same kprobe twice
    assert info.value.errno == errno.EEXIST
    other = lab.kprobes.register(Kprobe("ksys_read", 0x38))   # another one there: aggregated
    assert lab.kprobes.by_addr[kp.addr] == [kp, other] and other.insn is kp.insn


def test_symbol_plus_zero_is_a_kprobe_on_ftrace(lab: Lab) -> None:
    """endbr64 is skipped, the fentry site gets an IPMODIFY ftrace_ops, no int3;
    regs.ip is the site + 1 and $arg1 is the fd."""
    seen: list[tuple[int, int]] = []
    kp = lab.kprobes.register(Kprobe("ksys_read", pre_handler=lambda p, regs: seen.append(
        (regs.ip, regs.arg(1)))))
    site = lab.machine.kallsyms.lookup_name("ksys_read").addr + 4
    assert kp.on_ftrace and kp.addr == site
    assert lab.machine.read(site, 1) != b"\xcc"
    assert "kprobe on ftrace" in kp._repr_html_()
    assert lab.run("cat").completed
    assert seen and kp.hits == len(seen)
    assert {ip for ip, _ in seen} == {site + 1}
    assert all(0 <= fd < 64 for _, fd in seen)
    lab.kprobes.unregister(kp)
    assert lab.run("cat").completed and kp.hits == len(seen)


@pytest.mark.parametrize("workload, probes", [
    ("cat", ["ksys_read+0x9", "ksys_read+0x1e", "ksys_read+0x36", "ksys_read+0x38",
             "ksys_read+0x55", "ksys_read+0x63", "ksys_read+0x71", "vfs_read+0x9c",
             "rw_verify_area+0x4d", "x64_sys_call+0x10", "x64_sys_call+0x2e"]),
    ("fork-storm", ["kernel_clone+0x3a", "copy_process+0x134"]),
    ("slow-read", ["handle_softirqs+0xe0", "__hrtimer_run_queues+0x5c", "bio_endio+0x30"]),
])
def test_int3_probes_leave_the_kernel_unchanged(workload: str, probes: list[str]) -> None:
    """Out-of-line copies (RIP-relative ones fixed) and emulated call/jmp/jcc/ret,
    direct and indirect: the workload does exactly what it does unprobed, to the
    virtual nanosecond, and every probe's post_handler follows its pre_handler."""
    want = _unprobed(workload)
    lab = Lab(cpus=2)
    lab.boot()
    log: list[tuple[str, str, int]] = []
    kps = []

    def pre(p: Kprobe, regs: Any) -> None:
        log.append(("pre", p.data["where"], regs.ip))

    def post(p: Kprobe, regs: Any, flags: int) -> None:
        log.append(("post", p.data["where"], regs.ip))
    for where in probes:
        sym, off = where.split("+")
        kps.append(lab.kprobes.register(Kprobe(sym, int(off, 16), pre_handler=pre, post_handler=post,
                                               data={"where": where})))
    assert all(lab.machine.read(kp.addr, 1) == b"\xcc" for kp in kps)
    assert "int3; the" in kps[0]._repr_html_()
    _same(lab.run(workload), want)
    for kp, where in zip(kps, probes, strict=True):
        assert not kp.on_ftrace and kp.insn is not None
        mine = [e for e in log if e[1] == where]
        assert mine and all(e[2] == kp.addr + 1 for e in mine[::2]), where
        assert [e[0] for e in mine] == ["pre", "post"] * (len(mine) // 2), where
    for kp in kps:
        lab.kprobes.unregister(kp)
        assert lab.machine.read(kp.addr, kp.insn.size if kp.insn else 1) == (kp.insn.raw if kp.insn else b"")
    hits = [kp.hits for kp in kps]
    _same(lab.run(workload), _unprobed_again(lab, workload))
    assert [kp.hits for kp in kps] == hits


def _unprobed_again(lab: Lab, workload: str) -> tuple[int, int, int, int | None]:
    # the second run of a lab starts from where the first left: compare with a twin
    twin = Lab(cpus=2)
    twin.boot()
    twin.run(workload)
    rec = twin.run(workload)
    return rec.virtual_ns, rec.syscalls, rec.context_switches, rec.function_calls


def test_every_boundary_of_a_function(lab: Lab) -> None:
    """An int3 probe on each instruction of ksys_read and vfs_read at once (all but
    endbr64 and the fentry site, which a kprobe on ftrace would trace)."""
    want = _unprobed("cat")
    ks = lab.machine.kallsyms
    kps = []
    for name in ("ksys_read", "vfs_read"):
        sym = ks.lookup_name(name)
        for addr in boundaries(lab.machine.read(sym.addr, sym.size), sym.addr)[2:]:
            kps.append(lab.kprobes.register(Kprobe(addr=addr)))
    _same(lab.run("cat"), want)
    assert sum(kp.hits for kp in kps) > 100
    ksys = ks.lookup_name("ksys_read").addr
    assert len({kp.hits for kp in kps if kp.addr in (ksys + 0x9, ksys + 0x1e, ksys + 0x33)}) == 1


def test_pre_handler_skip_and_register_writes(lab: Lab) -> None:
    """A pre_handler that sets regs.ip and returns true skips the instruction:
    here __x64_sys_getpid returns 4242 without calling its helper."""
    sym = lab.machine.kallsyms.lookup_name("__x64_sys_getpid")
    ret = sym.addr + 0x23

    def fake(p: Kprobe, regs: Any) -> bool:
        regs.rax = 4242                               # before 'push rbp': the stack is
        regs.ip = ret                                 # as at entry
        return True
    kp = lab.kprobes.register(Kprobe("__x64_sys_getpid", 0x9, pre_handler=fake))
    results: list[int] = []
    lab.kprobes.register(Kprobe("__x64_sys_getpid", 0x23, pre_handler=lambda p, regs: results.append(
        regs.rax)))
    assert lab.run("getpid").completed
    assert kp.hits and results and set(results) == {4242}


def test_probe_hit_from_a_handler_is_missed(lab: Lab) -> None:
    """A handler that calls into probed kernel code is not reentered (nmissed)."""
    kp = lab.kprobes.register(Kprobe("ksys_read", 0x38))
    assert kp.nmissed == 0
    lab.kprobes._running.add(0)
    lab.kprobes._running.add(1)
    assert lab.run("cat").completed
    assert kp.hits == 0 and kp.nmissed > 0


def test_handler_exceptions_stop_the_run_cleanly(lab: Lab) -> None:
    def boom(p: Kprobe, regs: Any) -> None:
        raise RuntimeError("student bug")
    lab.kprobes.register(Kprobe("ksys_read", 0x38, pre_handler=boom))
    with pytest.raises(Exception, match="student bug"):
        lab.run("cat")


def test_kretprobe(lab: Lab) -> None:
    """A kretprobe on vfs_read across sleeps (slow-read): the entry handler keeps
    $arg3 in ri.data, the handler sees the return value and the real return address,
    maxactive bounds the instances in flight, and the workload is unchanged."""
    want = _unprobed("slow-read")
    ks = lab.machine.kallsyms
    seen: list[tuple[int, int, str]] = []

    def entry(ri: KretprobeInstance, regs: Any) -> None:
        ri.data[:8] = regs.arg(3).to_bytes(8, "little")

    def ret(ri: KretprobeInstance, regs: Any) -> None:
        assert regs.ip == ri.ret_addr
        seen.append((int.from_bytes(ri.data[:8], "little"), regs.rax, ks.format_ps(ri.ret_addr)))
    rp = lab.kprobes.register_kretprobe(Kretprobe("vfs_read", ret, entry, data_size=8))
    assert rp.maxactive == 10 and rp.kp is not None and rp.kp.on_ftrace
    rec = lab.run("slow-read")
    assert rec.completed and rec.syscalls == want[1]
    assert seen and {c for c, _, _ in seen} == {1024} and {w for _, _, w in seen} == {"ksys_read+0x52/0xb0"}
    assert rp.active == 0 and rp.nmissed == 0
    with pytest.raises(KprobeError) as info:
        lab.kprobes.register_kretprobe(Kretprobe("vfs_read", offset=0x10))
    assert info.value.errno == errno.EINVAL
    other: list[str] = []                             # a second kretprobe on the same frames
    rp2 = lab.kprobes.register_kretprobe(Kretprobe("vfs_read", lambda ri, regs: other.append(
        ks.format_ps(ri.ret_addr))))
    n = len(seen)
    assert lab.run("slow-read").completed
    assert other == [w for _, _, w in seen[n:]] and len(other) == n
    lab.kprobes.unregister_kretprobe(rp2)
    lab.kprobes.unregister_kretprobe(rp)
    tiny = lab.kprobes.register_kretprobe(Kretprobe("x64_sys_call", maxactive=1))
    assert lab.run("fork-storm").completed and tiny.nmissed > 0 and tiny.active == 0


def test_arch_helpers() -> None:
    p = analyse(bytes.fromhex("8b0d701b1a00"), 0xffffffff81007f0a)      # mov ecx, [rip+0x1a1b70]
    assert p.how == "xol" and p.disp_at == 2
    slot = 0xffffffffa0000000
    copy = xol_copy(p, slot)
    assert copy[-1] == 0xCC and len(copy) == p.size + 1
    new = int.from_bytes(copy[2:6], "little", signed=True)
    assert slot + p.size + new == 0xffffffff81007f0a + 6 + 0x1a1b70
    assert analyse(b"\xfb", 0).how == "refused"                          # sti
    assert analyse(b"\xe8\x00\x00\x00\x00", 0x1000).target == 0x1005
    assert analyse(b"\xff\xd0", 0).indirect == ("reg", "rax")
    assert jcc_taken("je", 1 << 6) and not jcc_taken("jne", 1 << 6)
    assert jcc_taken("jl", 1 << 7) and not jcc_taken("jl", (1 << 7) | (1 << 11))
