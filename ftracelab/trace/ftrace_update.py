"""Registering ftrace_ops and patching call sites (kernel/trace/ftrace.c:
register_ftrace_function(), ftrace_startup()/ftrace_shutdown(),
__ftrace_hash_rec_update(), ftrace_get_addr_new(), ftrace_modify_all_code(),
ftrace_ops_get_func(); arch/x86/kernel/ftrace.c: ftrace_replace_code(),
arch_ftrace_update_trampoline()).

:class:`Ftrace` is ``lab.ftrace``: the dyn_ftrace records of boot time plus
the registered ops. After every change, ``update_code`` recomputes what each
record wants:

* no ops wants it: the 5-byte NOP;
* one ops wants it and that ops has its own trampoline: ``call <trampoline>``
  (FTRACE_FL_TRAMP);
* an ops wants the registers saved: ``call ftrace_regs_caller`` (FTRACE_FL_REGS);
* otherwise ``call ftrace_caller``.

``ftrace_caller``/``ftrace_regs_caller`` call through ``ftrace_call``: the one
registered ops' function, or ``ftrace_ops_list_func`` when there are several.
All text changes go through the int3 protocol in batches, in the order
ftrace_modify_all_code() uses: switch the shared call to the list function,
patch the sites, then switch it to its final target.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..arch.x86_64.ftrace import TrampolineLayout, create_trampoline
from ..arch.x86_64.insn import NOP5, call_target, gen_call
from ..errors import FtraceLabError
from ..machine.cpu import Machine
from ..machine.hooks import RawCallHook
from ..machine.memory import FTRACE_DATA_BASE, FTRACE_DATA_SIZE, MODULES_SIZE, MODULES_VADDR
from ..machine.text_poke import TextPoke, TextPoker
from .ftrace import FtraceFlag, FtraceState, ftrace_init
from .ftrace_ops import (
    OPS_FILTER_HASH,
    OPS_FUNC_HASH,
    OPS_NOTRACE_HASH,
    OPS_SIZE,
    USER_FLAGS,
    FtraceOps,
    FtraceOpsFlag,
    FtraceRegs,
    KernelArena,
    PyFunc,
    write_hash,
)
from .ftrace_regex import filter_parse_regex, match_records

_FLAG_BITS = (FtraceFlag.ENABLED | FtraceFlag.REGS | FtraceFlag.REGS_EN | FtraceFlag.TRAMP
              | FtraceFlag.TRAMP_EN | FtraceFlag.IPMODIFY | 0x7FFFF)


class CodeUpdate:
    """A pending text update: rounds of batched int3 pokes, stepped phase by phase.

    Each round's writes are computed when the round starts (so nothing is
    rewritten with the bytes it already holds), then applied int3 / tail /
    first over all its sites; its follow-up runs when the round completes.
    """

    def __init__(self, poker: TextPoker,
                 rounds: list[tuple[Callable[[], list[tuple[int, bytes]]], Callable[[], None]]]
                 ) -> None:
        self._poker = poker
        self._rounds = rounds
        self._round = 0
        self._batch: list[tuple[int, bytes]] = []
        self._pokes: list[TextPoke] = []
        self.log: list[str] = []
        self._advance()

    def _advance(self) -> None:
        """Start the next round that has something to write; finish the empty ones."""
        while self._round < len(self._rounds):
            self._batch = self._rounds[self._round][0]()
            if self._batch:
                return
            self._rounds[self._round][1]()
            self._round += 1

    @property
    def sites(self) -> list[int]:
        return [ip for ip, _ in self._batch]

    @property
    def finished(self) -> bool:
        return self._round >= len(self._rounds)

    def step(self) -> str:
        """One phase (int3 / tail / first) over every site of the current round."""
        if self.finished:
            raise FtraceLabError("this code update is complete")
        if not self._pokes:
            self._pokes = [self._poker.begin(ip, new) for ip, new in self._batch]
        phase = self._pokes[0].next_step or ""
        for poke in self._pokes:
            poke.step()
        msg = f"round {self._round + 1}: {phase} on {len(self._batch)} site(s)"
        self.log.append(msg)
        if self._pokes[0].finished:
            self._pokes = []
            self._rounds[self._round][1]()
            self._round += 1
            self._advance()
        return msg

    def _repr_html_(self) -> str:
        state = "finished" if self.finished else f"round {self._round + 1} of {len(self._rounds)}"
        log = "".join(f"<li>{m}</li>" for m in self.log)
        return (f"<b>pending code update</b>: {len(self.sites)} site(s) in this round, {state}"
                f"<ol>{log}</ol>")

    def finish(self) -> None:
        while not self.finished:
            self.step()


class Ftrace(FtraceState):
    """``lab.ftrace``: dyn_ftrace records, registered ftrace_ops and the code they need."""

    def __init__(self, machine: Machine, poker: TextPoker) -> None:
        super().__init__(records=[])
        self.machine, self.poker = machine, poker
        self.ops: list[FtraceOps] = []
        self.data = KernelArena(FTRACE_DATA_BASE, FTRACE_DATA_SIZE)
        self.text = KernelArena(MODULES_VADDR, MODULES_SIZE)
        self._by_addr: dict[int, FtraceOps] = {}
        self._targets: dict[int, int | None] = {}
        self._trace_func = machine.symbols["ftrace_stub"]
        self._py_hook: RawCallHook | None = None
        self.pending: CodeUpdate | None = None
        sym = machine.symbols
        self.layouts = {
            False: TrampolineLayout(sym["ftrace_caller_end"] - sym["ftrace_caller"],
                                    sym["ftrace_caller_op_ptr"] - sym["ftrace_caller"],
                                    sym["ftrace_call"] - sym["ftrace_caller"]),
            True: TrampolineLayout(sym["ftrace_regs_caller_end"] - sym["ftrace_regs_caller"],
                                   sym["ftrace_regs_caller_op_ptr"] - sym["ftrace_regs_caller"],
                                   sym["ftrace_regs_call"] - sym["ftrace_regs_caller"]),
        }

    def boot(self) -> None:
        """ftrace_init(): records and the boot-time NOP conversion."""
        state = ftrace_init(self.machine, self.poker)
        self.records, self.boot_log, self.skipped = state.records, state.boot_log, state.skipped
        self._targets = {r.ip: None for r in self.records}

    # ---- patterns -----------------------------------------------------------
    def match(self, patterns: str | list[str] | None) -> set[int]:
        """The record ips a glob (or list of globs) selects; ``!glob`` removes."""
        if patterns is None:
            return set()
        words = patterns.split() if isinstance(patterns, str) else list(patterns)
        names = [r.function for r in self.records]
        ips: set[int] = set()
        for word in words:
            pat = filter_parse_regex(word)
            hits = match_records(names, pat)
            if not hits:
                raise FtraceLabError(
                    f"{word!r} matches no traceable function (notrace functions and unknown "
                    "names cannot be filtered); see lab.tracefs.read('available_filter_functions')")
            chosen = {self.records[i].ip for i in hits}
            ips = ips - chosen if pat.negate else ips | chosen
        return ips

    # ---- registration ---------------------------------------------------------
    def register(self, func: PyFunc | str, filter: str | list[str] | None = None,
                 notrace: str | list[str] | None = None,
                 flags: FtraceOpsFlag | int = 0, name: str | None = None,
                 apply: bool = True) -> FtraceOps:
        """register_ftrace_function(): start calling ``func`` at the selected functions.

        ``func`` is a Python callable ``func(ip, parent_ip, ops, fregs)`` or the
        symbol of a native callback. With ``apply=False`` the text changes wait
        in ``lab.ftrace.pending`` to be stepped through.
        """
        flags = FtraceOpsFlag(int(flags))
        bad = flags & ~USER_FLAGS
        if bad:
            raise FtraceLabError(f"flags {bad!r} are ftrace's own state or not supported here; "
                                 f"register() takes {USER_FLAGS!r}")
        if flags & FtraceOpsFlag.SAVE_REGS_IF_SUPPORTED:
            flags = (flags & ~FtraceOpsFlag.SAVE_REGS_IF_SUPPORTED) | FtraceOpsFlag.SAVE_REGS
        if flags & FtraceOpsFlag.IPMODIFY:
            flags |= FtraceOpsFlag.SAVE_REGS   # the ip is copied back by ftrace_regs_caller
        if isinstance(func, str):
            self.machine.kallsyms.lookup_name(func)      # a clear error for a wrong name
        elif not callable(func):
            raise TypeError("func must be a callable or the name of a native callback")
        label = name or (func if isinstance(func, str) else str(getattr(func, "__name__", "python")))
        ops = FtraceOps(self, func, flags | FtraceOpsFlag.DYNAMIC, label)
        ops.filter_ips, ops.notrace_ips = self.match(filter), self.match(notrace)
        return self.register_ops(ops, apply)

    def register_ops(self, ops: FtraceOps, apply: bool = True) -> FtraceOps:
        """Register an ops whose func, flags and hashes are already set (the tracers'
        global ops is one: set_ftrace_filter edits its hashes)."""
        if ops in self.ops:
            raise FtraceLabError(f"{ops.name} is already registered")
        flags = ops.flags
        self._check_ipmodify(ops)
        self._write_ops(ops)
        ops.enabled = True
        ops.flags |= FtraceOpsFlag.ENABLED | FtraceOpsFlag.INITIALIZED
        self.ops.append(ops)
        self._by_addr[ops.addr] = ops
        if not ops.native:
            ops.fregs_view = FtraceRegs(self.machine, 0, bool(flags & FtraceOpsFlag.SAVE_REGS),
                                        bool(flags & FtraceOpsFlag.IPMODIFY))
            self._ensure_python_hook()
        self._link_ops_list()
        self._update(apply)
        return ops

    def unregister(self, ops: FtraceOps, apply: bool = True) -> None:
        """unregister_ftrace_function()."""
        if ops not in self.ops:
            raise FtraceLabError(f"{ops.name} is not registered")
        self.ops.remove(ops)
        ops.enabled = False
        ops.flags &= ~FtraceOpsFlag.ENABLED
        self._link_ops_list()
        self._update(apply)

    def set_ops_hash(self, ops: FtraceOps, patterns: str | list[str] | None,
                     notrace: bool) -> None:
        """ftrace_set_filter()/ftrace_set_notrace() with reset: replace the hash."""
        ips = self.match(patterns)
        old = (ops.filter_ips, ops.notrace_ips)
        if notrace:
            ops.notrace_ips = ips
        else:
            ops.filter_ips = ips
        try:
            self.refresh(ops)
        except FtraceLabError:
            ops.filter_ips, ops.notrace_ips = old
            raise

    def _check_ipmodify(self, ops: FtraceOps) -> None:
        """Only one IPMODIFY ops per function (__ftrace_hash_update_ipmodify: -EBUSY)."""
        if not ops.flags & FtraceOpsFlag.IPMODIFY:
            return
        for other in self.ops:
            if other is not ops and other.flags & FtraceOpsFlag.IPMODIFY:
                both = [r.function for r in self.records if ops.traces(r.ip) and other.traces(r.ip)]
                if both:
                    raise FtraceLabError(f"{both[0]} is already modified by IPMODIFY ops "
                                         f"{other.name} (the kernel returns -EBUSY)")

    @staticmethod
    def default_flags() -> FtraceOpsFlag:
        return FtraceOpsFlag(0)

    def refresh(self, ops: FtraceOps) -> None:
        """Its hashes changed: rewrite them in kernel memory and update the code."""
        self._check_ipmodify(ops)
        if ops.addr:
            self._write_hashes(ops)
        if ops.enabled:
            self._update(True)

    @property
    def pids_enabled(self) -> bool:
        """ftrace_pids_enabled(): is set_ftrace_pid or set_ftrace_notrace_pid set?"""
        m = self.machine
        return any(m.read(m.symbols[s], 1) != b"\0" for s in ("ftrace_pids_set", "ftrace_no_pids_set"))

    def update_pid_func(self) -> None:
        """ftrace_update_pid_func(): each FTRACE_OPS_FL_PID ops calls ftrace_pid_func()
        while a pid list is set, its own function otherwise; its trampoline's call is
        poked to match (arch_ftrace_update_trampoline(), int3 protocol), then the
        shared callers."""
        m = self.machine
        writes: list[tuple[int, bytes]] = []
        for ops in self.ops:
            if not ops.flags & FtraceOpsFlag.PID or not ops.addr:
                continue
            pid_func = m.symbols["ftrace_pid_func"] if self.pids_enabled else self._real_func(ops)
            m.write_u64(ops.addr, pid_func)                          # ops->func
            if ops.trampoline:
                at = ops.trampoline + self.layouts[bool(ops.flags & FtraceOpsFlag.SAVE_REGS)].call
                if call_target(at, m.read(at, 5)) != self.get_func(ops):
                    writes.append((at, gen_call(at, self.get_func(ops))))
        CodeUpdate(self.poker, [(lambda: writes, lambda: None)]).finish()
        if any(o.enabled for o in self.ops):
            self._update(True)

    # ---- kernel memory ----------------------------------------------------------
    def get_func(self, ops: FtraceOps) -> int:
        """ftrace_ops_get_func(): the assist function guards ops without RECURSION."""
        sym = self.machine.symbols
        if not ops.flags & FtraceOpsFlag.RECURSION:
            return sym["ftrace_ops_assist_func"]
        pid = ops.flags & FtraceOpsFlag.PID and self.pids_enabled
        return sym["ftrace_pid_func"] if pid else self._real_func(ops)

    def _real_func(self, ops: FtraceOps) -> int:
        sym = self.machine.symbols
        return sym[ops.func] if isinstance(ops.func, str) else sym["lab_python_func"]

    def _write_ops(self, ops: FtraceOps) -> None:
        m = self.machine
        ops.addr = self.data.alloc(OPS_SIZE)
        real = self._real_func(ops)
        func = m.symbols["ftrace_pid_func"] if ops.flags & FtraceOpsFlag.PID and self.pids_enabled else real
        m.write(ops.addr, struct.pack("<QQQQQ", func, 0, int(ops.flags), 0, real))
        m.write_u64(ops.addr + OPS_FUNC_HASH, ops.addr + OPS_NOTRACE_HASH)
        self._write_hashes(ops)
        # arch_ftrace_update_trampoline(): a private copy of the caller template
        regs = bool(ops.flags & FtraceOpsFlag.SAVE_REGS)
        layout = self.layouts[regs]
        template_addr = m.symbols["ftrace_regs_caller" if regs else "ftrace_caller"]
        template = m.read(template_addr, layout.size)
        ops.trampoline = self.text.alloc(layout.total)
        ops.trampoline_size = layout.total
        code = create_trampoline(template, layout, ops.trampoline, ops.addr, self.get_func(ops))
        m.write_text(ops.trampoline, code)
        m.kallsyms.add_dynamic("ftrace_trampoline", ops.trampoline, layout.total,
                               "__builtin__ftrace")
        m.write(ops.addr + 0x40, struct.pack("<QQ", ops.trampoline, layout.total))

    def _write_hashes(self, ops: FtraceOps) -> None:
        notrace = write_hash(self.machine, self.data, ops.notrace_ips)
        filt = write_hash(self.machine, self.data, ops.filter_ips)
        self.machine.write(ops.addr + OPS_NOTRACE_HASH, struct.pack("<QQ", notrace, filt))
        assert OPS_FILTER_HASH == OPS_NOTRACE_HASH + 8

    def _link_ops_list(self) -> None:
        """ftrace_ops_list: the enabled ops, newest first, ending at ftrace_list_end."""
        m = self.machine
        nxt = m.symbols["ftrace_list_end"]
        for ops in self.ops:
            m.write_u64(ops.addr + 8, nxt)
            nxt = ops.addr
        m.write_u64(m.symbols["ftrace_ops_list"], nxt)

    # ---- update_code ----------------------------------------------------------------
    def wanted(self, ip: int) -> list[FtraceOps]:
        return [ops for ops in self.ops if ops.enabled and ops.traces(ip)]

    def _target_for(self, ip: int, rec_flags: int) -> int | None:
        wanting = self.wanted(ip)
        sym = self.machine.symbols
        if not wanting:
            return None
        if rec_flags & FtraceFlag.TRAMP:
            return wanting[0].trampoline
        return sym["ftrace_regs_caller"] if rec_flags & FtraceFlag.REGS else sym["ftrace_caller"]

    def _new_flags(self, flags: int, ip: int) -> int:
        """__ftrace_hash_rec_update(): ref count and the wanted-state bits."""
        wanting = self.wanted(ip)
        new = flags & ~_FLAG_BITS
        if wanting:
            new |= FtraceFlag.ENABLED | len(wanting) | FtraceFlag.TOUCHED
            if any(o.flags & FtraceOpsFlag.SAVE_REGS for o in wanting):
                new |= FtraceFlag.REGS
            if any(o.flags & FtraceOpsFlag.IPMODIFY for o in wanting):
                new |= FtraceFlag.IPMODIFY
            if len(wanting) == 1 and wanting[0].trampoline:
                new |= FtraceFlag.TRAMP
        return new

    def _update(self, apply: bool) -> None:
        if self.pending is not None:
            self.pending.finish()
        m = self.machine
        sym = m.symbols
        enabled = [o for o in self.ops if o.enabled]
        final_func = self.get_func(enabled[0]) if len(enabled) == 1 else \
            (sym["ftrace_ops_list_func"] if enabled else sym["ftrace_stub"])
        final_op = enabled[0].addr if len(enabled) == 1 else sym["ftrace_list_end"]
        calls = [sym["ftrace_call"], sym["ftrace_regs_call"]]

        def retarget(func: int) -> list[tuple[int, bytes]]:
            return [(ip, gen_call(ip, func)) for ip in calls if call_target(ip, m.read(ip, 5)) != func]

        sites: list[tuple[int, bytes]] = []
        new_flags: dict[int, int] = {}
        for rec in self.records:
            flags = self._new_flags(rec.flags, rec.ip)
            new_flags[rec.ip] = flags
            target = self._target_for(rec.ip, flags)
            if target != self._targets.get(rec.ip):
                sites.append((rec.ip, NOP5 if target is None else gen_call(rec.ip, target)))
                self._targets[rec.ip] = target

        def commit_flags() -> None:
            for rec in self.records:
                f = new_flags[rec.ip]
                en = (FtraceFlag.REGS_EN if f & FtraceFlag.REGS else 0) | \
                     (FtraceFlag.TRAMP_EN if f & FtraceFlag.TRAMP else 0)
                modified = FtraceFlag.MODIFIED if f & FtraceFlag.IPMODIFY else 0
                rec.flags = f | en | modified | (rec.flags & (FtraceFlag.TOUCHED | FtraceFlag.MODIFIED))

        def set_final() -> None:
            m.write_u64(sym["function_trace_op"], final_op)
            self._trace_func = final_func

        rounds: list[tuple[Callable[[], list[tuple[int, bytes]]], Callable[[], None]]] = [
            (lambda: retarget(sym["ftrace_ops_list_func"]) if enabled else [],
             lambda: m.write_u64(sym["function_trace_op"], sym["ftrace_list_end"])),
            (lambda: sites, commit_flags),
            (lambda: retarget(final_func), set_final),
        ]
        update = CodeUpdate(self.poker, rounds)
        if apply:
            update.finish()
        else:
            self.pending = update

    # ---- enabled_functions / touched_functions --------------------------------------
    def enabled_functions(self, touched: bool = False) -> str:
        """t_show() of ``enabled_functions`` (``touched_functions`` with ``touched``: every
        record ever traced): the ref count, the R/I/D/O/M flag columns, then the
        trampoline(s) the site calls with their ops' function, and `` ->`` the function
        the trampoline calls (arch_ftrace_trampoline_func())."""
        m, ks, sym = self.machine, self.machine.kallsyms, self.machine.symbols
        want = FtraceFlag.TOUCHED if touched else FtraceFlag.ENABLED
        out = []
        for rec in self.records:
            f = rec.flags
            if not f & want:
                continue
            line = f"{rec.function} ({rec.ref_count})" + "".join(
                mark if f & flag else " " * len(mark) for flag, mark in (
                    (FtraceFlag.REGS, " R"), (FtraceFlag.IPMODIFY, " I"), (FtraceFlag.DIRECT, " D"),
                    (FtraceFlag.CALL_OPS, " O"), (FtraceFlag.MODIFIED, " M ")))
            if f & FtraceFlag.TRAMP_EN:              # ftrace_find_tramp_ops_any()/_next()
                owners = [o for o in reversed(self.ops) if o.enabled and o.trampoline and o.traces(rec.ip)]
                for o in owners:
                    call = o.trampoline + self.layouts[bool(o.flags & FtraceOpsFlag.SAVE_REGS)].call
                    line += (f"\ttramp: {ks.format_ps(o.trampoline)} ({ks.format_ps(m.read_u64(o.addr))})"
                             + self._calls(call))
                line += "" if owners else "\ttramp: ERROR!"
            else:                                    # static_tramp_func(): the shared caller's call
                line += self._calls(sym["ftrace_regs_call" if f & FtraceFlag.REGS_EN else "ftrace_call"])
            out.append(line + "\n")
        return "".join(out)

    def _calls(self, at: int) -> str:
        """`` ->%pS`` of what the call instruction at ``at`` calls (addr_from_call())."""
        target = call_target(at, self.machine.read(at, 5))
        return "" if target is None else f" ->{self.machine.kallsyms.format_ps(target)}"

    # ---- Python callbacks ---------------------------------------------------------
    def _ensure_python_hook(self) -> None:
        if self._py_hook is None:
            self._py_hook = RawCallHook(self.machine, self.machine.symbols["lab_python_hook"],
                                        self._on_python)

    def _on_python(self, ip: int, parent_ip: int, op: int, fregs: int) -> None:
        # The hot path of every Python callback: keep it to lookups and one call.
        ops = self._by_addr.get(op)
        if ops is None or not ops.enabled:
            return
        ops.py_calls += 1
        view = ops.fregs_view
        object.__setattr__(view, "_addr", fregs)
        ops.func(ip, parent_ip, ops, view)  # type: ignore[operator, arg-type]

    @property
    def recursion_count(self) -> int:
        """How often the recursion guard stopped a callback (ftrace_recursion_count)."""
        return self.machine.read_u64(self.machine.symbols["ftrace_recursion_count"])
