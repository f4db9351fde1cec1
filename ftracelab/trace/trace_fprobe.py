"""kernel/trace/trace_fprobe.c of Linux 6.12: fprobe events. A definition
(``f[MAXACTIVE][:[GRP/][EVENT]] SYM[%return] [FETCHARGS]``) is parsed as
__trace_fprobe_create() parses it, with the same checks in the same order and the
same error-log positions; the event it makes (group ``fprobes``, name
``SYM__entry``/``SYM__exit`` by default) gets an ID, a format file and an enable
switch in events/, and its probe is an fprobe (trace/fprobe.py, the fgraph-based
design of 6.14) whose handlers fetch the arguments and write the record:

    entry:  struct trace_entry; unsigned long __probe_ip;              args from +16
    exit:   struct trace_entry; unsigned long __probe_func, __probe_ret_ip; args from +24

and print it as print_fentry_event()/print_fexit_event() do::

    vfs_read__entry: (vfs_read+0x4/0x90) count=4096
    vfs_read__exit: (ksys_read+0x52/0xb0 <- vfs_read) arg1=0x1000

An exit event's ``$argN`` are read at the entry and kept in the fprobe's entry
data on the shadow stack.

Tracepoint probes (``t[:[GRP/][EVENT]] TRACEPOINT [FETCHARGS]``, group
``tracepoints``, the event named after the tracepoint) put the tracepoint's
``__probestub_<name>(void *__data, args...)`` on it and an fprobe on that stub
(__regsiter_tracepoint_fprobe()): ``$argN`` is the tracepoint's Nth argument,
the stub's dummy first one skipped. A name the image has no tracepoint for is
accepted as 6.12 with modules accepts it (TRACEPOINT_STUB: it may load later), and
its event never fires. ``%return`` and ``$retval`` are refused (BAD_ADDR_SUFFIX,
RETVAL_ON_PROBE).
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fprobe import Fprobe, RetRegs
from .trace_probe import (
    TPARG_FL_FENTRY,
    TPARG_FL_FPROBE,
    TPARG_FL_KERNEL,
    TPARG_FL_RETURN,
    TPARG_FL_TPOINT,
    ParseContext,
    ProbeError,
    ProbeLog,
    _kstrtoul,
    parse_event_name,
    sanitize_event_name,
)
from .trace_probe_tmpl import FetchEnv, TraceProbe, parse_args, queue_record, store_args

if TYPE_CHECKING:
    from ..lab import Lab
    from .ftrace_ops import FtraceRegs

__all__ = ["TraceFprobe", "create_trace_fprobe"]

FPROBE_EVENT_SYSTEM = "fprobes"
TRACEPOINT_EVENT_SYSTEM = "tracepoints"
RETHOOK_MAXACTIVE_MAX = 4096


@dataclass(eq=False)
class TraceFprobe(TraceProbe):
    """``struct trace_fprobe``: one probe of an fprobe event (an event may have several)."""

    fprobe: Fprobe | None = None
    tracepoint: bool = False            # a t probe: symbol is the tracepoint's name
    tp_index: int | None = None         # ...its TP_<name> in the image, None for a stub

    def show(self) -> str:
        """trace_fprobe_show(): the line dynamic_events lists."""
        maxact = str(self.maxactive) if self.is_return and self.maxactive else ""
        kind = "t" if self.tracepoint else "f"
        text = f"{kind}{maxact}:{self.group}/{self.event} {self.symbol}{'%return' if self.is_return else ''}"
        return text + "".join(f" {w}" for w in self.arg_words()) + "\n"

    def match(self, system: str | None, event: str, argv: list[str]) -> bool:
        """trace_fprobe_match(): name, group, then the symbol and the leading args."""
        if (event and event != self.event) or (system and system != self.group):
            return False
        return not argv or (argv[0] == self.symbol and self.match_args(argv[1:]))


def create_trace_fprobe(lab: Lab, argv: list[str], log: ProbeLog) -> TraceFprobe:
    """__trace_fprobe_create(): parse one definition (argv split on blanks);
    raises ProbeError (with ``log`` holding the error-log entries) on a bad one."""
    if not argv or argv[0][:1] not in ("f", "t") or len(argv) < 2:
        raise ProbeError(errno.ECANCELED)
    word0 = argv[0]
    is_tracepoint = word0[0] == "t"
    colon = word0.find(":", 1)
    event_text = word0[colon + 1:] if colon >= 0 else None
    maxactive = 0
    if word0[1:2].isdigit():
        digits = word0[1:colon if colon >= 0 else len(word0)]
        value = _kstrtoul(digits, 0) if len(digits) <= 63 else None
        if not value:
            raise log.fail(1, "BAD_MAXACT")
        if value > RETHOOK_MAXACTIVE_MAX:
            raise log.fail(1, "MAXACT_TOO_BIG")
        maxactive = value
    # parse_symbol_and_return()
    log.index = 1
    symbol, is_return = argv[1], False
    pct = symbol.find("%")
    if pct >= 0:
        if is_tracepoint or symbol[pct:] != "%return":
            raise log.fail(pct, "BAD_ADDR_SUFFIX")
        symbol, is_return = symbol[:pct], True
    if not is_return:
        for i, word in enumerate(argv[2:], 2):
            at = word.find("$retval")
            if at >= 0 and not (word[at + 7:at + 8].isalnum() or word[at + 7:at + 8] == "_"):
                if is_tracepoint:
                    log.index = i
                    raise log.fail(at, "RETVAL_ON_PROBE")
                is_return = True                      # $retval makes it an exit probe
                break
    if maxactive and not is_return:                   # checked after the symbol
        log.index = 0
        raise log.fail(1, "BAD_MAXACT_TYPE")
    group, event = TRACEPOINT_EVENT_SYSTEM if is_tracepoint else FPROBE_EVENT_SYSTEM, None
    if event_text is not None:
        g, event = parse_event_name(log, event_text, colon + 1)
        group = g or group
    if event is None:
        name = ("_" if symbol[:1].isdigit() else "") + symbol if is_tracepoint else \
            f"{symbol}__{'exit' if is_return else 'entry'}"
        event = sanitize_event_name(name)[:63]
    flags = TPARG_FL_KERNEL | TPARG_FL_FPROBE | (TPARG_FL_RETURN if is_return else TPARG_FL_FENTRY)
    ctx = ParseContext(flags | (TPARG_FL_TPOINT if is_tracepoint else 0))
    args = parse_args(log, ctx, argv[2:])
    return TraceFprobe(group, event, symbol, is_return, args, maxactive, list(ctx.entry_args),
                       tracepoint=is_tracepoint)


# ---- the probe at work: fentry_trace_func() / fexit_trace_func() ----------------------------

class FprobeHandlers:
    """The handlers of one trace_fprobe's fprobe: fetch, store, queue the record."""

    def __init__(self, lab: Lab, tf: TraceFprobe) -> None:
        self.lab, self.tf, self.m = lab, tf, lab.machine

    def entry(self, fp: Fprobe, entry_ip: int, ret_ip: int, regs: FtraceRegs, data: bytearray) -> bool:
        tf = self.tf
        if tf.is_return:                               # keep the $argN the exit prints
            for k, n in enumerate(tf.entry_args):
                struct.pack_into("<Q", data, 8 * k, regs.arg(n + 1))
            return False
        assert tf.trace_event is not None
        payload = store_args(FetchEnv.at(self.m, regs), tf.args, struct.pack("<Q", entry_ip), self._symstr)
        queue_record(self.m, tf.trace_event.id, payload, tf.trace_event.judged, tf.trace_event.file)
        return False

    def exit(self, fp: Fprobe, entry_ip: int, ret_ip: int, regs: RetRegs, data: bytes) -> None:
        tf = self.tf
        assert tf.trace_event is not None
        edata = {n: struct.unpack_from("<Q", data, 8 * k)[0] for k, n in enumerate(tf.entry_args)
                 if len(data) >= 8 * (k + 1)}
        payload = store_args(FetchEnv.at(self.m, None, regs.ax, edata), tf.args,
                             struct.pack("<QQ", entry_ip, ret_ip), self._symstr)
        queue_record(self.m, tf.trace_event.id, payload, tf.trace_event.judged, tf.trace_event.file)

    def _symstr(self, addr: int) -> str:
        return self.m.kallsyms.format_ps(addr)
