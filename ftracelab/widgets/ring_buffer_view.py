"""A live view of one CPU's ring buffer: its pages, the head/tail/commit
pointers, and every byte of a page decoded the way a reader walks it
(kernel/trace/ring_buffer.c: struct buffer_data_page, struct
ring_buffer_event, rb_event_length(), rb_move_tail(), rb_reset_tail(),
check_buffer(); tools/lib/traceevent kbuffer-parse.c update_pointers()).

:class:`RingBufferView` shows a row of page *slots* (one box per page of the
ring: head, commit and tail marked, entries and write index per page; a
window around head..tail for big rings), a page selector and a hex dump of
the chosen page: the page header first (``time_stamp``, ``commit`` with its
RB_MISSED_EVENTS / RB_MISSED_STORED bits), then each event's 32-bit header
word split into ``type_len`` and ``time_delta``, its length and kind, and
its payload, with the fields of known events (``function``: TRACE_FN)
decoded and addresses named. Nothing here writes to the lab: "Refresh"
re-reads ``lab.trace_array.buffer``.

The page walk is a small pure function, :func:`walk_page`, that keeps every
record (paddings, time extends) with its offset; :func:`format_page` renders
its result as text, so a notebook can print it without widgets.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..errors import FtraceLabError
from ..formats.format_file import EventFormat, parse_format
from ..formats.ring_buffer_page import (
    COMMIT_MASK,
    RB_MISSED_EVENTS,
    RB_MISSED_STORED,
    TS_MSB,
    TS_SHIFT,
    TYPE_DATA_MAX,
    TYPE_PADDING,
    TYPE_TIME_EXTEND,
)

if TYPE_CHECKING:
    from ..lab import Lab

__all__ = ["PageHeader", "PageSlot", "PageWalk", "RbRecord", "RingBufferView", "annotate_walk",
           "decode_event", "event_formats", "format_page", "read_header", "slot_window", "slots_html",
           "walk_page"]

BUF_PAGE_HDR_SIZE = 16
ROLES = ("head", "commit", "tail")
ROLE_COLORS = {"head": "#1f77b4", "commit": "#2ca02c", "tail": "#d62728"}
SYMBOLIZED = ("ip", "parent_ip", "func")
BYTES_PER_LINE = 16

# kinds of records on a page
DATA = "data"
PADDING = "padding"
DISCARD = "discard"
TIME_EXTEND = "time extend"
TIME_STAMP = "time stamp"


# ---- the pure page walk ---------------------------------------------------------------
@dataclass(frozen=True)
class PageHeader:
    """``struct buffer_data_page``'s header: ``u64 time_stamp; local_t commit``.

    ``size`` is the committed byte count (the commit's low 27 bits, as kbuffer
    masks it). ``lost`` is None when no events were lost before the page, -1
    when RB_MISSED_EVENTS is set without a stored count, else the count
    stored after the data (RB_MISSED_STORED).
    """

    time_stamp: int
    commit: int
    size: int
    missed_events: bool
    missed_stored: bool
    lost: int | None


@dataclass(frozen=True)
class RbRecord:
    """One record on a page: a data event, a padding, a discard or a time record.

    ``offset`` is where its 32-bit header word sits in the page (the data area
    starts at 16); ``length`` the bytes it occupies, header included;
    ``array0`` the word after the header when the record uses it (type_len 0,
    paddings, TIME_EXTEND, TIME_STAMP). ``ts`` is the reader's clock after the
    record (a data event's timestamp). ``payload`` is a data event's payload
    (empty otherwise). For payloads of a known event, ``event`` names it and
    ``fields`` / ``symbols`` hold its decoded scalar fields and the names of
    its code addresses.
    """

    offset: int
    word: int
    type_len: int
    time_delta: int
    array0: int | None
    length: int
    kind: str
    ts: int
    payload_offset: int = 0
    payload: bytes = b""
    note: str = ""
    event: str | None = None
    fields: Mapping[str, int] = field(default_factory=dict)
    symbols: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_data(self) -> bool:
        return self.kind == DATA


@dataclass(frozen=True)
class PageWalk:
    """A page decoded record by record; ``error`` says where the walk had to stop."""

    header: PageHeader
    records: tuple[RbRecord, ...]
    data_offset: int = BUF_PAGE_HDR_SIZE
    page_size: int = 4096
    error: str | None = None

    def data(self) -> list[RbRecord]:
        """The data events only, in page order."""
        return [r for r in self.records if r.is_data]


def _u32(raw: bytes, offset: int) -> int:
    return int.from_bytes(raw[offset:offset + 4], "little")


def _fix_abs_ts(absolute: int, save_ts: int) -> int:
    """rb_fix_abs_ts(): put back the 5 top bits a TIME_STAMP cannot hold."""
    msb = save_ts & TS_MSB
    if not msb:
        return absolute
    value = absolute | msb
    return value + (1 << 59) if value < save_ts else value


def read_header(raw: bytes, data_offset: int = BUF_PAGE_HDR_SIZE) -> PageHeader:
    """The page header and its lost-events marks (ring_buffer_read_page())."""
    time_stamp = int.from_bytes(raw[0:8], "little")
    commit = int.from_bytes(raw[8:16], "little")
    size = commit & COMMIT_MASK
    missed = bool(commit & RB_MISSED_EVENTS)
    stored = missed and bool(commit & RB_MISSED_STORED)
    lost: int | None = None
    if missed:
        at = data_offset + size
        lost = int.from_bytes(raw[at:at + 8], "little", signed=True) \
            if stored and at + 8 <= len(raw) else -1
    return PageHeader(time_stamp, commit, size, missed, stored, lost)


def walk_page(raw: bytes, data_offset: int = BUF_PAGE_HDR_SIZE) -> PageWalk:
    """Walk one sub-buffer record by record, as check_buffer() does.

    The clock starts at the page's time_stamp; a TIME_EXTEND adds
    ``(array[0] << 27) + time_delta``, a TIME_STAMP replaces it, a data event
    adds its time_delta, a non-null padding adds its delta unless it is 1 (a
    plain discard). A null padding (type_len 29, time_delta 0) ends the page.
    The walk stops with ``error`` set at a record running past the commit.
    """
    header = read_header(raw, data_offset)
    data_size = len(raw) - data_offset
    if header.size > data_size or header.size % 4:
        return PageWalk(header, (), data_offset, len(raw),
                        f"commit {header.size} is not a 4-aligned count within the "
                        f"{data_size}-byte data area")
    records: list[RbRecord] = []
    ts = header.time_stamp
    pos, end = data_offset, data_offset + header.size
    while pos < end:
        word = _u32(raw, pos)
        tl, delta = word & 31, word >> 5
        if tl == TYPE_PADDING and delta == 0:
            records.append(RbRecord(pos, word, tl, delta, None, end - pos, PADDING, ts,
                                    note="null padding: the rest of the page is unused"))
            break
        needs_a0 = tl == 0 or tl >= TYPE_PADDING
        if needs_a0 and pos + 8 > end:
            return PageWalk(header, tuple(records), data_offset, len(raw),
                            f"type_len {tl} at offset {pos:#x} needs array[0] past the commit")
        a0 = _u32(raw, pos + 4) if needs_a0 else None
        if tl == 0:
            length = (a0 or 0) + 4
        elif tl <= TYPE_DATA_MAX:
            length = 4 + 4 * tl
        elif tl == TYPE_PADDING:
            length = (a0 or 0) + 4
        else:
            length = 8
        if length % 4 or pos + length > end or (tl == 0 and (a0 or 0) < 4):
            return PageWalk(header, tuple(records), data_offset, len(raw),
                            f"type_len {tl} record of {length} bytes at offset {pos:#x} runs past "
                            f"the commit (data ends at {end:#x})")
        a = a0 or 0
        if tl <= TYPE_DATA_MAX:
            ts += delta
            start = pos + (8 if tl == 0 else 4)
            how = "type_len 0: the length is in array[0], which counts itself" if tl == 0 else ""
            records.append(RbRecord(pos, word, tl, delta, a0, length, DATA, ts, start,
                                    bytes(raw[start:pos + length]), how))
        elif tl == TYPE_PADDING:
            if delta != 1:
                ts += delta
            if pos + length == len(raw):
                kind, note = PADDING, ("end-of-page filler (rb_reset_tail): time_delta 1, skipped "
                                       "like a discard")
            else:
                kind, note = DISCARD, "discarded event (rb_event_discard)"
            records.append(RbRecord(pos, word, tl, delta, a0, length, kind, ts, note=note))
        elif tl == TYPE_TIME_EXTEND:
            ts += (a << TS_SHIFT) + delta
            records.append(RbRecord(pos, word, tl, delta, a0, length, TIME_EXTEND, ts,
                                    note=f"delta = (array[0] << 27) + time_delta = "
                                         f"{(a << TS_SHIFT) + delta}"))
        else:
            ts = _fix_abs_ts((a << TS_SHIFT) | delta, ts)
            records.append(RbRecord(pos, word, tl, delta, a0, length, TIME_STAMP, ts,
                                    note="absolute: (array[0] << 27) | time_delta"))
        pos += length
    return PageWalk(header, tuple(records), data_offset, len(raw))


def event_formats(texts: Mapping[str, str]) -> dict[int, EventFormat]:
    """``{id: format}`` from ``{"system/event": format text}`` (``TraceArray.formats()``)."""
    out = {}
    for path, text in texts.items():
        fmt = parse_format(text, system=path.split("/")[0], source=f"events/{path}/format")
        out[fmt.id] = fmt
    return out


def decode_event(record: RbRecord, formats: Mapping[int, EventFormat],
                 symbolize: Callable[[int], str] | None = None) -> RbRecord:
    """Name a data event by its common_type and decode its scalar integer fields;
    ``ip``/``parent_ip``/``func`` get a symbol from ``symbolize``."""
    payload = record.payload
    if not record.is_data or len(payload) < 2:
        return record
    fmt = formats.get(int.from_bytes(payload[0:2], "little"))
    if fmt is None:
        return record
    values: dict[str, int] = {}
    for f in fmt.all_fields:
        if f.is_array or f.size not in (1, 2, 4, 8) or f.offset + f.size > len(payload):
            continue
        values[f.name] = int.from_bytes(payload[f.offset:f.offset + f.size], "little",
                                        signed=f.signed)
    symbols = {name: symbolize(values[name] % (1 << 64)) for name in SYMBOLIZED
               if name in values and symbolize is not None}
    return replace(record, event=fmt.name, fields=values, symbols=symbols)


def annotate_walk(walk: PageWalk, formats: Mapping[int, EventFormat],
                  symbolize: Callable[[int], str] | None = None) -> PageWalk:
    """The walk with every data event named and decoded (:func:`decode_event`).

    For a lab: ``annotate_walk(walk_page(raw), event_formats(lab.trace_array.formats()),
    lab.kallsyms.format_short)``.
    """
    return replace(walk, records=tuple(decode_event(r, formats, symbolize) for r in walk.records))


# ---- text rendering ----------------------------------------------------------------------
def _hex(data: bytes) -> str:
    return data.hex(" ")


def _commit_text(h: PageHeader) -> str:
    flags = [name for bit, name in ((RB_MISSED_EVENTS, "RB_MISSED_EVENTS"),
                                    (RB_MISSED_STORED, "RB_MISSED_STORED")) if h.commit & bit]
    text = f"commit      {h.commit:#x} = {h.size} bytes of events"
    return text + ("; flags " + " | ".join(flags) if flags else "; no RB_MISSED_* flag")


def _record_text(i: int, r: RbRecord, prev_ts: int) -> list[str]:
    head = r.word.to_bytes(4, "little")
    a0 = "" if r.array0 is None else f", array[0] {r.array0}"
    lines = [f"{r.offset:#05x}  {_hex(head):<47}  #{i} header {r.word:#010x}: type_len {r.type_len}, "
             f"time_delta {r.time_delta}{a0} -> {r.kind}, {r.length} bytes; "
             f"ts {r.ts} (+{r.ts - prev_ts})"]
    if r.array0 is not None:
        lines.append(f"{r.offset + 4:#05x}  {_hex(r.array0.to_bytes(4, 'little')):<47}  array[0]")
    if r.note:
        lines.append(f"{'':5}  {'':47}  {r.note}")
    for k in range(0, len(r.payload), BYTES_PER_LINE):
        chunk = r.payload[k:k + BYTES_PER_LINE]
        label = "payload" if k == 0 else ""
        lines.append(f"{r.payload_offset + k:#05x}  {_hex(chunk):<47}  {label}")
    if r.event is not None:
        parts = []
        for name, value in r.fields.items():
            shown = f"{value % (1 << 64):#x}" if name in SYMBOLIZED or name == "common_flags" \
                else str(value)
            if name in r.symbols:
                shown += f" <{r.symbols[name]}>"
            parts.append(f"{name} {shown}")
        lines.append(f"{'':5}  {'':47}  {r.event}: " + ", ".join(parts))
    return lines


def format_page(walk: PageWalk, raw: bytes | None = None, title: str = "") -> str:
    """The page as an annotated hex dump: header fields, then every record."""
    h = walk.header
    lines = [title] if title else []
    lines.append(f"{'off':5}  {'bytes':<47}  meaning")
    lines.append(f"{0:#05x}  {_hex(h.time_stamp.to_bytes(8, 'little')):<47}  "
                 f"time_stamp  {h.time_stamp} ns (the first event's clock)")
    lines.append(f"{8:#05x}  {_hex(h.commit.to_bytes(8, 'little')):<47}  {_commit_text(h)}")
    if not walk.records and not walk.error:
        lines.append(f"{'':5}  {'':47}  (no events on this page)")
    prev = h.time_stamp
    for i, r in enumerate(walk.records):
        lines.extend(_record_text(i, r, prev))
        prev = r.ts
    end = walk.data_offset + h.size
    if h.missed_stored and h.lost is not None:
        lines.append(f"{end:#05x}  {_hex(h.lost.to_bytes(8, 'little', signed=True)):<47}  "
                     f"lost events: {h.lost} (stored after the data: RB_MISSED_STORED)")
    elif h.missed_events:
        lines.append(f"{'':5}  {'':47}  events were lost before this page; count not stored")
    if walk.error:
        lines.append(f"{'':5}  {'':47}  ERROR: {walk.error}")
    if h.missed_stored:
        end += 8
    if end < walk.page_size:
        tail = ""
        if raw is not None and end + 4 <= len(raw) and not h.missed_stored:
            word = _u32(raw, end)
            if word & 31 == TYPE_PADDING and word >> 5 == 0 and word:
                tail = f"; null padding {word:#010x} there (outside commit)"
        lines.append(f"{end:#05x}  {'':47}  end of commit: {walk.page_size - end} bytes unused{tail}")
    return "\n".join(line.rstrip() for line in lines)


# ---- the ring as slots ---------------------------------------------------------------------
@dataclass(frozen=True)
class PageSlot:
    """One page of a CPU's ring (``struct buffer_page`` and its data page's header).

    ``roles`` are the pointers on it (``head``, ``commit``, ``tail``); ``in_use``
    says it is between head and tail, where a reader finds data.
    """

    index: int
    roles: tuple[str, ...]
    in_use: bool
    entries: int
    write: int
    real_end: int
    time_stamp: int
    commit: int
    address: int


def slot_window(nr_pages: int, head: int, tail: int, max_slots: int = 16,
                extra: Sequence[int] = ()) -> list[int | None]:
    """The page indexes to show, in ring order from the page before head; None marks a gap.

    All pages when they fit in ``max_slots``; otherwise the first pages from head,
    the last ones up to the tail and one page each side, plus ``extra`` ones.
    """
    if nr_pages <= max_slots:
        return list(range(nr_pages))
    start = (head - 1) % nr_pages
    span = (tail - head) % nr_pages + 1             # head .. tail
    room = max(max_slots - 2, 2)
    if span <= room:
        rel = set(range(span + 2))
    else:
        first = room // 2
        rel = set(range(first + 1)) | set(range(span + 1 - (room - first), span + 2))
    rel = {r for r in rel if r < nr_pages}          # a full ring: head - 1 is the tail
    rel |= {(i - start) % nr_pages for i in extra if 0 <= i < nr_pages}
    out: list[int | None] = []
    last = -1
    for r in sorted(rel):
        if last >= 0 and r != last + 1:
            out.append(None)
        out.append((start + r) % nr_pages)
        last = r
    return out


def _in_ring(index: int, head: int, tail: int, nr_pages: int) -> bool:
    return (index - head) % nr_pages <= (tail - head) % nr_pages


def _slot_html(slot: PageSlot, selected: bool) -> str:
    color = next((ROLE_COLORS[r] for r in ("tail", "head", "commit") if r in slot.roles), "#999")
    width = 3 if slot.roles else 1
    background = "#e8f0fe" if slot.in_use else "#f4f4f4"
    outline = "outline:2px dashed #555;" if selected else ""
    badges = "".join(f"<span style='background:{ROLE_COLORS[r]};color:#fff;padding:0 3px;"
                     f"margin-right:1px'>{r[0].upper()}</span>" for r in slot.roles) or "&nbsp;"
    classes = " ".join(["rb-slot", *(f"rb-{r}" for r in slot.roles),
                        *(["rb-selected"] if selected else [])])
    title = ", ".join(slot.roles) or ("data" if slot.in_use else "not in head..tail")
    return (f"<div class='{classes}' data-page='{slot.index}' title='page {slot.index}: {title}' "
            f"style='border:{width}px solid {color};background:{background};{outline}"
            f"padding:2px 4px;min-width:58px;text-align:center;line-height:1.3'>"
            f"<b>{slot.index}</b><br>{badges}<br>{slot.entries} ev<br>w {slot.write}</div>")


def slots_html(slots: Sequence[PageSlot | None], selected: int | None = None) -> str:
    """A row of page boxes; None is drawn as a gap."""
    cells = ["<div class='rb-gap' style='align-self:center'>&hellip;</div>" if s is None
             else _slot_html(s, s.index == selected) for s in slots]
    legend = " ".join(f"<span style='background:{c};color:#fff;padding:0 3px'>{n[0].upper()}</span> {n}"
                      for n, c in ROLE_COLORS.items())
    return (f"<div style='display:flex;flex-wrap:wrap;gap:4px;font-family:monospace;"
            f"font-size:11px'>{''.join(cells)}</div>"
            f"<div style='font-size:11px'>{legend}; shaded: pages between head and tail "
            f"(ev = entries, w = write index)</div>")


# ---- the widget -------------------------------------------------------------------------------
class RingBufferView(widgets.VBox):  # type: ignore[misc]
    """One CPU's ring of pages and a decoded page; ``refresh()`` re-reads the lab.

    ``rows()`` are the slots shown, ``events()`` the records of the selected
    page (``walk.header`` its header), ``dump_text()`` the dump as plain text;
    ``status.value`` holds the last error.
    """

    def __init__(self, lab: Lab, cpu: int = 0, max_slots: int = 16) -> None:
        super().__init__()
        if not 0 <= cpu < lab.cpus:
            raise ValueError(f"cpu {cpu} is not one of the lab's {lab.cpus} CPUs")
        self.lab = lab
        self.max_slots = max_slots
        self._busy = False
        self._nr_pages = -1
        self._rows: list[PageSlot] = []
        self._window: list[int | None] = []
        self._text = ""
        self.walk: PageWalk | None = None
        self.cpu_dropdown = widgets.Dropdown(options=[(f"cpu{c}", c) for c in range(lab.cpus)],
                                             value=cpu, description="CPU",
                                             layout=widgets.Layout(width="160px"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.head_button = widgets.Button(description="head page", layout=widgets.Layout(width="auto"))
        self.tail_button = widgets.Button(description="tail page", layout=widgets.Layout(width="auto"))
        self.summary = widgets.HTML()
        self.slots_html = widgets.HTML()
        self.page_slider = widgets.IntSlider(value=0, min=0, max=1, description="page",
                                             continuous_update=False)
        self.dump = widgets.HTML()
        self.status = widgets.HTML()

        self.refresh_button.on_click(lambda _b: self.refresh())
        self.head_button.on_click(lambda _b: self._act(lambda: self._goto("head")))
        self.tail_button.on_click(lambda _b: self._act(lambda: self._goto("tail")))
        self.cpu_dropdown.observe(self._cpu_changed, names="value")
        self.page_slider.observe(self._page_changed, names="value")

        self.children = [
            widgets.HBox([self.cpu_dropdown, self.refresh_button]),
            self.summary,
            self.slots_html,
            widgets.HBox([self.page_slider, self.head_button, self.tail_button]),
            self.status,
            self.dump,
        ]
        self.refresh()

    # ---- state -----------------------------------------------------------------------
    @property
    def cpu(self) -> int:
        return int(self.cpu_dropdown.value)

    @property
    def page(self) -> int:
        """The selected page index."""
        return int(self.page_slider.value)

    @page.setter
    def page(self, index: int) -> None:
        self.page_slider.value = min(max(index, 0), self.page_slider.max)

    def pointers(self) -> dict[str, int]:
        """The selected CPU's head, tail, commit and nr_pages, read now."""
        return self.lab.trace_array.buffer.pointers(self.cpu)

    def rows(self) -> list[PageSlot]:
        """The slots shown at the last refresh, in ring order (gaps left out)."""
        return list(self._rows)

    def slot(self, index: int) -> PageSlot:
        """The shown slot of a page (KeyError if it is outside the window)."""
        for s in self._rows:
            if s.index == index:
                return s
        raise KeyError(index)

    def events(self) -> list[RbRecord]:
        """Every record of the selected page, paddings and time records included."""
        return list(self.walk.records) if self.walk else []

    def dump_text(self) -> str:
        """The hex dump as plain text."""
        return self._text

    # ---- actions ---------------------------------------------------------------------
    @contextmanager
    def _quiet(self) -> Iterator[None]:
        busy, self._busy = self._busy, True
        try:
            yield
        finally:
            self._busy = busy

    def _act(self, action: Callable[[], None]) -> None:
        try:
            action()
            error = self.walk.error if self.walk else None
            self.status.value = "" if error is None else \
                f"<span style='color:#b00'>page walk stopped: {html.escape(error)}</span>"
        except (FtraceLabError, ValueError, IndexError, KeyError) as e:
            self.status.value = f"<span style='color:#b00'>error: {html.escape(str(e))}</span>"

    def refresh(self) -> None:
        """Re-read pointers, pages and the selected page from the lab."""
        self._act(self._refresh)

    def select_page(self, index: int) -> None:
        self.page = index

    def _goto(self, role: str) -> None:
        self.page = self.pointers()[role]

    def _cpu_changed(self, _change: Any) -> None:
        if not self._busy:
            self._nr_pages = -1                 # a new ring: start at its head page
            self.refresh()

    def _page_changed(self, _change: Any) -> None:
        if not self._busy:
            self._act(self._render)

    def _refresh(self) -> None:
        p = self.pointers()
        nr = p["nr_pages"]
        with self._quiet():
            self.page_slider.max = max(nr - 1, 0)
            if nr != self._nr_pages:            # first look, another CPU or a resized ring
                self.page_slider.value = p["head"]
            self._nr_pages = nr
        self._render()

    def _slot(self, index: int, p: Mapping[str, int]) -> PageSlot:
        rb = self.lab.trace_array.buffer
        info = rb.page_info(self.cpu, index)
        head = self.lab.machine.read(info["page"], BUF_PAGE_HDR_SIZE)
        roles = tuple(r for r in ROLES if p[r] == index)
        return PageSlot(index, roles, _in_ring(index, p["head"], p["tail"], p["nr_pages"]),
                        info["entries"], info["write"], info["real_end"],
                        int.from_bytes(head[:8], "little"), int.from_bytes(head[8:16], "little"),
                        info["page"])

    def _render(self) -> None:
        rb = self.lab.trace_array.buffer
        cpu, p = self.cpu, self.pointers()
        nr, page = p["nr_pages"], self.page
        self._window = slot_window(nr, p["head"], p["tail"], self.max_slots, extra=[page])
        shown = [None if i is None else self._slot(i, p) for i in self._window]
        self._rows = [s for s in shown if s is not None]
        self.slots_html.value = slots_html(shown, selected=page)
        s = rb.stats(cpu)
        mode = "overwrite" if self.lab.trace_array.options.get("overwrite", True) else \
            "producer/consumer"
        self.summary.value = (
            f"<b>cpu{cpu}</b>: {nr} pages; head {p['head']}, commit {p['commit']}, tail {p['tail']}; "
            f"entries {s.entries}, overrun {s.overrun}, dropped {s.dropped_events}, "
            f"read {s.read_events}, bytes {s.bytes}; {mode} mode")
        raw = rb.read_page(cpu, page)
        self.walk = annotate_walk(walk_page(raw), event_formats(self.lab.trace_array.formats()),
                                  self.lab.kallsyms.format_short)
        slot = self._slot(page, p)
        where = ", ".join(slot.roles) or ("between head and tail" if slot.in_use else
                                           "outside head..tail: stale, a reader will not see it")
        title = (f"cpu{cpu} page {page} at {slot.address:#x} ({where}): "
                 f"{slot.entries} entries, write {slot.write}, real_end {slot.real_end}")
        self._text = format_page(self.walk, raw, title)
        self.dump.value = ("<div style='max-height:32em;overflow:auto'><pre style='font-size:11px;"
                           f"line-height:1.25'>{html.escape(self._text)}</pre></div>")
