"""The Lab: boots the mini-kernel on the emulated machine, owns tracefs and runs
workloads (start_kernel() and init, in miniature).

Boot order, as in Linux: load the image, unpack the root file system, then
``ftrace_init()`` converts every ``call __fentry__`` to a NOP with
``text_poke_early`` (the boot log keeps every site's original bytes), then
CPU 0 runs start_kernel() and the others start_secondary(), each ending in
its idle loop.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .arch.x86_64.insn import MCOUNT_INSN_SIZE
from .errors import SymbolNotFoundError, WorkloadError

if TYPE_CHECKING:
    from .analysis.events import Trace
from .kernel import load_images
from .kernel.rootfs import populate
from .kernel.workloads import WORKLOADS
from .machine.cpu import Machine
from .machine.disasm import disassemble_range, format_listing
from .machine.kallsyms import Kallsyms
from .machine.memory import PCPU_CURRENT_TASK
from .machine.stepper import StepTrace, record_until
from .machine.text_poke import TextPoke, TextPoker
from .runner import Runner, RunRecord
from .trace.fgraph import Fgraph, StackEvent, stack_events
from .trace.fprobe import FprobeManager
from .trace.ftrace import mcount_locations
from .trace.ftrace_files import FilterFiles
from .trace.ftrace_update import Ftrace
from .trace.kprobes import Kprobes
from .trace.trace import TraceArray
from .trace.trace_dynevent import DynEvents
from .trace.trace_stack import StackTracer
from .trace.trace_stat import FunctionProfiler
from .tracefs import TraceFS


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
        self.ftrace = Ftrace(self.machine, self.text_poker)
        self.fgraph = Fgraph(self.ftrace)
        self.fprobe = FprobeManager(self.fgraph, self.ftrace.data)
        self.kprobes = Kprobes(self.ftrace)
        self.filter_files = FilterFiles(self.ftrace)
        self.tracefs = TraceFS()
        self.tracefs.add_file("available_filter_functions",
                              read=lambda: self.ftrace.available_filter_functions())
        self.tracefs.add_file("available_filter_functions_addrs",
                              read=lambda: self.ftrace.available_filter_functions_addrs())
        self.tracefs.add_file("dyn_ftrace_total_info", read=lambda: self.ftrace.dyn_ftrace_total_info())
        self.tracefs.add_file("enabled_functions", read=lambda: self.ftrace.enabled_functions())
        self.tracefs.add_file("touched_functions", read=lambda: self.ftrace.enabled_functions(touched=True))
        self.filter_files.register(self.tracefs)
        self.trace_array = TraceArray(self.machine, self.ftrace, self.filter_files, self.fgraph)
        self.filter_files.probes.events = self.trace_array.events
        self.trace_array.register(self.tracefs)
        self.dynevents = DynEvents(self)
        self.dynevents.register(self.tracefs)
        self.stack_tracer = StackTracer(self.ftrace)    # /proc/sys/kernel/stack_tracer_enabled
        self.stack_tracer.register(self.tracefs)
        populate(self.machine)
        self.runner = Runner(self.machine)

    @property
    def kallsyms(self) -> Kallsyms:
        return self.machine.kallsyms

    @property
    def cpus(self) -> int:
        return self.machine.ncpus

    @property
    def profiler(self) -> FunctionProfiler:
        """The function profiler (function_profile_enabled, trace_stat/function<cpu>)."""
        return self.trace_array.profiler

    def boot(self) -> Ftrace:
        """ftrace_init(), then start the kernel on every CPU; idempotent."""
        if not self.booted:
            self.ftrace.boot()
            self.runner.boot_cpus()
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

    def call(self, symbol: str, *args: int, cpu: int | None = None) -> int:
        """Call a kernel function with integer arguments and return its result.

        From inside an ftrace callback the call runs on the CPU that is running
        the callback, as the callback's own code would; otherwise on ``cpu``
        (default 0), which must be idle. Traced functions it reaches are traced.
        """
        m = self.machine
        if not self.booted:
            raise WorkloadError("the kernel has not booted yet: call lab.boot() first")
        self.kallsyms.lookup_name(symbol)
        target = m.cpu if m.running else (0 if cpu is None else cpu)
        return m.call(target, symbol, *args)

    def trace(self) -> Trace:
        """The ring buffers as a :class:`~ftracelab.analysis.events.Trace`, read without
        consuming them: ``lab.trace().df_events()``."""
        from .analysis.events import Trace
        return Trace(self.trace_array.tracedir())

    def step_through(self, function: str, workload: str = "cat", max_steps: int = 5000,
                     **params: int | str) -> StepTrace:
        """Record every instruction from ``function``'s fentry site until execution
        comes back to the instruction after it: through the trampoline, the ops
        function and back. The workload runs until it first calls ``function``,
        the path is recorded, then the workload runs to completion."""
        site = self.fentry_site(function)
        m = self.machine
        m.add_breakpoint(site)
        try:
            workload_params: dict[str, Any] = dict(params)
            rec = self.run(workload, count_calls=False, **workload_params)
            if rec.completed:
                raise WorkloadError(f"workload {workload!r} never called {function}")
            m.remove_breakpoint(site)
            trace = record_until(m, site + MCOUNT_INSN_SIZE, max_steps)
        finally:
            m.remove_breakpoint(site)
        self.resume()
        return trace

    def step_graph(self, function: str, workload: str = "cat", max_steps: int = 20000,
                   **params: int | str) -> list[StackEvent]:
        """Watch the fgraph shadow stack of the task that calls ``function`` through
        that call: the workload runs until the first call, every instruction until it
        returns is recorded, and each change of the stack (a push, reserved data, the
        bitmap, a pop) becomes a :class:`~ftracelab.trace.fgraph.StackEvent`; then the
        workload runs to completion. Needs an fgraph_ops on ``function``."""
        if self.fgraph.graph_ops is None or not self.fgraph.graph_ops.traces(self.fentry_site(function)):
            raise WorkloadError(f"no fgraph_ops traces {function}: lab.fgraph.register() first")
        site = self.fentry_site(function)
        m = self.machine
        m.add_breakpoint(site)
        try:
            workload_params: dict[str, Any] = dict(params)
            rec = self.run(workload, count_calls=False, **workload_params)
            if rec.completed:
                raise WorkloadError(f"workload {workload!r} never called {function}")
            m.remove_breakpoint(site)
            before = self.fgraph.task_stack(m.percpu_u64(m.cpu, PCPU_CURRENT_TASK))
            if before is None:
                raise WorkloadError(f"the task calling {function} has no shadow stack")
            trace = record_until(m, m.read_u64(m.reg("rsp")), max_steps)   # to its return address
        finally:
            m.remove_breakpoint(site)
        self.resume()
        events = stack_events(trace, before.stack, before.ret_stack, before.task, self.fgraph.offsets,
                              self.kallsyms.format_ps)
        if not trace.complete:               # say so rather than look like a whole call
            last = trace.steps[-1] if trace.steps else None
            events.append(StackEvent(last.index if last else -1, last.where if last else "",
                                     f"recording cut short after {len(trace)} instructions "
                                     "(raise max_steps)", events[-1].stack))
        return events

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
        """Workload names and one-line descriptions, with their parameters' defaults."""
        return {name: f"{w.description} ("
                      + ", ".join(f"{k}={v}" for k, v in w.defaults.items()) + ")"
                for name, w in WORKLOADS.items()}

    @staticmethod
    def workload_params(name: str) -> dict[str, int | str]:
        """A workload's parameters and their defaults."""
        if name not in WORKLOADS:
            raise WorkloadError(f"unknown workload {name!r}; choose from {sorted(WORKLOADS)}")
        return dict(WORKLOADS[name].defaults)

    def run(self, workload: str, cpu: int = 0, count_calls: bool = True,
            comm: str | None = None, **params: int | str) -> RunRecord:
        """Run a workload until every task it creates has exited and the CPUs idle.

        Its first task starts on ``cpu``; the scheduler may move the others.
        If a breakpoint stops a CPU (``lab.machine.add_breakpoint``), the run
        pauses and the record says where; :meth:`resume` continues it.
        """
        if not self.booted:
            raise WorkloadError("the kernel has not booted yet: call lab.boot() first")
        try:
            return self.runner.start(workload, cpu=cpu, count_calls=count_calls, comm=comm,
                                     **params)
        finally:
            self.trace_array.check_dump()

    def resume(self) -> RunRecord:
        """Continue a paused run."""
        try:
            return self.runner.resume()
        finally:
            self.trace_array.check_dump()

    @property
    def dmesg(self) -> str:
        """The kernel log: what ftrace_dump() printed for the dump/cpudump commands."""
        return "".join(self.trace_array.dmesg)

    def _repr_html_(self) -> str:
        state = "booted" if self.booted else "not booted"
        return (f"<b>ftracelab.Lab</b>: {self.cpus} CPUs, seed {self.seed}, {state}, "
                f"{len(self.ftrace.records)} fentry sites, "
                f"workloads: {', '.join(html.escape(w) for w in WORKLOADS)}")

    def __repr__(self) -> str:
        return (f"<Lab cpus={self.cpus} seed={self.seed} booted={self.booted} "
                f"sites={len(self.ftrace.records)}>")
