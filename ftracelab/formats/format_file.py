"""Parsers for tracefs format text: kernel/trace/trace_events.c f_show()
(``events/<system>/<event>/format``) and kernel/trace/ring_buffer.c
ring_buffer_print_page_header() (``events/header_page``), read the way
tools/lib/traceevent event-parse.c event_read_fields() does.

A format file looks like this (tabs before ``field:`` and between attributes)::

    name: funcgraph_entry
    ID: 11
    format:
    \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
    ...
    \tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;

    print fmt: "--> %ps (%d)", (void *)REC->func, REC->depth

Field declarations come in these shapes::

    unsigned long ip                  scalar
    unsigned long caller[8]           fixed array (array_len 8)
    char buf[]                        flexible array to the end of the record (array_len 0)
    __data_loc char[] filename        u32 (len << 16 | offset) into the record
    __rel_loc char[] name             the same, offset relative to the end of the field

Everything here is pure: text in, frozen dataclasses out. Malformed text
raises :class:`~ftracelab.errors.TraceFormatError` naming the character
offset in the text where parsing failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import TraceFormatError

__all__ = ["EventFormat", "FormatField", "HeaderPage", "parse_format", "parse_header_page"]

#: Sizes of the C scalar types that appear in format files, used only when an
#: array length is not a number (``char comm[TASK_COMM_LEN]``).
_C_SIZES = {
    "char": 1, "unsigned char": 1, "signed char": 1, "u8": 1, "s8": 1, "bool": 1, "_Bool": 1,
    "short": 2, "unsigned short": 2, "u16": 2, "s16": 2, "__u16": 2, "__s16": 2,
    "int": 4, "unsigned int": 4, "u32": 4, "s32": 4, "__u32": 4, "__s32": 4, "pid_t": 4,
    "long": 8, "unsigned long": 8, "u64": 8, "s64": 8, "__u64": 8, "__s64": 8,
    "long long": 8, "unsigned long long": 8, "size_t": 8, "void *": 8,
}

_FIELD_RE = re.compile(
    r"field:\s*(?P<decl>[^;]*);\s*offset:\s*(?P<offset>-?\d+);\s*size:\s*(?P<size>-?\d+);"
    r"(?:\s*signed:\s*(?P<signed>-?\d+);)?")
_DECL_RE = re.compile(r"^(?P<type>.*?)\s*(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<len>[^\]]*)\])?$")
_MAX_RECORD = 1 << 16      # a trace record is at most a sub-buffer; fields beyond are nonsense


@dataclass(frozen=True)
class FormatField:
    """One ``field:`` line of a format file.

    ``type`` is the C type as printed without the array suffix
    (``"unsigned long"``, ``"char"``, ``"const char *"``); for ``__data_loc``
    fields it is the element type (``"char"``). ``array_len`` is None for a
    scalar, N for ``name[N]`` and 0 for a flexible ``name[]``. ``data_loc`` /
    ``rel_loc`` mark dynamic arrays whose 4-byte slot holds
    ``(length << 16) | offset``.
    """

    type: str
    name: str
    offset: int
    size: int
    signed: bool
    array_len: int | None = None
    data_loc: bool = False
    rel_loc: bool = False

    @property
    def is_array(self) -> bool:
        return self.array_len is not None or self.data_loc or self.rel_loc

    @property
    def is_dynamic(self) -> bool:
        return self.data_loc or self.rel_loc

    @property
    def is_string(self) -> bool:
        """Arrays of char are strings (NUL-terminated within their bytes)."""
        base = self.type.replace("const ", "").replace("signed ", "").strip()
        return self.is_array and base in ("char", "unsigned char")

    @property
    def elem_size(self) -> int:
        """Bytes per element: the field size for scalars, size/len for arrays."""
        if self.is_dynamic or self.array_len == 0:
            base = self.type.replace("const ", "").strip()
            return _C_SIZES.get(base, 1)
        if self.array_len:
            return max(1, self.size // self.array_len)
        return self.size

    @property
    def is_common(self) -> bool:
        return self.name.startswith("common_")


@dataclass(frozen=True)
class EventFormat:
    """A parsed ``events/<system>/<event>/format`` file."""

    name: str
    id: int
    common_fields: tuple[FormatField, ...]
    fields: tuple[FormatField, ...]
    print_fmt: str
    system: str = ""

    @property
    def all_fields(self) -> tuple[FormatField, ...]:
        return self.common_fields + self.fields

    @property
    def fixed_size(self) -> int:
        """Bytes up to the end of the last fixed-size field (dynamic data may follow)."""
        return max((f.offset + f.size for f in self.all_fields), default=0)

    def field(self, name: str) -> FormatField:
        for f in self.all_fields:
            if f.name == name:
                return f
        raise KeyError(f"event {self.name!r} has no field {name!r}")


@dataclass(frozen=True)
class HeaderPage:
    """The sub-buffer header layout from ``events/header_page``.

    ``page_size`` = ``data_offset + data_size`` is the size of one sub-buffer
    as read from ``trace_pipe_raw`` (4096 on x86-64 with the default order).
    """

    timestamp_offset: int
    timestamp_size: int
    commit_offset: int
    commit_size: int
    overwrite_offset: int
    overwrite_size: int
    data_offset: int
    data_size: int

    @property
    def page_size(self) -> int:
        return self.data_offset + self.data_size

    @classmethod
    def default(cls) -> HeaderPage:
        """The x86-64 layout of Linux 6.12 with 4 KiB sub-buffers."""
        return cls(0, 8, 8, 8, 8, 1, 16, 4080)


def _parse_field(line: str, at: int, source: str) -> FormatField:
    m = _FIELD_RE.search(line)
    if m is None:
        raise TraceFormatError(f"malformed field line {line.strip()!r}", at, source)
    decl = m["decl"].strip()
    data_loc = rel_loc = False
    for prefix in ("__data_loc", "__rel_loc"):
        if decl.startswith(prefix + " "):
            data_loc, rel_loc = prefix == "__data_loc", prefix == "__rel_loc"
            decl = decl[len(prefix):].strip()
    array_len: int | None = None
    if data_loc or rel_loc:
        # "__data_loc char[] name": the element type carries the brackets
        dm = re.fullmatch(r"(?P<type>.*?)\s*\[[^\]]*\]\s*(?P<name>[A-Za-z_]\w*)", decl)
        if dm is None:
            raise TraceFormatError(f"malformed dynamic field {decl!r}", at + m.start("decl"), source)
        ctype, name = dm["type"].strip(), dm["name"]
    else:
        dm = _DECL_RE.match(decl)
        if dm is None or not dm["type"]:
            raise TraceFormatError(f"malformed field declaration {decl!r}", at + m.start("decl"), source)
        ctype, name = dm["type"].strip(), dm["name"]
        if dm["len"] is not None:
            text = dm["len"].strip()
            if text == "":
                array_len = 0
            elif text.isdigit():
                array_len = int(text)
            else:  # an unexpanded macro: derive the length from the size
                array_len = max(1, int(m["size"]) // _C_SIZES.get(ctype, 1))
    offset, size = int(m["offset"]), int(m["size"])
    if not (0 <= offset < _MAX_RECORD and 0 <= size < _MAX_RECORD):
        raise TraceFormatError(f"field {name!r} has offset {offset} / size {size} out of range",
                               at + m.start("offset"), source)
    if array_len is None and not (data_loc or rel_loc) and size == 0:
        raise TraceFormatError(f"scalar field {name!r} has size 0", at + m.start("size"), source)
    signed = m["signed"] is not None and int(m["signed"]) != 0
    return FormatField(ctype, name, offset, size, signed, array_len, data_loc, rel_loc)


def _lines(text: str) -> list[tuple[int, str]]:
    """(character offset, line) pairs."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, line.rstrip("\r\n")))
        pos += len(line)
    return out


def parse_format(text: str, *, system: str = "", source: str = "") -> EventFormat:
    """Parse the text of an ``events/<system>/<event>/format`` file.

    ``system`` is recorded as given (it is the directory name, not in the
    file). ``source`` names the file in error messages.
    """
    name: str | None = None
    event_id: int | None = None
    common: list[FormatField] = []
    fields: list[FormatField] = []
    print_fmt: str | None = None
    in_format = False
    for at, line in _lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("field:"):
            if not in_format:
                raise TraceFormatError("field line before 'format:'", at, source)
            f = _parse_field(line, at, source)
            (common if f.is_common and not fields else fields).append(f)
        elif line.startswith("name:"):
            name = line[5:].strip()
            if not name:
                raise TraceFormatError("empty event name", at, source)
        elif line.startswith("ID:"):
            value = line[3:].strip()
            if not value.isdigit() or int(value) > 0xFFFF:
                raise TraceFormatError(f"bad event ID {value!r}", at + line.index(value, 3), source)
            event_id = int(value)
        elif stripped == "format:":
            in_format = True
        elif line.startswith("print fmt:"):
            print_fmt = line[len("print fmt:"):].strip()
        else:
            raise TraceFormatError(f"unexpected line {stripped[:60]!r}", at, source)
    if name is None:
        raise TraceFormatError("no 'name:' line", len(text), source)
    if event_id is None:
        raise TraceFormatError("no 'ID:' line", len(text), source)
    if not in_format:
        raise TraceFormatError("no 'format:' line", len(text), source)
    return EventFormat(name, event_id, tuple(common), tuple(fields), print_fmt or "", system)


def parse_header_page(text: str, *, source: str = "") -> HeaderPage:
    """Parse ``events/header_page`` (ring_buffer_print_page_header())."""
    found: dict[str, tuple[int, FormatField]] = {}
    for at, line in _lines(text):
        if line.strip():
            f = _parse_field(line, at, source)
            found[f.name] = (at, f)
    for need in ("timestamp", "commit", "data"):
        if need not in found:
            raise TraceFormatError(f"header_page has no {need!r} field", len(text), source)
    (ts_at, ts), (commit_at, commit), (data_at, data) = (found[k] for k in ("timestamp", "commit", "data"))
    over = found.get("overwrite", (0, FormatField("int", "overwrite", commit.offset, 1, True)))[1]
    if ts.size != 8:
        raise TraceFormatError(f"unsupported timestamp size {ts.size}", ts_at, source)
    if commit.size != 8:
        raise TraceFormatError(f"commit size {commit.size}: only 64-bit pages are supported",
                               commit_at, source)
    if data.offset % 4 or data.size % 4 or not 0 < data.size < (1 << 27) \
            or data.offset < commit.offset + commit.size:
        raise TraceFormatError(f"bad data area: offset {data.offset}, size {data.size}", data_at, source)
    return HeaderPage(ts.offset, ts.size, commit.offset, commit.size, over.offset, over.size,
                      data.offset, data.size)
