"""Instruction-by-instruction recording of a stretch of emulated code, for the
step-through views (a debugger's ``stepi`` with full history).

:func:`record_until` runs the selected CPU from where it stands until it
reaches ``stop_at``, and records for every instruction: its address and
symbol, capstone's text, the registers it changed, the memory it wrote and
the top of the stack after it. Recording the whole path once and browsing it
afterwards is much faster than single-stepping the emulator
(shared/reference/unicorn-notes.md).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import capstone
from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_WRITE

from ..errors import MachineError
from .cpu import REGS, Machine

_MD = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_MD.syntax = capstone.CS_OPT_SYNTAX_ATT
STACK_WORDS = 6


@dataclass
class Step:
    """One executed instruction."""

    index: int
    address: int
    where: str
    text: str
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)   # reg: (before, after)
    writes: list[tuple[int, int, int]] = field(default_factory=list)    # (addr, size, value)
    stack: list[tuple[int, int]] = field(default_factory=list)          # (addr, value) after it

    def line(self) -> str:
        regs = " ".join(f"{r}={new:#x}" for r, (_, new) in self.changed.items() if r != "rip")
        mem = " ".join(f"[{a:#x}]<-{v:#x}" for a, _, v in self.writes)
        return f"{self.index:4d}  {self.where:<40} {self.text:<44} {regs} {mem}".rstrip()


@dataclass
class StepTrace:
    """A recorded path: ``trace[i]`` is a :class:`Step`; ``str(trace)`` a listing."""

    steps: list[Step]
    start: int
    stop: int
    complete: bool        # reached the stop address (not cut by max_steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> Step:
        return self.steps[i]

    def __str__(self) -> str:
        return "\n".join(s.line() for s in self.steps) + "\n"

    def symbols(self) -> list[str]:
        """The functions the path went through, in order of first entry."""
        seen: dict[str, None] = {}
        for s in self.steps:
            seen.setdefault(s.where.split("+")[0], None)
        return list(seen)

    def _repr_html_(self) -> str:
        rows = []
        for s in self.steps[:400]:
            regs = ", ".join(f"{r}={new:#x}" for r, (_, new) in s.changed.items() if r != "rip")
            mem = ", ".join(f"[{a:#x}]&larr;{v:#x}" for a, _, v in s.writes)
            rows.append(f"<tr><td>{s.index}</td><td><code>{html.escape(s.where)}</code></td>"
                        f"<td><code>{html.escape(s.text)}</code></td><td>{regs}</td><td>{mem}</td></tr>")
        more = f"<p>... {len(self.steps) - 400} more</p>" if len(self.steps) > 400 else ""
        state = "complete" if self.complete else "cut short"
        return (f"<b>StepTrace</b>: {len(self.steps)} instructions ({state})<table>"
                "<tr><th>#</th><th>where</th><th>instruction</th><th>registers</th>"
                f"<th>memory written</th></tr>{''.join(rows)}</table>{more}")


def record_until(machine: Machine, stop_at: int, max_steps: int = 5000) -> StepTrace:
    """Run the selected CPU until it reaches ``stop_at``; record every instruction."""
    uc = machine.uc
    steps: list[Step] = []
    state: dict[str, Any] = {"regs": machine.registers(), "pending": None}
    start = machine.reg("rip")

    def finish_previous() -> None:
        prev = state["pending"]
        if prev is None:
            return
        now = machine.registers()
        before = state["regs"]
        assert isinstance(before, dict) and isinstance(prev, Step)
        prev.changed = {r: (before[r], now[r]) for r in REGS if before[r] != now[r]}
        rsp = now["rsp"]
        prev.stack = [(rsp + 8 * i, machine.read_u64(rsp + 8 * i)) for i in range(STACK_WORDS)]
        state["regs"] = now

    def on_code(_uc: object, address: int, size: int, _ud: object) -> None:
        if machine._depth > 1:          # code run by a callback's own calls: not this path
            return
        finish_previous()
        if len(steps) >= max_steps:
            state["pending"] = None
            machine._pending.reason = "step"
            uc.emu_stop()
            return
        insn = next(_MD.disasm(machine.read(address, size), address, 1), None)
        text = f"{insn.mnemonic} {insn.op_str}".strip() if insn else "(bad)"
        step = Step(len(steps), address, machine.where(address), text)
        steps.append(step)
        state["pending"] = step

    def on_write(_uc: object, _access: int, address: int, size: int, value: int, _ud: object) -> None:
        pending = state["pending"]
        if machine._depth <= 1 and isinstance(pending, Step):
            pending.writes.append((address, size, value & ((1 << (8 * size)) - 1)))

    def on_host_write(address: int, data: bytes) -> None:
        """A Python callback's write into kernel memory (fgraph data, say): part of
        the instruction whose hook ran it, word by word."""
        pending = state["pending"]
        if machine._depth <= 1 and isinstance(pending, Step):
            for at in range(0, len(data) - len(data) % 8, 8):
                pending.writes.append((address + at, 8, int.from_bytes(data[at:at + 8], "little")))

    hooks = [uc.hook_add(UC_HOOK_CODE, on_code), uc.hook_add(UC_HOOK_MEM_WRITE, on_write)]
    uc.ctl_flush_tb()
    machine.host_write_hook = on_host_write
    try:
        stop = machine.run(until=stop_at)
        finish_previous()
    finally:
        machine.host_write_hook = None
        for h in hooks:
            uc.hook_del(h)
        uc.ctl_flush_tb()
    if stop.reason not in ("until", "step", "breakpoint") and len(steps) < max_steps:
        raise MachineError(f"recording ended with {stop.reason} at {stop.where}")
    return StepTrace(steps, start, stop_at, stop.rip == stop_at)
