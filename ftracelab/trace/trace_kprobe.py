"""kernel/trace/trace_kprobe.c of Linux 6.12: kprobe events. A definition

    p[:[GRP/][EVENT]] SYM[+offs]|MEMADDR [FETCHARGS]
    r[MAXACTIVE][:[GRP/][EVENT]] SYM[+0] [FETCHARGS]

is parsed as __trace_kprobe_create() parses it (the probe location first, then the
event name, then the arguments), with the same error-log entries; the event
(group ``kprobes``, name ``p_SYM_OFFS``/``r_SYM_OFFS`` by default) records through
a kprobe (trace/kprobes.py: on ftrace at an fentry site, int3 elsewhere) or a
kretprobe, with the layouts and print formats of trace_probe_tmpl.TraceProbe::

    p_vfs_read_0: (vfs_read+0x4/0xe0) count=4096
    r_vfs_read_0: (ksys_read+0x52/0xb0 <- vfs_read) ret=0x1000

A probe on a notrace function is refused at registration ("Could not probe
notrace function", FAIL_REG_PROBE), as in a kernel with dynamic ftrace and without
CONFIG_KPROBE_EVENTS_ON_NOTRACE. The lab prints a MEMADDR probe's address as it is
(the kernel's ``%p`` hashes it).
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .kprobes import Kprobe, KprobeError, Kretprobe, KretprobeInstance
from .trace_probe import (
    TPARG_FL_FENTRY,
    TPARG_FL_KERNEL,
    TPARG_FL_RETURN,
    ParseContext,
    ProbeError,
    ProbeLog,
    _kstrtol,
    _kstrtoul,
    parse_event_name,
    sanitize_event_name,
)
from .trace_probe_tmpl import FetchEnv, TraceProbe, parse_args, queue_record, store_args

if TYPE_CHECKING:
    from ..lab import Lab

__all__ = ["TraceKprobe", "create_trace_kprobe"]

KPROBE_EVENT_SYSTEM = "kprobes"
KRETPROBE_MAXACTIVE_MAX = 4096
MAX_EVENT_NAME_LEN = 64
UINT_MAX = 0xFFFF_FFFF


@dataclass(eq=False)
class TraceKprobe(TraceProbe):
    """``struct trace_kprobe``: one probe of a kprobe event (an event may have several)."""

    offset: int = 0
    addr: int = 0                        # a MEMADDR probe's address (symbol is "" then)
    kprobe: Kprobe | None = None
    kretprobe: Kretprobe | None = None

    def _where(self) -> str:
        if not self.symbol:
            return f"0x{self.addr:016x}"
        return f"{self.symbol}+{self.offset}" if self.offset else self.symbol

    def show(self) -> str:
        """trace_kprobe_show(): the line kprobe_events and dynamic_events list."""
        maxact = str(self.maxactive) if self.is_return and self.maxactive else ""
        text = f"{'r' if self.is_return else 'p'}{maxact}:{self.group}/{self.event} {self._where()}"
        return text + "".join(f" {w}" for w in self.arg_words()) + "\n"

    def match(self, system: str | None, event: str, argv: list[str]) -> bool:
        """trace_kprobe_match(): name, group, then the place and the leading args."""
        if (event and event != self.event) or (system and system != self.group):
            return False
        return not argv or (argv[0] == self._where() and self.match_args(argv[1:]))

    @property
    def nhit(self) -> int:
        return self.kretprobe.kp.hits if self.kretprobe and self.kretprobe.kp else \
            self.kprobe.hits if self.kprobe else 0

    @property
    def nmissed(self) -> int:
        return self.kretprobe.nmissed if self.kretprobe else self.kprobe.nmissed if self.kprobe else 0


def create_trace_kprobe(lab: Lab, argv: list[str], log: ProbeLog) -> TraceKprobe:
    """__trace_kprobe_create(): parse one definition (argv split on blanks);
    raises ProbeError (with ``log`` holding the error-log entries) on a bad one."""
    if not argv or argv[0][:1] not in ("p", "r") or len(argv) < 2:
        raise ProbeError(errno.ECANCELED)
    word0 = argv[0]
    is_return = word0[0] == "r"
    colon = word0.find(":", 1)
    maxactive = 0
    if word0[1:2].isdigit():
        if not is_return:
            raise log.fail(1, "BAD_MAXACT_TYPE")
        digits = word0[1:colon if colon >= 0 else len(word0)]
        value = _kstrtoul(digits, 0) if len(digits) <= MAX_EVENT_NAME_LEN - 1 else None
        if not value or value > UINT_MAX:
            raise log.fail(1, "BAD_MAXACT")
        if value > KRETPROBE_MAXACTIVE_MAX:
            raise log.fail(1, "MAXACT_TOO_BIG")
        maxactive = value
    symbol, offset, addr = "", 0, 0
    flags = TPARG_FL_KERNEL
    number = _kstrtoul(argv[1], 0)
    if number is None:
        log.index = 1
        if "/" in argv[1] and ":" in argv[1]:
            raise ProbeError(errno.ECANCELED)         # a uprobe's definition
        symbol = argv[1]
        pct = symbol.find("%")
        if pct >= 0:
            if symbol[pct:] != "%return":
                raise log.fail(pct, "BAD_ADDR_SUFFIX")
            symbol, is_return = symbol[:pct], True
        cut = next((i for i, c in enumerate(symbol) if c in "+-"), len(symbol))
        if cut < len(symbol):                         # traceprobe_split_symbol_offset()
            off = _kstrtol(symbol[cut:], 0)
            if off is None or not 0 <= off <= UINT_MAX:
                raise log.fail(0, "BAD_PROBE_ADDR")
            symbol, offset = symbol[:cut], off
        count = lab.machine.kallsyms.count(symbol)    # validate_probe_symbol()
        if count > 1:
            raise log.fail(0, "NON_UNIQ_SYMBOL")
        if count == 0:
            raise log.fail(0, "BAD_PROBE_ADDR")
        if is_return:
            flags |= TPARG_FL_RETURN
        try:
            on_entry = lab.kprobes.on_func_entry(symbol, offset)
        except KprobeError:
            on_entry = False
        if on_entry and not is_return:
            flags |= TPARG_FL_FENTRY
        if not on_entry and is_return:
            raise log.fail(0, "BAD_RETPROBE")
    else:
        addr = number
    log.index = 0
    group, event = KPROBE_EVENT_SYSTEM, None
    if colon >= 0:
        g, event = parse_event_name(log, word0[colon + 1:], colon + 1)
        group = g or group
    if event is None:
        kind = "r" if is_return else "p"
        name = f"{kind}_{symbol}_{offset}" if symbol else f"{kind}_0x{addr:016x}"
        event = sanitize_event_name(name[:MAX_EVENT_NAME_LEN - 1])
    ctx = ParseContext(flags)
    args = parse_args(log, ctx, argv[2:])
    return TraceKprobe(group, event, symbol, is_return, args, maxactive, list(ctx.entry_args),
                       offset=offset, addr=addr)


# ---- registration and the handlers: kprobe_dispatcher() / kretprobe_dispatcher() -------------

def register_trace_kprobe(lab: Lab, tk: TraceKprobe, log: ProbeLog) -> None:
    """__register_trace_kprobe(): refuse notrace functions, then register the kprobe
    or kretprobe (disabled until the event is enabled). A refusal logs as
    __trace_kprobe_create() does: EILSEQ as BAD_INSN_BNDRY, ENOENT as
    BAD_PROBE_ADDR, anything else as FAIL_REG_PROBE."""
    handlers = _Handlers(lab, tk)
    log.index = 1
    try:
        if tk.symbol and not lab.kprobes.traceable(tk.symbol):
            raise KprobeError(f"Could not probe notrace function {tk.symbol}", errno.EINVAL)
        if tk.is_return:
            rp = Kretprobe(tk.symbol, handler=handlers.ret, entry_handler=handlers.ret_entry,
                           maxactive=tk.maxactive, data_size=8 * len(tk.entry_args), offset=tk.offset)
            tk.kretprobe = lab.kprobes.register_kretprobe(rp)
            assert rp.kp is not None
            rp.kp.disabled = True
        else:
            kp = Kprobe(tk.symbol or None, tk.offset, pre_handler=handlers.pre, addr=tk.addr)
            tk.kprobe = lab.kprobes.register(kp)
            kp.disabled = True
    except KprobeError as exc:
        code = {errno.EILSEQ: "BAD_INSN_BNDRY", errno.ENOENT: "BAD_PROBE_ADDR"}.get(exc.errno,
                                                                                  "FAIL_REG_PROBE")
        raise log.fail(0, code, exc.errno) from None


def set_trace_kprobe_enabled(tk: TraceKprobe, on: bool) -> None:
    kp = tk.kretprobe.kp if tk.kretprobe else tk.kprobe
    if kp is not None:
        kp.disabled = not on


def unregister_trace_kprobe(lab: Lab, tk: TraceKprobe) -> None:
    if tk.kretprobe is not None:
        lab.kprobes.unregister_kretprobe(tk.kretprobe)
    elif tk.kprobe is not None:
        lab.kprobes.unregister(tk.kprobe)


class _Handlers:
    """The kprobe's handlers: fetch, store, queue the record and have it written."""

    def __init__(self, lab: Lab, tk: TraceKprobe) -> None:
        self.m, self.tk = lab.machine, tk

    def _emit(self, payload: bytes) -> None:
        """Queue the record; it is written natively when the handler returns
        (lab_python_func's tail call for a kprobe on ftrace, lab_kprobe_emit after
        an int3)."""
        ev = self.tk.trace_event
        assert ev is not None
        queue_record(self.m, ev.id, payload, ev.judged, ev.file)

    def pre(self, kp: Kprobe, regs: Any) -> bool:
        self._emit(store_args(FetchEnv.at(self.m, regs), self.tk.args, struct.pack("<Q", kp.addr),
                              self.m.kallsyms.format_ps))
        return False

    def ret_entry(self, ri: KretprobeInstance, regs: Any) -> bool:
        for k, n in enumerate(self.tk.entry_args):   # the $argN the return event prints
            struct.pack_into("<Q", ri.data, 8 * k, regs.arg(n + 1))
        return False

    def ret(self, ri: KretprobeInstance, regs: Any) -> None:
        if ri.rp.kp is None or ri.rp.kp.disabled:     # the event was disabled meanwhile
            return
        edata = {n: struct.unpack_from("<Q", ri.data, 8 * k)[0] for k, n in enumerate(self.tk.entry_args)}
        self._emit(store_args(FetchEnv.at(self.m, regs, int(regs.rax), edata), self.tk.args,
                              struct.pack("<QQ", ri.func, ri.ret_addr), self.m.kallsyms.format_ps))
