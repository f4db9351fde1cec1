"""Analysis of decoded traces with pandas: tools/lib/traceevent event-parse.c field
decoding and kernel/trace/trace.c's per-CPU merge, as DataFrames (see
:mod:`ftracelab.analysis.events`).

Importing this package imports pandas; ``import ftracelab`` does not.
"""

from __future__ import annotations

from .events import Trace, open_trace

__all__ = ["Trace", "open_trace"]
