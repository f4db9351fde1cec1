"""kernel/kprobes.c and arch/x86/kernel/kprobes/{core,ftrace}.c of Linux 6.x, for the
lab: ``lab.kprobes.register(Kprobe(symbol, offset, pre_handler, post_handler))``.

Where the probe goes:

* ``symbol+0`` of a function that starts with ``endbr64`` moves past it
  (arch_adjust_kprobe_addr()), so a probe on a function lands on its fentry site;
* a probe on an fentry site is a *kprobe on ftrace* (kprobe_ftrace_handler()): no
  int3, an ftrace_ops with SAVE_REGS and IPMODIFY on that function; the handlers
  see ``regs.ip`` = the site + 1, as with int3;
* anywhere else the address must be an instruction boundary (decoding from the
  function's start; else -EILSEQ) outside the blacklist (the entry and noinstr
  text, where a breakpoint would recurse; -EINVAL), and an ``int3`` is written
  there. When a CPU hits it, the pre_handler runs (``regs`` are the CPU's
  registers, ``regs.ip`` the address + 1); then a relative jmp, call, conditional
  jump or ret is emulated, and any other instruction runs out of line in a slot
  of module text followed by an ``int3`` that brings the CPU back for the
  post_handler (x86's way since it dropped the single-step trap). A true result
  from the pre_handler skips the instruction: the handler set ``regs.ip``.

``nmissed`` counts hits while another kprobe's handler was running on the CPU
(a probe hit from a handler is not reentered). The int3 handling is the lab's
(the machine's int3 hook), as for the text-poke protocol.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..arch.x86_64.insn import ENDBR64, INT3_INSN_OPCODE
from ..arch.x86_64.kprobes import ProbedInsn, analyse, boundaries, indirect_target, jcc_taken, xol_copy
from ..errors import FtraceLabError
from .ftrace_ops import FtraceOpsFlag

if TYPE_CHECKING:
    from ..machine.cpu import Machine
    from .ftrace_ops import FtraceOps, FtraceRegs
    from .ftrace_update import Ftrace

__all__ = ["CpuRegs", "Kprobe", "KprobeError", "Kprobes"]

SLOT_SIZE = 32


class KprobeError(FtraceLabError):
    """register_kprobe() refused the probe; ``errno`` is the kernel's."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


class CpuRegs:
    """struct pt_regs of a kprobe hit: the CPU's registers, readable and writable
    under pt_regs' names (``rdi`` ... ``ip``, ``sp``, ``flags``); ``arg(n)`` is $argN."""

    _NAMES: ClassVar[dict[str, str]] = {
        "ip": "rip", "sp": "rsp", "flags": "eflags",
        **{r: r for r in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11",
                          "r12", "r13", "r14", "r15")}}

    _m: Machine
    _ip: int

    def __init__(self, m: Machine, ip: int) -> None:
        object.__setattr__(self, "_m", m)
        object.__setattr__(self, "_ip", ip)

    def __getattr__(self, name: str) -> int:
        if name == "ip":
            return int(self._ip)
        reg = self._NAMES.get(name) or self._NAMES.get("r" + name)
        if reg is None:
            raise AttributeError(f"struct pt_regs has no {name!r}")
        return int(self._m.reg(reg))

    def __setattr__(self, name: str, value: int) -> None:
        if name == "ip":
            object.__setattr__(self, "_ip", value)
            return
        reg = self._NAMES.get(name) or self._NAMES.get("r" + name)
        if reg is None:
            raise AttributeError(f"struct pt_regs has no {name!r}")
        self._m.set_reg(reg, value)

    def arg(self, n: int) -> int:
        regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
        if 1 <= n <= 6:
            return int(getattr(self, regs[n - 1]))
        return self._m.read_u64(int(self.sp) + 8 * (n - 6))


Handler = Callable[["Kprobe", Any], Any]


@dataclass(eq=False)
class Kprobe:
    """``struct kprobe``: where (``symbol`` + ``offset``, or ``addr``) and the handlers."""

    symbol: str | None = None
    offset: int = 0
    pre_handler: Handler | None = None
    post_handler: Callable[[Kprobe, Any, int], Any] | None = None
    addr: int = 0
    nmissed: int = 0
    hits: int = 0
    on_ftrace: bool = False
    insn: ProbedInsn | None = None
    slot: int = 0
    ops: FtraceOps | None = None
    disabled: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        how = "on ftrace" if self.on_ftrace else (self.insn.how if self.insn else "?")
        return f"<kprobe {self.symbol}+{self.offset:#x} at {self.addr:#x} ({how}) hits={self.hits}>"

    def _repr_html_(self) -> str:
        insn = self.insn
        how = ("kprobe on ftrace (ftrace_ops with SAVE_REGS|IPMODIFY, no int3)" if self.on_ftrace else
               f"int3; {_HOW.get(insn.how, insn.how)}" if insn else "not registered")
        items = (("where", f"{self.symbol or ''}+{self.offset:#x}"), ("address", f"{self.addr:#x}"),
                 ("mechanism", how),
                 ("probed instruction", f"{insn.text} ({insn.raw.hex(' ')})" if insn else "-"),
                 ("out-of-line slot", f"{self.slot:#x}" if self.slot else "-"),
                 ("hits", self.hits), ("nmissed", self.nmissed), ("disabled", self.disabled))
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in items)
        return f"<table><caption>struct kprobe</caption>{rows}</table>"


_HOW = {"xol": "the instruction runs out of line, then an int3 returns to the kprobe",
        "jmp": "the jump is emulated", "call": "the call is emulated",
        "jcc": "the conditional jump is emulated",
        "ret": "the return is emulated"}


class Kprobes:
    """register_kprobe()/unregister_kprobe() for the lab (``lab.kprobes``)."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace, self.m = ftrace, ftrace.machine
        self.by_addr: dict[int, Kprobe] = {}
        self.by_slot: dict[int, Kprobe] = {}
        self._active: dict[int, Kprobe | None] = {}   # CPU -> the kprobe whose slot runs
        self._running: set[int] = set()             # CPUs inside a handler
        self.m.int3_handlers.append(self._int3)

    # ---- registration ----------------------------------------------------------------
    def register(self, kp: Kprobe) -> Kprobe:
        m, ks = self.m, self.m.kallsyms
        if kp.symbol is not None:
            try:
                sym = ks.lookup_name(kp.symbol)
            except KeyError as exc:
                raise KprobeError(f"register_kprobe: -ENOENT: no symbol {kp.symbol!r}", 2) from exc
            start, size = sym.addr, sym.size
            addr = start + kp.offset
            if kp.offset == 0 and m.read(start, 4) == ENDBR64:
                addr += len(ENDBR64)                 # arch_adjust_kprobe_addr()
        else:
            addr = kp.addr
            hit = ks.lookup(addr)
            if hit is None:
                raise KprobeError(f"register_kprobe: -EINVAL: {addr:#x} is not kernel text", 22)
            start, size = hit[0].addr, hit[0].size
        if addr in self.by_addr:
            raise KprobeError(f"register_kprobe: -EEXIST: {ks.format_ps(addr)} has a kprobe", 17)
        if not start <= addr < start + max(size, 1):
            raise KprobeError(f"register_kprobe: -EINVAL: {kp.symbol}+{kp.offset:#x} is past the "
                              "function", 22)
        if self._blacklisted(addr):
            raise KprobeError(f"register_kprobe: -EINVAL: {ks.format_ps(addr)} is in the kprobe blacklist "
                              "(entry or noinstr text)", 22)
        kp.addr = addr
        if addr in {r.ip for r in self.ftrace.records}:
            self._arm_ftrace(kp)
        else:
            code = self._recovered(start, size + 15)
            if addr not in boundaries(code[:size], start):
                raise KprobeError(f"register_kprobe: -EILSEQ: {ks.format_ps(addr)} is not an "
                                  "instruction boundary", 84)
            insn = analyse(code[addr - start:addr - start + 15], addr)
            if insn.how == "refused":
                raise KprobeError(f"register_kprobe: -EINVAL: cannot probe '{insn.text}'", 22)
            kp.insn = insn
            if insn.how == "xol":
                kp.slot = self.ftrace.text.alloc(SLOT_SIZE)
                m.write_text(kp.slot, xol_copy(insn, kp.slot))
                self.by_slot[kp.slot + insn.size] = kp
            m.write_text(addr, bytes([INT3_INSN_OPCODE]))      # arm_kprobe(): text_poke(int3)
        self.by_addr[addr] = kp
        return kp

    def unregister(self, kp: Kprobe) -> None:
        if self.by_addr.get(kp.addr) is not kp:
            raise FtraceLabError(f"{kp!r} is not registered")
        if kp.on_ftrace and kp.ops is not None:
            self.ftrace.unregister(kp.ops)
        elif kp.insn is not None:
            self.m.write_text(kp.addr, kp.insn.raw[:1])          # disarm: the first byte back
        del self.by_addr[kp.addr]
        kp.disabled = True

    def _recovered(self, start: int, size: int) -> bytes:
        """The text as it was before our int3s (recover_probed_instruction())."""
        code = bytearray(self.m.read(start, size))
        for kp in self.by_addr.values():
            if kp.insn is not None and start <= kp.addr < start + size:
                code[kp.addr - start] = kp.insn.raw[0]
        return bytes(code)

    def _blacklisted(self, addr: int) -> bool:
        sym = self.m.symbols
        ranges = [("__noinstr_text_start", "__noinstr_text_end"), ("__entry_text_start", "__entry_text_end")]
        return any(sym[a] <= addr < sym[b] for a, b in ranges)

    def _arm_ftrace(self, kp: Kprobe) -> None:
        """arm_kprobe_ftrace(): an IPMODIFY ftrace_ops on the one function."""
        kp.on_ftrace = True
        name = self.m.kallsyms.format_short(kp.addr)

        def handler(ip: int, parent_ip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
            self._hit_ftrace(kp, fregs)
        flags = FtraceOpsFlag.SAVE_REGS | FtraceOpsFlag.IPMODIFY
        kp.ops = self.ftrace.register(handler, filter=[name], flags=flags, name=f"kprobe:{name}")

    # ---- hits --------------------------------------------------------------------------
    def _hit_ftrace(self, kp: Kprobe, fregs: FtraceRegs) -> None:
        """kprobe_ftrace_handler(): regs.ip is the site + 1 while the handlers run;
        a pre_handler that returns true keeps the ip it set."""
        cpu = self.m.cpu
        if kp.disabled:
            return
        if cpu in self._running:
            kp.nmissed += 1
            return
        kp.hits += 1
        resume = int(fregs.ip)
        fregs.ip = kp.addr + 1
        if not self._call(kp.pre_handler, kp, fregs):
            fregs.ip = resume
            self._call(kp.post_handler, kp, fregs, 0)

    def _int3(self, m: Machine, site: int) -> bool:
        """The lab's int3 hook: a kprobe's breakpoint, or the int3 after its slot."""
        kp = self.by_addr.get(site)
        if kp is not None and kp.insn is not None:
            self._hit_int3(kp)
            return True
        kp = self.by_slot.get(site)
        if kp is not None and kp.insn is not None:
            self._after_slot(kp)
            return True
        return False

    def _hit_int3(self, kp: Kprobe) -> None:
        m = self.m
        assert kp.insn is not None
        if kp.disabled:
            self._execute(kp, None)
            return
        if m.cpu in self._running:                   # hit from a handler: not reentered
            kp.nmissed += 1
            self._execute(kp, None)
            return
        kp.hits += 1
        regs = CpuRegs(m, kp.addr + 1)
        if self._call(kp.pre_handler, kp, regs):     # the handler moved the ip itself
            m.set_reg("rip", int(regs.ip))
            return
        self._execute(kp, regs)

    def _call(self, handler: Callable[..., Any] | None, *args: Any) -> bool:
        """A handler, with this CPU marked busy (kprobe_running()) while it runs."""
        if handler is None:
            return False
        self._running.add(self.m.cpu)
        try:
            return bool(handler(*args))
        finally:
            self._running.discard(self.m.cpu)

    def _execute(self, kp: Kprobe, regs: CpuRegs | None) -> None:
        """Emulate the probed instruction, or send the CPU to its slot (the post
        handler then runs at the slot's int3)."""
        m, insn = self.m, kp.insn
        assert insn is not None
        nxt = kp.addr + insn.size
        if insn.how == "xol":
            self._active[m.cpu] = kp if regs is not None else None
            m.set_reg("rip", kp.slot)
            return
        if insn.how in ("jmp", "call"):
            target = indirect_target(insn, m.reg, m.read_u64) if insn.indirect else insn.target
            if insn.how == "call":
                m.push(nxt)
            m.set_reg("rip", target)
        elif insn.how == "jcc":
            m.set_reg("rip", insn.target if jcc_taken(insn.text.split()[0], m.reg("eflags")) else nxt)
        elif insn.how == "ret":
            sp = m.reg("rsp")
            m.set_reg("rip", m.read_u64(sp))
            m.set_reg("rsp", sp + 8)
        if regs is not None:
            self._call(kp.post_handler, kp, CpuRegs(m, m.reg("rip")), 0)

    def _after_slot(self, kp: Kprobe) -> None:
        """resume_singlestep(): back at the probed code after the slot's int3."""
        m, insn = self.m, kp.insn
        assert insn is not None
        nxt = kp.addr + insn.size
        m.set_reg("rip", nxt)
        if self._active.pop(m.cpu, None) is not None:
            self._call(kp.post_handler, kp, CpuRegs(m, nxt), 0)
