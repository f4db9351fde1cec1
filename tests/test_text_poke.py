"""The int3 text-poke protocol, stopped between its steps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.arch.x86_64.insn import NOP5, gen_call
from ftracelab.arch.x86_64.text_poke import emulate_new_insn, plan_poke
from ftracelab.errors import HookError, TextPokeError


def test_steps_with_workload_running_between_them(lab: Lab) -> None:
    site = lab.fentry_site("vfs_read")
    new = gen_call(site, lab.symbol("ftrace_stub"))
    poke = lab.text_poke("vfs_read", new)
    assert poke.next_step == "int3" and lab.machine.read(site, 5) == NOP5

    e1 = poke.step()
    assert lab.machine.read(site, 5) == b"\xcc" + NOP5[1:]
    assert (e1.step, e1.before, e1.after) == ("int3", NOP5, b"\xcc" + NOP5[1:])
    assert "[FTRACE INT3" in lab.disassemble("vfs_read")
    rec = lab.run("cat", path="/etc/passwd")       # CPUs keep running mid-poke
    assert rec.completed
    reads = 2                                      # one with data, one at EOF
    assert poke.int3_hits == reads

    e2 = poke.step()
    assert lab.machine.read(site, 5) == b"\xcc" + new[1:]
    assert e2.step == "tail"
    lab.run("cat", path="/etc/passwd")
    assert poke.int3_hits == 2 * reads             # still trapping: byte 0 is int3

    e3 = poke.step()
    assert lab.machine.read(site, 5) == new and poke.finished
    assert e3.step == "first"
    lab.run("cat", path="/etc/passwd")
    assert poke.int3_hits == 2 * reads             # the real call now, no trap
    assert [e.step for e in lab.text_poker.log[-3:]] == ["int3", "tail", "first"]
    with pytest.raises(TextPokeError):
        poke.step()


def test_int3_emulation_of_a_call_matches_the_real_call() -> None:
    """Same virtual time and results whether the call is emulated by int3 or real."""
    def run(steps: int) -> tuple[int, int | None, int]:
        lab = Lab(seed=3)
        if steps:
            site = lab.fentry_site("ksys_read")
            poke = lab.text_poke("ksys_read", gen_call(site, lab.symbol("ftrace_stub")))
            for _ in range(steps):
                poke.step()
        rec = lab.run("cat", path="/etc/motd")
        return rec.syscalls, rec.function_calls, rec.virtual_ns
    base, trapped, real = run(0), run(1), run(3)
    assert base[1] is not None
    assert trapped == real == (base[0], base[1] + 2, base[2])   # 2 reads: 2 ftrace_stub calls


def test_poking_a_busy_site_is_refused(lab: Lab) -> None:
    site = lab.fentry_site("vfs_write")
    lab.text_poke("vfs_write", gen_call(site, lab.symbol("ftrace_stub"))).step()
    with pytest.raises(TextPokeError, match="already being poked"):
        lab.text_poke("vfs_write", NOP5)


def test_unemulatable_instruction_is_refused(lab: Lab) -> None:
    with pytest.raises(ValueError, match="cannot emulate"):
        lab.text_poke("vfs_write", b"\x90" * 5)


def test_failing_int3_handler_is_a_hook_error_and_reset_recovers(lab: Lab) -> None:
    def broken(machine: object, site: int) -> bool:
        raise RuntimeError("student bug")
    lab.machine.int3_handlers.insert(0, broken)
    lab.text_poke("vfs_read", NOP5).step()
    with pytest.raises(HookError, match="student bug"):
        lab.run("cat")
    lab.reset()
    assert lab.run("cat").completed


@given(st.binary(min_size=5, max_size=5), st.integers(0, 2**31 - 1))
def test_plan_poke_reaches_the_new_bytes(old: bytes, rel: int) -> None:
    new = b"\xe8" + rel.to_bytes(4, "little")
    buf = bytearray(old)
    states = []
    for step in plan_poke(old, new):
        buf[step.offset:step.offset + len(step.data)] = step.data
        states.append(bytes(buf))
    assert states[0][0] == 0xCC and states[1][0] == 0xCC and states[-1] == new
    emu = emulate_new_insn(0x1000, new)
    assert emu.push == 0x1005 and emu.rip == 0x1005 + rel
