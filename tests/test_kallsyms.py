"""kallsyms lookups and %pS rendering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftracelab.errors import SymbolNotFoundError
from ftracelab.kernel import load_images
from ftracelab.machine.kallsyms import Kallsyms

VMLINUX, _USER = load_images()
TEXT = next(s for s in VMLINUX.segments if s.execute)
KS = Kallsyms(VMLINUX.symbols, TEXT.vaddr, TEXT.vaddr + TEXT.memsz)


def test_percent_ps_format() -> None:
    addr = KS["vfs_read"]
    size = KS.lookup_name("vfs_read").size
    assert KS.format_ps(addr + 4) == f"vfs_read+0x4/{size:#x}"
    assert KS.format_ps(0x1234) == "0x1234"
    assert KS.format_short(addr + 4) == "vfs_read"


def test_aliases_and_linker_markers() -> None:
    # __fentry__ shares its address with the linker's _text/_stext.
    assert KS.format_ps(KS["_text"]).startswith("__fentry__+0x0/")
    # SYSCALL_DEFINE0: __x64_sys_getpid is an alias of __do_sys_getpid.
    assert KS["__x64_sys_getpid"] == KS["__do_sys_getpid"]
    assert KS.format_short(KS["__x64_sys_getpid"]) == "__do_sys_getpid"
    # Labels inside a function are symbols too, as in the kernel.
    assert KS.format_ps(KS["ftrace_call"]).startswith("ftrace_call+0x0/")
    assert KS.function_at(KS["ftrace_call"]).name == "ftrace_caller"  # type: ignore[union-attr]


def test_unknown_symbol_suggests_close_names() -> None:
    with pytest.raises(SymbolNotFoundError, match="did you mean vfs_read"):
        KS.lookup_name("vfs_reed")
    with pytest.raises(KeyError):
        KS["nonexistent_function_xyz"]


def test_proc_kallsyms_lines() -> None:
    lines = KS.proc_kallsyms().splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{16} [Tt] \S+", line) for line in lines)
    assert any(line.endswith(" t alloc_fd") for line in lines)


@settings(max_examples=300)
@given(st.integers(TEXT.vaddr, TEXT.vaddr + TEXT.memsz - 1))
def test_ps_round_trips(addr: int) -> None:
    m = re.fullmatch(r"(\S+)\+0x([0-9a-f]+)/0x([0-9a-f]+)", KS.format_ps(addr))
    assert m is not None
    name, off, size = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
    assert KS.lookup_name(name).addr + off == addr and off < size
