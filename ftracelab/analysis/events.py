"""Trace events as a pandas DataFrame: tools/lib/traceevent event-parse.c
tep_read_number() / tep_print_field() field decoding driven by the format files,
kernel/trace/trace.c trace_find_cmdline() for comm, kallsyms %ps symbol names,
and the per-CPU merge of kernel/trace/trace.c __find_next_entry().

Decoding is vectorised per event type: every field is a numpy gather over all
records of that type (``buffer[payload_offset[:, None] + field_offset + arange(size)]``
viewed as the field's integer type), never a Python loop per event. Variable
length data (``char buf[]``, ``__data_loc``) is gathered per distinct length.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import TraceFormatError
from ..formats.format_file import EventFormat, FormatField, HeaderPage
from ..formats.ring_buffer_page import DecodedPages, decode_pages
from ..formats.tracedir import Symbols, TraceDir, read_tracedir

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


@dataclass
class _Part:
    """One event type's values for one column."""

    rows: I64
    values: npt.NDArray[np.generic]
    valid: npt.NDArray[np.bool_] | None = None


def _gather(buf: U8, starts: I64, width: int) -> U8:
    """(n, width) bytes at ``starts``; indices past the buffer read its last byte (masked later)."""
    idx = starts[:, None] + np.arange(width, dtype=np.int64)
    out: U8 = buf[np.minimum(idx, buf.size - 1)]
    return out


def _scalar(buf: U8, starts: I64, size: int, dtype: np.dtype[np.generic]) -> npt.NDArray[np.generic]:
    """One little-endian integer of ``size`` bytes at each start, read with 1-D word
    indexing when the starts are aligned (ring-buffer payloads are 4-byte aligned):
    no (n, size) index matrix, so fast and light on memory."""
    idx = np.minimum(starts, buf.size - size)
    out: npt.NDArray[np.generic]
    if size == 8 and not (idx & 3).any():
        # u64 views of the buffer at offsets 0 and 4: one gather, no temporaries
        n = buf.size
        even = buf[:n - n % 8].view("<u8")
        odd = buf[4:4 + (n - 4) // 8 * 8].view("<u8")
        at4 = (idx & 4) != 0
        if at4.all():
            out = odd[idx >> 3].view(dtype)
        elif not at4.any():
            out = even[idx >> 3].view(dtype)
        else:
            out = np.where(at4, odd[np.minimum(idx >> 3, odd.size - 1)],
                           even[np.minimum(idx >> 3, even.size - 1)]).view(dtype)
        return out
    if size == 4 and buf.size % 4 == 0 and not (idx & 3).any():
        out = buf.view("<u4")[idx >> 2].view(dtype)
        return out
    if size == 2 and buf.size % 2 == 0 and not (idx & 1).any():
        out = buf.view("<u2")[idx >> 1].view(dtype)
        return out
    if size == 1:
        out = buf[idx].view(dtype)
        return out
    return np.ascontiguousarray(_gather(buf, starts, size)).view(dtype).reshape(-1).copy()


def _cstrings(block: U8) -> Obj:
    """Rows of bytes → str, cut at the first NUL (utf-8; other bytes as \\xNN escapes)."""
    n, width = block.shape
    if width == 0:
        return np.full(n, "", dtype=object)
    cut = np.cumsum(block == 0, axis=1) > 0
    clean = np.ascontiguousarray(np.where(cut, 0, block).astype(np.uint8))
    raw = clean.view(f"S{width}").reshape(n)
    return np.strings.decode(raw, "utf-8", "backslashreplace").astype(object)


def _tuples(block: U8, elem: np.dtype[np.generic]) -> Obj:
    """Rows of bytes → tuples of ints of dtype ``elem`` (trailing partial element dropped)."""
    n, width = block.shape
    count = width // elem.itemsize
    flat = np.ascontiguousarray(block[:, :count * elem.itemsize]).view(elem).reshape(n, count)
    return np.fromiter(map(tuple, flat.tolist()), dtype=object, count=n)


def _by_length(buf: U8, starts: I64, lengths: I64, make: Callable[[U8], Obj]) -> Obj:
    """Apply ``make`` to variable-length rows, one numpy call per distinct length."""
    out = np.empty(starts.size, dtype=object)
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        out[rows] = make(_gather(buf, starts[rows], int(length)))
    return out


def _int_dtype(f: FormatField, size: int) -> np.dtype[np.generic] | None:
    if size not in (1, 2, 4, 8):
        return None
    return np.dtype(f"<{'i' if f.signed else 'u'}{size}")


def _decode_field(buf: U8, off: I64, plen: I64, f: FormatField) -> tuple[npt.NDArray[np.generic],
                                                                         npt.NDArray[np.bool_] | None]:
    """Values (and validity, None = all valid) of field ``f`` for records at ``off`` of ``plen`` bytes."""
    start = off + f.offset
    if f.is_dynamic:
        loc = _gather(buf, start, 4).view("<u4").reshape(-1).astype(np.int64)
        begin = (loc & 0xFFFF) + (f.offset + 4 if f.rel_loc else 0)
        length = np.clip(np.minimum(loc >> 16, plen - begin), 0, None)
        valid = f.offset + 4 <= plen
        length[~valid] = 0
        make = _cstrings if f.is_string else _elem_maker(f)
        return _by_length(buf, off + begin, length, make), (None if valid.all() else valid)
    if f.array_len is not None:
        extent = plen - f.offset if f.array_len == 0 else np.minimum(plen - f.offset, f.size)
        extent = np.clip(extent, 0, None)
        if not f.is_string:               # only whole elements the record holds
            extent -= extent % f.elem_size
        make = _cstrings if f.is_string else _elem_maker(f)
        return _by_length(buf, start, extent, make), None
    valid = f.offset + f.size <= plen
    dtype = _int_dtype(f, f.size)
    values: npt.NDArray[np.generic]
    if dtype is None:                     # odd-sized scalar: raw bytes, gathered only where present
        values = np.full(off.size, None, dtype=object)
        block = _gather(buf, start[valid], f.size)
        values[valid] = np.ascontiguousarray(block).view(f"V{f.size}").reshape(-1).astype(object)
    else:
        values = _scalar(buf, start, f.size, dtype)
        if not valid.all():
            values[~valid] = 0
    return values, (None if valid.all() else valid)


def _elem_maker(f: FormatField) -> Callable[[U8], Obj]:
    dtype = _int_dtype(f, f.elem_size) or np.dtype(np.uint8)
    return lambda block: _tuples(block, dtype)


def _common_int(dtypes: Iterable[np.dtype[np.generic]]) -> np.dtype[np.generic] | None:
    """The integer dtype holding all of ``dtypes``; None if only object would (u64 with signed)."""
    ds = list(dtypes)
    if not all(d.kind in "iu" for d in ds):
        return None
    if all(d.kind == "u" for d in ds):
        return np.dtype(f"u{max(d.itemsize for d in ds)}")
    need = max([d.itemsize for d in ds if d.kind == "i"] + [2 * d.itemsize for d in ds if d.kind == "u"])
    return np.dtype(f"i{need}") if need <= 8 else None


def _assemble(n: int, parts: list[_Part]) -> npt.NDArray[np.generic] | pd.api.extensions.ExtensionArray:
    """One column from its per-type parts: plain numpy when every row has a value of one
    integer type, a pandas nullable integer array when some rows lack it, else object."""
    dtype = _common_int(p.values.dtype for p in parts)
    covered = sum(p.rows.size for p in parts) == n and all(p.valid is None for p in parts)
    if (dtype is not None and covered and len(parts) == 1
            and parts[0].values.dtype == dtype and parts[0].rows.size == n):
        return parts[0].values            # one event type on every row, rows in order
    if dtype is not None:
        values = np.zeros(n, dtype=dtype)
        for p in parts:
            values[p.rows] = p.values
        if covered:
            return values
        missing = np.ones(n, dtype=bool)
        for p in parts:
            missing[p.rows if p.valid is None else p.rows[p.valid]] = False
        return pd.arrays.IntegerArray(values, missing)
    out = np.full(n, None, dtype=object)
    for p in parts:
        vals = p.values.astype(object)
        if p.valid is not None:
            vals[~p.valid] = None
        out[p.rows] = vals
    return out


def _unique_inverse(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], I64]:
    """np.unique(values, return_inverse=True) by hashing (pandas.factorize) instead
    of sorting all n values: only the few distinct ones get sorted."""
    codes, uniques = pd.factorize(values, sort=False)
    uniques = np.asarray(uniques)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return uniques[order], rank[codes]


def _categorical(codes: I64, categories: list[str]) -> pd.Categorical:
    """A categorical keeping only the categories used (codes -1 = missing)."""
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(categories) + 1)[1:])
    names, same = np.unique(np.array([categories[i] for i in used.tolist()], dtype=object).astype(str),
                            return_inverse=True)            # equal names (two pids, one comm) merge
    small = np.result_type(np.int8, np.min_scalar_type(len(names)))   # final code width
    remap = np.full(len(categories) + 1, -1, dtype=small)
    remap[used] = same
    return pd.Categorical.from_codes(remap[codes], categories=pd.Index(names.tolist(), dtype=object))


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
        self.symbols: Symbols | None = tracedir.symbols
        self.cmdlines: dict[int, str] = dict(tracedir.cmdlines)
        self.cpus: list[int] = sorted(tracedir.raw)
        self.pages: DecodedPages = self._decode(tracedir)
        known = self.pages.lost_by_cpu()
        self.lost_events: dict[int, int] = {cpu: known.get(cpu, 0) for cpu in self.cpus}
        # Merge order: per CPU in buffer order, CPUs interleaved by time like
        # __find_next_entry() (ties go to the lower CPU).
        ts = self.pages.ts.astype(np.int64)
        running = np.empty_like(ts)
        for cpu in self.cpus:
            rows = np.flatnonzero(self.pages.cpu == cpu)
            running[rows] = np.maximum.accumulate(ts[rows]) if rows.size else ts[rows]
        if np.all(self.pages.cpu[1:] >= self.pages.cpu[:-1]):
            # rows come CPU by CPU, each run sorted: a stable sort (timsort merges the
            # runs) keeps buffer order and puts the lower CPU first on ties
            self._order: I64 = np.argsort(running, kind="stable").astype(np.int64)
        else:
            self._order = np.lexsort((np.arange(ts.size), self.pages.cpu, running)).astype(np.int64)

    def _decode(self, td: TraceDir) -> DecodedPages:
        ps = self.header_page.page_size
        for cpu, data in td.raw.items():
            if len(data) % ps:
                raise TraceFormatError(f"{len(data)} bytes is not a whole number of {ps}-byte pages",
                                       len(data) - len(data) % ps, str(td.raw_paths.get(cpu, "")))
        counts = [len(td.raw[c]) // ps for c in self.cpus]
        blob = b"".join(td.raw[c] for c in self.cpus)
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
        order = self._order
        off, plen = pg.payload_offset[order], pg.payload_len[order]
        n = int(order.size)
        short = np.flatnonzero(plen < 8)
        if short.size:
            where, name = self._file_offset(int(off[short[0]]))
            raise TraceFormatError("record shorter than the 8-byte trace_entry", where, name)
        word0 = _scalar(buf, off, 4, np.dtype("<u4")).astype(np.uint32)   # type, flags, preempt
        ctype = (word0 & 0xFFFF).astype(np.uint16)
        pid = _scalar(buf, off + 4, 4, np.dtype("<i4"))
        cols: dict[str, npt.NDArray[np.generic] | pd.api.extensions.ExtensionArray | pd.Categorical] = {
            "ts": pg.ts[order].view(np.int64),
            "cpu": pg.cpu[order].astype(np.int16, copy=False),
            "pid": pid.astype(np.int32, copy=False),
        }
        upids, pid_code = _unique_inverse(pid)
        comms = [_comm_for(int(p), self.cmdlines) for p in upids.tolist()]
        cols["comm"] = _categorical(pid_code, comms)
        ids, type_code = _unique_inverse(ctype)
        names = [self.formats[i].name if i in self.formats else f"<id {i}>" for i in ids.tolist()]
        cols["event"] = _categorical(type_code, names)
        cols["common_flags"] = ((word0 >> 16) & 0xFF).astype(np.uint8)
        cols["common_preempt_count"] = (word0 >> 24).astype(np.uint8)

        parts: dict[str, list[_Part]] = {}
        addrs: dict[str, list[tuple[I64, npt.NDArray[np.uint64]]]] = {"func": [], "parent": []}
        for k, event_id in enumerate(ids.tolist()):
            fmt = self.formats.get(event_id)
            if fmt is None:
                continue
            rows = np.flatnonzero(type_code == k).astype(np.int64, copy=False)
            every = rows.size == n                  # one event type: no per-type copies
            t_off, t_plen = (off, plen) if every else (off[rows], plen[rows])
            for f in fmt.all_fields:
                if f.name in _DROPPED or f.name in ("common_flags", "common_preempt_count"):
                    continue
                values, valid = _decode_field(buf, t_off, t_plen, f)
                col = f"field_{f.name}" if f.name in RESERVED else f.name
                parts.setdefault(col, []).append(_Part(rows, values, valid))
                derived = _SYMBOLIZED.get(f.name)
                if derived and values.dtype == np.uint64:
                    ok = rows if valid is None else rows[valid]
                    hits = (values if valid is None else values[valid]).astype(np.uint64, copy=False)
                    addrs[derived].append((ok, hits))
        del off, plen, word0, ctype, type_code      # free them before the names are built
        for col, col_parts in parts.items():
            cols[col] = _assemble(n, col_parts)
        del parts
        if self.symbols is not None:
            for derived, found in addrs.items():
                if found:
                    cols[derived] = self._symbolize(n, found)
        df = pd.DataFrame(cols)
        df.attrs["lost_events"] = dict(self.lost_events)
        return df

    def _symbolize(self, n: int, found: list[tuple[I64, npt.NDArray[np.uint64]]]) -> pd.Categorical:
        assert self.symbols is not None
        rows = found[0][0] if len(found) == 1 else np.concatenate([r for r, _ in found])
        addr = found[0][1] if len(found) == 1 else np.concatenate([a for _, a in found])
        inverse, uniq = pd.factorize(addr.astype(np.uint64, copy=False))
        uniq = np.asarray(uniq, dtype=np.uint64)      # look up each distinct address once
        idx = self.symbols.index(uniq)
        hit = idx >= 0
        ucode = np.where(hit, self.symbols.code[np.where(hit, idx, 0)], -1).astype(np.int64)
        categories = list(self.symbols.names)
        if not hit.all():                 # %ps prints unknown addresses in hex
            miss = np.sort(uniq[~hit])
            ucode[~hit] = len(categories) + np.searchsorted(miss, uniq[~hit])
            categories += [hex(int(a)) for a in miss.tolist()]
        codes = np.full(n, -1, dtype=np.int64)
        codes[rows] = ucode[inverse]
        return _categorical(codes, categories)

    def __repr__(self) -> str:
        return (f"<Trace {str(self.path)!r}: {len(self)} events on CPUs {self.cpus}, "
                f"{len(self.formats)} formats, lost {self.lost_events}>")

    def _repr_html_(self) -> str:
        esc = html.escape
        ts = self.pages.ts
        span = f"{int(ts.min()) / 1e9:.6f} s … {int(ts.max()) / 1e9:.6f} s" if ts.size else "—"
        per_cpu = np.bincount(self.pages.cpu.astype(np.int64), minlength=max(self.cpus, default=-1) + 1)
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
