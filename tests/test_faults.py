"""Faults in emulated code: a typed error, then a usable lab after reset;
breakpoints pause a run and resume it."""

from __future__ import annotations

import pytest

from ftracelab import Lab
from ftracelab.errors import EmulationTimeout, KernelFault, WorkloadError
from ftracelab.kernel.rootfs import DATA_OFFSET, INODE_OFFSET, RAMFS_FILE_SIZE
from ftracelab.machine.memory import percpu_addr

I_DATA = INODE_OFFSET + 0x18
I_FOP = INODE_OFFSET + 0x40
TMP_OUT = 4          # index of /tmp/out in rootfs.DEFAULT_FILES


def _inode_field(lab: Lab, index: int, offset: int) -> int:
    table = next(s for s in lab.machine.vmlinux.symbols if s.name == "ramfs_files")
    return table.addr + index * RAMFS_FILE_SIZE + offset


def test_bad_pointer_read_names_cpu_rip_and_access(lab: Lab) -> None:
    assert lab.run("write", path="/tmp/out", size=16).completed   # instantiates the inode
    lab.machine.write_u64(_inode_field(lab, TMP_OUT, I_FOP), 0xDEAD_0000_0000)
    with pytest.raises(KernelFault) as info:
        lab.run("write", cpu=1, path="/tmp/out", size=16)
    fault = info.value
    assert fault.cpu == 1 and fault.access == "read"
    assert fault.address == 0xDEAD_0000_0000 + 0x10     # f_op->open
    assert fault.where.startswith("do_dentry_open+")
    assert "lab.reset()" in str(fault) and "unmapped" in str(fault)
    lab.reset()
    assert lab.run("write", cpu=1, path="/tmp/out", size=16).completed


def test_kernel_write_to_text_is_a_protection_fault(lab: Lab) -> None:
    assert lab.run("write", path="/tmp/out", size=16).completed
    text = lab.symbol("vfs_read")
    lab.machine.write_u64(_inode_field(lab, TMP_OUT, I_DATA), text)
    with pytest.raises(KernelFault) as info:
        lab.run("write", path="/tmp/out", size=16, chunk=16)
    assert info.value.access == "write" and info.value.address == text
    assert "vmlinux:text is r-x" in str(info.value)
    assert info.value.where.startswith("memcpy+")
    assert lab.machine.read(text, 4) == bytes.fromhex("f30f1efa")   # text unchanged
    assert DATA_OFFSET > I_DATA


def test_invalid_instruction(lab: Lab) -> None:
    lab.machine.write_text(lab.symbol("ksys_read") + 9, b"\x0f\x0b")   # ud2
    with pytest.raises(KernelFault) as info:
        lab.run("cat")
    assert info.value.access == "instruction" and info.value.where.startswith("ksys_read+0x9/")
    lab.reset()
    assert lab.run("cat").completed


def test_infinite_loop_times_out(lab: Lab) -> None:
    lab.machine.write_text(lab.symbol("ksys_read") + 9, b"\xeb\xfe")   # jmp .
    # Without slice ends the CPU never leaves the loop; the host timeout catches it.
    lab.machine.write_u64(percpu_addr(0) + 0x40, 2**64 - 1)
    with pytest.raises(EmulationTimeout, match="ksys_read"):
        lab.machine.call(0, "ksys_read", 0, 0, 0, timeout_s=0.3)


def test_breakpoint_pauses_and_resumes_a_run(lab: Lab) -> None:
    m = lab.machine
    target = lab.symbol("vfs_read")
    m.add_breakpoint(target)
    rec = lab.run("cat", path="/etc/motd")
    assert not rec.completed and rec.stop is not None
    assert rec.stop.reason == "breakpoint" and rec.stop.rip == target
    assert rec.stop.where.startswith("vfs_read+0x0/")
    with pytest.raises(WorkloadError, match="paused"):
        lab.run("cat")
    step = m.run(steps=2)                              # endbr64, the NOP5
    assert step.reason == "step" and step.rip == target + 9
    m.remove_breakpoint(target)
    done = lab.resume()
    assert done.completed and done.syscalls == 8   # 2 openat, 2 read, write, 2 close, exit
    with pytest.raises(WorkloadError, match="nothing to resume"):
        lab.resume()
