"""A disassembly view of live kernel text, in the style of crash's ``dis``.

::

    0xffffffff81000770 <vfs_read>:      endbr64
    0xffffffff81000774 <vfs_read+4>:    nopl (%rax, %rax) [FTRACE NOP]
    0xffffffff81000779 <vfs_read+9>:    testb $1, 0x1c(%rdi)

Bytes come from the emulated machine's memory, so the view shows what a CPU
would execute now: NOPs after boot, calls to trampolines when tracing, an
``int3`` while a text poke is half done. Call and jump targets and
RIP-relative operands are symbolised; fentry sites are annotated. Decoding
is capstone's (AT&T syntax).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import capstone

from ..arch.x86_64.insn import INT3_INSN_OPCODE, MCOUNT_INSN_SIZE, NOP5
from .kallsyms import Kallsyms

_MD = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_MD.syntax = capstone.CS_OPT_SYNTAX_ATT
_MD.detail = True
_BRANCH_GROUPS = (capstone.CS_GRP_CALL, capstone.CS_GRP_JUMP)


@dataclass(frozen=True)
class Insn:
    """One line of the view."""

    address: int
    size: int
    raw: bytes
    text: str          # mnemonic and operands, symbolised
    note: str          # "" or an annotation such as "[FTRACE NOP]"
    where: str         # <sym+off> of the address


def _symbolise(ks: Kallsyms, insn: capstone.CsInsn) -> str:
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    if any(insn.group(g) for g in _BRANCH_GROUPS) and insn.operands:
        op = insn.operands[0]
        if op.type == capstone.x86.X86_OP_IMM:
            target = op.imm & 0xFFFF_FFFF_FFFF_FFFF
            if ks.lookup(target) is not None:
                text += f" <{_short(ks, target)}>"
        return text
    for op in insn.operands:
        if op.type == capstone.x86.X86_OP_MEM and op.mem.base == capstone.x86.X86_REG_RIP:
            target = (insn.address + insn.size + op.mem.disp) & 0xFFFF_FFFF_FFFF_FFFF
            text += f"        # {target:#x}"
    return text


def _short(ks: Kallsyms, addr: int) -> str:
    hit = ks.lookup(addr)
    if hit is None:
        return f"{addr:#x}"
    sym, off = hit
    return sym.name if off == 0 else f"{sym.name}+{off}"


def disassemble_range(read: bytes, start: int, ks: Kallsyms,
                      fentry_sites: Collection[int] = ()) -> list[Insn]:
    """Decode ``read`` (bytes at ``start``) into annotated instructions."""
    out: list[Insn] = []
    pos = 0
    while pos < len(read):
        addr = start + pos
        if addr in fentry_sites:
            window = read[pos:pos + MCOUNT_INSN_SIZE]
            if window[0] == INT3_INSN_OPCODE:
                out.append(Insn(addr, MCOUNT_INSN_SIZE, window, "int3",
                                f"[FTRACE INT3: text poke in progress, tail {window[1:].hex(' ')}]",
                                _short(ks, addr)))
                pos += MCOUNT_INSN_SIZE
                continue
        decoded = next(_MD.disasm(read[pos:pos + 15], addr, 1), None)
        if decoded is None:
            out.append(Insn(addr, 1, read[pos:pos + 1], f".byte {read[pos]:#04x}", "(bad)",
                            _short(ks, addr)))
            pos += 1
            continue
        note = ""
        if addr in fentry_sites:
            raw = bytes(decoded.bytes)
            note = "[FTRACE NOP]" if raw == NOP5 else "[FTRACE CALL]" if raw[0] == 0xE8 else ""
        out.append(Insn(addr, decoded.size, bytes(decoded.bytes), _symbolise(ks, decoded),
                        note, _short(ks, addr)))
        pos += decoded.size
    return out


def format_listing(insns: list[Insn]) -> str:
    """crash ``dis`` layout: ``0xADDR <sym+off>:`` padded, then the instruction."""
    heads = [f"{i.address:#x} <{i.where}>:" for i in insns]
    width = max((len(h) for h in heads), default=0) + 2
    lines = []
    for head, insn in zip(heads, insns, strict=True):
        body = insn.text + (f" {insn.note}" if insn.note else "")
        lines.append(f"{head.ljust(width)}{body}".rstrip())
    return "\n".join(lines) + "\n"
