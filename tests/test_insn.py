"""x86-64 encodings ftrace writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab.arch.x86_64.insn import NOP5, call_target, gen_call, gen_jmp, is_nop5

KTEXT = st.integers(0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_FFFF_0000)


@given(KTEXT, KTEXT)
def test_call_round_trip(ip: int, target: int) -> None:
    insn = gen_call(ip, target)
    assert len(insn) == 5 and insn[0] == 0xE8
    assert call_target(ip, insn) == target


def test_known_encodings() -> None:
    assert bytes.fromhex("0f1f440000") == NOP5 and is_nop5(NOP5)
    # vfs_read+4 calling __fentry__ 0x754 bytes back
    assert gen_call(0xFFFFFFFF81000754, 0xFFFFFFFF81000000) == bytes.fromhex("e8a7f8ffff")
    assert gen_jmp(0x1000, 0x1000) == bytes.fromhex("e9fbffffff")
    assert call_target(0x1000, NOP5) is None


def test_out_of_range() -> None:
    with pytest.raises(ValueError, match="rel32"):
        gen_call(0, 1 << 40)
