"""Building per-ops ftrace trampolines (arch/x86/kernel/ftrace.c: create_trampoline(),
calc_trampoline_call_offset(), ftrace_call_replace()).

A dynamic trampoline is a copy of ``ftrace_caller`` (or ``ftrace_regs_caller``)
up to its ``*_end`` label, followed by ``ret; int3`` and an 8-byte slot that
holds the ftrace_ops pointer::

    tramp + 0                  copy of the template ...
    tramp + op_ptr             movq <slot>(%rip), %rdx      was function_trace_op(%rip)
    tramp + call               call <ops func>              was call ftrace_stub
    tramp + end                ret; int3
    tramp + align8(end + 2)    .quad ops

Pure: bytes in, bytes out.
"""

from __future__ import annotations

from dataclasses import dataclass

from .insn import gen_call

MOVQ_RIP_RDX = bytes.fromhex("488b15")    # movq disp32(%rip), %rdx
RET_INT3 = bytes.fromhex("c3cc")


@dataclass(frozen=True)
class TrampolineLayout:
    """Offsets of the patchable spots inside a trampoline template."""

    size: int        # template start to its *_end label
    op_ptr: int      # the movq function_trace_op(%rip), %rdx
    call: int        # the call through ftrace_call / ftrace_regs_call

    @property
    def slot(self) -> int:
        return (self.size + len(RET_INT3) + 7) & ~7

    @property
    def total(self) -> int:
        return self.slot + 8


def create_trampoline(template: bytes, layout: TrampolineLayout, tramp: int, ops: int,
                      func: int) -> bytes:
    """The bytes of a trampoline at ``tramp`` for the ops at ``ops`` calling ``func``."""
    if template[layout.op_ptr:layout.op_ptr + 3] != MOVQ_RIP_RDX:
        raise ValueError("the template has no movq ...(%rip), %rdx at its op_ptr label")
    if template[layout.call] != 0xE8:
        raise ValueError("the template has no call at its ftrace_call label")
    code = bytearray(template[:layout.size])
    code += RET_INT3
    code += b"\xcc" * (layout.slot - len(code))
    code += ops.to_bytes(8, "little")
    disp = tramp + layout.slot - (tramp + layout.op_ptr + 7)
    code[layout.op_ptr + 3:layout.op_ptr + 7] = disp.to_bytes(4, "little", signed=True)
    code[layout.call:layout.call + 5] = gen_call(tramp + layout.call, func)
    return bytes(code)
