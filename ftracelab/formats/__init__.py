"""Binary and text formats of tracefs, mirrored in pure Python/numpy: kernel/trace/ring_buffer.c
sub-buffer pages (rb_event_length(), ring_buffer_read_page()), kernel/trace/trace_events.c
format files (f_show()), events/header_page (ring_buffer_print_page_header()) and the
tracefs directory layout, read the way tools/lib/traceevent kbuffer-parse.c does.

Nothing here touches the emulated machine: these are functions over bytes and text.
"""

from __future__ import annotations

from .format_file import EventFormat, FormatField, HeaderPage, parse_format, parse_header_page
from .ring_buffer_page import DecodedPages, RbEvent, decode_pages, encode_page, rb_event_length
from .tracedir import Symbols, TraceDir, parse_kallsyms, parse_saved_cmdlines, read_tracedir

__all__ = [
    "DecodedPages", "EventFormat", "FormatField", "HeaderPage", "RbEvent", "Symbols", "TraceDir",
    "decode_pages", "encode_page", "parse_format", "parse_header_page", "parse_kallsyms",
    "parse_saved_cmdlines", "rb_event_length", "read_tracedir",
]
