"""``tracing_cpumask`` of kernel/trace/trace.c (tracing_cpumask_read(),
tracing_cpumask_write(), tracing_set_cpumask()) and the bitmap text it reads and
writes (lib/bitmap-str.c: bitmap_parse() and ``%*pb``).

A CPU taken out of the mask records nothing: its ring in the live buffer and in
the snapshot's spare has ``record_disabled`` set (ring_buffer_record_disable_cpu()),
which the image's writer checks. The text is hex in 32-bit chunks, most
significant first, separated by commas (``ff,ffffffff``); the first chunk is as
wide as the bits it holds (``3`` for two CPUs).
"""

from __future__ import annotations

import errno
import os

__all__ = ["format_mask", "parse_mask"]

CHUNK = 32


def format_mask(mask: int, nbits: int) -> str:
    """``%*pb``: the bitmap of ``nbits`` bits (bitmap_string())."""
    nbits = max(nbits, 1)
    first = nbits % CHUNK or CHUNK
    chunks = [(mask >> lo) & ((1 << CHUNK) - 1) for lo in range(nbits - first, -1, -CHUNK)]
    widths = [(first + 3) // 4] + [CHUNK // 4] * (len(chunks) - 1)
    return ",".join(f"{c:0{w}x}" for c, w in zip(chunks, widths, strict=True))


def _end_of_region(c: str) -> bool:
    return c.isspace() or c == ","


def parse_mask(text: str, nbits: int) -> int:
    """bitmap_parse(): the text up to its first newline, read from the end in
    comma-separated hex chunks of up to 8 digits. OSError EINVAL for a bad
    character, EOVERFLOW for a chunk too long, too many chunks or a bit past ``nbits``."""
    s = text.split("\n", 1)[0]
    end = len(s) - 1
    chunks_left = (nbits + CHUNK - 1) // CHUNK
    mask, chunk = 0, 0
    while True:
        while end >= 0 and _end_of_region(s[end]):          # bitmap_find_region_reverse()
            end -= 1
        if end < 0:
            break
        if not chunks_left:
            raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
        chunks_left -= 1
        value = 0
        for shift in range(0, CHUNK, 4):                     # bitmap_get_x32_reverse()
            digit = int(s[end], 16) if s[end] in "0123456789abcdefABCDEF" else -1
            end -= 1
            if digit < 0:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            value |= digit << shift
            if end < 0 or _end_of_region(s[end]):
                break
        else:                                                # eight digits and more text
            if end >= 0 and s[end] in "0123456789abcdefABCDEF":
                raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
            end -= 1                                         # the kernel steps over that character
        mask |= value << (CHUNK * chunk)
        chunk += 1
    if mask >> nbits:
        raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
    return mask
