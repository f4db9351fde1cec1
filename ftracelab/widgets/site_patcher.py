"""A live view of dynamic ftrace call sites while ftrace_ops come and go
(kernel/trace/ftrace.c: register_ftrace_function(), ftrace_modify_all_code();
arch/x86/kernel/ftrace.c: ftrace_replace_code(); arch/x86/kernel/alternative.c:
text_poke_bp_batch()).

:class:`SitePatcher` shows, for the functions a glob selects, each
``struct dyn_ftrace`` record (site ip, FTRACE_FL_* flags, ref count), the five
bytes live at the site and what they call now: the 5-byte NOP, ``call
ftrace_trampoline`` (one ops with its own trampoline), ``call ftrace_caller``
(shared by several ops) or ``int3`` while a text poke is half way. Buttons
register and unregister a counting ftrace_ops (``lab_count_func``); with "step
the text poke" ticked, the code update waits in ``lab.ftrace.pending`` and
"Step poke" advances it one int3/tail/first phase at a time, so the ``cc``
byte can be seen in place. The widget only wires buttons to ``lab.ftrace``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..arch.x86_64.insn import INT3_INSN_OPCODE, MCOUNT_INSN_SIZE, NOP5, call_target
from ..errors import FtraceLabError
from ..trace.ftrace import DynFtrace, flag_names
from ..trace.ftrace_ops import FtraceOps, FtraceOpsFlag

if TYPE_CHECKING:
    from ..lab import Lab

DISASM_LINES = 8
COUNT_FUNC = "lab_count_func"


class SiteRow(TypedDict):
    """One displayed dyn_ftrace record."""

    function: str
    ip: int
    flags: str          # FTRACE_FL_* names joined by "|", "" when none is set
    ref: int
    bytes: str          # the live bytes at the site, hex
    calls: str          # "NOP", "call <symbol>", or "int3 (...)" mid-poke


class SitePatcher(widgets.VBox):  # type: ignore[misc]
    """Glob -> dyn_ftrace records and their live bytes; register/unregister/step pokes.

    ``SitePatcher(lab)`` displays in a notebook. ``rows()`` is what the table
    shows; ``status.value`` the last message or error.
    """

    def __init__(self, lab: Lab, glob: str = "vfs_*") -> None:
        super().__init__()
        self.lab = lab
        self._rows: list[SiteRow] = []
        self._registered = 0
        self.glob = widgets.Text(value=glob, description="functions",
                                 placeholder="vfs_* !vfs_open", continuous_update=False)
        self.show_button = widgets.Button(description="Show", icon="search")
        self.table = widgets.HTML()
        self.function_dropdown = widgets.Dropdown(options=[], description="disassemble")
        self.disasm = widgets.HTML()
        self.register_button = widgets.Button(description="Register counting ops",
                                              layout=widgets.Layout(width="auto"))
        self.step_checkbox = widgets.Checkbox(value=False, description="step the text poke",
                                              indent=False)
        self.step_button = widgets.Button(description="Step poke", disabled=True)
        self.unregister_dropdown = widgets.Dropdown(options=[], description="ops")
        self.unregister_button = widgets.Button(description="Unregister")
        self.status = widgets.HTML()

        self.show_button.on_click(lambda _b: self._act(self.show))
        self.register_button.on_click(lambda _b: self._act(self.register))
        self.step_button.on_click(lambda _b: self._act(self.step_poke))
        self.unregister_button.on_click(lambda _b: self._act(self.unregister))
        self.function_dropdown.observe(lambda _c: self._show_disasm(), names="value")

        self.children = [
            widgets.HBox([self.glob, self.show_button]),
            self.table,
            widgets.HBox([self.register_button, self.step_checkbox, self.step_button]),
            widgets.HBox([self.unregister_dropdown, self.unregister_button]),
            self.status,
            self.function_dropdown,
            self.disasm,
        ]
        self._act(self.show)

    # ---- state the view shows ------------------------------------------------
    @property
    def step_mode(self) -> bool:
        """Register/unregister leave the text update pending, to be stepped."""
        return bool(self.step_checkbox.value)

    def rows(self) -> list[SiteRow]:
        """The records the table shows, as displayed at the last refresh."""
        return [SiteRow(**r) for r in self._rows]

    def row(self, function: str) -> SiteRow:
        """The displayed row of one function (KeyError if it is not shown)."""
        for r in self._rows:
            if r["function"] == function:
                return SiteRow(**r)
        raise KeyError(function)

    def _site_row(self, rec: DynFtrace) -> SiteRow:
        live = self.lab.machine.read(rec.ip, MCOUNT_INSN_SIZE)
        target = call_target(rec.ip, live)
        if live == NOP5:
            calls = "NOP"
        elif target is not None:
            calls = f"call {self.lab.kallsyms.format_short(target)}"
        elif live[0] == INT3_INSN_OPCODE:
            calls = "int3 (text poke in progress)"
        else:
            calls = "?"
        return SiteRow(function=rec.function, ip=rec.ip, flags="|".join(flag_names(rec.flags)),
                       ref=int(rec.ref_count), bytes=live.hex(" "), calls=calls)

    def refresh(self) -> None:
        """Re-read records, live bytes, ops and the pending update from the lab."""
        ftrace = self.lab.ftrace
        try:
            ips = ftrace.match(self.glob.value)
        except FtraceLabError:
            ips = set()          # the action that used the glob reported the error
        self._rows = [self._site_row(r) for r in ftrace.records if r.ip in ips]
        self.table.value = _table_html(self._rows)
        _set_options(self.function_dropdown, [r["function"] for r in self._rows])
        _set_options(self.unregister_dropdown, [(_ops_label(o), o) for o in ftrace.ops])
        self.unregister_button.disabled = not ftrace.ops
        pending = ftrace.pending
        self.step_button.disabled = pending is None or pending.finished
        self._show_disasm()

    def _show_disasm(self) -> None:
        fn = self.function_dropdown.value
        if not fn:
            self.disasm.value = ""
            return
        try:
            lines = self.lab.disassemble(str(fn)).splitlines()[:DISASM_LINES]
        except FtraceLabError as e:
            lines = [f"error: {e}"]
        self.disasm.value = f"<pre>{html.escape(chr(10).join(lines))}</pre>"

    # ---- actions (the buttons call these) -----------------------------------------
    def _act(self, action: Callable[[], str]) -> None:
        try:
            msg = html.escape(action())
        except FtraceLabError as e:
            msg = f"<span style='color:#b00'>error: {html.escape(str(e))}</span>"
        self.status.value = msg
        self.refresh()

    def show(self) -> str:
        ips = self.lab.ftrace.match(self.glob.value)
        return f"{len(ips)} call site(s) match {self.glob.value!r}"

    def register(self) -> str:
        """register_ftrace_function() of a counting ops for the glob's functions."""
        words = self.glob.value.split()
        if not words:
            raise FtraceLabError("type a glob first: an empty filter would trace every function")
        self._registered += 1
        ops = self.lab.ftrace.register(COUNT_FUNC, filter=words, flags=FtraceOpsFlag.RECURSION,
                                       name=f"count#{self._registered} {' '.join(words)}",
                                       apply=not self.step_mode)
        return f"registered {ops.name} for {len(ops.functions)} function(s)" + self._pending_note()

    def step_poke(self) -> str:
        """One phase (int3, tail or first byte) of the pending code update."""
        pending = self.lab.ftrace.pending
        if pending is None or pending.finished:
            raise FtraceLabError("no text update is pending: tick 'step the text poke', "
                                 "then register or unregister")
        msg = pending.step()
        return msg + (": update complete" if pending.finished else "")

    def unregister(self) -> str:
        """unregister_ftrace_function() of the chosen ops."""
        ops = self.unregister_dropdown.value
        if not isinstance(ops, FtraceOps):
            raise FtraceLabError("no ftrace_ops is registered")
        self.lab.ftrace.unregister(ops, apply=not self.step_mode)
        return f"unregistered {ops.name}" + self._pending_note()

    def _pending_note(self) -> str:
        pending = self.lab.ftrace.pending
        if pending is None or pending.finished:
            return ""
        return (f"; text update pending ({len(pending.sites)} instruction(s) to poke): "
                "click 'Step poke'")


def _ops_label(ops: FtraceOps) -> str:
    return f"{ops.name} ({len(ops.functions)} fn, {ops.calls} calls)"


def _set_options(dropdown: Any, options: list[Any]) -> None:
    """Replace a Dropdown's options, keeping the chosen value when it is still offered."""
    old = dropdown.value
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if list(dropdown.options) != options:
        dropdown.options = options
    if any(v is old for v in values):
        dropdown.value = old
    elif values and dropdown.value is None:
        dropdown.value = values[0]


def _table_html(rows: list[SiteRow]) -> str:
    if not rows:
        return "<i>no call sites shown</i>"
    head = "".join(f"<th style='text-align:left'>{h}</th>"
                   for h in ("function", "site ip", "flags", "ref", "bytes", "calls now"))
    body = []
    for r in rows:
        raw = html.escape(r["bytes"])
        if r["bytes"].startswith("cc"):
            raw = f"<b style='color:#b00'>cc</b>{raw[2:]}"
        body.append(
            f"<tr><td>{html.escape(r['function'])}</td><td><code>{r['ip']:#x}</code></td>"
            f"<td><code>{html.escape(r['flags'] or '0')}</code></td><td>{r['ref']}</td>"
            f"<td><code>{raw}</code></td><td><code>{html.escape(r['calls'])}</code></td></tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
