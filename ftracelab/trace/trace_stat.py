"""The function profiler of kernel/trace/ftrace.c (Linux 6.12, CONFIG_FUNCTION_PROFILER
with the graph tracer) and the ``trace_stat/`` files of kernel/trace/trace_stat.c.

``echo 1 > function_profile_enabled`` runs ftrace_profile_write(): the image's
ftrace_profile_init() empties every CPU's records, and an fgraph_ops
(``fprofiler_ops``: profile_graph_entry/profile_graph_return, on the functions
of set_ftrace_filter/set_ftrace_notrace as ftrace_ops_set_global_filter() makes
it) counts hits and sums durations per function in per-CPU hash tables and
pages of ``struct ftrace_profile``::

    struct ftrace_profile (48 bytes)          struct ftrace_profile_page (4096 bytes)
    +0x00 node.next    hash chain             +0x00 next      the CPU's next page
    +0x08 node.pprev                          +0x08 index     records used
    +0x10 ip           the traced function    +0x10 records[85]
    +0x18 counter      hits
    +0x20 time         sum of durations, ns (graph-time off: minus the children's)
    +0x28 time_squared sum of their squares

``trace_stat/function<cpu>`` reads them out of memory now and prints them as
stat_seq_show() does: function_stat_headers(), then one function_stat_show() line
a record, sorted by total time, largest first (stat_seq_init() inserts into an
rbtree with function_stat_cmp(); an equal one goes before those already there,
so ties come out in reverse order of first hit). A record whose average is
below tracing_thresh is left out.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from .trace_functions_graph import graph_duration

if TYPE_CHECKING:
    from ..tracefs import TraceFS
    from .fgraph import Fgraph, FgraphOps
    from .ftrace_files import FilterFiles

__all__ = ["FunctionProfiler", "ProfileRecord", "function_stat_show", "function_stat_text"]

U64 = (1 << 64) - 1
PAGE_SIZE = 4096
PAGE_NEXT, PAGE_INDEX, PAGE_RECORDS = 0x00, 0x08, 0x10
REC_IP = 0x10                 # after the hlist_node
STAT_HASH, STAT_START = 0x08, 0x18
STAT_HEADERS = ("  Function                               Hit    Time            Avg             s^2\n"
                "  --------                               ---    ----            ---             ---\n")


@dataclass(frozen=True)
class ProfileRecord:
    """One ``struct ftrace_profile``: a function's hits and times on one CPU."""

    ip: int
    counter: int
    time: int
    time_squared: int

    @property
    def avg(self) -> int:
        """div64_ul(time, counter): the mean, truncated to whole ns."""
        return self.time // self.counter

    @property
    def s2(self) -> int:
        """The sample variance as function_stat_show() computes it, in µs·ns (ns²/1000;
        trace_print_graph_duration() divides by 1000 again): (n·Σx² − (Σx)²) /
        (n·(n−1)·1000) in unsigned 64-bit arithmetic, 0 for one hit."""
        n = self.counter
        if n <= 1:
            return 0
        return ((n * self.time_squared - self.time * self.time) & U64) // ((n * (n - 1) * 1000) & U64)


def function_stat_show(rec: ProfileRecord, name: str) -> str:
    """One line of ``trace_stat/function<cpu>``: ``"  %-30.30s  %10lu"``, then the total,
    the average and s² each as trace_print_graph_duration() prints a duration."""
    return (f"  {name[:30]:<30}  {rec.counter:>10}    {graph_duration(rec.time)}    "
            f"{graph_duration(rec.avg)}    {graph_duration(rec.s2)}\n")


def function_stat_text(records: list[ProfileRecord], name_of: Callable[[int], str],
                       tracing_thresh_ns: int = 0) -> str:
    """A whole ``trace_stat/function<cpu>`` file from the records in page order."""
    order = sorted(range(len(records)), key=lambda i: (-records[i].time, -i))
    lines = [function_stat_show(records[i], name_of(records[i].ip)) for i in order
             if not (tracing_thresh_ns and records[i].avg < tracing_thresh_ns)]
    return STAT_HEADERS + "".join(lines)


class FunctionProfiler:
    """``function_profile_enabled`` and ``trace_stat/function<cpu>`` (``lab.profiler``)."""

    def __init__(self, fgraph: Fgraph, filter_files: FilterFiles,
                 tracing_thresh_ns: Callable[[], int]) -> None:
        self.fgraph, self.filter_files = fgraph, filter_files
        self.m = fgraph.machine
        self.cpus = self.m.ncpus
        self._thresh = tracing_thresh_ns
        self.gops: FgraphOps | None = None
        sizes = struct.unpack("<3H", self.m.read(self.m.symbols["ftrace_profile_lab_sizes"], 6))
        self.rec_size, self.per_page, self.stat_size = sizes
        filter_files.hash_listeners.append(self._hashes_changed)

    @property
    def enabled(self) -> bool:
        return self.m.read(self.m.symbols["ftrace_profile_enabled"], 4) != bytes(4)

    def enable(self) -> None:
        """ftrace_profile_write(1): reset the records, register fprofiler_ops."""
        if self.enabled:
            return
        self.m.call(0, "ftrace_profile_init", len(self.fgraph.ftrace.records))
        self.gops = self.fgraph.register("profile_graph_entry", "profile_graph_return",
                                         name="fprofiler_ops", hashes=self.filter_files.global_ops)
        self.m.write_u32(self.m.symbols["ftrace_profile_enabled"], 1)

    def disable(self) -> None:
        """ftrace_profile_write(0): stop counting; the records stay readable."""
        if not self.enabled:
            return
        self.m.write_u32(self.m.symbols["ftrace_profile_enabled"], 0)
        if self.gops is not None:
            self.fgraph.unregister(self.gops)
            self.gops = None

    def _hashes_changed(self) -> None:
        if self.gops is not None:
            self.fgraph.refresh(self.gops)

    def records(self, cpu: int) -> list[ProfileRecord]:
        """function_stat_start()/function_stat_next(): the CPU's records in page order."""
        m = self.m
        stat = m.symbols["ftrace_profile_stats"] + cpu * self.stat_size
        page = m.read_u64(stat + STAT_START)
        out: list[ProfileRecord] = []
        while page:
            used = min(m.read_u64(page + PAGE_INDEX), self.per_page)
            raw = m.read(page + PAGE_RECORDS, used * self.rec_size)
            for k in range(used):
                ip, counter, time, squared = struct.unpack_from("<4Q", raw, k * self.rec_size + REC_IP)
                if counter:
                    out.append(ProfileRecord(ip, counter, time, squared))
            page = m.read_u64(page + PAGE_NEXT)
        return out

    def _name(self, ip: int) -> str:
        hit = self.m.kallsyms.lookup(ip)             # kallsyms_lookup(): the name alone
        return hit[0].name if hit is not None else f"0x{ip:x}"

    def stat_text(self, cpu: int) -> str:
        """The text of ``trace_stat/function<cpu>``."""
        return function_stat_text(self.records(cpu), self._name, self._thresh())

    def df(self) -> pd.DataFrame:
        """The records of every CPU, one row each, in page order per CPU:

        ================  =====================================================
        ``cpu``           int16
        ``func``          category: the function's name
        ``ip``            uint64: the address the profiler keyed it by
        ``hit``           int64: calls counted
        ``time``          int64 ns: their summed durations (graph-time off: self time)
        ``time_squared``  uint64: the sum of their squares (kept unsigned: it wraps
                          in the kernel too)
        ``avg``           int64 ns: time // hit, as the file prints
        ================  =====================================================
        """
        rows = [(cpu, self._name(r.ip), r.ip, r.counter, r.time, r.time_squared, r.avg)
                for cpu in range(self.cpus) for r in self.records(cpu)]
        cols = ("cpu", "func", "ip", "hit", "time", "time_squared", "avg")
        df = pd.DataFrame(rows, columns=list(cols))
        return df.astype({"cpu": "int16", "func": "category", "ip": "uint64", "hit": "int64",
                          "time": "int64", "time_squared": "uint64", "avg": "int64"})

    # ---- tracefs ------------------------------------------------------------------
    def register(self, fs: TraceFS) -> None:
        fs.add_file("function_profile_enabled", read=lambda: f"{int(self.enabled)}\n",
                    write=self._write_enabled, mode=0o644)
        for cpu in range(self.cpus):
            fs.add_file(f"trace_stat/function{cpu}", read=self._stat_reader(cpu), mode=0o444)

    def _stat_reader(self, cpu: int) -> Callable[[], str]:
        return lambda: self.stat_text(cpu)

    def _write_enabled(self, text: str, append: bool) -> None:
        """kstrtoul_from_user(): a decimal number, any non-zero one enabling."""
        word = text.strip()
        if not word.isdigit() or int(word) > U64:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), "function_profile_enabled")
        if int(word):
            self.enable()
        else:
            self.disable()
