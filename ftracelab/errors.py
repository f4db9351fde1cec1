"""The one exception tree of ftracelab.

::

    FtraceLabError                  every error ftracelab raises on purpose
    ├── KernelImageError            the mini-kernel ELF is missing or malformed
    ├── SymbolNotFoundError         (also KeyError) an unknown kernel symbol
    ├── MachineError                the emulated machine cannot do what was asked
    │   ├── KernelFault             emulated code faulted (unmapped/protected access,
    │   │                           invalid instruction); names CPU, RIP and access
    │   ├── HookError               a Python callback raised inside the emulator
    │   └── EmulationTimeout        a run did not finish in its time budget
    ├── FtraceBug                   ftrace found text it did not expect (ftrace_bug())
    ├── TextPokeError               a text poke was misused (wrong order, busy site)
    ├── WorkloadError               an unknown workload or bad workload parameters
    ├── ShadowStackError            a task's fgraph shadow stack does not chain (names the word)
    └── TraceFormatError            a trace file (raw pages, format file, trace.dat) is
                                    malformed; names the byte offset

tracefs reports errors the way the kernel does, as :class:`OSError` with the
errno the kernel would return (ENOENT for a missing file, EINVAL for bad
input ...); those are not part of this tree.

After a :class:`MachineError` the lab stays usable: ``lab.reset()`` reboots it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FtraceLabError(Exception):
    """Base class of every error ftracelab raises on purpose."""


class KernelImageError(FtraceLabError):
    """The mini-kernel image is missing or is not the ELF the lab expects."""


class SymbolNotFoundError(FtraceLabError, KeyError):
    """A kernel symbol name that kallsyms does not know."""

    def __init__(self, name: str, known: Iterable[str] = (), kind: str = "kernel symbol",
                 note: str = "") -> None:
        self.name = name
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"no {kind} named {name!r}{note}{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MachineError(FtraceLabError):
    """The emulated machine stopped in a way the caller did not ask for."""


class KernelFault(MachineError):
    """Emulated code faulted.

    Attributes: ``cpu``, ``rip`` (address), ``where`` (RIP as symbol+offset),
    ``access`` ("read", "write", "fetch" or "instruction"), ``address`` (the
    faulting data address, or None).
    """

    def __init__(self, cpu: int, rip: int, where: str, access: str,
                 address: int | None, detail: str = "") -> None:
        self.cpu, self.rip, self.where = cpu, rip, where
        self.access, self.address = access, address
        target = f" at {address:#x}" if address is not None else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"CPU {cpu}: kernel fault: {access}{target} from RIP {rip:#x} <{where}>{extra}."
            " The lab is still usable: call lab.reset() to reboot it.")


class HookError(MachineError):
    """A Python callback raised while the emulator was running it.

    The CPU stopped inside the kernel, in the middle of what it was doing;
    ``lab.reset()`` reboots the lab."""

    def __str__(self) -> str:
        return f"{self.args[0]}. The CPU stopped mid-kernel: call lab.reset() to reboot."


class EmulationTimeout(MachineError):
    """A run did not reach its stop point within its time budget."""


class FtraceBug(FtraceLabError):
    """ftrace found bytes it did not expect at a call site (the kernel's ftrace_bug())."""


class TextPokeError(FtraceLabError):
    """A text poke was used out of order or on a site already being poked."""


class WorkloadError(FtraceLabError):
    """An unknown workload name or a bad workload parameter."""


class ShadowStackError(FtraceLabError):
    """An fgraph shadow stack whose words do not chain into frames (the kernel's
    get_ret_stack() warning). ``word`` is the index of the word at fault."""

    def __init__(self, what: str, word: int) -> None:
        self.word = word
        super().__init__(f"shadow stack word {word}: {what}")


class TraceFormatError(FtraceLabError):
    """A trace file is malformed. ``offset`` is where in the file (or page) it went wrong."""

    def __init__(self, what: str, offset: int, source: str = "") -> None:
        self.offset = offset
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{what} at offset {offset:#x} ({offset})")
