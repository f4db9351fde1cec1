"""Trace events as a pandas DataFrame: tools/lib/traceevent event-parse.c
tep_read_number() / tep_print_field() field decoding driven by the format files,
kernel/trace/trace.c trace_find_cmdline() for comm, kallsyms %ps symbol names,
and the per-CPU merge of kernel/trace/trace.c __find_next_entry().

Decoding is vectorised (:mod:`ftracelab.analysis.event_fields`) and goes a
million rows at a time into preallocated columns, so that the temporaries stay
small and are reused: peak memory stays near the input plus the frame.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import TraceFormatError
from ..formats.format_file import EventFormat, HeaderPage, parse_format
from ..formats.ring_buffer_page import DecodedPages, decode_pages
from ..formats.tracedir import Symbols, TraceDir, read_tracedir
from ..trace.trace_entries import ftrace_formats
from .event_fields import Part, assemble, decode_field, field_dtype, scalar

__all__ = ["Trace", "open_trace"]

#: Column names that belong to the frame itself; a format field with one of these
#: names is stored as ``field_<name>`` (e.g. sched_wakeup's ``pid`` → ``field_pid``,
#: funcgraph_entry's ``func`` address → ``field_func``).
RESERVED = ("ts", "cpu", "pid", "comm", "event", "func", "parent")
#: Fields dropped because a leading column carries them (``event``, ``pid``).
_DROPPED = ("common_type", "common_pid")
#: Address fields named by kallsyms: field → derived column.
_SYMBOLIZED = {"ip": "func", "func": "func", "parent_ip": "parent"}

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Obj = npt.NDArray[np.object_]


_CHUNK = 1 << 18     # rows decoded at a time: temporaries stay small and are reused
_TABLE_MAX = 1 << 22  # values below this (pids, event IDs) are coded by a lookup table


def _spans(n: int) -> list[slice]:
    return [slice(a, min(a + _CHUNK, n)) for a in range(0, n, _CHUNK)]


def _code_dtype(ncat: int) -> np.dtype[np.signedinteger[Any]]:
    """The narrowest signed integer type holding the codes -1 .. ncat - 1."""
    dtype: np.dtype[np.signedinteger[Any]] = np.result_type(np.int8, np.min_scalar_type(ncat))
    return dtype


def _names_index(names: list[str]) -> tuple[pd.Index, I64]:
    """Sorted unique names, and where each of ``names`` went (equal names merge)."""
    uniq, same = np.unique(np.array(names, dtype=object).astype(str), return_inverse=True)
    return pd.Index(uniq.tolist(), dtype=object), same.astype(np.int64)


def _distinct(values: npt.NDArray[np.signedinteger[Any]]) -> npt.NDArray[np.signedinteger[Any]]:
    """The sorted distinct values (pids): marks in a table when they are small, else hashing."""
    if not values.size:
        return values[:0]
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi < _TABLE_MAX:
        seen = np.zeros(hi + 1, dtype=bool)
        for sl in _spans(values.size):
            seen[values[sl]] = True
        return np.flatnonzero(seen).astype(values.dtype)
    return np.unique(np.concatenate([pd.unique(values[sl]) for sl in _spans(values.size)]))


def _categorical_of(values: npt.NDArray[Any], keys: npt.NDArray[Any], names: list[str]) -> pd.Categorical:
    """The categorical of ``names[k]`` for each value, ``keys`` being the sorted distinct
    values and ``names`` one per key."""
    cats, same = _names_index(names)
    remap = same.astype(_code_dtype(len(cats)))
    codes = np.empty_like(remap, shape=values.size)
    if keys.size and int(keys[0]) >= 0 and int(keys[-1]) < _TABLE_MAX:
        table = np.zeros(int(keys[-1]) + 1, dtype=remap.dtype)    # value -> code, one gather
        table[keys.astype(np.int64)] = remap
        for sl in _spans(values.size):
            np.take(table, values[sl], out=codes[sl], mode="clip")   # (keys bound the values)
    else:
        for sl in _spans(values.size):
            codes[sl] = remap[np.searchsorted(keys, values[sl])]
    return pd.Categorical.from_codes(codes, categories=cats)


def _categorical(codes: npt.NDArray[np.signedinteger[Any]], categories: list[str],
                 used: I64 | None = None) -> pd.Categorical:
    """A categorical keeping only the categories used (codes -1 = missing); ``used``,
    the sorted codes that occur, when the caller knows them."""
    if used is None:
        counts = np.zeros(len(categories) + 1, dtype=np.int64)
        for sl in _spans(codes.size):
            counts += np.bincount(codes[sl] + 1, minlength=len(categories) + 1)
        used = np.flatnonzero(counts[1:])
    cats, same = _names_index([categories[i] for i in used.tolist()])
    remap = np.full(len(categories) + 1, -1, dtype=_code_dtype(len(cats)))   # code -1: the last
    remap[used] = same
    out = np.empty_like(remap, shape=codes.size)
    for sl in _spans(codes.size):
        np.take(remap, codes[sl], out=out[sl], mode="wrap")
    return pd.Categorical.from_codes(out, categories=cats)


def _column(field: str) -> str:
    """The frame column of a format field."""
    return f"field_{field}" if field in RESERVED else field


def _comm_for(pid: int, cmdlines: Mapping[int, str]) -> str:
    """trace_find_cmdline(): <idle> for 0, <XXX> for negative pids, <...> when not saved."""
    if pid == 0:
        return "<idle>"
    if pid < 0:
        return "<XXX>"
    return cmdlines.get(pid, "<...>")


class Trace:
    """A decoded trace directory (see :func:`open_trace`).

    Attributes: ``path``, ``header_page``, ``formats`` (event ID →
    :class:`~ftracelab.formats.format_file.EventFormat`), ``symbols``
    (kallsyms table or None), ``cmdlines`` (pid → comm), ``pages`` (the
    decoded sub-buffers), ``cpus`` (CPUs with a trace_pipe_raw file) and
    ``lost_events`` (CPU → events lost before its pages, -1 when the kernel
    did not store the count).
    """

    def __init__(self, tracedir: TraceDir) -> None:
        self.path: Path = tracedir.path
        self.header_page: HeaderPage = tracedir.header_page
        self.formats: dict[int, EventFormat] = dict(tracedir.formats)
        for path, text in ftrace_formats().items():     # the ftrace entries' fixed IDs, when
            fmt = parse_format(text, system=path.split("/")[0])   # the capture has no events/ftrace
            self.formats.setdefault(fmt.id, fmt)
        self.symbols: Symbols | None = tracedir.symbols
        self.cmdlines: dict[int, str] = dict(tracedir.cmdlines)
        self.cpus: list[int] = sorted(tracedir.raw)
        self.pages: DecodedPages = self._decode(tracedir)
        known = self.pages.lost_by_cpu()
        self.lost_events: dict[int, int] = {cpu: known.get(cpu, 0) for cpu in self.cpus}
        # Merge order: per CPU in buffer order, CPUs interleaved by time like
        # __find_next_entry() (ties go to the lower CPU).
        pg = self.pages
        ts = pg.ts.view(np.int64)
        running = np.empty_like(ts)
        if np.all(pg.page_cpu[1:] >= pg.page_cpu[:-1]):
            # rows come CPU by CPU: each CPU is one slice, and a stable sort (timsort
            # merges the sorted runs) keeps buffer order and puts the lower CPU first
            # on ties
            ends = np.cumsum(pg.page_events)[np.flatnonzero(np.diff(pg.page_cpu, append=-1))]
            lo = 0
            for hi in ends.tolist():
                np.maximum.accumulate(ts[lo:hi], out=running[lo:hi])
                lo = hi
            order = np.argsort(running, kind="stable")
        else:
            cpu_col = pg.cpu
            for cpu in self.cpus:
                rows = np.flatnonzero(cpu_col == cpu)
                running[rows] = np.maximum.accumulate(ts[rows]) if rows.size else ts[rows]
            order = np.lexsort((np.arange(ts.size), cpu_col, running))
        del running
        # buffer index of each frame row; int32 when it fits (half the memory)
        self._order: npt.NDArray[np.signedinteger[Any]] = order.astype(
            np.int32 if ts.size < 1 << 31 else np.int64)

    def _decode(self, td: TraceDir) -> DecodedPages:
        ps = self.header_page.page_size
        for cpu, data in td.raw.items():
            if len(data) % ps:
                raise TraceFormatError(f"{len(data)} bytes is not a whole number of {ps}-byte pages",
                                       len(data) - len(data) % ps, str(td.raw_paths.get(cpu, "")))
        counts = [len(td.raw[c]) // ps for c in self.cpus]
        blob = td.raw_blob if td.raw_blob is not None else b"".join(td.raw[c] for c in self.cpus)
        page_cpu = np.repeat(np.array(self.cpus, dtype=np.int16), counts)
        try:
            return decode_pages(blob, ps, data_offset=self.header_page.data_offset, cpu=page_cpu)
        except TraceFormatError:      # decode the culprit alone so the error names its file
            for c in self.cpus:
                decode_pages(td.raw[c], ps, data_offset=self.header_page.data_offset, cpu=c,
                             source=str(td.raw_paths.get(c, f"cpu{c}")))
            raise

    def __len__(self) -> int:
        return len(self.pages)

    def record(self, row: int) -> bytes:
        """The whole record of :meth:`df_events` row ``row`` (its index label): common
        fields and payload, as long as the ring buffer holds it (rounded up to 4
        bytes, what the kernel's printers see as ``iter->ent_size``)."""
        return self.pages.payload(int(self._order[row]))

    def _file_offset(self, i: int) -> tuple[int, str]:
        """(offset in its CPU's trace_pipe_raw, CPU name) of buffer index i."""
        page = i // self.pages.page_size
        cpu = int(self.pages.page_cpu[page])
        first = int(np.flatnonzero(self.pages.page_cpu == cpu)[0])
        return i - first * self.pages.page_size, f"cpu{cpu}/trace_pipe_raw"

    def df_events(self) -> pd.DataFrame:
        """All events, CPUs merged in time order, one row per event.

        Columns and dtypes:

        ==========================  ===========================================================
        ``ts``                      int64, trace-clock nanoseconds
        ``cpu``                     int16
        ``pid``                     int32 (``common_pid``)
        ``comm``                    category, from saved_cmdlines; ``<idle>`` for pid 0,
                                    ``<...>`` when not saved (trace_find_cmdline())
        ``event``                   category, the format file's ``name``
                                    (``<id N>`` for an ID without a format file)
        ``common_flags``            uint8 (TRACE_FLAG_* bits)
        ``common_preempt_count``    uint8 (low nibble preempt depth, high nibble migrate-disable)
        every other field           its name from the format file (``field_<name>`` when the
                                    name is one of ts/cpu/pid/comm/event/func/parent).
                                    Integers take the format's size and signedness
                                    (uint64 for addresses, never float); a column shared by
                                    events of different types widens to one integer type,
                                    and is a pandas nullable ``Int*``/``UInt*`` when some
                                    rows lack it. ``char`` arrays and ``__data_loc char[]``
                                    are str (cut at NUL); other arrays are object columns of
                                    tuples of ints, holding only the elements the record
                                    has (a kernel_stack record holds the frames captured).
        ``func``, ``parent``        category, kallsyms names (%ps: name only, ``0x…`` if
                                    unknown) of ``ip``/``func`` and ``parent_ip``; only when
                                    a kallsyms table was given.
        ==========================  ===========================================================

        ``df.attrs["lost_events"]`` is :attr:`lost_events`.
        """
        pg, buf = self.pages, self.pages.buffer
        order, n, ps = self._order, int(self._order.size), self.pages.page_size
        ts, cpu = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int16)
        pid, ctype = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.uint16)
        flags, preempt = np.empty(n, dtype=np.uint8), np.empty(n, dtype=np.uint8)
        ev_ts = pg.ts.view(np.int64)
        if pg.payload_len.size and int(pg.payload_len.min()) < 8:
            first = int(np.flatnonzero(pg.payload_len[order] < 8)[0])     # in frame order
            where, name = self._file_offset(int(pg.payload_offset[order[first]]))
            raise TraceFormatError("record shorter than the 8-byte trace_entry", where, name)
        for sl in _spans(n):
            rows = order[sl]
            off = pg.payload_offset[rows]
            np.take(ev_ts, rows, out=ts[sl])                 # gathers straight into the columns
            np.take(pg.page_cpu, off // ps, out=cpu[sl])
            head = scalar(buf, off, 8, np.dtype("<u8"), in_bounds=True).view(np.uint64)  # trace_entry
            ctype[sl], flags[sl], preempt[sl] = head, head >> 16, head >> 24   # low bits kept
            pid[sl] = head >> 32
        upids = _distinct(pid)
        ids = np.flatnonzero(sum((np.bincount(ctype[sl], minlength=1 << 16) for sl in _spans(n)),
                                 np.zeros(1 << 16, dtype=np.int64))).astype(np.uint16)
        cols: dict[str, npt.NDArray[np.generic] | pd.api.extensions.ExtensionArray | pd.Categorical] = {
            "ts": ts, "cpu": cpu, "pid": pid,
            "comm": _categorical_of(pid, upids, [_comm_for(int(p), self.cmdlines) for p in upids.tolist()]),
            "event": _categorical_of(ctype, ids, [self.formats[i].name if i in self.formats
                                                  else f"<id {i}>" for i in ids.tolist()]),
            "common_flags": flags, "common_preempt_count": preempt,
        }
        parts: dict[str, list[Part]] = {}
        for event_id in ids.tolist():
            if event_id in self.formats:
                rows_of = None if ids.size == 1 else np.flatnonzero(ctype == event_id)
                for col, part in self._decode_type(self.formats[event_id], rows_of, n):
                    parts.setdefault(col, []).append(part)
        del ctype
        for col, col_parts in parts.items():
            cols[col] = assemble(n, col_parts)
        if self.symbols is not None:
            for derived in ("func", "parent"):
                cols_of = [_column(f) for f, d in _SYMBOLIZED.items() if d == derived]
                addr_parts = [p for c in cols_of for p in parts.get(c, []) if p.values.dtype == np.uint64]
                if addr_parts:
                    cols[derived] = self._symbolize(n, addr_parts)
        df = pd.DataFrame(cols, copy=False)
        df.attrs["lost_events"] = dict(self.lost_events)
        return df

    def _decode_type(self, fmt: EventFormat, rows: I64 | None, n: int) -> list[tuple[str, Part]]:
        """The columns of one event type's fields, at frame ``rows`` (None: all n rows)."""
        pg, order = self.pages, self._order
        fields = [f for f in fmt.all_fields
                  if f.name not in _DROPPED and f.name not in ("common_flags", "common_preempt_count")]
        m = n if rows is None else int(rows.size)
        values = [np.empty(m, dtype=field_dtype(f)) for f in fields]
        valid: list[npt.NDArray[np.bool_] | None] = [None] * len(fields)
        for sl in _spans(m):
            recs = order[sl] if rows is None else order[rows[sl]]
            off, plen = pg.payload_offset[recs], pg.payload_len[recs].astype(np.int64)
            plen_min = int(plen.min()) if plen.size else 0
            for k, f in enumerate(fields):
                vals, ok = decode_field(pg.buffer, off, plen, f, plen_min=plen_min)
                values[k][sl] = vals
                if ok is not None:
                    if valid[k] is None:
                        valid[k] = np.ones(m, dtype=bool)
                    valid[k][sl] = ok          # type: ignore[index]
        return [(_column(f.name), Part(rows, v, ok))
                for f, v, ok in zip(fields, values, valid, strict=True)]

    def _symbolize(self, n: int, parts: list[Part]) -> pd.Categorical:
        """%ps names of the addresses in ``parts``: kallsyms names, 0x… when unknown."""
        assert self.symbols is not None
        syms = self.symbols
        categories = list(syms.names)
        codes = np.full(n, -1, dtype=_code_dtype(len(categories)))
        misses: list[npt.NDArray[np.uint64]] = []
        used: list[I64] = []
        for hex_names in (False, True):
            if hex_names:
                if not misses:
                    break
                used.clear()
                miss = np.unique(np.concatenate(misses))     # %ps prints them in hex
                categories += [hex(int(a)) for a in miss.tolist()]
                codes = codes.astype(_code_dtype(len(categories)), copy=False)
            for p in parts:
                for sl in _spans(p.values.size):
                    addr = p.values[sl].astype(np.uint64, copy=False)
                    inverse, uniq = pd.factorize(addr)
                    uniq = np.asarray(uniq, dtype=np.uint64)  # each distinct address once
                    idx = syms.index(uniq)
                    hit = idx >= 0
                    ucode: I64 = np.where(hit, syms.code[np.where(hit, idx, 0)], -1)
                    if hex_names:
                        ucode[~hit] = len(syms.names) + np.searchsorted(miss, uniq[~hit])
                    elif not hit.all():
                        misses.append(uniq[~hit])
                    small = ucode.astype(codes.dtype)
                    at = p.at
                    if isinstance(at, slice) and p.valid is None:    # one type on every row
                        np.take(small, inverse, out=codes[sl])
                        used.append(ucode)
                        continue
                    got = small[inverse]
                    if p.valid is not None:
                        got[~p.valid[sl]] = -1
                    used.append(np.unique(got).astype(np.int64))
                    codes[at[sl] if not isinstance(at, slice) else sl] = got
        occurring = np.unique(np.concatenate(used)) if used else np.zeros(0, dtype=np.int64)
        return _categorical(codes, categories, occurring[occurring >= 0].astype(np.int64))

    def __repr__(self) -> str:
        return (f"<Trace {str(self.path)!r}: {len(self)} events on CPUs {self.cpus}, "
                f"{len(self.formats)} formats, lost {self.lost_events}>")

    def _repr_html_(self) -> str:
        esc = html.escape
        ts = self.pages.ts
        span = f"{int(ts.min()) / 1e9:.6f} s … {int(ts.max()) / 1e9:.6f} s" if ts.size else "—"
        per_cpu = np.bincount(self.pages.page_cpu.astype(np.int64), weights=self.pages.page_events,
                              minlength=max(self.cpus, default=-1) + 1).astype(np.int64)
        rows = [("directory", esc(str(self.path))), ("events", f"{len(self):,}"), ("time span", span),
                ("sub-buffers", f"{self.pages.page_ts.size} × {self.pages.page_size} B"),
                ("kallsyms", f"{len(self.symbols):,} symbols" if self.symbols else "none"),
                ("saved_cmdlines", f"{len(self.cmdlines)} pids")]
        cpu_rows = "".join(
            f"<tr><td>{c}</td><td>{int(per_cpu[c]):,}</td>"
            f"<td>{'unknown' if self.lost_events[c] < 0 else self.lost_events[c]}</td></tr>"
            for c in self.cpus)
        ids, counts = np.unique(self._event_ids(), return_counts=True)
        ev_rows = "".join(
            f"<tr><td>{esc(self.formats[i].name if i in self.formats else f'<id {i}>')}</td>"
            f"<td>{i}</td><td>{c:,}</td></tr>" for i, c in zip(ids.tolist(), counts.tolist(), strict=True))
        head = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>" for k, v in rows)
        return (f"<div><b>ftracelab Trace</b><table>{head}</table>"
                f"<table><tr><th>CPU</th><th>events</th><th>lost</th></tr>{cpu_rows}</table>"
                f"<table><tr><th>event</th><th>ID</th><th>count</th></tr>{ev_rows}</table></div>")

    def _event_ids(self) -> npt.NDArray[np.uint16]:
        pg = self.pages
        ok = pg.payload_len >= 2
        lo = pg.buffer[pg.payload_offset[ok]].astype(np.uint16)
        hi = pg.buffer[pg.payload_offset[ok] + 1].astype(np.uint16)
        ids: npt.NDArray[np.uint16] = lo | (hi << np.uint16(8))
        return ids


def open_trace(path: str | os.PathLike[str], kallsyms: str | os.PathLike[str] | Symbols | None = None,
               cmdlines: str | os.PathLike[str] | Mapping[int, str] | None = None,
               *, events: Iterable[str | os.PathLike[str]] = ()) -> Trace:
    """Open a tracefs-like directory (layout in :mod:`ftracelab.formats.tracedir`).

    ``kallsyms`` and ``cmdlines`` name a /proc/kallsyms-format file and a
    saved_cmdlines file elsewhere (``.gz`` accepted); by default
    ``<path>/kallsyms`` and ``<path>/saved_cmdlines`` (or ``.txt``) are used
    when present. ``events`` adds ``events/`` directories to search for
    format files the trace's own ``events/`` lacks. Malformed files raise
    :class:`~ftracelab.errors.TraceFormatError` naming the file and offset.
    """
    return Trace(read_tracedir(path, kallsyms, cmdlines, events=events))
