"""kernel/trace/trace_dynevent.c (and trace.c's trace_parse_run_command()): the
``dynamic_events`` file.

A write is run line by line: everything from a ``#`` is a comment, blank lines are
fine, each line is split on blanks (no quoting). A line starting with ``-`` or
``!`` removes events (``-:[GRP/]EVENT [SYM [ARGS...]]``); any other line is offered
to each kind of dynamic event in turn (the kprobe events of trace_kprobe.py, then
the fprobe events of trace_fprobe.py), and one nobody takes fails with EINVAL.
``kprobe_events`` is the same for kprobe events alone (only ``-`` removes there),
and ``kprobe_profile`` counts each kprobe event's hits and misses. The first failing line ends the write with
its errno; the lines before it stay done. A probe definition the parser refuses
also leaves its entries in ``error_log``, at the kernel's caret positions. Opening
the file for writing without append (``echo ... > dynamic_events``) first removes
every dynamic event, or fails with EBUSY, removing nothing, if one is enabled.

Reading lists every probe, in the order they were added, as its kind shows it.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from ..errors import FtraceLabError
from .fprobe import Fprobe
from .trace_fprobe import FprobeHandlers, TraceFprobe, create_trace_fprobe
from .trace_kprobe import (
    TraceKprobe,
    create_trace_kprobe,
    register_trace_kprobe,
    set_trace_kprobe_enabled,
    unregister_trace_kprobe,
)
from .trace_probe import ERROR_TEXTS, Fetch, ProbeError, ProbeLog, _kstrtol
from .trace_probe_tmpl import TraceProbe, compare_arg_types

if TYPE_CHECKING:
    from ..lab import Lab
    from ..tracefs import TraceFS

__all__ = ["DynEvents"]

WRITE_BUFSIZE = 4096


def _err(code: int, name: str = "dynamic_events") -> OSError:
    return OSError(code, os.strerror(code), name)


class DynEvents:
    """The lab's dynamic events (``lab.dynevents``): the probes, in the order added."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.probes: list[TraceProbe] = []

    def register(self, fs: TraceFS) -> None:
        fs.add_file("dynamic_events", read=self.show, write=self._write, mode=0o644)
        fs.add_file("kprobe_events", read=lambda: self.show(TraceKprobe),
                    write=lambda text, append: self._write(text, append, TraceKprobe), mode=0o644)
        fs.add_file("kprobe_profile", read=self.profile, mode=0o444)

    def show(self, kind: type[TraceProbe] = TraceProbe) -> str:
        return "".join(p.show() for p in self.probes if isinstance(p, kind))

    def profile(self) -> str:
        """probes_profile_seq_show(): event name, hits, misses."""
        return "".join(f"  {p.event:<44} {p.nhit:>15} {p.nmissed:>15}\n"
                       for p in self.probes if isinstance(p, TraceKprobe))

    # ---- writes --------------------------------------------------------------------
    def _write(self, text: str, append: bool, kind: type[TraceProbe] = TraceProbe) -> None:
        name = "kprobe_events" if kind is TraceKprobe else "dynamic_events"
        if not append:
            self.release_all(kind)
        for line in text.split("\n"):
            if len(line) >= WRITE_BUFSIZE - 1:
                raise _err(errno.EINVAL, name)        # "Line length is too long"
            self.run(line.split("#", 1)[0], kind)

    def run(self, line: str, kind: type[TraceProbe] = TraceProbe) -> None:
        """create_dyn_event() for one line (comments already cut); ``kind``
        TraceKprobe: create_or_delete_trace_kprobe() of kprobe_events."""
        name = "kprobe_events" if kind is TraceKprobe else "dynamic_events"
        if line[:1] == "-" or (line[:1] == "!" and kind is TraceProbe):
            self.release(line, kind)
            return
        argv = line.split()
        if not argv:
            return
        parsers = [("trace_kprobe", create_trace_kprobe)]
        if kind is TraceProbe:
            parsers.append(("trace_fprobe", create_trace_fprobe))  # type: ignore[arg-type]
        code = errno.ECANCELED
        for subsystem, create in parsers:
            log = ProbeLog(subsystem, argv)
            try:
                self._register(create(self.lab, argv, log), log)
                return
            except ProbeError as exc:
                self._log(log)
                code = exc.errno
                if code != errno.ECANCELED:
                    break
        raise _err(errno.EINVAL if code == errno.ECANCELED else code, name)

    def _log(self, log: ProbeLog) -> None:
        for pos, code in log.entries:
            self.lab.trace_array.log_err(log.subsystem, log.command, ERROR_TEXTS, code, pos)

    def _register(self, tf: TraceProbe, log: ProbeLog) -> None:
        """register_trace_{kprobe,fprobe}(): append to an event of the same kind and
        name, or make a new event; then the probe, disabled until the event is enabled."""
        registry = self.lab.trace_array.events
        old = next((p for p in self.probes if type(p) is type(tf) and p.group == tf.group
                    and p.event == tf.event), None)
        if old is not None:
            log.index = 0
            if old.is_return != tf.is_return or \
                    getattr(old, "tracepoint", False) != getattr(tf, "tracepoint", False):
                raise log.fail(0, "DIFF_PROBE_TYPE", errno.EEXIST)
            k = compare_arg_types(tf.args, old.args)
            if k:
                log.index = k + 1
                raise log.fail(0, "DIFF_ARG_TYPE", errno.EEXIST)
            if any(p.show().split(" ", 1)[1] == tf.show().split(" ", 1)[1]
                   for p in self.probes if p.trace_event is old.trace_event):
                log.index = 0
                raise log.fail(0, "SAME_PROBE", errno.EEXIST)
            tf.trace_event = old.trace_event
        elif registry.find(tf.group, tf.event) is not None:
            log.index = 0
            raise log.fail(0, "EVENT_EXIST", errno.EEXIST)
        self._update_args(tf, log)
        if isinstance(tf, TraceKprobe):
            register_trace_kprobe(self.lab, tf, log)
        elif isinstance(tf, TraceFprobe):
            self._register_fprobe(tf, log)
        if tf.trace_event is None:
            ev = tf.new_event()
            ev.on_enable = lambda on, ev=ev: self._enable(ev, on)
            tf.trace_event = registry.add_dynamic(ev)
        elif tf.trace_event.probe_on:
            _set_enabled(tf, True)
        self.probes.append(tf)

    def _register_fprobe(self, tf: TraceFprobe, log: ProbeLog) -> None:
        """__register_trace_fprobe(): an fprobe on the function, or for a tracepoint
        probe on its __probestub_<name> once the stub is on the tracepoint; a
        tracepoint the image lacks stays a stub (TRACEPOINT_STUB), registering nothing."""
        target = tf.symbol
        if tf.tracepoint:
            tf.tp_index = self.lab.trace_array.events.tracepoint_index(tf.symbol)
            if tf.tp_index is None:
                return
            target = f"__probestub_{tf.symbol}"
        handlers = FprobeHandlers(self.lab, tf)
        fp = Fprobe(handlers.entry, handlers.exit if tf.is_return else None,
                    8 * len(tf.entry_args), name=f"{tf.group}/{tf.event}")
        try:
            self.lab.fprobe.register(fp, [target])
        except FtraceLabError:                   # no such traceable function: -EINVAL
            log.index = 1
            raise log.fail(0, "FAIL_REG_PROBE") from None
        fp.disable()
        tf.fprobe = fp
        if tf.tp_index is not None:              # tracepoint_probe_register(tp, probestub)
            self._probestub(tf.tp_index, +1)

    def _probestub(self, index: int, delta: int) -> None:
        m = self.lab.machine
        at = m.symbols["tp_probestubs"] + index
        m.write(at, bytes([m.read(at, 1)[0] + delta]))

    def _update_args(self, tf: TraceProbe, log: ProbeLog) -> None:
        """traceprobe_update_arg(): each ``@SYM[+|-off]`` must name a kernel symbol
        (ENOENT, logged as BAD_PROBE_ADDR at the probe point) with a readable offset."""
        ks = self.lab.machine.kallsyms
        for fetch in (f for a in tf.args for f in _walk(a.fetch) if f.op == "symbol"):
            text = str(fetch.value)
            cut = next((i for i, c in enumerate(text) if c in "+-"), len(text))
            log.index = 1
            if cut < len(text) and _kstrtol(text[cut:], 0) is None:
                raise log.fail(0, "FAIL_REG_PROBE")
            try:
                ks.lookup_name(text[:cut])
            except KeyError:
                raise log.fail(0, "BAD_PROBE_ADDR", errno.ENOENT) from None

    def _enable(self, ev: object, on: bool) -> None:
        for p in self.probes:
            if p.trace_event is ev:
                _set_enabled(p, on)

    # ---- removal: dyn_event_release() ------------------------------------------------------
    def release(self, line: str, kind: type[TraceProbe] = TraceProbe) -> None:
        name = "kprobe_events" if kind is TraceKprobe else "dynamic_events"
        argv = line.split()
        head = argv[0]
        if head.startswith("-"):
            if head[1:2] != ":":
                raise _err(errno.EINVAL, name)
            spec = head[2:]
        else:
            colon = head.find(":")
            if colon < 0:
                raise _err(errno.EINVAL, name)
            spec = head[colon + 1:]
        system: str | None = None
        event = spec
        if "/" in spec:
            system, event = spec.split("/", 1)
        if system is None and not event:
            raise _err(errno.EINVAL, name)
        matched = False
        for p in list(self.probes):
            if not isinstance(p, kind) or not p.match(system, event, argv[1:]):
                continue
            matched = True
            self._free(p, name)
        if not matched:
            raise _err(errno.ENOENT, name)

    def _free(self, p: TraceProbe, name: str = "dynamic_events") -> None:
        """unregister_trace_fprobe(): a sibling goes quietly; the last probe of an
        event in use (enabled, or in soft mode for triggers) is busy (EBUSY)."""
        siblings = [q for q in self.probes if q.trace_event is p.trace_event and q is not p]
        if not siblings and p.trace_event is not None and p.trace_event.probe_on:
            raise _err(errno.EBUSY, name)
        if isinstance(p, TraceFprobe) and p.fprobe is not None:
            self.lab.fprobe.unregister(p.fprobe)
            if p.tp_index is not None:               # tracepoint_probe_unregister()
                self._probestub(p.tp_index, -1)
        elif isinstance(p, TraceKprobe):
            unregister_trace_kprobe(self.lab, p)
        self.probes.remove(p)
        if not siblings and p.trace_event is not None:
            self.lab.trace_array.events.remove_dynamic(p.trace_event)

    def release_all(self, kind: type[TraceProbe] = TraceProbe) -> None:
        """dyn_events_release_all(): nothing goes if anything is busy."""
        mine = [p for p in self.probes if isinstance(p, kind)]
        if any(p.trace_event is not None and p.trace_event.probe_on for p in mine):
            raise _err(errno.EBUSY, "kprobe_events" if kind is TraceKprobe else "dynamic_events")
        for p in mine:
            self._free(p)


def _walk(f: Fetch) -> list[Fetch]:
    return [f, *(_walk(f.inner) if f.inner is not None else [])]


def _set_enabled(p: TraceProbe, on: bool) -> None:
    if isinstance(p, TraceFprobe) and p.fprobe is not None:
        (p.fprobe.enable if on else p.fprobe.disable)()
    elif isinstance(p, TraceKprobe):
        set_trace_kprobe_enabled(p, on)
