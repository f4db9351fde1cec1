"""A task's fgraph shadow stack through one traced call, push by push and pop by
pop (kernel/trace/fgraph.c: ftrace_push_return_trace(), fgraph_reserve_data(),
function_graph_enter()'s bitmap, ftrace_return_to_handler()).

:class:`ShadowStackView` browses the :class:`~ftracelab.trace.fgraph.StackEvent`
list ``lab.step_graph()`` records: Previous / Next and a slider over the events,
what happened at each, and every word of the stack at that moment (raw hex,
decoded, the ops its bitmap names, reserved data, return addresses as symbols),
the words that changed since the previous event highlighted. Nothing is
re-executed: the stacks were rebuilt from the recorded memory writes.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..trace.fgraph import StackEvent, WordRow

if TYPE_CHECKING:
    from ..lab import Lab

HIGHLIGHT = "background:#ffe58a"
KIND_STYLE = {"control": "color:#7a3e9d", "data": "color:#1f6f8b", "task var": "color:#888"}


class ShadowStackView(widgets.VBox):  # type: ignore[misc]
    """Browse shadow-stack events; ``position`` is the current one."""

    def __init__(self, events: list[StackEvent], symbol: Callable[[int], str] = hex,
                 ops: Mapping[int, str] | None = None, task_vars: bool = False) -> None:
        super().__init__()
        self.events = events
        self.symbol = symbol
        self.ops = dict(ops or {})
        self.task_vars = task_vars
        self.prev_button = widgets.Button(description="Previous", icon="step-backward")
        self.next_button = widgets.Button(description="Next", icon="step-forward")
        self.slider = widgets.IntSlider(value=0, min=0, max=max(len(events) - 1, 0),
                                        description="event", continuous_update=True)
        self.header = widgets.HTML()
        self.table = widgets.HTML()
        self.prev_button.on_click(lambda _b: self.previous())
        self.next_button.on_click(lambda _b: self.next())
        self.slider.observe(lambda _c: self.render(), names="value")
        self.children = [self.header, widgets.HBox([self.prev_button, self.next_button, self.slider]),
                         self.table]
        self.render()

    @classmethod
    def from_lab(cls, lab: Lab, function: str, workload: str = "cat", **params: Any) -> ShadowStackView:
        """Record with ``lab.step_graph()`` and view; the ops named as registered."""
        names = {g.idx: g.name for g in lab.fgraph.gops}
        return cls(lab.step_graph(function, workload, **params), lab.kallsyms.format_ps, names)

    # ---- navigation ----------------------------------------------------------------
    @property
    def last(self) -> int:
        return max(len(self.events) - 1, 0)

    @property
    def position(self) -> int:
        return int(self.slider.value)

    @position.setter
    def position(self, value: int) -> None:
        self.slider.value = min(max(value, 0), self.last)

    def next(self) -> int:
        self.position += 1
        return self.position

    def previous(self) -> int:
        self.position -= 1
        return self.position

    # ---- rendering -------------------------------------------------------------------
    def rows(self) -> list[WordRow]:
        """The current event's words, top down (task variables only if asked for)."""
        if not self.events:
            return []
        rows = self.events[self.position].stack.inspect(self.symbol, self.ops)
        return rows if self.task_vars else [r for r in rows if r.kind != "task var"]

    def changed(self) -> set[int]:
        """Indexes of the words that differ from the previous event's (or are new)."""
        if self.position == 0 or not self.events:
            return set()
        before = self.events[self.position - 1].stack
        now = self.events[self.position].stack
        used = range(max(before.curr_ret_stack, now.curr_ret_stack))
        return {i for i in used if before.words[i] != now.words[i] or i >= before.curr_ret_stack}

    def render(self) -> None:
        pos = self.position
        self.prev_button.disabled = pos <= 0
        self.next_button.disabled = pos >= self.last
        if not self.events:
            self.header.value = "<b>shadow stack</b>: no events recorded"
            self.table.value = ""
            return
        ev = self.events[pos]
        st = ev.stack
        where = f" at <code>{html.escape(ev.where)}</code> (step {ev.step})" if ev.where else ""
        self.header.value = (f"<b>shadow stack</b>, event {pos} of {self.last}: "
                             f"<b>{html.escape(ev.what)}</b>{where}<br>curr_ret_stack {st.curr_ret_stack}, "
                             f"curr_ret_depth {st.curr_ret_depth}, trace_overrun {st.trace_overrun}")
        changed = self.changed()
        body = []
        for r in self.rows():
            style = HIGHLIGHT if r.index in changed else KIND_STYLE.get(r.kind, "")
            cls = " class='changed'" if r.index in changed else ""
            body.append(f"<tr style='{style}'{cls}><td>{r.index}</td><td><code>{r.value:#018x}</code></td>"
                        f"<td>{html.escape(r.kind)}</td><td>{html.escape(r.detail)}</td></tr>")
        empty = "" if body else "<tr><td colspan=4><i>empty</i></td></tr>"
        self.table.value = ("<table><tr><th>word</th><th>value</th><th>kind</th><th>meaning</th></tr>"
                            + "".join(body) + empty + "</table>")
