"""The Lab: boots the mini-kernel on the emulated machine, owns tracefs and runs
workloads (start_kernel() and init, in miniature).

Boot order, as in Linux: load the image, unpack the root file system, then
``ftrace_init()`` converts every ``call __fentry__`` to a NOP with
``text_poke_early``. The boot log keeps every site's original bytes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from .errors import SymbolNotFoundError, WorkloadError
from .kernel import load_images
from .kernel.rootfs import populate
from .kernel.workloads import WORKLOADS
from .machine.cpu import EntryCounter, Machine, Stop
from .machine.disasm import disassemble_range, format_listing
from .machine.kallsyms import Kallsyms
from .machine.memory import USER_ARGS, USER_STACK_TOP
from .machine.text_poke import TextPoke, TextPoker
from .trace.ftrace import FtraceState, ftrace_init, mcount_locations
from .tracefs import TraceFS

TASK_COMM_OFFSET = 8
TASK_COMM_LEN = 16


@dataclass(frozen=True)
class RunRecord:
    """What one ``lab.run()`` did."""

    workload: str
    params: dict[str, int | str]
    cpu: int
    virtual_ns: int          # virtual clock advance on that CPU
    syscalls: int
    function_calls: int | None   # kernel function entries, traced or not (None: not counted)
    stop: Stop = field(repr=False)

    @property
    def completed(self) -> bool:
        return self.stop.reason == "halt"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in (("workload", self.workload), ("params", self.params),
                                    ("CPU", self.cpu), ("virtual time", f"{self.virtual_ns:,} ns"),
                                    ("syscalls", self.syscalls),
                                    ("function calls", self.function_calls),
                                    ("stopped", f"{self.stop.reason} at {self.stop.where}")))
        return f"<table><caption>RunRecord</caption>{rows}</table>"


class Lab:
    """An emulated x86-64 machine running the mini-kernel, with ftrace around it.

    ``Lab(cpus=2, seed=0)`` boots at once; ``Lab(boot=False)`` stops before
    ``ftrace_init()`` so the image can be inspected as the linker left it.
    """

    def __init__(self, cpus: int = 2, seed: int = 0, boot: bool = True) -> None:
        vmlinux, user = load_images()
        self.machine = Machine(vmlinux, user, ncpus=cpus, seed=seed)
        self.seed = seed
        self.booted = False
        self._setup()
        if boot:
            self.boot()

    def _setup(self) -> None:
        self.text_poker = TextPoker(self.machine)
        self.ftrace = FtraceState(records=[])
        self.tracefs = TraceFS()
        self.tracefs.add_file("available_filter_functions",
                              read=lambda: self.ftrace.available_filter_functions())
        self.tracefs.add_file("available_filter_functions_addrs",
                              read=lambda: self.ftrace.available_filter_functions_addrs())
        populate(self.machine)

    @property
    def kallsyms(self) -> Kallsyms:
        return self.machine.kallsyms

    @property
    def cpus(self) -> int:
        return self.machine.ncpus

    def boot(self) -> FtraceState:
        """Run the boot-time ftrace_init(); idempotent."""
        if not self.booted:
            self.ftrace = ftrace_init(self.machine, self.text_poker)
            self.booted = True
        return self.ftrace

    def reset(self) -> None:
        """Reboot: fresh memory and CPUs from the image, then boot again."""
        was_booted = self.booted
        self.machine.reset()
        self.machine.int3_handlers.clear()
        self.booted = False
        self._setup()
        if was_booted:
            self.boot()

    # ---- symbols and text ---------------------------------------------------
    def symbol(self, name: str) -> int:
        """Address of a kernel symbol; the error suggests close names."""
        return self.machine.kallsyms[name]

    def _function_range(self, symbol: str) -> tuple[int, int]:
        ks = self.machine.kallsyms
        start = ks[symbol]
        end = next((k.addr for k in ks if k.addr > start and k.is_function), ks.text_end)
        return start, end

    def disassemble(self, symbol: str, source: str = "live") -> str:
        """crash-style ``dis`` of one function, from live memory or the ELF ("image")."""
        start, end = self._function_range(symbol)
        if source == "live":
            raw = self.machine.read(start, end - start)
        elif source == "image":
            raw = self.machine.vmlinux.read(start, end - start)
        else:
            raise ValueError("source must be 'live' or 'image'")
        sites = set(self._sites())
        return format_listing(disassemble_range(raw, start, self.machine.kallsyms, sites))

    def _sites(self) -> list[int]:
        """fentry call sites: the records after boot, __mcount_loc before it."""
        if self.booted:
            return [r.ip for r in self.ftrace.records]
        return sorted(set(mcount_locations(self.machine)))

    def fentry_site(self, symbol: str) -> int:
        """The ftrace call site of a traceable function (func+4, or +0 without endbr64)."""
        start, end = self._function_range(symbol)
        site = next((ip for ip in self._sites() if start <= ip < end), None)
        if site is None:
            traceable = {self.kallsyms.format_short(ip) for ip in self._sites()}
            raise SymbolNotFoundError(symbol, traceable, kind="traceable function",
                                      note=" (it exists but is notrace: no fentry call site)")
        return site

    def text_poke(self, where: str | int, new: bytes) -> TextPoke:
        """Begin an int3 text poke at a function's fentry site (or an address)."""
        ip = self.fentry_site(where) if isinstance(where, str) else where
        return self.text_poker.begin(ip, new)

    # ---- workloads ----------------------------------------------------------
    @property
    def workloads(self) -> dict[str, str]:
        """Workload names and one-line descriptions."""
        return {name: w.description for name, w in WORKLOADS.items()}

    def run(self, workload: str, cpu: int = 0, count_calls: bool = True,
            comm: str | None = None, **params: int | str) -> RunRecord:
        """Run a workload on one CPU until its task exits and the CPU idles."""
        wl = WORKLOADS.get(workload)
        if wl is None:
            raise WorkloadError(f"unknown workload {workload!r}; choose from {sorted(WORKLOADS)}")
        args = wl.pack(**params)
        m = self.machine
        m.select_cpu(cpu)
        task = m.percpu_u64(cpu, 0x08)
        m.write(task + TASK_COMM_OFFSET,
                (comm or workload).encode()[:TASK_COMM_LEN - 1].ljust(TASK_COMM_LEN, b"\0"))
        m.write(USER_ARGS, args)
        m.set_reg("rsp", USER_STACK_TOP)
        m.push(m.user_symbols["user_exit"])
        m.set_reg("rdi", USER_ARGS)
        clock0, sys0 = m.clock_ns(cpu), m.nr_syscalls(cpu)
        starts = sorted({k.addr for k in m.kallsyms if k.is_function})
        counter = EntryCounter(m, starts) if count_calls else None
        try:
            stop = m.run(start=m.user_symbols[wl.program])
        finally:
            calls = counter.close() if counter else None
        return RunRecord(workload, wl.args(**params), cpu, m.clock_ns(cpu) - clock0,
                         m.nr_syscalls(cpu) - sys0, calls, stop)

    def _repr_html_(self) -> str:
        state = "booted" if self.booted else "not booted"
        return (f"<b>ftracelab.Lab</b>: {self.cpus} CPUs, seed {self.seed}, {state}, "
                f"{len(self.ftrace.records)} fentry sites, "
                f"workloads: {', '.join(html.escape(w) for w in WORKLOADS)}")

    def __repr__(self) -> str:
        return (f"<Lab cpus={self.cpus} seed={self.seed} booted={self.booted} "
                f"sites={len(self.ftrace.records)}>")
