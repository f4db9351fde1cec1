"""Event fields decoded from records, vectorised: tools/lib/traceevent
event-parse.c tep_read_number() and the field printers of tep_print_field(),
driven by the format files (:mod:`ftracelab.formats.format_file`).

Every field is a numpy gather over all records of one event type
(``buffer[payload_offset + field_offset]`` viewed as the field's integer
type), never a Python loop per event. Variable-length data (``char buf[]``,
``__data_loc``) is gathered per distinct length. :func:`assemble` joins the
per-type parts of a column (see :meth:`ftracelab.analysis.events.Trace.df_events`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..formats.format_file import FormatField

__all__ = ["Part", "assemble", "decode_field", "field_dtype", "scalar"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Obj = npt.NDArray[np.object_]


@dataclass
class Part:
    """One event type's values for one column: at frame ``rows`` (None: every row,
    in order), with ``valid`` (None: all valid) saying which records hold the field."""

    rows: I64 | None
    values: npt.NDArray[np.generic]
    valid: npt.NDArray[np.bool_] | None = None

    @property
    def at(self) -> I64 | slice:
        return slice(None) if self.rows is None else self.rows


def _gather(buf: U8, starts: I64, width: int) -> U8:
    """(n, width) bytes at ``starts``; indices past the buffer read its last byte (masked later)."""
    idx = starts[:, None] + np.arange(width, dtype=np.int64)
    out: U8 = buf[np.minimum(idx, buf.size - 1)]
    return out


def scalar(buf: U8, starts: I64, size: int, dtype: np.dtype[np.generic], *,
           in_bounds: bool = False) -> npt.NDArray[np.generic]:
    """One little-endian integer of ``size`` (1, 2, 4 or 8) bytes at each start: a
    single gather from a view of the buffer with a one-byte stride, so any alignment
    reads in one pass with no (n, size) index matrix. Starts past the end read the
    buffer's last whole value (the caller masks them); ``in_bounds`` says the caller
    knows there are none."""
    limit = buf.size - size
    if limit < 0:
        return np.zeros(starts.size, dtype=dtype)
    if not in_bounds and starts.size and (int(starts.max()) > limit or int(starts.min()) < 0):
        starts = np.clip(starts, 0, limit)
    words: npt.NDArray[np.generic] = np.ndarray((limit + 1,), dtype=dtype, buffer=buf, strides=(1,))
    got: npt.NDArray[np.generic] = words[starts]   # (np.take would copy the whole view first)
    return got


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


def decode_field(buf: U8, off: I64, plen: I64, f: FormatField, *, plen_min: int = 0
                 ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
    """Values (and validity, None = all valid) of field ``f`` for records at ``off`` of
    ``plen`` bytes, records that lie inside ``buf``. ``plen_min``, a lower bound of
    ``plen``, spares the checks when every record is long enough for ``f``."""
    start = off + f.offset
    dtype = _int_dtype(f, f.size)
    if dtype is not None and not f.is_dynamic and f.array_len is None and f.offset + f.size <= plen_min:
        return scalar(buf, start, f.size, dtype, in_bounds=True), None
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
    values: npt.NDArray[np.generic]
    if dtype is None:                     # odd-sized scalar: raw bytes, gathered only where present
        values = np.full(off.size, None, dtype=object)
        block = _gather(buf, start[valid], f.size)
        values[valid] = np.ascontiguousarray(block).view(f"V{f.size}").reshape(-1).astype(object)
    else:
        values = scalar(buf, start, f.size, dtype)
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


def assemble(n: int, parts: list[Part]) -> npt.NDArray[np.generic] | pd.api.extensions.ExtensionArray:
    """One column from its per-type parts: plain numpy when every row has a value of one
    integer type, a pandas nullable integer array when some rows lack it, else object."""
    dtype = _common_int(p.values.dtype for p in parts)
    covered = sum(p.values.size for p in parts) == n and all(p.valid is None for p in parts)
    if dtype is not None and covered and len(parts) == 1 and parts[0].values.dtype == dtype:
        return parts[0].values            # one event type on every row, rows in order
    if dtype is not None:
        values = np.zeros(n, dtype=dtype)
        for p in parts:
            values[p.at] = p.values
        if covered:
            return values
        missing = np.ones(n, dtype=bool)
        for p in parts:
            missing[p.at] = False if p.valid is None else ~p.valid
        return pd.arrays.IntegerArray(values, missing)
    out = np.full(n, None, dtype=object)
    for p in parts:
        vals = p.values.astype(object)
        if p.valid is not None:
            vals[~p.valid] = None
        out[p.at] = vals
    return out


def field_dtype(f: FormatField) -> np.dtype[np.generic]:
    """The dtype :func:`decode_field` gives ``f``'s values."""
    if f.is_dynamic or f.array_len is not None:
        return np.dtype(object)
    return _int_dtype(f, f.size) or np.dtype(object)
