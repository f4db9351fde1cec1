"""Sub-buffer ("page") decoding: kernel/trace/ring_buffer.c rb_event_length(),
rb_update_read_stamp(), rb_fix_abs_ts(), check_buffer() and ring_buffer_read_page()'s
lost-event marks, read the way tools/lib/traceevent kbuffer-parse.c
kbuffer_load_subbuffer() / update_pointers() do, vectorised over many pages.

Only little-endian 64-bit pages (x86-64) are handled: a 16-byte header
(``u64 time_stamp; local_t commit``), then the events, each starting with a
32-bit word ``type_len:5 | time_delta:27`` (type_len in the low bits)::

    type_len 0       data; array[0] = payload length + 4 (it counts itself); payload at +8
    type_len 1..28   data; payload = type_len * 4 bytes at +4
    type_len 29      PADDING: time_delta 0 = null padding, the page ends here;
                     otherwise a discarded event or end-of-page filler of array[0] + 4 bytes
    type_len 30      TIME_EXTEND: ts += (array[0] << 27) + time_delta (8 bytes)
    type_len 31      TIME_STAMP: absolute low 59 bits (array[0] << 27 | time_delta),
                     upper bits taken from the running time (rb_fix_abs_ts())

``commit`` holds the committed byte count (low 27 bits, as kbuffer masks it)
and the flags RB_MISSED_EVENTS (1<<31) and RB_MISSED_STORED (1<<30); with
both set, the lost count is a long stored right after the data.

Timestamps follow check_buffer(): a PADDING with time_delta == 1 is a plain
discard and does not move the clock; any other non-null PADDING adds its
delta. :func:`decode_pages` reads pages holding only small data events of one
length (a function tracer's, mostly) as 2-D arrays, and walks the others in
lock-step (one Python iteration per event *position*, numpy across all
pages), so there is no Python loop per event. :func:`encode_page` is the writer side
(rb_calculate_event_length(), rb_update_event(), rb_add_time_stamp(),
rb_event_discard(), rb_reset_tail()), used to test the decoder and to build
pages by hand.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import TraceFormatError

__all__ = ["DecodedPages", "RbEvent", "decode_pages", "encode_page", "rb_event_length"]

RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
COMMIT_MASK = (1 << 27) - 1         # kbuffer-parse.c COMMIT_MASK
TYPE_DATA_MAX = 28
TYPE_PADDING = 29
TYPE_TIME_EXTEND = 30
TYPE_TIME_STAMP = 31
TS_SHIFT = 27
TS_MASK = (1 << TS_SHIFT) - 1
TS_MSB = 0xF8 << 56
ABS_TS_MASK = (1 << 64) - 1 - TS_MSB
RB_MAX_SMALL_DATA = 4 * TYPE_DATA_MAX
_SCATTER_BLOCK = 1 << 19            # events put in page order at a time (see decode_pages)
_UNIFORM_BLOCK = 1024               # pages of one event length decoded at a time

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DecodedPages:
    """Events found in a run of sub-buffers.

    Per event (ordered by page, then position in the page): ``ts`` (uint64
    ns, the clock value), ``payload_offset`` (int64 index into ``buffer``)
    and ``payload_len`` (int32 bytes: the ring-buffer length, rounded up to
    4). Per page: ``page_ts``, ``page_commit`` (data bytes), ``page_cpu``,
    ``page_events`` (events found) and ``lost`` (int64: 0 none, -1 lost but
    count unknown, else the count the kernel stored). The per-event ``page``
    and ``cpu`` are computed from these when asked for.
    """

    buffer: npt.NDArray[np.uint8]
    page_size: int
    data_offset: int
    ts: U64
    payload_offset: I64
    payload_len: npt.NDArray[np.int32]
    page_ts: U64
    page_commit: I64
    page_cpu: npt.NDArray[np.int16]
    page_events: I64
    lost: I64

    def __len__(self) -> int:
        return int(self.ts.size)

    @property
    def page(self) -> I64:
        """Each event's page index (int64)."""
        return np.repeat(np.arange(self.page_events.size, dtype=np.int64), self.page_events)

    @property
    def cpu(self) -> npt.NDArray[np.int16]:
        """Each event's CPU (int16)."""
        return np.repeat(self.page_cpu, self.page_events)

    def payload(self, i: int) -> bytes:
        """The payload bytes of event ``i`` (debugging helper; not vectorised)."""
        start = int(self.payload_offset[i])
        return self.buffer[start:start + int(self.payload_len[i])].tobytes()

    def lost_by_cpu(self) -> dict[int, int]:
        """Lost events per CPU: the sum of known counts; -1 if any page says "unknown"."""
        out: dict[int, int] = {}
        for cpu in np.unique(self.page_cpu).tolist():
            lost = self.lost[self.page_cpu == cpu]
            out[int(cpu)] = -1 if bool((lost < 0).any()) else int(lost.sum())
        return out


def _as_u8(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(f"page data must be uint8, not {data.dtype}")
        return np.ascontiguousarray(data.reshape(-1))
    return np.frombuffer(data, dtype=np.uint8)


def _fail(what: str, offset: int, source: str) -> TraceFormatError:
    return TraceFormatError(what, offset, source)


def decode_pages(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8], page_size: int = 4096,
                 *, data_offset: int = 16, cpu: int | Sequence[int] | npt.NDArray[np.integer] = 0,
                 source: str = "") -> DecodedPages:
    """Decode concatenated sub-buffers of ``page_size`` bytes each.

    ``cpu`` is one CPU number for all pages or one per page. ``source`` names
    the input in errors. Raises :class:`TraceFormatError` (naming the byte
    offset into ``data``) for a truncated page, a commit beyond the page, or
    an event running past the commit.
    """
    if page_size % 4 or data_offset % 4 or not 16 <= data_offset < page_size:
        raise ValueError(f"bad page layout: page_size {page_size}, data_offset {data_offset}")
    buf = _as_u8(data)
    if buf.size % page_size:
        raise _fail(f"{buf.size} bytes is not a whole number of {page_size}-byte pages",
                    buf.size - buf.size % page_size, source)
    npages = buf.size // page_size
    data_size = page_size - data_offset
    page_cpu = np.broadcast_to(np.asarray(cpu, dtype=np.int16), (npages,)).copy()
    pages = buf.reshape(npages, page_size)
    words = pages.view("<u4")                       # events are 4-byte aligned
    nwords = page_size // 4
    page_ts = np.ascontiguousarray(pages[:, 0:8]).view("<u8").reshape(npages).astype(np.uint64)
    commit = np.ascontiguousarray(pages[:, 8:16]).view("<u8").reshape(npages).astype(np.uint64)
    size = (commit & np.uint64(COMMIT_MASK)).astype(np.int64)
    base = np.arange(npages, dtype=np.int64) * page_size
    bad = np.flatnonzero((size > data_size) | (size % 4 != 0))
    if bad.size:
        p = int(bad[0])
        raise _fail(f"page {p}: commit {int(size[p])} is not a 4-aligned count within the "
                    f"{data_size}-byte data area", int(base[p]) + 8, source)

    missed = (commit & np.uint64(RB_MISSED_EVENTS)) != 0
    stored = missed & ((commit & np.uint64(RB_MISSED_STORED)) != 0)
    lost = np.where(missed, -1, 0).astype(np.int64)
    if stored.any():
        sp = np.flatnonzero(stored)
        if (size[sp] + 8 > data_size).any():
            p = int(sp[size[sp] + 8 > data_size][0])
            raise _fail(f"page {p}: lost count stored past the end of the page",
                        int(base[p]) + 8, source)
        wi = (data_offset + size[sp]) // 4
        lo, hi = words[sp, wi].astype(np.uint64), words[sp, wi + 1].astype(np.uint64)
        lost[sp] = (lo | (hi << np.uint64(32))).view(np.int64)

    # Lock-step walk: one iteration per event position, all live pages at once. The
    # state of a live page is the word index of its next event header (``wi``), where
    # its commit ends (``end``), its clock and how many events it has given so far.
    # Most positions hold a small data event (type_len 1..28: length from the header
    # word alone); only the others (big data, padding, time extend/stamp) take the
    # general path, on just their rows.
    flat = words.reshape(-1)
    uni_pages, uni_count = _uniform_pages(flat, nwords, data_offset // 4, size)
    walk = size > 0
    walk[uni_pages] = False
    page_events = np.zeros(npages, dtype=np.int64)
    page_events[uni_pages] = uni_count
    act = np.flatnonzero(walk).astype(np.int32)
    wi = act.astype(np.int64) * nwords + data_offset // 4
    end = wi + size[act] // 4
    ts = page_ts[act]
    nrec = np.zeros(act.size, dtype=np.int32)
    # each event's page, rank in its page, clock and header word (narrow types: this
    # holds every event until the end)
    got: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], U64, I64]] = []
    shift = np.uint64(TS_SHIFT)

    def fail(k: int, tl: int, nbytes: int) -> TraceFormatError:
        p = int(act[k])
        pos = int(wi[k]) * 4 - p * page_size - data_offset
        return _fail(f"page {p}: event type_len {tl} of {nbytes} bytes at data offset {pos} runs "
                     f"past the commit ({int(size[p])} bytes)", p * page_size + data_offset + pos, source)

    while act.size:
        w = flat[wi]
        tl = (w & np.uint32(31)).astype(np.int64)
        small = (tl - 1).astype(np.uint64) < TYPE_DATA_MAX       # 1..28; 0 wraps around
        if small.all():                    # every live page is at a small data event
            nxt = wi + 1 + tl
            if (nxt > end).any():
                k = int(np.flatnonzero(nxt > end)[0])
                raise fail(k, int(tl[k]), int(tl[k]) * 4 + 4)
            ts = ts + (w >> np.uint32(5))
            got.append((act, nrec, ts, wi))
            nrec = nrec + 1
            alive = nxt < end
        else:
            special = np.flatnonzero(~small)
            st = tl[special]
            a0 = flat[np.minimum(wi[special] + 1, flat.size - 1)].astype(np.int64)
            sd = (w[special] >> np.uint32(5)).astype(np.uint64)
            null = (st == TYPE_PADDING) & (sd == 0)
            sp_total = np.where((st == 0) | (st == TYPE_PADDING), a0 + 4, 8)
            total = tl * 4 + 4
            total[special] = sp_total
            nxt = wi + total // 4
            past = nxt > end
            sp_room = (end[special] - wi[special]) * 4
            past[special] = ~null & ((sp_total > sp_room) | (sp_room < 8) | ((st == 0) & (a0 < 4))
                                     | (sp_total % 4 != 0))
            if past.any():
                k = int(np.flatnonzero(past)[0])
                raise fail(k, int(tl[k]), int(total[k]))
            ts = ts.copy()
            ext = st == TYPE_TIME_EXTEND
            ts[special[ext]] += (a0[ext].astype(np.uint64) << shift) + sd[ext]
            stamp = st == TYPE_TIME_STAMP
            if stamp.any():
                rows = special[stamp]
                ts[rows] = _fix_abs_ts((a0[stamp].astype(np.uint64) << shift) | sd[stamp], ts[rows])
            pad = (st == TYPE_PADDING) & ~null & (sd != 1)
            ts[special[pad]] += sd[pad]
            record = small.copy()
            record[special[st == 0]] = True
            if record.any():
                ts[record] += (w[record] >> np.uint32(5)).astype(np.uint64)
                got.append((act[record], nrec[record], ts[record], wi[record]))
                nrec = nrec + record.astype(np.int32)
            alive = nxt < end
            alive[special[null]] = False
        wi = nxt
        if not alive.all():
            done = ~alive
            page_events[act[done]] = nrec[done]
            act, wi, end, ts, nrec = act[alive], wi[alive], end[alive], ts[alive], nrec[alive]

    start = np.zeros(npages, dtype=np.int64)
    np.cumsum(page_events[:-1], out=start[1:])
    n = int(page_events.sum())
    ev_ts = np.empty(n, dtype=np.uint64)
    off = np.empty(n, dtype=np.int64)           # header word index, then payload offset
    # Into page order, a block of pages at a time: the writes of one block stay in cache.
    nblocks = max(1, n // _SCATTER_BLOCK)
    page_cuts = np.searchsorted(np.cumsum(page_events), np.linspace(0, n, nblocks + 1))
    page_cuts[0], page_cuts[-1] = 0, npages
    cuts = [np.searchsorted(g[0], page_cuts).tolist() for g in got]
    for b in range(nblocks):
        for (dp, rank, t, hw), c in zip(got, cuts, strict=True):
            lo, hi = c[b], c[b + 1]
            if lo < hi:
                dest = start[dp[lo:hi]] + rank[lo:hi]
                ev_ts[dest], off[dest] = t[lo:hi], hw[lo:hi]
    del got
    if uni_pages.size:
        _decode_uniform(flat, nwords, data_offset // 4, uni_pages, uni_count, page_ts, start, ev_ts, off)
    # payload offset and length from each data event's header, read in page order
    type_len = flat[off] & np.uint32(31)
    length = (type_len * 4).astype(np.int32)
    big = np.flatnonzero(type_len == 0)        # type_len 0: the length is in array[0]
    length[big] = flat[off[big] + 1].astype(np.int32) - 4
    off += 1
    off[big] += 1
    off *= 4
    return DecodedPages(buf, page_size, data_offset, ev_ts, off, length, page_ts, size, page_cpu, page_events,
                        lost)


def _uniform_pages(flat: npt.NDArray[np.uint32], nwords: int, first: int, size: I64,
                   ) -> tuple[I64, I64]:
    """Pages holding only small data events of one length (a function tracer's pages,
    mostly), decoded as 2-D arrays by :func:`_decode_uniform` with no walk: the pages
    (ascending) and their event counts. Checked a block of pages at a time."""
    head = flat[np.arange(size.size, dtype=np.int64) * nwords + first]
    stride = (head & np.uint32(31)).astype(np.int64) + 1          # words per event
    cand = np.flatnonzero((size > 0) & (stride >= 2) & (stride <= TYPE_DATA_MAX + 1)
                          & (size % (stride * 4) == 0))
    ok = np.zeros(cand.size, dtype=bool)
    for lo in range(0, cand.size, _UNIFORM_BLOCK):
        pg = cand[lo:lo + _UNIFORM_BLOCK]
        hw, inside = _event_words(pg, size[pg] // (4 * stride[pg]), stride[pg], nwords, first)
        same = (flat[hw] & np.uint32(31)) == (stride[pg] - 1)[:, None]
        ok[lo:lo + pg.size] = (same | ~inside).all(axis=1)
    pages = cand[ok]
    return pages, size[pages] // (4 * stride[pages])


def _event_words(pg: I64, count: I64, stride: I64, nwords: int, first: int,
                 ) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Header word indices of the events of uniform pages, (pages, most events), and
    which are real (the rest point at each page's first header)."""
    kmax = int(count.max())
    j = np.arange(kmax, dtype=np.int64)
    inside = j < count[:, None]
    hw = (pg * nwords + first)[:, None] + np.where(inside, j * stride[:, None], 0)
    return hw, inside


def _decode_uniform(flat: npt.NDArray[np.uint32], nwords: int, first: int, pages: I64, count: I64,
                    page_ts: U64, start: I64, ev_ts: U64, hdr: I64) -> None:
    """Fill the clocks and header words of the events of the uniform ``pages`` in at
    their places (``start``: each page's first event), a block of pages at a time."""
    for lo in range(0, pages.size, _UNIFORM_BLOCK):
        pg, cnt = pages[lo:lo + _UNIFORM_BLOCK], count[lo:lo + _UNIFORM_BLOCK]
        stride = (flat[pg * nwords + first] & np.uint32(31)).astype(np.int64) + 1
        hw, inside = _event_words(pg, cnt, stride, nwords, first)
        ts = page_ts[pg, None] + np.cumsum((flat[hw] >> np.uint32(5)).astype(np.uint64), axis=1)
        a, b = int(start[pg[0]]), int(start[pg[-1]] + cnt[-1])
        if b - a == int(cnt.sum()):       # pages with no others between them: one slice
            ev_ts[a:b], hdr[a:b] = ts[inside], hw[inside]
        else:
            dest = np.repeat(start[pg] - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
            ev_ts[dest], hdr[dest] = ts[inside], hw[inside]


def _fix_abs_ts(absolute: U64, save_ts: U64) -> U64:
    """rb_fix_abs_ts(): restore the 5 MSBs a TIME_STAMP event cannot hold."""
    msb = save_ts & np.uint64(TS_MSB)
    has = msb != 0
    out = absolute | msb
    wrap = has & (out < save_ts)
    out[wrap] += np.uint64(1 << 59)
    return out


# ---------------------------------------------------------------------------
# The writer side, for tests and hand-made pages.


@dataclass(frozen=True)
class RbEvent:
    """One event to write: its absolute clock value, payload, and how it is written.

    ``discard`` turns it into a discarded PADDING (rb_event_discard());
    ``absolute`` precedes it with a TIME_STAMP instead of a delta (the
    buffer's absolute-timestamp mode).
    """

    ts: int
    payload: bytes = b""
    discard: bool = False
    absolute: bool = False


def rb_event_length(payload_len: int) -> int:
    """rb_calculate_event_length() on x86-64 (RB_ARCH_ALIGNMENT 4): bytes on the page."""
    length = max(payload_len, 1)
    if length > RB_MAX_SMALL_DATA:
        length += 4
    length = (length + 4 + 3) & ~3
    return 16 if length == 12 else length


def encode_page(events: Sequence[RbEvent], *, page_ts: int | None = None, data_size: int = 4080,
                lost: int | None = None, tail_padding: bool = False) -> bytes:
    """Write one sub-buffer the way the kernel's writer does; returns ``16 + data_size`` bytes.

    Rules: a delta of 2**27 ns or more gets a TIME_EXTEND first (the event then
    has delta 0); ``absolute`` events get a TIME_STAMP; payloads up to 112
    bytes use type_len, longer ones array[0]. A discarded event keeps its
    delta, forced to at least 1 (rb_event_discard()); since a reader skips a
    delta of exactly 1, the next delta is then measured from the event before.
    ``page_ts`` defaults to the first event's clock. ``tail_padding`` writes
    rb_reset_tail()'s end-of-page filler inside the commit. ``lost`` marks
    RB_MISSED_EVENTS; a count >= 0 is stored after the data when 8 bytes
    remain (RB_MISSED_STORED), -1 means "unknown".
    """
    running = (events[0].ts if events else 0) if page_ts is None else page_ts
    start = running
    out = bytearray()

    def word(type_len: int, delta: int) -> bytes:
        return struct.pack("<I", type_len | (delta << 5))

    for ev in events:
        if ev.absolute:
            value = ev.ts & ABS_TS_MASK
            out += word(TYPE_TIME_STAMP, value & TS_MASK) + struct.pack("<I", value >> TS_SHIFT)
            running, delta = ev.ts, 0
        else:
            delta = ev.ts - running
            if delta < 0 or delta >= 1 << 59:
                raise ValueError(f"event at {ev.ts} is not within 2**59 ns after {running}")
            if delta > TS_MASK:
                out += word(TYPE_TIME_EXTEND, delta & TS_MASK) + struct.pack("<I", delta >> TS_SHIFT)
                running, delta = ev.ts, 0
        total = rb_event_length(len(ev.payload))
        body = total - 4
        if ev.discard:
            forced = max(delta, 1)
            out += word(TYPE_PADDING, forced) + struct.pack("<I", body) + bytes(body - 4)
            if forced != 1:     # a reader skips exactly 1 (check_buffer())
                running = ev.ts
            continue
        if body > RB_MAX_SMALL_DATA:
            out += word(0, delta) + struct.pack("<I", body) + ev.payload.ljust(body - 4, b"\0")
        else:
            out += word(body // 4, delta) + ev.payload.ljust(body, b"\0")
        running = ev.ts
    if len(out) > data_size:
        raise ValueError(f"{len(out)} bytes of events do not fit a {data_size}-byte page")
    commit = len(out)
    if tail_padding and data_size - commit >= 8:
        rest = data_size - commit
        out += word(TYPE_PADDING, 1) + struct.pack("<I", rest - 4) + bytes(rest - 8)
        commit = data_size
    flags = 0
    if lost is not None:
        flags |= RB_MISSED_EVENTS
        if lost >= 0 and data_size - commit >= 8:
            out = out[:commit] + struct.pack("<q", lost)
            flags |= RB_MISSED_STORED
    head = struct.pack("<QQ", start, commit | flags)
    return head + bytes(out).ljust(data_size, b"\0")
