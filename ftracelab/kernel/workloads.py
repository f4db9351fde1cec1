"""Workloads: the user programs of user/workloads.c with their parameters.

A workload is started the way execve() leaves a program: %rdi points at a
``struct wl_args`` the lab filled in, and the return address is
``user_exit``, which calls exit_group(). ``struct wl_args``::

    0x00  char path[64]
    0x40  u64  loops
    0x48  u64  chunk
    0x50  u64  size
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
        return path + struct.pack("<QQQ", int(a.get("loops", 0)), int(a.get("chunk", 0)),
                                  int(a.get("size", 0)))


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("cat", "wl_cat",
             "cat PATH > /dev/null, LOOPS times, reading CHUNK bytes at a time",
             {"path": "/var/log/syslog", "loops": 1, "chunk": 4096}),
    Workload("write", "wl_write",
             "write SIZE bytes to PATH (O_TRUNC), CHUNK at a time, LOOPS times",
             {"path": "/tmp/out", "loops": 1, "chunk": 512, "size": 4096}),
    Workload("getpid", "wl_getpid",
             "getpid() LOOPS times: the bare syscall entry/exit path",
             {"loops": 100}),
    Workload("slow-read", "wl_cat",
             "cat a file on a slow device (50 us +- a seeded tail per read)",
             {"path": "/data/slow.bin", "loops": 4, "chunk": 1024}),
)}
