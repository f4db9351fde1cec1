"""A tracefs directory read like trace-cmd lib/trace-cmd/trace-input.c tracecmd_read_headers():
``events/header_page``, the ``events/*/*/format`` files and the per-CPU
``trace_pipe_raw`` pages, plus the tables printed by kernel/kallsyms.c
s_show() (``/proc/kallsyms``) and kernel/trace/trace.c saved_cmdlines_show()
(``saved_cmdlines``).

Layout read (all but header_page optional)::

    <dir>/events/header_page
    <dir>/events/<system>/<event>/format        any depth under events/
    <dir>/per_cpu/cpuN/trace_pipe_raw           raw sub-buffers, may be absent or empty
    <dir>/kallsyms[.txt][.gz]                   /proc/kallsyms text
    <dir>/saved_cmdlines[.txt]                  "pid comm" lines

This module only reads and parses; :mod:`ftracelab.analysis.events` turns
the result into a :class:`~ftracelab.analysis.events.Trace`.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import TraceFormatError
from .format_file import EventFormat, HeaderPage, parse_format, parse_header_page

__all__ = ["Symbols", "TraceDir", "parse_kallsyms", "parse_saved_cmdlines", "read_tracedir"]

_KALLSYMS_NAMES = ("kallsyms", "kallsyms.gz", "kallsyms.txt", "kallsyms.txt.gz")
_CMDLINES_NAMES = ("saved_cmdlines", "saved_cmdlines.txt")
_RAW_NAMES = ("trace_pipe_raw", "trace_pipe_raw.bin")
_CPU_DIR = re.compile(r"cpu(\d+)")
_SECTION_BOUND = re.compile(r"__\w+_text_(start|end)$")
_MAX_FILE = 1 << 32                   # refuse to slurp anything larger than 4 GiB


@dataclass(frozen=True)
class Symbols:
    """A kallsyms table for vectorised address → name lookup (%ps: the name only).

    ``addr`` is sorted and unique (uint64); at an address with several names
    the first one listed wins, as kallsyms get_symbol_pos() picks the first
    alias. ``code[i]`` indexes ``names`` (unique names) for ``addr[i]``.
    Absolute symbols (type ``a``/``A``, the per-CPU offsets) are left out.
    ``bounds`` keeps the section boundaries (``__irqentry_text_start`` ...),
    which are usually aliases of a function.
    """

    addr: npt.NDArray[np.uint64]
    code: npt.NDArray[np.int64]
    names: tuple[str, ...]
    bounds: Mapping[str, int] = field(default_factory=dict)

    def section(self, name: str) -> tuple[int, int] | None:
        """``[__<name>_text_start, __<name>_text_end)``, e.g. ``section("irqentry")``."""
        start, end = self.bounds.get(f"__{name}_text_start"), self.bounds.get(f"__{name}_text_end")
        return None if start is None or end is None else (start, end)

    def __len__(self) -> int:
        return int(self.addr.size)

    def index(self, addrs: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """For each address, the index of the symbol containing it, or -1 below the first."""
        a = np.asarray(addrs, dtype=np.uint64)
        return (np.searchsorted(self.addr, a, side="right") - 1).astype(np.int64)

    def lookup(self, addrs: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """Names for addresses (object array of str); ``0x…`` hex for unknown ones."""
        a = np.asarray(addrs, dtype=np.uint64)
        idx = self.index(a)
        names = np.asarray(self.names, dtype=object)
        out = np.empty(a.shape, dtype=object)
        hit = idx >= 0
        out[hit] = names[self.code[idx[hit]]]
        if not hit.all():     # one string per distinct unknown address, not per event
            miss, inverse = np.unique(a[~hit], return_inverse=True)
            out[~hit] = np.array([hex(int(v)) for v in miss], dtype=object)[inverse]
        return out


@dataclass(frozen=True)
class TraceDir:
    """What a trace directory holds, parsed but not decoded."""

    path: Path
    header_page: HeaderPage
    formats: Mapping[int, EventFormat]
    raw: Mapping[int, bytes | memoryview]          # cpu -> concatenated sub-buffers
    raw_paths: Mapping[int, Path] = field(default_factory=dict)
    symbols: Symbols | None = None
    cmdlines: Mapping[int, str] = field(default_factory=dict)
    #: every CPU's ``raw``, in ascending CPU order, in one buffer (``raw`` then
    #: views it): what :class:`~ftracelab.analysis.events.Trace` decodes, no copy
    raw_blob: npt.NDArray[np.uint8] | None = None


def _read_text(path: Path) -> str:
    data = _read_bytes(path)
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise TraceFormatError(f"bad gzip data ({e})", 0, str(path)) from None
    return data.decode("utf-8", errors="replace")


def _open(path: Path) -> int:
    """Open without blocking: trace_pipe_raw on a live tracefs would wait for data."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))


def _read_rest(fd: int, path: Path, total: int = 0) -> list[bytes]:
    """The chunks left in ``fd`` (``total`` bytes read before them)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        total += len(chunk)
        if total > _MAX_FILE:
            raise TraceFormatError("file larger than 4 GiB", total, str(path))
        chunks.append(chunk)
    return chunks


def _read_bytes(path: Path) -> bytes:
    fd = _open(path)
    try:
        return b"".join(_read_rest(fd, path))
    finally:
        os.close(fd)


def _read_raw(paths: Mapping[int, Path]) -> tuple[npt.NDArray[np.uint8], dict[int, memoryview]]:
    """The files, CPU by CPU, in one buffer (and a view of each). A regular file is
    read straight into its place (its size is known); a live tracefs stream, whose
    size is not, is read in chunks and copied in."""
    fds = {cpu: _open(paths[cpu]) for cpu in sorted(paths)}
    try:
        sizes = {cpu: os.fstat(fd).st_size if stat.S_ISREG(os.fstat(fd).st_mode) else 0
                 for cpu, fd in fds.items()}
        for cpu, size in sizes.items():
            if size > _MAX_FILE:
                raise TraceFormatError("file larger than 4 GiB", size, str(paths[cpu]))
        streams = {cpu: b"".join(_read_rest(fd, paths[cpu])) for cpu, fd in fds.items() if not sizes[cpu]}
        blob = np.empty(sum(sizes.values()) + sum(len(b) for b in streams.values()), dtype=np.uint8)
        views: dict[int, memoryview] = {}
        whole = memoryview(blob.data)
        at = 0
        for cpu, fd in fds.items():
            if cpu in streams:
                data = streams.pop(cpu)
                blob[at:at + len(data)] = np.frombuffer(data, dtype=np.uint8)
                n = len(data)
            else:
                n = _read_into(fd, whole[at:at + sizes[cpu]])
                if n < sizes[cpu]:                 # the file shrank while being read
                    raise TraceFormatError(f"file ended at {n} of its {sizes[cpu]} bytes", n,
                                           str(paths[cpu]))
            views[cpu] = whole[at:at + n]
            at += n
        return blob, views
    finally:
        for fd in fds.values():
            os.close(fd)


def _read_into(fd: int, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = os.readv(fd, [view[got:]])
        if not n:
            break
        got += n
    return got


def parse_kallsyms(text: str, *, source: str = "") -> Symbols:
    """Parse ``/proc/kallsyms`` text: ``<hex addr> <type> <name>[\\t[module]]`` per line."""
    addrs: list[int] = []
    names: list[str] = []
    bounds: dict[str, int] = {}
    pos = 0
    for line in text.split("\n"):
        parts = line.split()
        if parts:
            if len(parts) < 3 or len(parts[1]) != 1:
                raise TraceFormatError(f"malformed kallsyms line {line[:60]!r}", pos, source)
            try:
                value = int(parts[0], 16)
            except ValueError:
                raise TraceFormatError(f"bad kallsyms address {parts[0][:20]!r}", pos, source) from None
            if value >> 64:
                raise TraceFormatError(f"kallsyms address {parts[0][:20]!r} exceeds 64 bits", pos, source)
            if parts[1] not in "aA":
                addrs.append(value)
                names.append(parts[2])
                if _SECTION_BOUND.match(parts[2]):
                    bounds[parts[2]] = value
        pos += len(line) + 1
    addr = np.array(addrs, dtype=np.uint64)
    order = np.argsort(addr, kind="stable")
    addr = addr[order]
    uniq, first = np.unique(addr, return_index=True)      # first alias in file order
    sym_names = np.array(names, dtype=object)[order][first]
    cats, code = np.unique(sym_names.astype(str), return_inverse=True)
    return Symbols(uniq.astype(np.uint64), code.astype(np.int64), tuple(str(c) for c in cats), bounds)


def parse_saved_cmdlines(text: str, *, source: str = "") -> dict[int, str]:
    """Parse ``saved_cmdlines``: ``"%d %s"`` per line (the comm may contain spaces)."""
    out: dict[int, str] = {}
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            pid, _, comm = line.partition(" ")
            if not pid.isdigit():
                raise TraceFormatError(f"malformed saved_cmdlines line {line[:60]!r}", pos, source)
            out[int(pid)] = comm
        pos += len(line) + 1
    return out


def _find(dirpath: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (dirpath / name).is_file():
            return dirpath / name
    return None


def _read_formats(events_dirs: Iterable[Path]) -> dict[int, EventFormat]:
    formats: dict[int, EventFormat] = {}
    for events in events_dirs:
        for fmt_path in sorted(events.rglob("format")):
            if not fmt_path.is_file():
                continue
            system = fmt_path.parent.parent.name if fmt_path.parent.parent != events else ""
            fmt = parse_format(_read_text(fmt_path), system=system, source=str(fmt_path))
            formats.setdefault(fmt.id, fmt)     # the trace's own directory wins
    return formats


def read_tracedir(path: str | os.PathLike[str], kallsyms: str | os.PathLike[str] | Symbols | None = None,
                  cmdlines: str | os.PathLike[str] | Mapping[int, str] | None = None,
                  *, events: Iterable[str | os.PathLike[str]] = ()) -> TraceDir:
    """Read a trace directory (see the module docstring).

    ``kallsyms`` / ``cmdlines`` name files elsewhere (``.gz`` accepted) or give
    the parsed tables; by default they are looked up in the directory.
    ``events`` names further ``events/`` directories searched for format
    files (and header_page) the trace's own directory lacks, e.g. a
    boot-wide copy of tracefs ``events/``. A missing header_page means the
    x86-64 default (16-byte header, 4080 data bytes).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such trace directory", str(root))
    events_dirs = [root / "events", *(Path(e) for e in events)]
    events_dirs = [d for d in events_dirs if d.is_dir()]
    header = HeaderPage.default()
    for d in events_dirs:
        if (d / "header_page").is_file():
            header = parse_header_page(_read_text(d / "header_page"), source=str(d / "header_page"))
            break
    formats = _read_formats(events_dirs)

    raw_paths: dict[int, Path] = {}
    per_cpu = root / "per_cpu"
    if per_cpu.is_dir():
        for cpu_dir in per_cpu.iterdir():
            m = _CPU_DIR.fullmatch(cpu_dir.name)
            if m is None or not cpu_dir.is_dir():
                continue
            raw_file = _find(cpu_dir, _RAW_NAMES)
            if raw_file is not None:
                raw_paths[int(m[1])] = raw_file
    raw_paths = dict(sorted(raw_paths.items()))
    blob, raw = _read_raw(raw_paths)

    symbols: Symbols | None
    if isinstance(kallsyms, Symbols):
        symbols = kallsyms
    else:
        ks_path = Path(kallsyms) if kallsyms is not None else _find(root, _KALLSYMS_NAMES)
        symbols = parse_kallsyms(_read_text(ks_path), source=str(ks_path)) if ks_path else None

    table: dict[int, str]
    if isinstance(cmdlines, Mapping):
        table = dict(cmdlines)
    else:
        cl_path = Path(cmdlines) if cmdlines is not None else _find(root, _CMDLINES_NAMES)
        table = parse_saved_cmdlines(_read_text(cl_path), source=str(cl_path)) if cl_path else {}
    return TraceDir(root, header, formats, raw, raw_paths, symbols, table, blob)
