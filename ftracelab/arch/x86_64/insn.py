"""The few x86-64 instructions ftrace writes (arch/x86/include/asm/text-patching.h).

Encodings, as ``text_gen_insn()`` and ``x86_nops[]`` produce them::

    call rel32   e8 <rel32>        rel32 = target - (ip + 5)
    jmp  rel32   e9 <rel32>
    NOP5         0f 1f 44 00 00    nopl 0x0(%rax,%rax,1), x86_nops[5]
    int3         cc                the breakpoint the text poke protocol plants
    endbr64      f3 0f 1e fa       IBT landing pad before the fentry site

All functions are pure: they take and return ints and bytes.
"""

from __future__ import annotations

CALL_INSN_OPCODE = 0xE8
JMP32_INSN_OPCODE = 0xE9
INT3_INSN_OPCODE = 0xCC
MCOUNT_INSN_SIZE = 5          # size of the fentry call site
CALL_INSN_SIZE = 5
NOP5 = bytes.fromhex("0f1f440000")
ENDBR64 = bytes.fromhex("f30f1efa")
ENDBR_INSN_SIZE = len(ENDBR64)


def _rel32(ip: int, target: int, size: int) -> bytes:
    rel = target - (ip + size)
    if not -(1 << 31) <= rel < (1 << 31):
        raise ValueError(f"target {target:#x} is out of rel32 range of {ip:#x}")
    return rel.to_bytes(4, "little", signed=True)


def gen_call(ip: int, target: int) -> bytes:
    """``call target`` placed at ``ip`` (text_gen_insn(CALL_INSN_OPCODE, ip, target))."""
    return bytes([CALL_INSN_OPCODE]) + _rel32(ip, target, CALL_INSN_SIZE)


def gen_jmp(ip: int, target: int) -> bytes:
    """``jmp target`` placed at ``ip``."""
    return bytes([JMP32_INSN_OPCODE]) + _rel32(ip, target, 5)


def call_target(ip: int, insn: bytes) -> int | None:
    """Target of a 5-byte ``call rel32`` at ``ip``, or None if insn is not one."""
    if len(insn) < 5 or insn[0] != CALL_INSN_OPCODE:
        return None
    rel = int.from_bytes(insn[1:5], "little", signed=True)
    return (ip + 5 + rel) & 0xFFFF_FFFF_FFFF_FFFF


def is_nop5(insn: bytes) -> bool:
    return bytes(insn[:5]) == NOP5
