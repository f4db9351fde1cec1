"""ftracelab: a Jupyter laboratory for Linux kernel tracing internals.

An x86-64 mini-kernel, compiled by gcc with fentry instrumentation, runs on
emulated CPUs (Unicorn), and ftrace is implemented around it the way Linux
6.12 does it. Start with ``ftracelab.Lab()``.

Importing this package is cheap: the emulator, capstone and pyelftools load
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Lab", "Trace", "__version__", "open_trace"]

if TYPE_CHECKING:
    from .analysis.events import Trace, open_trace
    from .lab import Lab


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from .lab import Lab
        return Lab
    if name in ("open_trace", "Trace"):
        from .analysis import events
        return getattr(events, name)
    raise AttributeError(f"module 'ftracelab' has no attribute {name!r}")
