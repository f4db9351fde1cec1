"""struct ftrace_ops and its hashes in the kernel's memory (include/linux/ftrace.h;
kernel/trace/ftrace.c: alloc_ftrace_hash(), add_hash_entry(), ftrace_ops_get_func()).

The emulated kernel's traced path (ftrace_ops_list_func, the trampolines)
reads these structures, so the lab writes them in the kernel's layout
(include/ftrace.h)::

    struct ftrace_ops                         struct ftrace_hash
    0x00 func          0x28 local_hash.notrace  0x00 size_bits
    0x08 next          0x30 local_hash.filter   0x08 buckets -> hlist_head[1 << bits]
    0x10 flags         0x38 func_hash           0x10 count
    0x18 private       0x40 trampoline          0x18 flags
    0x20 saved_func    0x48 trampoline_size
                       0x50 nr_calls            struct ftrace_func_entry
                                                0x00 hlist.next 0x08 hlist.pprev
                                                0x10 ip         0x18 direct

A Python callback's ops points ``func`` at ``lab_python_func``, a ``ret`` the
lab hooks (machine/hooks.py); the hook finds the ops by the pointer in %rdx.
"""

from __future__ import annotations

import enum
import html
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..machine.cpu import Machine

if TYPE_CHECKING:
    from .ftrace_update import Ftrace

GOLDEN_RATIO_64 = 0x61C8864680B583EB
OPS_SIZE = 0x58
OPS_FUNC, OPS_NEXT, OPS_FLAGS, OPS_PRIVATE, OPS_SAVED_FUNC = 0x00, 0x08, 0x10, 0x18, 0x20
OPS_NOTRACE_HASH, OPS_FILTER_HASH, OPS_FUNC_HASH = 0x28, 0x30, 0x38
OPS_TRAMPOLINE, OPS_TRAMPOLINE_SIZE, OPS_NR_CALLS = 0x40, 0x48, 0x50


class FtraceOpsFlag(enum.IntFlag):
    """``FTRACE_OPS_FL_*`` (include/linux/ftrace.h)."""

    ENABLED = 1 << 0
    DYNAMIC = 1 << 1
    SAVE_REGS = 1 << 2
    SAVE_REGS_IF_SUPPORTED = 1 << 3
    RECURSION = 1 << 4
    STUB = 1 << 5
    INITIALIZED = 1 << 6
    DELETED = 1 << 7
    ADDING = 1 << 8
    REMOVING = 1 << 9
    MODIFYING = 1 << 10
    ALLOC_TRAMP = 1 << 11
    IPMODIFY = 1 << 12
    PID = 1 << 13
    RCU = 1 << 14
    TRACE_ARRAY = 1 << 15
    PERMANENT = 1 << 16
    DIRECT = 1 << 17
    SUBOP = 1 << 18


USER_FLAGS = (FtraceOpsFlag.SAVE_REGS | FtraceOpsFlag.SAVE_REGS_IF_SUPPORTED
              | FtraceOpsFlag.RECURSION | FtraceOpsFlag.IPMODIFY | FtraceOpsFlag.PID)
"""The flags a caller may pass to register(); the others are ftrace's own state."""


def hash_long(val: int, bits: int) -> int:
    """include/linux/hash.h hash_64(): the bucket of an ip."""
    return ((val * GOLDEN_RATIO_64) & 0xFFFF_FFFF_FFFF_FFFF) >> (64 - bits) if bits else 0


def hash_size_bits(count: int) -> int:
    """alloc_ftrace_hash(): about two entries per bucket, at least one bucket."""
    bits = 0
    while (1 << bits) < max(count, 1) // 2 + 1:
        bits += 1
    return min(bits, 10)


class KernelArena:
    """A bump allocator over one mapped region (the lab's kmalloc / module_alloc)."""

    def __init__(self, base: int, size: int, align: int = 16) -> None:
        self.base, self.size, self.align = base, size, align
        self.next = base

    def alloc(self, size: int) -> int:
        addr = (self.next + self.align - 1) & ~(self.align - 1)
        if addr + size > self.base + self.size:
            raise MemoryError(f"lab arena at {self.base:#x} is full ({self.size} bytes); "
                              "lab.reset() frees it")
        self.next = addr + size
        return addr


def write_hash(machine: Machine, arena: KernelArena, ips: Iterable[int]) -> int:
    """Build a struct ftrace_hash holding ``ips`` in kernel memory; returns its address."""
    ips = sorted(set(ips))
    bits = hash_size_bits(len(ips))
    buckets = arena.alloc(8 << bits)
    heads = [0] * (1 << bits)
    entries = arena.alloc(32 * len(ips)) if ips else 0
    blob = bytearray(32 * len(ips))
    for i, ip in enumerate(ips):
        b = hash_long(ip, bits)
        addr = entries + 32 * i
        # hlist_add_head(): the new entry goes first; pprev is not used by lookups
        struct.pack_into("<QQQQ", blob, 32 * i, heads[b], 0, ip, 0)
        heads[b] = addr
    if ips:
        machine.write(entries, bytes(blob))
    machine.write(buckets, struct.pack(f"<{len(heads)}Q", *heads))
    h = arena.alloc(32)
    machine.write(h, struct.pack("<QQQQ", bits, buckets, len(ips), 0))
    return h


def read_hash(machine: Machine, addr: int) -> set[int]:
    """The ips of a struct ftrace_hash in kernel memory (walks the buckets)."""
    if not addr:
        return set()
    bits, buckets, count, _ = struct.unpack("<QQQQ", machine.read(addr, 32))
    heads = struct.unpack(f"<{1 << bits}Q", machine.read(buckets, 8 << bits))
    ips: set[int] = set()
    for node in heads:
        while node:
            nxt, _pprev, ip, _direct = struct.unpack("<QQQQ", machine.read(node, 32))
            ips.add(ip)
            node = nxt
    if len(ips) != count:
        raise ValueError(f"ftrace_hash at {addr:#x} says {count} entries, holds {len(ips)}")
    return ips


_FREGS = {name: off for off, name in enumerate(
    ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
     "rsi", "rdi", "orig_ax", "ip", "cs", "flags", "sp", "ss"))}
_ARGS_ONLY = {"rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "rbp", "ip", "sp"}


class FtraceRegs:
    """``struct ftrace_regs``: the registers the trampoline saved, readable and writable.

    ``fregs.rdi`` ... ``fregs.r9`` are the traced function's arguments; writing
    one changes what the function receives. ``fregs.ip`` is where the traced
    function continues: writing it needs an IPMODIFY ops (livepatch style).
    Without SAVE_REGS only the argument registers, ip, sp and rbp were saved.
    """

    _m: Machine
    _addr: int
    _full: bool
    _ipmodify: bool

    def __init__(self, machine: Machine, addr: int, full: bool, ipmodify: bool) -> None:
        object.__setattr__(self, "_m", machine)
        object.__setattr__(self, "_addr", addr)
        object.__setattr__(self, "_full", full)
        object.__setattr__(self, "_ipmodify", ipmodify)

    def _offset(self, name: str) -> int:
        if name not in _FREGS:
            raise AttributeError(f"struct ftrace_regs has no register {name!r}; "
                                 f"try one of {', '.join(_FREGS)}")
        if not self._full and name not in _ARGS_ONLY:
            raise AttributeError(f"{name} was not saved: register the ops with SAVE_REGS")
        return int(self._addr) + 8 * _FREGS[name]

    def __getattr__(self, name: str) -> int:
        return self._m.read_u64(self._offset(name))

    def __setattr__(self, name: str, value: int) -> None:
        if name == "ip" and not self._ipmodify:
            raise PermissionError("changing fregs.ip needs an ops registered with IPMODIFY")
        self._m.write_u64(self._offset(name), value)

    def arg(self, n: int) -> int:
        """The n-th (1-based) integer argument, as $argN reads it."""
        regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
        if 1 <= n <= 6:
            return int(getattr(self, regs[n - 1]))
        return self._m.read_u64(int(self.sp) + 8 * (n - 6))

    def __repr__(self) -> str:
        names = _FREGS if self._full else [n for n in _FREGS if n in _ARGS_ONLY]
        return "<ftrace_regs " + " ".join(f"{n}={getattr(self, n):#x}" for n in names) + ">"


PyFunc = Callable[[int, int, "FtraceOps", FtraceRegs], Any]


class FtraceOps:
    """A registered ftrace_ops: who is called for which functions, and how.

    Made by ``lab.ftrace.register()``. ``func`` is a Python callable
    ``func(ip, parent_ip, ops, fregs)`` or the name of a native callback in
    the image (``"lab_count_func"``, ``"ftrace_stub"`` ...).
    """

    def __init__(self, ftrace: Ftrace, func: PyFunc | str, flags: FtraceOpsFlag,
                 name: str) -> None:
        self.ftrace = ftrace
        self.func = func
        self.flags = flags
        self.name = name
        self.addr = 0
        self.trampoline = 0
        self.trampoline_size = 0
        self.filter_ips: set[int] = set()
        self.notrace_ips: set[int] = set()
        self.enabled = False
        self.py_calls = 0        # Python callback invocations
        self.fregs_view: FtraceRegs | None = None   # reused for every Python callback

    @property
    def native(self) -> bool:
        return isinstance(self.func, str)

    def traces(self, ip: int) -> bool:
        """hash_contains_ip(): empty filter or ip in it, and ip not in notrace."""
        return (not self.filter_ips or ip in self.filter_ips) and ip not in self.notrace_ips

    @property
    def functions(self) -> list[str]:
        """The functions this ops traces, in record order."""
        return [r.function for r in self.ftrace.records if self.traces(r.ip)]

    @property
    def calls(self) -> int:
        """Calls seen: Python callbacks counted by the lab, native ones by lab_count_func."""
        if self.native:
            return self.ftrace.machine.read_u64(self.addr + OPS_NR_CALLS) if self.addr else 0
        return self.py_calls

    def set_filter(self, patterns: str | list[str] | None) -> None:
        self.ftrace.set_ops_hash(self, patterns, notrace=False)

    def set_notrace(self, patterns: str | list[str] | None) -> None:
        self.ftrace.set_ops_hash(self, patterns, notrace=True)

    def unregister(self) -> None:
        self.ftrace.unregister(self)

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "unregistered"
        return (f"<ftrace_ops {self.name} {state} flags={self.flags!r} "
                f"functions={len(self.functions)} calls={self.calls}>")

    def _repr_html_(self) -> str:
        funcs = self.functions
        shown = ", ".join(html.escape(f) for f in funcs[:12]) + (" ..." if len(funcs) > 12 else "")
        tramp = f"{self.trampoline:#x}" if self.trampoline else "none"
        return (f"<b>ftrace_ops</b> <code>{html.escape(self.name)}</code>: "
                f"{'enabled' if self.enabled else 'unregistered'}, flags "
                f"<code>{html.escape(str(self.flags))}</code>, trampoline <code>{tramp}</code>, "
                f"{self.calls} calls<br>{len(funcs)} functions: {shown}")
