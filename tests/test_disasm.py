"""The disassembly view (golden files)."""

from __future__ import annotations

from collections.abc import Callable

from ftracelab import Lab
from ftracelab.arch.x86_64.insn import gen_call


def test_vfs_read_live_and_image(booted_lab: Lab, golden: Callable[[str, str], None]) -> None:
    live = booted_lab.disassemble("vfs_read")
    image = booted_lab.disassemble("vfs_read", source="image")
    golden("dis_vfs_read_live.txt", live)
    golden("dis_vfs_read_image.txt", image)
    assert "<vfs_read+4>:    nopl (%rax, %rax) [FTRACE NOP]" in live
    assert "<__fentry__> [FTRACE CALL]" in image
    assert "<rw_verify_area>" in live          # call targets are symbolised


def test_static_function_and_trampoline(booted_lab: Lab,
                                        golden: Callable[[str, str], None]) -> None:
    golden("dis_alloc_fd.txt", booted_lab.disassemble("alloc_fd"))
    caller = booted_lab.disassemble("ftrace_caller")
    golden("dis_ftrace_caller.txt", caller)
    assert "<ftrace_caller_op_ptr>:" in caller and "<ftrace_stub>" in caller


def test_view_follows_live_memory(lab: Lab) -> None:
    site = lab.fentry_site("vfs_write")
    poke = lab.text_poke("vfs_write", gen_call(site, lab.symbol("ftrace_stub")))
    poke.step()
    assert "[FTRACE INT3: text poke in progress, tail 1f 44 00 00]" in lab.disassemble("vfs_write")
    poke.finish()
    assert "callq 0x" in lab.disassemble("vfs_write") and "<ftrace_stub> [FTRACE CALL]" in \
        lab.disassemble("vfs_write")
