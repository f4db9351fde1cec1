"""Build a probe event and watch it fire (kernel/trace/trace_kprobe.c,
trace_fprobe.c and trace_dynevent.c through the lab's tracefs).

:class:`ProbeBuilder` composes one definition line from a kind (``p``, ``r``,
``f``, ``f ...%return``), a function (and an offset for ``p``) and fetch
arguments, shows the line as it grows, writes it to ``dynamic_events``, enables
the event, runs a workload and lists the records it made. Every action is a
tracefs write, so the widget behaves as the files do: a refused definition
shows the kernel's ``error_log`` entry with its caret, and nothing is created.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as widgets  # type: ignore[import-untyped]

if TYPE_CHECKING:
    import pandas as pd

    from ..lab import Lab

#: kind -> (definition prefix, symbol suffix)
KINDS = {"kprobe (p)": ("p", ""), "kretprobe (r)": ("r", ""), "fprobe entry (f)": ("f", ""),
         "fprobe exit (f %return)": ("f", "%return")}
#: fetch templates offered in the dropdown (N is filled from the index box)
FETCHES = ("$argN", "$retval", "$stackN", "$stack", "$comm", "%ax", "%di", "%si", "%dx", "%bx",
           "+0($argN)", "+0($argN):string")
TYPES = ("", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "x8", "x16", "x32", "x64",
         "string", "symbol")
WORKLOADS = ("cat", "getpid", "write", "slow-read", "fork-storm", "sleep")


class ProbeBuilder(widgets.VBox):  # type: ignore[misc]
    """A probe event editor over ``lab.tracefs``; ``definition`` is the line it writes."""

    def __init__(self, lab: Lab, function: str = "vfs_read") -> None:
        super().__init__()
        self.lab = lab
        self.args: list[str] = []
        self.created: str | None = None          # "GRP/EVENT" once written
        names = sorted(str(lab.tracefs.read("available_filter_functions")).split())
        self.kind = widgets.Dropdown(options=list(KINDS), value="kprobe (p)", description="kind")
        self.function = widgets.Combobox(value=function, options=names, description="function",
                                         ensure_option=False)
        self.offset = widgets.IntText(value=0, description="offset", layout=widgets.Layout(width="160px"))
        self.event = widgets.Text(value="", placeholder="GRP/EVENT (empty: the kernel's default)",
                                  description="event")
        self.arg_name = widgets.Text(value="", placeholder="name", layout=widgets.Layout(width="120px"))
        self.arg_fetch = widgets.Dropdown(options=FETCHES, value="$argN",
                                          layout=widgets.Layout(width="160px"))
        self.arg_n = widgets.BoundedIntText(value=1, min=0, max=64, layout=widgets.Layout(width="70px"))
        self.arg_type = widgets.Dropdown(options=TYPES, value="", layout=widgets.Layout(width="100px"))
        self.add_button = widgets.Button(description="Add arg", icon="plus")
        self.pop_button = widgets.Button(description="Remove last arg", icon="minus")
        self.line = widgets.HTML()
        self.create_button = widgets.Button(description="Create", icon="check", button_style="primary")
        self.enable_box = widgets.Checkbox(value=False, description="enabled", disabled=True)
        self.remove_button = widgets.Button(description="Remove event", icon="trash", disabled=True)
        self.workload = widgets.Dropdown(options=WORKLOADS, value="cat", description="workload")
        self.run_button = widgets.Button(description="Run", icon="play", disabled=True)
        self.status = widgets.HTML()
        self.events_html = widgets.HTML()
        for w in (self.kind, self.function, self.offset, self.event):
            w.observe(lambda _c: self.render(), names="value")
        self.add_button.on_click(lambda _b: self.add_arg())
        self.pop_button.on_click(lambda _b: self.pop_arg())
        self.create_button.on_click(lambda _b: self.create())
        self.enable_box.observe(lambda c: self.enable(bool(c["new"])), names="value")
        self.remove_button.on_click(lambda _b: self.remove())
        self.run_button.on_click(lambda _b: self.run())
        self.children = [
            widgets.HBox([self.kind, self.function, self.offset]), self.event,
            widgets.HBox([self.arg_name, self.arg_fetch, self.arg_n, self.arg_type,
                          self.add_button, self.pop_button]),
            self.line, widgets.HBox([self.create_button, self.enable_box, self.remove_button]),
            widgets.HBox([self.workload, self.run_button]), self.status, self.events_html]
        self.render()

    # ---- the definition ---------------------------------------------------------------
    def arg_text(self) -> str:
        """The fetch argument the argument boxes describe."""
        fetch = self.arg_fetch.value.replace("N", str(self.arg_n.value))
        typ = f":{self.arg_type.value}" if self.arg_type.value and ":" not in fetch else ""
        name = f"{self.arg_name.value}=" if self.arg_name.value else ""
        return f"{name}{fetch}{typ}"

    def add_arg(self, text: str | None = None) -> None:
        self.args.append(text if text is not None else self.arg_text())
        self.render()

    def pop_arg(self) -> None:
        if self.args:
            self.args.pop()
        self.render()

    @property
    def definition(self) -> str:
        prefix, suffix = KINDS[self.kind.value]
        head = prefix + (f":{self.event.value.strip()}" if self.event.value.strip() else "")
        place = self.function.value.strip()
        if prefix == "p" and self.offset.value:
            place += f"+{self.offset.value:#x}"
        return " ".join([head, place + suffix, *self.args])

    # ---- actions: tracefs writes -------------------------------------------------------
    def create(self) -> bool:
        """Append the definition to dynamic_events; on a refusal show error_log's entry."""
        fs = self.lab.tracefs
        before = set(str(fs.read("dynamic_events")).splitlines())
        try:
            fs.append("dynamic_events", self.definition)
        except OSError as exc:
            log = str(fs.read("error_log")).splitlines()[-3:]
            self.status.value = (f"<b style='color:#b00'>{html.escape(exc.strerror or str(exc))}</b>"
                                 f"<pre>{html.escape(chr(10).join(log))}</pre>")
            return False
        new = [line for line in str(fs.read("dynamic_events")).splitlines() if line not in before]
        self.created = new[-1].split()[0].split(":", 1)[1] if new else None
        self.status.value = f"created <code>{html.escape(self.created or '?')}</code>"
        self.render()
        return True

    def enable(self, on: bool = True) -> None:
        if self.created is None:
            return
        self.lab.tracefs.write(f"events/{self.created}/enable", "1" if on else "0")
        if self.enable_box.value != on:
            self.enable_box.value = on
        self.render()

    def remove(self) -> None:
        """Disable and remove the event (-:GRP/EVENT)."""
        if self.created is None:
            return
        self.enable(False)
        self.lab.tracefs.append("dynamic_events", f"-:{self.created}")
        self.status.value = f"removed <code>{html.escape(self.created)}</code>"
        self.created = None
        self.render()

    def run(self, workload: str | None = None) -> pd.DataFrame:
        """Run a workload and show this event's records from it."""
        fs = self.lab.tracefs
        fs.write("trace", "")
        rec = self.lab.run(workload or self.workload.value)
        df = self.records()
        lines = [line for line in str(fs.read("trace")).splitlines()
                 if not line.startswith("#") and self.created and
                 f" {self.created.split('/')[1]}:" in line]
        self.status.value = (f"{html.escape(rec.workload)}: {rec.syscalls} syscalls, "
                             f"<b>{len(df)}</b> records of this event")
        self.events_html.value = "<pre>" + html.escape("\n".join(lines[-20:])) + "</pre>"
        return df

    def records(self) -> pd.DataFrame:
        """This event's rows of ``lab.trace().df_events()``."""
        df = self.lab.trace().df_events()
        if self.created is None or df.empty:
            return df.iloc[0:0]
        return df[df["event"] == self.created.split("/")[1]].reset_index(drop=True)

    # ---- view ---------------------------------------------------------------------------
    def render(self) -> None:
        made = self.created is not None
        self.offset.disabled = KINDS[self.kind.value][0] != "p"
        self.line.value = f"<code>{html.escape(self.definition)}</code>"
        self.create_button.disabled = made
        self.enable_box.disabled = not made
        self.remove_button.disabled = not made
        self.run_button.disabled = not made
