"""Browsing a recorded path through an ftrace trampoline, instruction by
instruction (arch/x86/kernel/ftrace_64.S: ftrace_caller / ftrace_regs_caller
and the per-ops copies arch_ftrace_update_trampoline() makes; the ops
function; the ``ret`` back to the traced function's body).

:class:`TrampolineStepper` views a :class:`~ftracelab.machine.stepper.StepTrace`
(``lab.step_through()``) like a debugger with full history: Previous / Next,
a slider over the steps, "Run to return" (gdb's ``finish``), a listing window
around the current instruction, the registers after it (the ones it changed
highlighted, with their old values), the memory it wrote and the top of the
stack. Nothing is re-executed: every value shown was recorded.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..machine.cpu import REGS
from ..machine.stepper import Step, StepTrace

if TYPE_CHECKING:
    from ..lab import Lab
    from ..machine.kallsyms import Kallsyms

HIGHLIGHT = "background:#ffe58a"
CALLS = ("call", "callq")
RETS = ("ret", "retq")


def _mnemonic(step: Step) -> str:
    return step.text.split(" ", 1)[0]


def return_index(steps: list[Step], i: int) -> int:
    """Where "Run to return" goes from step ``i``.

    From a ``call``: the first later step at the return address the call
    pushed (the instruction after the call). Otherwise: the step after the
    ``ret`` that leaves the current function (nested calls and their rets are
    skipped). The last step when the trace ends first.
    """
    last = len(steps) - 1
    cur = steps[i]
    if _mnemonic(cur) in CALLS and cur.stack:
        ret_addr = cur.stack[0][1]          # what the call pushed: its next instruction
        return next((s.index for s in steps[i + 1:] if s.address == ret_addr), last)
    depth = 0
    for s in steps[i:]:
        m = _mnemonic(s)
        if m in CALLS:
            depth += 1
        elif m in RETS:
            if depth == 0:
                return min(s.index + 1, last)
            depth -= 1
    return last


def register_values(trace: StepTrace) -> list[dict[str, int]]:
    """The registers after each step, as far as the trace recorded them.

    A register the path never changed has no recorded value and is absent.
    """
    state: dict[str, int] = {}
    for s in trace.steps:
        for reg, (before, _after) in s.changed.items():
            state.setdefault(reg, before)
    values = []
    for s in trace.steps:
        state.update({reg: after for reg, (_before, after) in s.changed.items()})
        values.append(dict(state))
    return values


class TrampolineStepper(widgets.VBox):  # type: ignore[misc]
    """Step through a :class:`StepTrace`; ``position`` is the current step."""

    def __init__(self, trace: StepTrace, kallsyms: Kallsyms | None = None,
                 window: int = 8) -> None:
        super().__init__()
        self.trace = trace
        self.kallsyms = kallsyms
        self.window = window
        self._values = register_values(trace)
        self.prev_button = widgets.Button(description="Previous", icon="step-backward")
        self.next_button = widgets.Button(description="Next", icon="step-forward")
        self.return_button = widgets.Button(description="Run to return", icon="level-up")
        self.slider = widgets.IntSlider(value=0, min=0, max=max(len(trace) - 1, 0),
                                        description="step", continuous_update=True)
        self.header = widgets.HTML()
        self.listing = widgets.HTML()
        self.registers = widgets.HTML()
        self.memory = widgets.HTML()
        self.stack = widgets.HTML()

        self.prev_button.on_click(lambda _b: self.previous())
        self.next_button.on_click(lambda _b: self.next())
        self.return_button.on_click(lambda _b: self.run_to_return())
        self.slider.observe(lambda _c: self.render(), names="value")

        self.children = [
            self.header,
            widgets.HBox([self.prev_button, self.next_button, self.return_button, self.slider]),
            self.listing,
            widgets.HBox([self.registers, widgets.VBox([self.memory, self.stack])]),
        ]
        self.render()

    @classmethod
    def from_lab(cls, lab: Lab, function: str, workload: str = "cat",
                 **params: Any) -> TrampolineStepper:
        """Record ``function``'s traced path with ``lab.step_through()`` and view it."""
        return cls(lab.step_through(function, workload, **params), kallsyms=lab.kallsyms)

    # ---- navigation (the buttons call these) -------------------------------------
    @property
    def last(self) -> int:
        return max(len(self.trace) - 1, 0)

    @property
    def position(self) -> int:
        return int(self.slider.value)

    @position.setter
    def position(self, value: int) -> None:
        self.slider.value = min(max(value, 0), self.last)

    @property
    def step(self) -> Step | None:
        """The current step (None for an empty trace)."""
        return self.trace.steps[self.position] if len(self.trace) else None

    def next(self) -> int:
        self.position += 1
        return self.position

    def previous(self) -> int:
        self.position -= 1
        return self.position

    def run_to_return(self) -> int:
        if len(self.trace):
            self.position = return_index(self.trace.steps, self.position)
        return self.position

    # ---- rendering ---------------------------------------------------------------
    def _sym(self, value: int) -> str:
        """`` <symbol+off>`` for a kernel text address, else nothing."""
        if self.kallsyms is None or self.kallsyms.lookup(value) is None:
            return ""
        return f" &lt;{html.escape(self.kallsyms.format_ps(value))}&gt;"

    def render(self) -> None:
        pos, step = self.position, self.step
        self.prev_button.disabled = pos <= 0
        self.next_button.disabled = pos >= self.last
        self.return_button.disabled = step is None or pos >= self.last
        state = "complete" if self.trace.complete else "cut short"
        if step is None:
            self.header.value = f"<b>StepTrace</b>: no instructions recorded ({state})"
            for pane in (self.listing, self.registers, self.memory, self.stack):
                pane.value = ""
            return
        self.header.value = (f"<b>StepTrace</b>: {len(self.trace)} instructions ({state}); "
                             f"step {pos}: <code>{html.escape(step.where)}</code>")
        self.listing.value = self._listing_html(pos)
        self.registers.value = self._registers_html(step)
        self.memory.value = self._memory_html(step)
        self.stack.value = self._stack_html(step)

    def _listing_html(self, pos: int) -> str:
        lo, hi = max(pos - self.window, 0), min(pos + self.window + 1, len(self.trace))
        rows = []
        for s in self.trace.steps[lo:hi]:
            style = f" style='{HIGHLIGHT};font-weight:bold'" if s.index == pos else ""
            mark = "&#9654;" if s.index == pos else ""
            rows.append(f"<tr{style}><td>{mark}</td><td>{s.index}</td>"
                        f"<td><code>{s.address:#x}</code></td><td><code>{html.escape(s.where)}</code></td>"
                        f"<td><code>{html.escape(s.text)}</code></td></tr>")
        return "<table>" + "".join(rows) + "</table>"

    def _registers_html(self, step: Step) -> str:
        values = self._values[step.index]
        rows = []
        for reg in REGS:
            if reg in step.changed:
                before, after = step.changed[reg]
                rows.append(f"<tr style='{HIGHLIGHT}' class='changed'><td><b>{reg}</b></td>"
                            f"<td><code>{after:#x}</code></td>"
                            f"<td><code>was {before:#x}</code></td></tr>")
            elif reg in values:
                rows.append(f"<tr><td>{reg}</td><td><code>{values[reg]:#x}</code></td>"
                            "<td></td></tr>")
            else:
                rows.append(f"<tr><td>{reg}</td><td><i>not recorded</i></td><td></td></tr>")
        return (f"<b>registers after step {step.index}</b> (changed ones highlighted)"
                f"<table>{''.join(rows)}</table>")

    def _memory_html(self, step: Step) -> str:
        if not step.writes:
            return "<b>memory written</b>: nothing"
        rows = "".join(f"<tr><td><code>{addr:#x}</code></td><td>{size}</td>"
                       f"<td><code>{value:#x}</code>{self._sym(value)}</td></tr>"
                       for addr, size, value in step.writes)
        return (f"<b>memory written</b><table><tr><th>address</th><th>size</th><th>value</th></tr>"
                f"{rows}</table>")

    def _stack_html(self, step: Step) -> str:
        if not step.stack:
            return "<b>stack</b>: not recorded"
        rows = "".join(f"<tr><td>{'%rsp&rarr;' if i == 0 else ''}</td><td><code>{addr:#x}</code></td>"
                       f"<td><code>{value:#x}</code>{self._sym(value)}</td></tr>"
                       for i, (addr, value) in enumerate(step.stack))
        return f"<b>stack</b> (after step {step.index})<table>{rows}</table>"
