"""Workloads: the user programs of user/workloads.c with their parameters.

A workload is started the way execve() leaves a program: %rdi points at a
``struct wl_args`` the lab filled in, and the return address is
``user_exit``, which calls exit_group(). ``struct wl_args``::

    0x00  char path[64]
    0x40  u64  loops
    0x48  u64  chunk
    0x50  u64  size
    0x58  u64  tasks
    0x60  u64  sleep_ns

``disk_latency_ns`` is not passed to the program: the lab applies it to the
file on the slow disk before the run (kernel/rootfs.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import WorkloadError

WL_PATH_LEN = 64


@dataclass(frozen=True)
class Workload:
    name: str
    program: str                      # symbol in user.elf
    description: str
    defaults: dict[str, int | str] = field(default_factory=dict)

    def args(self, **params: int | str) -> dict[str, int | str]:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise WorkloadError(
                f"workload {self.name!r} takes {sorted(self.defaults)}, not {sorted(unknown)}")
        merged = {**self.defaults, **params}
        for key, value in merged.items():
            if key == "path":
                if not isinstance(value, str) or not value.startswith("/") \
                        or len(value.encode()) >= WL_PATH_LEN:
                    raise WorkloadError(f"path must be an absolute path under {WL_PATH_LEN} bytes")
            elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 32:
                raise WorkloadError(f"{key} must be an int in [0, 2**32), not {value!r}")
        return merged

    def pack(self, **params: int | str) -> bytes:
        """The struct wl_args bytes for these parameters."""
        a = self.args(**params)
        path = str(a.get("path", "")).encode().ljust(WL_PATH_LEN, b"\0")
        return path + struct.pack("<5Q", *(int(a.get(k, 0)) for k in
                                         ("loops", "chunk", "size", "tasks", "sleep_ns")))


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("cat", "wl_cat",
             "cat PATH > /dev/null, LOOPS times, reading CHUNK bytes at a time",
             {"path": "/var/log/syslog", "loops": 1, "chunk": 4096}),
    Workload("write", "wl_write",
             "write SIZE bytes to PATH (O_TRUNC), CHUNK at a time, LOOPS times",
             {"path": "/tmp/out", "loops": 1, "chunk": 512, "size": 4096}),
    Workload("serial-write", "wl_write",
             "write SIZE bytes to /dev/ttyS0 (a 16550A UART at 115200 baud, IRQ 4), CHUNK at a "
             "time: the writer sleeps when the 4 KiB xmit ring is full, the FIFO-empty "
             "interrupt (irq_handler_entry/exit) refills the UART and wakes it",
             {"path": "/dev/ttyS0", "loops": 1, "chunk": 1024, "size": 5000}),
    Workload("getpid", "wl_getpid",
             "getpid() LOOPS times: the bare syscall entry/exit path",
             {"loops": 100}),
    Workload("slow-read", "wl_cat",
             "cat a 2-page file on the slow disk: each page is a bio that completes after "
             "DISK_LATENCY_NS plus a seeded tail; the reader sleeps in io_schedule()",
             {"path": "/data/slow.bin", "loops": 2, "chunk": 1024, "disk_latency_ns": 50_000}),
    Workload("fork-storm", "wl_fork_storm",
             "LOOPS rounds of TASKS clone() children (each calls getpid and exits), "
             "reaped with wait4(): kernel_clone, wake_up_new_task, migrations",
             {"loops": 4, "tasks": 6}),
    Workload("sleep", "wl_sleep",
             "a child task sleeps SLEEP_NS with nanosleep(), LOOPS times: "
             "hrtimer wake-ups through try_to_wake_up",
             {"loops": 5, "sleep_ns": 1_000_000}),
    Workload("cpu-hog", "wl_cpu_hog",
             "TASKS tasks each make LOOPS getpid() calls: more runnable tasks than CPUs, "
             "so the timer tick preempts them (preempt_schedule_irq)",
             {"loops": 20_000, "tasks": 3}),
    Workload("lock-contention", "wl_lock_contention",
             "TASKS tasks write SIZE bytes to the same file, LOOPS times: "
             "i_rwsem (a sleeping lock) and i_lock (a spinlock) contention across CPUs",
             {"path": "/tmp/out", "loops": 4, "chunk": 512, "size": 4096, "tasks": 4}),
)}
