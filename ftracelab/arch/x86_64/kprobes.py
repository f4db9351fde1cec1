"""x86-64 kprobes instruction work (arch/x86/kernel/kprobes/core.c of 6.x): is an
address an instruction boundary (can_probe(): decode from the function's start),
what the probed instruction needs (prepare_emulation(): relative jumps and calls,
conditional jumps and ret are emulated; everything else runs out of line), and
the out-of-line copy (__copy_instruction(): a RIP-relative displacement fixed for
the slot's address, then an ``int3`` that brings the CPU back to the kprobe, as
x86 does since it dropped the single-step trap)::

    slot:  <the probed instruction, displacement fixed>  cc

Decoding is capstone's; everything here is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import capstone
from capstone import x86 as cx

__all__ = ["ProbedInsn", "analyse", "boundaries", "indirect_target", "jcc_taken", "xol_copy"]

_MD = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_MD.detail = True

#: condition -> test of (CF, PF, ZF, SF, OF)
_JCC: dict[str, Callable[[bool, bool, bool, bool, bool], bool]] = {
    "jo": lambda c, p, z, s, o: o, "jno": lambda c, p, z, s, o: not o,
    "jb": lambda c, p, z, s, o: c, "jae": lambda c, p, z, s, o: not c,
    "je": lambda c, p, z, s, o: z, "jne": lambda c, p, z, s, o: not z,
    "jbe": lambda c, p, z, s, o: c or z, "ja": lambda c, p, z, s, o: not c and not z,
    "js": lambda c, p, z, s, o: s, "jns": lambda c, p, z, s, o: not s,
    "jp": lambda c, p, z, s, o: p, "jnp": lambda c, p, z, s, o: not p,
    "jl": lambda c, p, z, s, o: s != o, "jge": lambda c, p, z, s, o: s == o,
    "jle": lambda c, p, z, s, o: z or s != o, "jg": lambda c, p, z, s, o: not z and s == o,
}
#: what kprobes refuse (can_probe()/arch_prepare_kprobe(): the breakpoint itself,
#: interrupt-flag and privilege changes that a copy cannot reproduce)
_REFUSED = {"int3", "int", "int1", "into", "iretq", "iretd", "iret", "sysretq", "sysexit", "ljmp", "lcall",
            "popf", "popfq", "sti", "cli", "hlt"}


@dataclass(frozen=True)
class ProbedInsn:
    """The probed instruction and how the kprobe handles it."""

    address: int
    raw: bytes
    text: str
    how: str                 # "xol", "jmp", "call", "jcc", "ret", or "refused"
    target: int = 0          # for direct jmp/call/jcc
    disp_at: int = -1        # offset of a RIP-relative disp32 in raw, -1 if none
    indirect: tuple[str, ...] = ()   # jmp/call *X: ("reg", r) or ("mem", base, index, scale, disp)

    @property
    def size(self) -> int:
        return len(self.raw)


def boundaries(code: bytes, start: int) -> list[int]:
    """The instruction starts decoding ``code`` (at ``start``) gives, in order."""
    out, at = [], 0
    while at < len(code):
        insn = next(_MD.disasm(code[at:at + 15], start + at, 1), None)
        if insn is None:
            break
        out.append(start + at)
        at += insn.size
    return out


def analyse(code: bytes, address: int) -> ProbedInsn:
    """Decode the instruction at ``address`` (``code`` starts there)."""
    insn = next(_MD.disasm(code[:15], address, 1), None)
    if insn is None:
        return ProbedInsn(address, code[:1], "(bad)", "refused")
    raw, text = bytes(insn.bytes), f"{insn.mnemonic} {insn.op_str}".strip()
    mn = insn.mnemonic
    imm = next((op.imm for op in insn.operands if op.type == cx.X86_OP_IMM), None)
    if mn in _REFUSED:
        return ProbedInsn(address, raw, text, "refused")
    if mn in ("jmp", "call") and imm is not None:
        return ProbedInsn(address, raw, text, mn, imm & 0xFFFF_FFFF_FFFF_FFFF)
    if mn in ("jmp", "call"):                 # kprobe_emulate_{jmp,call}_indirect()
        op = insn.operands[0]
        if op.type == cx.X86_OP_REG:
            return ProbedInsn(address, raw, text, mn, indirect=("reg", insn.reg_name(op.reg)))
        base = "" if op.mem.base == 0 else insn.reg_name(op.mem.base)
        index = "" if op.mem.index == 0 else insn.reg_name(op.mem.index)
        return ProbedInsn(address, raw, text, mn,
                          indirect=("mem", base, index, str(op.mem.scale), str(op.mem.disp)))
    if mn in _JCC and imm is not None:
        return ProbedInsn(address, raw, text, "jcc", imm & 0xFFFF_FFFF_FFFF_FFFF)
    if mn in ("ret", "retq"):
        return ProbedInsn(address, raw, text, "ret")
    disp_at = -1
    for op in insn.operands:
        if op.type == cx.X86_OP_MEM and op.mem.base == cx.X86_REG_RIP:
            disp_at = insn.disp_offset
    return ProbedInsn(address, raw, text, "xol", 0, disp_at)


def xol_copy(p: ProbedInsn, slot: int) -> bytes:
    """The out-of-line slot's bytes: the instruction (its RIP-relative displacement
    rewritten so that it still reaches the same address from ``slot``) and int3."""
    raw = bytearray(p.raw)
    if p.disp_at >= 0:
        disp = int.from_bytes(raw[p.disp_at:p.disp_at + 4], "little", signed=True)
        target = p.address + p.size + disp
        new = target - (slot + p.size)
        if not -(1 << 31) <= new < (1 << 31):
            raise ValueError(f"the slot at {slot:#x} is out of reach of {target:#x}")
        raw[p.disp_at:p.disp_at + 4] = new.to_bytes(4, "little", signed=True)
    return bytes(raw) + b"\xcc"


def indirect_target(p: ProbedInsn, reg: Callable[[str], int], read_u64: Callable[[int], int]) -> int:
    """Where ``jmp``/``call *X`` goes, given the CPU's registers and memory (a
    RIP-relative operand counts from the next instruction)."""
    if p.indirect[0] == "reg":
        return reg(p.indirect[1])
    _, base, index, scale, disp = p.indirect
    addr = int(disp)
    if base == "rip":
        addr += p.address + p.size
    elif base:
        addr += reg(base)
    if index:
        addr += reg(index) * int(scale)
    return read_u64(addr & 0xFFFF_FFFF_FFFF_FFFF)


def jcc_taken(mnemonic: str, eflags: int) -> bool:
    """Would the conditional jump ``mnemonic`` be taken with these flags?"""
    bits = [(eflags >> b) & 1 == 1 for b in (0, 2, 6, 7, 11)]     # CF PF ZF SF OF
    return bool(_JCC[mnemonic](*bits))
