"""Running workloads on the booted mini-kernel (what a shell does: fork, exec,
wait), and the record of what a run did.

A run starts the workload's program in a new task (``lab_spawn`` on a CPU,
through kernel_clone), then lets the vCPU scheduler interleave the CPUs
until every task the workload created has exited and the CPUs are idle. A
breakpoint pauses the run; :meth:`Runner.resume` continues it.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

from .errors import WorkloadError
from .kernel.rootfs import set_disk_latency
from .kernel.workloads import WORKLOADS
from .machine.cpu import EntryCounter, Machine, Stop
from .machine.memory import (
    PCPU_NR_IRQS,
    PCPU_NR_SWITCHES,
    USER_ARGS,
    USER_STACK_SLOT,
    USER_STACK_SLOTS,
    USER_STACKS_BASE,
)
from .machine.smp import VcpuScheduler

COMM_OFFSET_IN_ARGS = 0x100
TASK_COMM_LEN = 16


@dataclass(frozen=True)
class RunRecord:
    """What one ``lab.run()`` did. Counts are summed over all CPUs."""

    workload: str
    params: dict[str, int | str]
    cpu: int                     # where the first task started
    virtual_ns: int              # virtual time from start until the last task exited
    syscalls: int
    function_calls: int | None   # kernel function entries, traced or not (None: not counted)
    context_switches: int
    interrupts: int
    tasks: int                   # tasks created (the first one included)
    host_s: float                # host seconds the emulation took
    stop: Stop | None = field(default=None, repr=False)   # set when paused

    @property
    def completed(self) -> bool:
        return self.stop is None

    def _repr_html_(self) -> str:
        state = "completed" if self.completed else \
            f"paused: {self.stop.reason} on CPU {self.stop.cpu} at {self.stop.where}"  # type: ignore[union-attr]
        items = (("workload", self.workload), ("params", self.params),
                 ("first CPU", self.cpu), ("virtual time", f"{self.virtual_ns:,} ns"),
                 ("syscalls", self.syscalls), ("function calls", self.function_calls),
                 ("context switches", self.context_switches), ("interrupts", self.interrupts),
                 ("tasks", self.tasks), ("host time", f"{self.host_s * 1e3:.1f} ms"),
                 ("state", state))
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in items)
        return f"<table><caption>RunRecord</caption>{rows}</table>"


@dataclass
class _Active:
    workload: str
    params: dict[str, int | str]
    cpu: int
    start_ns: int
    counters: tuple[int, int, int, int]
    counter: EntryCounter | None
    host_s: float


class Runner:
    """Starts workloads and drives the CPUs until they are done."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.sched = VcpuScheduler(machine)
        self.active: _Active | None = None
        self._spawned = 0

    def boot_cpus(self) -> None:
        """start_kernel() on CPU 0, start_secondary() on the others, each to idle."""
        for cpu in range(self.m.ncpus):
            stop = self.m.run(cpu=cpu)
            if stop.reason != "halt":
                raise WorkloadError(f"CPU {cpu} did not reach the idle loop: {stop.where}")
            self.sched.halted[cpu] = True

    def _counters(self) -> tuple[int, int, int, int]:
        m = self.m
        cpus = range(m.ncpus)
        return (sum(m.nr_syscalls(c) for c in cpus),
                sum(m.percpu_u64(c, PCPU_NR_SWITCHES) for c in cpus),
                sum(m.percpu_u64(c, PCPU_NR_IRQS) for c in cpus),
                m.read_u64(m.symbols["total_forks"]))

    def _live_tasks(self) -> int:
        return int.from_bytes(self.m.read(self.m.symbols["nr_user_tasks"], 4), "little", signed=True)

    def start(self, workload: str, cpu: int = 0, count_calls: bool = True,
              comm: str | None = None, **params: int | str) -> RunRecord:
        if self.active is not None:
            raise WorkloadError("a run is paused; lab.resume() it (or lab.reset()) first")
        wl = WORKLOADS.get(workload)
        if wl is None:
            raise WorkloadError(f"unknown workload {workload!r}; choose from {sorted(WORKLOADS)}")
        if not 0 <= cpu < self.m.ncpus:
            raise WorkloadError(f"CPU {cpu} does not exist (the lab has {self.m.ncpus})")
        args = wl.args(**params)
        m = self.m
        if "disk_latency_ns" in args:
            set_disk_latency(m, str(args["path"]), int(args["disk_latency_ns"]))
        m.write(USER_ARGS, wl.pack(**params))
        name = (comm or workload).encode()[:TASK_COMM_LEN - 1] + b"\0"
        m.write(USER_ARGS + COMM_OFFSET_IN_ARGS, name)
        slot = self._spawned % USER_STACK_SLOTS
        self._spawned += 1
        usp = USER_STACKS_BASE + (slot + 1) * USER_STACK_SLOT - 16 - 8
        m.write_u64(usp, m.user_symbols["user_exit"])       # the program's return address
        start_ns = self.sched.sync_clocks()
        counters = self._counters()
        t0 = time.perf_counter()
        counter = EntryCounter(m, sorted({k.addr for k in m.kallsyms if k.is_function})) \
            if count_calls else None
        self.active = _Active(workload, args, cpu, start_ns, counters, counter, 0.0)
        try:
            pid = m.call(cpu, "lab_spawn", m.user_symbols[wl.program], USER_ARGS, usp,
                         USER_ARGS + COMM_OFFSET_IN_ARGS)
        except BaseException:
            self._abandon()
            raise
        if pid >= 1 << 63:
            self._abandon()
            raise WorkloadError(f"lab_spawn failed with error {pid - (1 << 64)}")
        self.active.host_s += time.perf_counter() - t0
        return self.resume()

    def resume(self) -> RunRecord:
        """Continue the paused (or just started) run until it completes or pauses."""
        act = self.active
        if act is None:
            raise WorkloadError("nothing to resume: no run is paused")
        t0 = time.perf_counter()
        try:
            result = self.sched.run(done=lambda: self._live_tasks() == 0)
        except BaseException:
            self._abandon()
            raise
        act.host_s += time.perf_counter() - t0
        stop = result.stop if result.reason != "done" else None
        if stop is None:
            self.active = None
        return self._record(act, stop)

    def _record(self, act: _Active, stop: Stop | None) -> RunRecord:
        m = self.m
        end_ns = max(self.sched.clock(c) for c in range(m.ncpus))
        now = self._counters()
        calls = act.counter.count if act.counter else None
        if stop is None and act.counter is not None:
            calls = act.counter.close()
        return RunRecord(act.workload, act.params, act.cpu, end_ns - act.start_ns,
                         now[0] - act.counters[0], calls, now[1] - act.counters[1],
                         now[2] - act.counters[2], now[3] - act.counters[3], act.host_s, stop)

    def _abandon(self) -> None:
        if self.active is not None and self.active.counter is not None:
            self.active.counter.close()
        self.active = None
