"""A virtual tracefs (fs/tracefs/, kernel/trace/trace.c: the files under
/sys/kernel/tracing).

Paths are relative to the tracefs root (``"available_filter_functions"``,
``"per_cpu/cpu0/trace_pipe_raw"``). :meth:`TraceFS.write` behaves like
``echo text > path`` and :meth:`TraceFS.append` like ``echo text >> path``:
a newline is appended, as echo does. Errors are :class:`OSError` with the
errno the kernel returns: ENOENT for a missing file, EISDIR for a
directory, EINVAL for writing a file that has no write operation.

Each subsystem registers its files with :meth:`TraceFS.add_file`; reading
calls the file's ``read`` function at that moment, so a read always shows
current state and never blocks.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Reader = Callable[[], "str | bytes"]
Writer = Callable[[str, bool], None]
"""Called with (text, append); raises OSError with the kernel's errno on bad input."""


@dataclass(frozen=True)
class TraceFile:
    path: str
    read: Reader | None
    write: Writer | None
    mode: int             # the kernel's permission bits, e.g. 0o444


def _oserror(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class TraceFS:
    """The file tree, with kernel read/write semantics."""

    def __init__(self) -> None:
        self._files: dict[str, TraceFile] = {}
        self.dumper: Callable[[str | os.PathLike[str]], Path] | None = None

    def add_file(self, path: str, read: Reader | None = None, write: Writer | None = None,
                 mode: int | None = None) -> None:
        if mode is None:
            mode = (0o444 if read else 0) | (0o200 if write else 0)
        self._files[path] = TraceFile(path, read, write, mode)

    def remove_file(self, path: str) -> None:
        """A file goes away (a dynamic event's, when the event is removed)."""
        self._files.pop(self._norm(path), None)

    @staticmethod
    def _norm(path: str) -> str:
        parts = [p for p in path.strip().split("/") if p not in ("", ".")]
        return "/".join(parts)

    def _is_dir(self, path: str) -> bool:
        prefix = path + "/" if path else ""
        return any(name.startswith(prefix) for name in self._files)

    def _lookup(self, path: str) -> TraceFile:
        norm = self._norm(path)
        found = self._files.get(norm)
        if found is not None:
            return found
        if self._is_dir(norm):
            raise _oserror(errno.EISDIR, path)
        raise _oserror(errno.ENOENT, path)

    def exists(self, path: str) -> bool:
        norm = self._norm(path)
        return norm in self._files or self._is_dir(norm)

    def listdir(self, path: str = "") -> list[str]:
        """Entries of a directory, sorted (``ls``)."""
        norm = self._norm(path)
        if norm in self._files:
            raise _oserror(errno.ENOTDIR, path)
        if not self._is_dir(norm):
            raise _oserror(errno.ENOENT, path)
        prefix = norm + "/" if norm else ""
        return sorted({name[len(prefix):].split("/")[0]
                       for name in self._files if name.startswith(prefix)})

    def dump(self, directory: str | os.PathLike[str]) -> Path:
        """Write a directory laid out like tracefs, without consuming the buffers
        (events/header_page, events/*/*/format, per_cpu/cpuN/trace_pipe_raw,
        saved_cmdlines, kallsyms): what a user copies off a real machine."""
        if self.dumper is None:
            raise _oserror(errno.ENOENT, "per_cpu")
        return self.dumper(directory)

    def read(self, path: str) -> str | bytes:
        """The file's content now: text, or bytes for binary files."""
        f = self._lookup(path)
        if f.read is None:
            raise _oserror(errno.EINVAL, path)
        return f.read()

    def open_write(self, path: str) -> Writer:
        """open(path, O_WRONLY): the file's write operation, called with the exact bytes
        (no newline added). ENOENT/EISDIR at open; a file without a write operation
        opens (we are root) and fails at write() with EINVAL, as vfs_write() does."""
        f = self._lookup(path)

        def einval(text: str, append: bool) -> None:
            raise _oserror(errno.EINVAL, path)

        return f.write or einval

    def write(self, path: str, text: str) -> None:
        """``echo text > path``."""
        self._write(path, text, append=False)

    def append(self, path: str, text: str) -> None:
        """``echo text >> path``."""
        self._write(path, text, append=True)

    def write_bytes(self, path: str, data: bytes) -> None:
        """write(2) of binary ``data`` (trace_marker_raw): each byte handed to the file
        as the code point of the same value."""
        f = self._lookup(path)
        if f.write is None:
            raise _oserror(errno.EINVAL, path)
        f.write(data.decode("latin-1"), True)

    def _write(self, path: str, text: str, append: bool) -> None:
        f = self._lookup(path)
        if f.write is None:
            raise _oserror(errno.EINVAL, path)
        f.write(text + "\n", append)
