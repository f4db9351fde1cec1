"""Faults in emulated code: a typed error, then a usable lab after reset."""

from __future__ import annotations

import pytest

from ftracelab import Lab
from ftracelab.errors import EmulationTimeout, KernelFault
from ftracelab.kernel.workloads import WORKLOADS
from ftracelab.machine.memory import USER_ARGS, USER_STACK_TOP


def test_bad_pointer_read_names_cpu_rip_and_access(lab: Lab) -> None:
    m = lab.machine
    init_task = m.symbols["init_task"]
    files_offset = 0x20  # struct task_struct.files
    m.write_u64(init_task + files_offset, 0xDEAD_0000_0000)
    with pytest.raises(KernelFault) as info:
        lab.run("cat", cpu=1)
    fault = info.value
    assert fault.cpu == 1 and fault.access == "read" and fault.address is not None
    assert fault.address >> 32 == 0xDEAD
    assert fault.where.startswith("_raw_spin_lock+")   # files->file_lock
    assert "lab.reset()" in str(fault) and "unmapped" in str(fault)
    lab.reset()
    assert lab.run("cat", cpu=1).completed


def test_kernel_write_to_text_is_a_protection_fault(lab: Lab) -> None:
    # current->files pointing into text: taking files->file_lock stores into text.
    m = lab.machine
    text = lab.symbol("vfs_read")
    m.write_u64(m.symbols["init_task"] + 0x20, text)
    with pytest.raises(KernelFault) as info:
        lab.run("cat")
    assert info.value.access == "write" and info.value.address == text
    assert "vmlinux:text is r-x" in str(info.value)
    assert info.value.where.startswith("_raw_spin_lock+")
    assert m.read(text, 4) == bytes.fromhex("f30f1efa")   # text unchanged


def test_invalid_instruction(lab: Lab) -> None:
    lab.machine.write_text(lab.symbol("ksys_read") + 9, b"\x0f\x0b")   # ud2
    with pytest.raises(KernelFault) as info:
        lab.run("cat")
    assert info.value.access == "instruction" and info.value.where.startswith("ksys_read+0x9/")


def test_infinite_loop_times_out(lab: Lab) -> None:
    lab.machine.write_text(lab.symbol("ksys_read") + 9, b"\xeb\xfe")   # jmp .
    with pytest.raises(EmulationTimeout, match="ksys_read"):
        lab.machine.select_cpu(0)
        lab.machine.write(USER_ARGS, WORKLOADS["cat"].pack())
        lab.machine.set_reg("rdi", USER_ARGS)
        lab.machine.set_reg("rsp", USER_STACK_TOP)
        lab.machine.run(start=lab.machine.user_symbols["wl_cat"], timeout_s=0.2)


def test_breakpoint_stop_and_resume(lab: Lab) -> None:
    m = lab.machine
    target = lab.symbol("vfs_read")
    m.add_breakpoint(target)
    m.write(USER_ARGS, WORKLOADS["cat"].pack(path="/etc/motd"))
    m.set_reg("rsp", USER_STACK_TOP)
    m.push(m.user_symbols["user_exit"])
    m.set_reg("rdi", USER_ARGS)
    stop = m.run(start=m.user_symbols["wl_cat"])
    assert stop.reason == "breakpoint" and stop.rip == target and stop.where.startswith("vfs_read+0x0/")
    step = m.run(steps=2)
    assert step.reason == "step" and step.rip == target + 9   # endbr64, NOP5
    m.remove_breakpoint(target)
    assert m.run().reason == "halt"
