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
(a probe hit from a handler is not reentered).

``lab.kprobes.register_kretprobe(Kretprobe(symbol, handler, entry_handler))`` puts a
kprobe on the function's entry that replaces the return address with a trampoline
(one ``int3`` in module text), keeping the real one in a per-task instance
(6.12's rethook: at most ``maxactive`` in flight, else ``nmissed``; an exiting
task's instances are dropped when its task_struct is put). At the trampoline the
handler runs with ``regs.ip`` = the real return address and ``regs.rax`` = the
return value, and the CPU continues there. The int3 handling is the lab's
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
from ..machine.memory import PCPU_CURRENT_TASK
from .ftrace_ops import FtraceOpsFlag
from .trace_probe_tmpl import PENDING_COUNT

if TYPE_CHECKING:
    from ..machine.cpu import Machine
    from .ftrace_ops import FtraceOps, FtraceRegs
    from .ftrace_update import Ftrace

__all__ = ["CpuRegs", "Kprobe", "KprobeError", "Kprobes", "Kretprobe", "KretprobeInstance"]

SLOT_SIZE = 32


class KprobeError(FtraceLabError):
    """register_kprobe() refused the probe; ``errno`` is the kernel's."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


#: pt_regs fields of an int3 frame that are not general registers: the kernel's
#: code and stack segments, and orig_ax = -1 (an exception, not a syscall)
_SEGMENTS = {"cs": 0x10, "ss": 0x18, "orig_ax": 0xFFFF_FFFF_FFFF_FFFF}


class CpuRegs:
    """struct pt_regs of a kprobe hit: the CPU's registers, readable and writable
    under pt_regs' names (``rdi`` ... ``ip``, ``sp``, ``flags``); ``arg(n)`` is $argN."""

    _NAMES: ClassVar[dict[str, str]] = {
        "ip": "rip", "sp": "rsp", "flags": "eflags", "rsp": "rsp",
        **{r: r for r in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11",
                          "r12", "r13", "r14", "r15")}}

    _m: Machine
    _ip: int

    def __init__(self, m: Machine, ip: int) -> None:
        object.__setattr__(self, "_m", m)
        object.__setattr__(self, "_ip", ip)

    def __getattr__(self, name: str) -> int:
        if name in ("ip", "rip"):
            return int(self._ip)
        if name in _SEGMENTS:
            return _SEGMENTS[name]
        reg = self._NAMES.get(name) or self._NAMES.get("r" + name)
        if reg is None:
            raise AttributeError(f"struct pt_regs has no {name!r}")
        return int(self._m.reg(reg))

    def __setattr__(self, name: str, value: int) -> None:
        if name in ("ip", "rip"):
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
    """register_kprobe()/unregister_kprobe() and register_kretprobe()/unregister_kretprobe()
    for the lab (``lab.kprobes``). Several kprobes on one address share its int3 or
    ftrace_ops, as the kernel's aggregated kprobe does (aggr_pre_handler())."""

    def __init__(self, ftrace: Ftrace) -> None:
        self.ftrace, self.m = ftrace, ftrace.machine
        self.by_addr: dict[int, list[Kprobe]] = {}
        self.by_slot: dict[int, list[Kprobe]] = {}
        self._ss: dict[int, list[int]] = {}         # CPU -> probed addresses whose slot runs
        self._running: set[int] = set()             # CPUs inside a handler
        self._trampoline = 0                        # kretprobe_trampoline: one int3
        self._instances: dict[int, list[KretprobeInstance]] = {}   # task -> its returns, LIFO
        self._kretprobes: list[Kretprobe] = []
        self._flush: Kprobe | None = None
        self.m.int3_handlers.append(self._int3)

    # ---- registration ----------------------------------------------------------------
    def register(self, kp: Kprobe) -> Kprobe:
        m, ks = self.m, self.m.kallsyms
        if any(kp in kps for kps in self.by_addr.values()):
            raise KprobeError(f"register_kprobe: -EEXIST: {kp!r} is already registered", 17)
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
        if not start <= addr < start + max(size, 1):
            raise KprobeError(f"register_kprobe: -EINVAL: {kp.symbol}+{kp.offset:#x} is past the "
                              "function", 22)
        if self._blacklisted(addr):
            raise KprobeError(f"register_kprobe: -EINVAL: {ks.format_ps(addr)} is in the kprobe blacklist "
                              "(entry or noinstr text)", 22)
        kp.addr, kp.disabled = addr, False
        others = self.by_addr.get(addr)
        if others:                                   # register_aggr_kprobe()
            first = others[0]
            kp.on_ftrace, kp.insn, kp.slot, kp.ops = first.on_ftrace, first.insn, first.slot, first.ops
        elif addr in {r.ip for r in self.ftrace.records}:
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
                ks.add_dynamic("kprobe_insn_page", kp.slot, SLOT_SIZE, "__builtin__kprobes")
            m.write_text(addr, bytes([INT3_INSN_OPCODE]))      # arm_kprobe(): text_poke(int3)
        self.by_addr.setdefault(addr, []).append(kp)
        if kp.slot:
            self.by_slot[kp.slot + kp.insn.size if kp.insn else 0] = self.by_addr[addr]
        return kp

    def unregister(self, kp: Kprobe) -> None:
        kps = self.by_addr.get(kp.addr, [])
        if kp not in kps:
            raise FtraceLabError(f"{kp!r} is not registered")
        kps.remove(kp)
        kp.disabled = True
        if kps:
            return
        del self.by_addr[kp.addr]
        if kp.on_ftrace and kp.ops is not None:
            self.ftrace.unregister(kp.ops)
        elif kp.insn is not None:
            self.m.write_text(kp.addr, kp.insn.raw[:1])          # disarm: the first byte back

    def register_kretprobe(self, rp: Kretprobe) -> Kretprobe:
        """register_kretprobe(): a kprobe on the function's entry that hijacks the
        return address (arch_rethook_prepare()); only a function entry will do."""
        if not self.on_func_entry(rp.symbol, rp.offset):
            raise KprobeError("register_kretprobe: -EINVAL: a return probe goes on a function's "
                              "entry (offset 0)", 22)
        if not self._trampoline:
            self._trampoline = self.ftrace.text.alloc(16)
            self.m.write_text(self._trampoline, bytes([INT3_INSN_OPCODE]))
            self.m.kallsyms.add_dynamic("arch_rethook_trampoline", self._trampoline, 16, "")
        if rp.maxactive <= 0:
            rp.maxactive = max(10, 2 * self.m.ncpus)
        rp.kp = Kprobe(rp.symbol, rp.offset, pre_handler=lambda kp, regs: self._kret_entry(rp, regs))
        self.register(rp.kp)
        self._kretprobes.append(rp)
        if self._flush is None:     # rethook_flush_task(): an exiting task's last call never returns
            self._flush = self.register(Kprobe("__put_task_struct", pre_handler=self._flush_task))
        return rp

    def unregister_kretprobe(self, rp: Kretprobe) -> None:
        """Unregistering leaves the hijacked returns in flight; they return normally
        (their handler is not called), as rethook's do once the probe is gone."""
        if rp.kp is not None:
            self.unregister(rp.kp)
        rp.gone = True
        self._kretprobes.remove(rp)
        if not self._kretprobes and not any(self._instances.values()) and self._flush is not None:
            self.unregister(self._flush)
            self._flush = None

    def on_func_entry(self, symbol: str, offset: int) -> bool:
        """kprobe_on_func_entry(): offset 0, or 4 after an endbr64 (ENOENT: no symbol)."""
        try:
            start = self.m.kallsyms.lookup_name(symbol).addr
        except KeyError as exc:
            raise KprobeError(f"register_kprobe: -ENOENT: no symbol {symbol!r}", 2) from exc
        return offset == 0 or (offset == len(ENDBR64) and self.m.read(start, 4) == ENDBR64)

    def traceable(self, symbol: str) -> bool:
        """Not within_notrace_func(): the function has an fentry site ftrace manages."""
        sym = self.m.kallsyms.lookup_name(symbol)
        return any(sym.addr <= r.ip < sym.addr + sym.size for r in self.ftrace.records)

    def _recovered(self, start: int, size: int) -> bytes:
        """The text as it was before our int3s (recover_probed_instruction())."""
        code = bytearray(self.m.read(start, size))
        for addr, kps in self.by_addr.items():
            insn = kps[0].insn
            if insn is not None and start <= addr < start + size:
                code[addr - start] = insn.raw[0]
        return bytes(code)

    def _blacklisted(self, addr: int) -> bool:
        sym = self.m.symbols
        ranges = [("__noinstr_text_start", "__noinstr_text_end"), ("__entry_text_start", "__entry_text_end")]
        return any(sym[a] <= addr < sym[b] for a, b in ranges)

    def _arm_ftrace(self, kp: Kprobe) -> None:
        """arm_kprobe_ftrace(): an IPMODIFY ftrace_ops on the one function."""
        kp.on_ftrace = True
        name = self.m.kallsyms.format_short(kp.addr)
        addr = kp.addr

        def handler(ip: int, parent_ip: int, ops: FtraceOps, fregs: FtraceRegs) -> None:
            self._hit_ftrace(addr, fregs)
        flags = FtraceOpsFlag.SAVE_REGS | FtraceOpsFlag.IPMODIFY
        kp.ops = self.ftrace.register(handler, filter=[name], flags=flags, name=f"kprobe:{name}")

    # ---- hits --------------------------------------------------------------------------
    def _live(self, addr: int) -> list[Kprobe]:
        return [kp for kp in self.by_addr.get(addr, []) if not kp.disabled]

    def _pre(self, kps: list[Kprobe], regs: Any) -> bool:
        """aggr_pre_handler(): each probe's pre_handler until one returns true."""
        for kp in kps:
            kp.hits += 1
            if self._call(kp.pre_handler, kp, regs):
                return True
        return False

    def _post(self, kps: list[Kprobe], regs: Any) -> None:
        for kp in kps:
            self._call(kp.post_handler, kp, regs, 0)

    def _hit_ftrace(self, addr: int, fregs: FtraceRegs) -> None:
        """kprobe_ftrace_handler(): regs.ip is the site + 1 while the handlers run;
        a pre_handler that returns true keeps the ip it set."""
        kps = self._live(addr)
        if not kps:
            return
        if self.m.cpu in self._running:
            for kp in kps:
                kp.nmissed += 1
            return
        resume = int(fregs.ip)
        fregs.ip = addr + 1
        if not self._pre(kps, fregs):
            fregs.ip = resume
            self._post(kps, fregs)

    def _int3(self, m: Machine, site: int) -> bool:
        """The lab's int3 hook: a kprobe's breakpoint, the int3 after its slot, or
        the kretprobe trampoline."""
        kps = self.by_addr.get(site)
        if kps and kps[0].insn is not None:
            self._hit_int3(site, kps[0].insn, kps[0].slot)
            return True
        kps = self.by_slot.get(site)
        if kps is not None:
            self._after_slot(site)
            return True
        if site == self._trampoline and self._trampoline:
            self._kret_return()
            return True
        return False

    def _hit_int3(self, addr: int, insn: ProbedInsn, slot: int) -> None:
        m = self.m
        kps = self._live(addr)
        if kps and m.cpu in self._running:           # hit from a handler: not reentered
            for kp in kps:
                kp.nmissed += 1
            kps = []
        regs = CpuRegs(m, addr + 1)
        if kps and self._pre(kps, regs):             # the handler moved the ip itself
            m.set_reg("rip", int(regs.ip))
            self._emit_queued()
            return
        nxt = addr + insn.size
        if insn.how == "xol":                        # the post handlers run at the slot's int3
            self._ss.setdefault(m.cpu, []).append(addr if kps else 0)
            m.set_reg("rip", slot)
            self._emit_queued()
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
        if kps:
            self._post(kps, CpuRegs(m, m.reg("rip")))
        self._emit_queued()

    def _emit_queued(self) -> None:
        """Records the handlers queued (probe events) are written natively: the CPU
        goes through lab_kprobe_emit, which keeps every register and returns to
        where the CPU was going (an int3 handler's exit, in effect)."""
        m = self.m
        if m.mailbox[PENDING_COUNT // 8] & 0xFFFF_FFFF:
            m.push(m.reg("rip"))
            m.set_reg("rip", m.symbols["lab_kprobe_emit"])

    def _after_slot(self, site: int) -> None:
        """resume_singlestep(): back at the probed code after the slot's int3."""
        m = self.m
        kps = self.by_slot[site]
        addr = kps[0].addr
        insn = kps[0].insn
        assert insn is not None
        m.set_reg("rip", addr + insn.size)
        pending = self._ss.get(m.cpu, [])
        if pending and pending.pop() == addr:
            self._post(self._live(addr), CpuRegs(m, addr + insn.size))
            self._emit_queued()

    def _call(self, handler: Callable[..., Any] | None, *args: Any) -> bool:
        """A handler, with this CPU marked busy (kprobe_running()) while it runs."""
        if handler is None:
            return False
        self._running.add(self.m.cpu)
        try:
            return bool(handler(*args))
        finally:
            self._running.discard(self.m.cpu)

    # ---- kretprobes: rethook ------------------------------------------------------------
    def _current(self) -> int:
        return self.m.percpu_u64(self.m.cpu, PCPU_CURRENT_TASK)

    def _kret_entry(self, rp: Kretprobe, regs: Any) -> bool:
        """pre_handler_kretprobe(): take an instance (or count a miss), run the
        entry_handler, and point the return address at the trampoline."""
        if rp.active >= rp.maxactive:
            rp.nmissed += 1
            return False
        sp = int(regs.sp)
        mine = self._instances.setdefault(self._current(), [])
        ret_addr = self.m.read_u64(sp)
        if ret_addr == self._trampoline:             # another kretprobe took this return first
            ret_addr = next(ri.ret_addr for ri in reversed(mine) if ri.stack == sp)
        ri = KretprobeInstance(rp, ret_addr, sp, bytearray(rp.data_size))
        if rp.entry_handler is not None and rp.entry_handler(ri, regs):
            return False                             # the entry handler declined this call
        rp.active += 1
        self.m.write_u64(sp, self._trampoline)
        mine.append(ri)
        return False

    def _flush_task(self, kp: Kprobe, regs: Any) -> bool:
        for ri in self._instances.pop(regs.arg(1), []):
            ri.rp.active -= 1
        return False

    def _kret_return(self) -> None:
        """The trampoline's int3 (rethook_trampoline_handler()): the current task's
        newest instances, those of the frame returning now (several kretprobes may
        share a frame), newest first: each handler runs with regs.ip = the real
        return address, then the CPU continues there."""
        m = self.m
        stack = self._instances.get(self._current())
        if not stack:
            raise FtraceLabError("kretprobe trampoline reached with no instance for this task")
        frame = stack[-1].stack
        ret_addr = stack[-1].ret_addr
        while stack and stack[-1].stack == frame:
            ri = stack.pop()
            ri.rp.active -= 1
            if not ri.rp.gone and ri.rp.handler is not None:
                self._call(ri.rp.handler, ri, CpuRegs(m, ret_addr))
        m.set_reg("rip", ret_addr)
        self._emit_queued()


@dataclass(eq=False)
class KretprobeInstance:
    """``struct kretprobe_instance``: one hijacked return."""

    rp: Kretprobe
    ret_addr: int
    stack: int                                       # where the return address sat
    data: bytearray

    @property
    def func(self) -> int:
        """The probed function's address (the kprobe's)."""
        return self.rp.kp.addr if self.rp.kp is not None else 0


@dataclass(eq=False)
class Kretprobe:
    """``struct kretprobe``: ``handler(ri, regs)`` at the return (``regs.rax`` is the
    return value), ``entry_handler(ri, regs)`` at the entry (true: skip this call),
    ``maxactive`` instances in flight at most (default max(10, 2 * CPUs), as 6.12)
    and ``data_size`` bytes of ``ri.data`` for the two to share."""

    symbol: str
    handler: Callable[[KretprobeInstance, Any], Any] | None = None
    entry_handler: Callable[[KretprobeInstance, Any], Any] | None = None
    maxactive: int = 0
    data_size: int = 0
    offset: int = 0
    nmissed: int = 0
    active: int = 0
    gone: bool = False
    kp: Kprobe | None = None
