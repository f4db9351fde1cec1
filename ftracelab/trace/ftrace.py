"""Dynamic ftrace records and boot-time conversion (kernel/trace/ftrace.c:
ftrace_init(), ftrace_process_locs(), ftrace_update_code(), t_show() of
available_filter_functions; arch/x86/kernel/ftrace.c: ftrace_make_nop()).

At build time gcc records the address of every ``call __fentry__`` in the
``__mcount_loc`` section. At boot :func:`ftrace_init` walks that table,
builds one :class:`DynFtrace` record per site and turns each call into the
5-byte NOP, verifying the old bytes first as ``ftrace_make_nop()`` does.

``dyn_ftrace.flags`` (include/linux/ftrace.h, Linux 6.12)::

     31      30   29      28   27      26       25       24     23
    +-------+----+-------+----+-------+--------+--------+------+---------+
    |ENABLED|REGS|REGS_EN|TRAMP|TRAMP_EN|IPMODIFY|DISABLED|DIRECT|DIRECT_EN|
    +-------+----+-------+----+-------+--------+--------+------+---------+
     22       21          20      19       18 ........................ 0
    +--------+-----------+-------+--------+-------------------------------+
    |CALL_OPS|CALL_OPS_EN|TOUCHED|MODIFIED|  ref count (ops tracing it)   |
    +--------+-----------+-------+--------+-------------------------------+

The ``_EN`` bits say what the site is patched to now; the others say what is
wanted. The low 19 bits count the ftrace_ops that want the site.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from ..arch.x86_64.insn import MCOUNT_INSN_SIZE, NOP5, call_target
from ..errors import FtraceBug
from ..machine.cpu import Machine
from ..machine.text_poke import PokeLogEntry, TextPoker


class FtraceFlag(enum.IntFlag):
    """``FTRACE_FL_*`` bits of ``dyn_ftrace.flags``."""

    ENABLED = 1 << 31
    REGS = 1 << 30
    REGS_EN = 1 << 29
    TRAMP = 1 << 28
    TRAMP_EN = 1 << 27
    IPMODIFY = 1 << 26
    DISABLED = 1 << 25
    DIRECT = 1 << 24
    DIRECT_EN = 1 << 23
    CALL_OPS = 1 << 22
    CALL_OPS_EN = 1 << 21
    TOUCHED = 1 << 20
    MODIFIED = 1 << 19


DYN_FTRACE_PER_PAGE = 4096 // 16           # ENTRIES_PER_PAGE: struct dyn_ftrace is 16 bytes
FTRACE_REF_MAX_SHIFT = 19
FTRACE_REF_MAX = (1 << FTRACE_REF_MAX_SHIFT) - 1
FTRACE_NOCLEAR_FLAGS = FtraceFlag.DISABLED | FtraceFlag.TOUCHED | FtraceFlag.MODIFIED


def ftrace_rec_count(flags: int) -> int:
    """How many ftrace_ops want this site (the low bits of flags)."""
    return flags & FTRACE_REF_MAX


def flag_names(flags: int) -> list[str]:
    """Names of the set FTRACE_FL_* bits, highest first."""
    return [f.name for f in sorted(FtraceFlag, key=int, reverse=True)
            if flags & f and f.name is not None]


@dataclass
class DynFtrace:
    """``struct dyn_ftrace``: one patchable fentry call site."""

    ip: int
    flags: int = 0
    function: str = ""      # the enclosing function, from kallsyms

    @property
    def ref_count(self) -> int:
        return ftrace_rec_count(self.flags)

    def __repr__(self) -> str:
        names = "|".join(flag_names(self.flags)) or "0"
        return f"<dyn_ftrace {self.function} ip={self.ip:#x} flags={names} ref={self.ref_count}>"


@dataclass
class FtraceState:
    """What ftrace_init() leaves behind: the records and the boot conversion log."""

    records: list[DynFtrace]
    boot_log: list[PokeLogEntry] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)   # 0 / duplicate table entries

    def lookup(self, ip: int) -> DynFtrace | None:
        """The record whose site is ``ip`` (ftrace_location())."""
        lo, hi = 0, len(self.records)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.records[mid].ip < ip:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self.records) and self.records[lo].ip == ip:
            return self.records[lo]
        return None

    def _repr_html_(self) -> str:
        head = "".join(
            f"<tr><td>{r.function}</td><td><code>{r.ip:#x}</code></td>"
            f"<td>{'|'.join(flag_names(r.flags)) or 0}</td><td>{r.ref_count}</td></tr>"
            for r in self.records[:10])
        more = f"<p>... and {len(self.records) - 10} more</p>" if len(self.records) > 10 else ""
        return (f"<b>dyn_ftrace records</b>: {len(self.records)} sites, "
                f"{len(self.boot_log)} converted at boot<table><tr><th>function</th><th>ip</th>"
                f"<th>flags</th><th>ref</th></tr>{head}</table>{more}")

    def record_for(self, function: str) -> DynFtrace | None:
        return next((r for r in self.records if r.function == function), None)

    def available_filter_functions(self) -> str:
        """The file's text: one traceable function per line, in record (address) order."""
        return "".join(f"{r.function}\n" for r in self.records
                       if not r.flags & FtraceFlag.DISABLED)

    def dyn_ftrace_total_info(self) -> str:
        """tracing_read_dyn_info(): records converted at boot, then the pages and groups
        ftrace_allocate_pages() took for them (16-byte dyn_ftrace, 256 a page; each group
        the largest power of two of pages the remaining records need)."""
        left, pages, groups = len(self.records), 0, 0
        while left:
            need = -(-left // DYN_FTRACE_PER_PAGE)
            order = need.bit_length() - 1            # fls(pages) - 1
            pages, groups = pages + (1 << order), groups + 1
            left -= min(left, DYN_FTRACE_PER_PAGE << order)
        return f"{len(self.records)} pages:{pages} groups: {groups}\n"

    def available_filter_functions_addrs(self) -> str:
        """``available_filter_functions_addrs`` (6.5+): the site address, then the name."""
        return "".join(f"{r.ip:x} {r.function}\n" for r in self.records
                       if not r.flags & FtraceFlag.DISABLED)


def mcount_locations(machine: Machine) -> list[int]:
    """The raw ``__mcount_loc`` table, read from the kernel's own memory."""
    start = machine.symbols["__start_mcount_loc"]
    stop = machine.symbols["__stop_mcount_loc"]
    raw = machine.read(start, stop - start)
    return list(struct.unpack(f"<{len(raw) // 8}Q", raw))


def ftrace_init(machine: Machine, poker: TextPoker) -> FtraceState:
    """ftrace_init() -> ftrace_process_locs(): build records and NOP every site."""
    fentry = machine.symbols["__fentry__"]
    state = FtraceState(records=[])
    seen: set[int] = set()
    for addr in sorted(mcount_locations(machine)):
        if addr == 0 or addr in seen:
            state.skipped.append(addr)
            continue
        seen.add(addr)
        func = machine.kallsyms.function_at(addr)
        state.records.append(DynFtrace(ip=addr, function=func.name if func else f"{addr:#x}"))
    for rec in state.records:
        insn = machine.read(rec.ip, MCOUNT_INSN_SIZE)
        if call_target(rec.ip, insn) != fentry:
            raise FtraceBug(
                f"ftrace faulted on modifying [<{rec.ip:#x}>] {machine.kallsyms.format_ps(rec.ip)}:"
                f" expected call __fentry__, found {insn.hex(' ')}")
        state.boot_log.append(poker.poke_early(rec.ip, NOP5))
    return state
