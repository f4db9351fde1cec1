"""kernel/trace/fprobe.c as Linux 6.14 builds it on fgraph (register_fprobe(),
fprobe_entry(), fprobe_return()): a function entry and exit probe whose entry
data lives on the task's fgraph shadow stack.

Linux 6.12 still ran fprobe on rethook (an object pool per fprobe for the return
hook); the lab teaches the newer design, where all fprobes share one fgraph_ops
(``fprobe_graph_ops``) and each call reserves, with fgraph_reserve_data(), a
header and the entry data of every fprobe that has an exit handler. The
reservation shows in the shadow-stack inspector as a DATA word::

    per fprobe with an exit handler, in registration order
    +0  struct fprobe *fp     (0: no fprobe of this function)
    +8  size_words            (of the entry data that follows)
    +16 entry data            entry_data_size bytes, 8-byte aligned

One deviation, for speed: the lab reserves the same size at every probed
function (room for every fprobe with an exit handler), where the kernel sizes the
reservation for the fprobes of the function at hand.

Each fprobe also has a ``struct fprobe`` in kernel memory (nmissed at +0, flags at
+8, entry_data_size at +16, a private pointer at +24), so the pointer in the
header is a real one. ``nmissed`` counts the calls whose entry data could not be
reserved (a full shadow stack): their handlers do not run.

A handler is a Python callable or, given as a string, a native function of the
image with 6.14's handler signature (``fp``, ``entry_ip``, ``ret_ip``, ``fregs``,
``entry_data`` as kernel pointers): the lab calls it on the probed CPU with the
entry data in a per-CPU scratch buffer. The image ships one such pair,
``fprobe_latency_entry``/``fprobe_latency_exit`` (samples/fprobe_latency.c): a
log2 histogram of call durations in the fprobe's private data, read with
:meth:`Fprobe.latency`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import FtraceLabError
from .fgraph.ops import GraphEnt, GraphRet

if TYPE_CHECKING:
    from .fgraph import Fgraph, FgraphOps
    from .ftrace_ops import FtraceRegs, KernelArena

__all__ = ["Fprobe", "FprobeManager", "RetRegs"]

FPROBE_FL_DISABLED = 1
FGRAPH_MAX_DATA_SIZE = 256
HEADER = struct.Struct("<QQ")
FPROBE_STRUCT = 0x20
FPROBE_PRIV = 0x18
LATENCY = struct.Struct("<4Q64Q")      # struct fprobe_latency (samples/fprobe_latency.c)


@dataclass(frozen=True)
class RetRegs:
    """What an exit handler gets for registers (struct fgraph_ret_regs): the return
    value in ``ax`` (and ``dx``), ``bp``, and ``ip`` the address returned to."""

    ax: int
    dx: int
    bp: int
    ip: int


EntryHandler = Callable[["Fprobe", int, int, "FtraceRegs", bytearray], Any] | str
ExitHandler = Callable[["Fprobe", int, int, RetRegs, bytes], Any] | str


@dataclass(eq=False)
class Fprobe:
    """``struct fprobe``: ``entry_handler(fp, entry_ip, ret_ip, fregs, entry_data)``
    (a true result skips the exit handler for that call) and
    ``exit_handler(fp, entry_ip, ret_ip, regs, entry_data)``, either may be None,
    or the name of a native handler in the image; ``private_size`` bytes of kernel
    memory at ``private`` (fp's private pointer) for native handlers to keep state."""

    entry_handler: EntryHandler | None = None
    exit_handler: ExitHandler | None = None
    entry_data_size: int = 0
    name: str = "fprobe"
    private_size: int = 0
    addr: int = 0                          # its struct fprobe in kernel memory
    private: int = 0
    ips: set[int] = field(default_factory=set)
    manager: FprobeManager | None = None

    def _field(self, off: int) -> int:
        assert self.manager is not None
        return self.manager.m.read_u64(self.addr + off)

    @property
    def nmissed(self) -> int:
        return self._field(0) if self.addr else 0

    @property
    def disabled(self) -> bool:
        return bool(self._field(8) & FPROBE_FL_DISABLED) if self.addr else True

    def _set_flags(self, flags: int) -> None:
        assert self.manager is not None
        self.manager.m.write_u64(self.addr + 8, flags)

    def disable(self) -> None:
        """disable_fprobe(): the handlers stop running, the probe stays."""
        self._set_flags(FPROBE_FL_DISABLED)

    def enable(self) -> None:
        self._set_flags(0)

    @property
    def slot_size(self) -> int:
        return HEADER.size + (self.entry_data_size + 7) // 8 * 8

    def latency(self) -> dict[str, Any]:
        """The fprobe_latency sample's counts: entries, exits, total and max ns, and
        the log2 histogram (bucket k: durations in [2^k, 2^(k+1)) ns)."""
        if self.manager is None or not self.private or self.private_size < LATENCY.size:
            raise FtraceLabError(f"{self.name} has no fprobe_latency data: register it with "
                                 f"private_size={LATENCY.size} and the fprobe_latency_* handlers")
        nhit, nexit, total, worst, *hist = LATENCY.unpack(self.manager.m.read(self.private, LATENCY.size))
        return {"nhit": nhit, "nexit": nexit, "total_ns": total, "max_ns": worst,
                "log2_ns": {k: n for k, n in enumerate(hist) if n}}

    def __repr__(self) -> str:
        return f"<fprobe {self.name} on {len(self.ips)} function(s) nmissed={self.nmissed}>"


class FprobeManager:
    """register_fprobe()/unregister_fprobe() for the lab (``lab.fprobe``)."""

    def __init__(self, fgraph: Fgraph, arena: KernelArena) -> None:
        self.fgraph, self.m, self.arena = fgraph, fgraph.machine, arena
        self.fprobes: list[Fprobe] = []
        self.gops: FgraphOps | None = None
        self._scratch = 0                    # per-CPU entry data for native handlers

    def register(self, fp: Fprobe, filter: str | list[str],
                 notfilter: str | list[str] | None = None) -> Fprobe:
        """register_fprobe(): the functions matching ``filter`` (globs) and not
        ``notfilter``. Raises FtraceLabError (the kernel's -EINVAL) when none match,
        -E2BIG when the entry data cannot fit the shadow stack's data limit."""
        if fp in self.fprobes:
            raise FtraceLabError(f"{fp.name} is already registered")
        ips = self.fgraph.ftrace.match(filter) - self.fgraph.ftrace.match(notfilter)
        if not ips:
            raise FtraceLabError(f"register_fprobe: -EINVAL: no traceable function matches {filter!r}")
        with_exit = [p for p in [*self.fprobes, fp] if p.exit_handler is not None]
        if sum(p.slot_size for p in with_exit) > FGRAPH_MAX_DATA_SIZE:
            raise FtraceLabError("register_fprobe: -E2BIG: the fprobes' entry data would not fit "
                                 f"the {FGRAPH_MAX_DATA_SIZE} bytes fgraph_reserve_data() allows")
        for handler in (fp.entry_handler, fp.exit_handler):
            if isinstance(handler, str) and handler not in self.m.symbols:
                raise FtraceLabError(f"register_fprobe: -EINVAL: no native handler {handler!r} in "
                                     "the image (fprobe_latency_entry, fprobe_latency_exit ship)")
        fp.ips, fp.manager = ips, self
        fp.addr = self.arena.alloc(FPROBE_STRUCT)
        if fp.private_size:
            fp.private = self.arena.alloc(fp.private_size)
            self.m.write(fp.private, bytes(fp.private_size))
        self.m.write(fp.addr, struct.pack("<QQQQ", 0, 0, fp.entry_data_size, fp.private))
        if not self._scratch:
            self._scratch = self.arena.alloc(FGRAPH_MAX_DATA_SIZE * self.m.ncpus)
        self.fprobes.append(fp)
        self._update()
        return fp

    def unregister(self, fp: Fprobe) -> None:
        if fp not in self.fprobes:
            raise FtraceLabError(f"{fp.name} is not registered")
        self.fprobes.remove(fp)
        fp.disable()
        self._update()

    def _update(self) -> None:
        """One fgraph_ops for every fprobe, on the union of their functions; changed in
        place, so that calls in flight still return through it."""
        self._by_ip: dict[int, list[Fprobe]] = {}
        for p in self.fprobes:
            for ip in p.ips:
                self._by_ip.setdefault(ip, []).append(p)
        self._by_addr = {p.addr: p for p in self.fprobes}
        size = sum(p.slot_size for p in self._slots())
        names = sorted({self.m.kallsyms.format_short(ip) for p in self.fprobes for ip in p.ips})
        if self.gops is None:
            if names:
                self.gops = self.fgraph.register(self._entry, self._return, filter=names,
                                                 name="fprobe_graph_ops", data_size=size)
            return
        if not names:
            self.fgraph.unregister(self.gops)
            self.gops = None
            return
        self.gops.sub.filter_ips = self.fgraph.ftrace.match(names)
        self.fgraph.set_data_size(self.gops, size)
        self.fgraph.refresh(self.gops)

    def _slots(self) -> list[Fprobe]:
        return [p for p in self.fprobes if p.exit_handler is not None]

    # ---- fprobe_entry() / fprobe_return() --------------------------------------------
    def _entry(self, trace: GraphEnt, gops: FgraphOps) -> bool:
        fps = self._by_ip.get(trace.func, [])
        if trace.regs is None:                       # no room for the entry data
            for p in fps:
                if not p.disabled:
                    self.m.write_u64(p.addr, p.nmissed + 1)
            return False
        ret_ip = self.m.read_u64(trace.regs.sp)
        wanted = False
        for p in fps:                                # those without an exit handler
            if p.exit_handler is None and not p.disabled and p.entry_handler is not None:
                self._run(p.entry_handler, p, trace.func, ret_ip, trace.regs, bytearray(p.entry_data_size))
        at = 0
        for p in self._slots():
            if p in fps and not p.disabled:
                data = bytearray(p.entry_data_size)
                skip = p.entry_handler is not None and bool(
                    self._run(p.entry_handler, p, trace.func, ret_ip, trace.regs, data))
                if not skip:
                    HEADER.pack_into(trace.data, at, p.addr, (p.entry_data_size + 7) // 8)
                    trace.data[at + HEADER.size:at + HEADER.size + len(data)] = data
                    wanted = True
            at += p.slot_size
        return wanted

    def _return(self, trace: GraphRet, gops: FgraphOps) -> None:
        ax, dx, bp, ip = struct.unpack("<QQQQ", self.m.read(trace.regs, 32))
        regs = RetRegs(ax, dx, bp, ip)
        at = 0
        while at + HEADER.size <= len(trace.data):
            addr, words = HEADER.unpack_from(trace.data, at)
            p = self._by_addr.get(addr)
            if p is None:                            # an empty slot: the next header is
                at += self._slot_after(at)           # where the layout says
                continue
            if p.exit_handler is not None and not p.disabled:
                data = trace.data[at + HEADER.size:at + HEADER.size + p.entry_data_size]
                self._run(p.exit_handler, p, trace.func, ip, regs, bytearray(data), trace.regs)
            at += HEADER.size + 8 * words

    def _run(self, handler: Any, p: Fprobe, ip: int, ret_ip: int, regs: Any, data: bytearray,
             regs_addr: int = 0) -> Any:
        """A handler: a Python callable, or a native one called on this CPU with the
        entry data copied through the CPU's scratch buffer (and back)."""
        if not isinstance(handler, str):
            return handler(p, ip, ret_ip, regs, data if regs_addr == 0 else bytes(data))
        m = self.m
        scratch = self._scratch + FGRAPH_MAX_DATA_SIZE * m.cpu
        m.write(scratch, bytes(data))
        fregs = regs_addr or int(regs._addr)
        ret = m.call(m.cpu, handler, p.addr, ip, ret_ip, fregs, scratch)
        data[:] = m.read(scratch, len(data))
        return ret & 0xFFFF_FFFF

    def _slot_after(self, at: int) -> int:
        pos = 0
        for p in self._slots():
            if pos == at:
                return p.slot_size
            pos += p.slot_size
        return FGRAPH_MAX_DATA_SIZE
