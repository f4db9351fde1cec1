"""The int3 text-poke protocol (arch/x86/kernel/alternative.c: text_poke_bp_batch()).

Replacing a live instruction that other CPUs may be executing takes three
writes, each followed by a core sync::

    step 1  "int3"   byte 0  <- cc           a CPU arriving now traps, and the
                                             int3 handler emulates the NEW insn
    step 2  "tail"   bytes 1..n-1 <- new[1:] invisible: byte 0 still traps
    step 3  "first"  byte 0  <- new[0]       the new instruction is whole

A CPU never sees a torn instruction: before step 1 it runs the old one,
between steps 1 and 3 it traps into poke_int3_handler(), after step 3 it runs
the new one. This module is pure: it plans the steps and says what the int3
handler must do; machine/text_poke.py performs them on the emulated machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from .insn import CALL_INSN_OPCODE, INT3_INSN_OPCODE, JMP32_INSN_OPCODE, NOP5, call_target

STEP_NAMES = ("int3", "tail", "first")


@dataclass(frozen=True)
class PokeStep:
    """One write of the protocol: ``data`` goes to ``ip + offset``."""

    name: str
    offset: int
    data: bytes


def plan_poke(old: bytes, new: bytes) -> list[PokeStep]:
    """The three writes that turn ``old`` into ``new`` (same length, >= 2 bytes)."""
    if len(old) != len(new) or len(new) < 2:
        raise ValueError("old and new instructions must have the same length (>= 2)")
    return [
        PokeStep("int3", 0, bytes([INT3_INSN_OPCODE])),
        PokeStep("tail", 1, bytes(new[1:])),
        PokeStep("first", 0, bytes(new[:1])),
    ]


@dataclass(frozen=True)
class Int3Emulation:
    """What poke_int3_handler() does for a trapped CPU: set RIP, maybe push a return."""

    rip: int
    push: int | None = None


def emulate_new_insn(ip: int, new: bytes) -> Int3Emulation:
    """Emulate the instruction being written at ``ip`` (int3_emulate_call/jmp/nop)."""
    size = len(new)
    if new[0] == CALL_INSN_OPCODE and size == 5:
        target = call_target(ip, new)
        assert target is not None
        return Int3Emulation(rip=target, push=ip + size)
    if new[0] == JMP32_INSN_OPCODE and size == 5:
        rel = int.from_bytes(new[1:5], "little", signed=True)
        return Int3Emulation(rip=(ip + 5 + rel) & 0xFFFF_FFFF_FFFF_FFFF)
    if bytes(new) == NOP5:
        return Int3Emulation(rip=ip + size)
    raise ValueError(f"cannot emulate {new.hex()} from the int3 handler")
