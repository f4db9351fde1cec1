"""kallsyms for the mini-kernel (kernel/kallsyms.c, scripts/kallsyms.c, lib/vsprintf.c).

Like the kernel, the table holds every text symbol, including labels inside
functions (``ftrace_call``), sorted by address. A symbol's size for ``%pS``
is the distance to the next higher symbol, as kallsyms_lookup_size_offset()
computes it, not the ELF st_size. When several names share an address the
one scripts/kallsyms.c would sort first wins: not a linker-script marker
(``_text``, ``__start_*`` ...), then not weak, then fewer leading underscores,
then by name.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import SymbolNotFoundError
from .elf import Symbol

_LINKER_MARKER = re.compile(
    r"^(_text|_stext|_etext|_sdata|_edata|_end|__bss_start|__bss_stop"
    r"|__(start|stop|end)_\w+|__\w+_(start|end))$")


@dataclass(frozen=True)
class KSym:
    name: str
    addr: int
    size: int         # to the next higher symbol (what %pS prints after the slash)
    type: str         # nm letter: T/t for text
    is_function: bool
    module: str = ""  # "" for vmlinux; e.g. "__builtin__ftrace" for ftrace trampolines


def _rank(sym: Symbol) -> tuple[bool, bool, int, str]:
    return (bool(_LINKER_MARKER.match(sym.name)), sym.bind == "WEAK",
            len(sym.name) - len(sym.name.lstrip("_")), sym.name)


class Kallsyms:
    """Address <-> name lookups over the kernel's text symbols."""

    def __init__(self, symbols: Iterable[Symbol], text_start: int, text_end: int) -> None:
        text = [s for s in symbols if text_start <= s.addr < text_end
                and s.section in (".text", "") and s.kind in ("FUNC", "NOTYPE")]
        text.sort(key=lambda s: (s.addr, _rank(s)))
        addrs = [*sorted({s.addr for s in text}), text_end]
        next_addr = dict(itertools.pairwise(addrs))
        self._all: list[KSym] = [
            KSym(s.name, s.addr, next_addr[s.addr] - s.addr,
                 "t" if s.bind == "LOCAL" else "T", s.kind == "FUNC")
            for s in text]
        # One representative per address, for lookups.
        self._primary: list[KSym] = []
        for k in self._all:
            if not self._primary or self._primary[-1].addr != k.addr:
                self._primary.append(k)
        self._starts = [k.addr for k in self._primary]
        self._by_name: dict[str, KSym] = {}
        for k in self._all:
            self._by_name.setdefault(k.name, k)
        self._funcs: list[KSym] = []
        for k in self._all:
            if k.is_function and (not self._funcs or self._funcs[-1].addr != k.addr):
                self._funcs.append(k)
        self._func_starts = [k.addr for k in self._funcs]
        self.text_start, self.text_end = text_start, text_end
        self._dynamic: list[KSym] = []   # code made at run time (ftrace trampolines)

    def clear_dynamic(self) -> None:
        """Forget run-time code (the machine was reset)."""
        self._dynamic.clear()

    def add_dynamic(self, name: str, addr: int, size: int, module: str) -> None:
        """Register run-time code, as ftrace's trampolines appear in /proc/kallsyms
        (``ftrace_trampoline [__builtin__ftrace]``)."""
        self._dynamic.append(KSym(name, addr, size, "t", True, module))
        self._dynamic.sort(key=lambda k: k.addr)

    def __iter__(self) -> Iterator[KSym]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def count(self, name: str) -> int:
        """How many symbols are called ``name`` (static functions may share one)."""
        return sum(1 for k in self._all if k.name == name)

    def lookup_name(self, name: str) -> KSym:
        """The symbol called ``name`` (kallsyms_lookup_name())."""
        try:
            return self._by_name[name]
        except KeyError:
            raise SymbolNotFoundError(name, self._by_name) from None

    def __getitem__(self, name: str) -> int:
        return self.lookup_name(name).addr

    def lookup(self, addr: int) -> tuple[KSym, int] | None:
        """(symbol, offset) containing ``addr``, or None outside kernel text."""
        if not self.text_start <= addr < self.text_end:
            return next(((k, addr - k.addr) for k in self._dynamic
                         if k.addr <= addr < k.addr + k.size), None)
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        sym = self._primary[i]
        return sym, addr - sym.addr

    def function_at(self, addr: int) -> KSym | None:
        """The enclosing *function* (skips labels such as ftrace_call)."""
        i = bisect.bisect_right(self._func_starts, addr) - 1
        return self._funcs[i] if i >= 0 else None

    def format_ps(self, addr: int) -> str:
        """``%pS``: ``vfs_read+0x4/0x1c0``; a bare ``0x...`` outside kernel text."""
        hit = self.lookup(addr)
        if hit is None:
            return f"{addr:#x}"
        sym, off = hit
        mod = f" [{sym.module}]" if sym.module else ""
        return f"{sym.name}+{off:#x}/{sym.size:#x}{mod}"

    def format_short(self, addr: int) -> str:
        """``%ps``: the bare name (what the function tracer prints)."""
        hit = self.lookup(addr)
        if hit is None:
            return f"{addr:#x}"
        return hit[0].name

    def proc_kallsyms(self) -> str:
        """The text of /proc/kallsyms for the kernel's text symbols."""
        return "".join(f"{k.addr:016x} {k.type} {k.name}" + (f"\t[{k.module}]" if k.module else "")
                       + "\n" for k in [*self._all, *self._dynamic])
