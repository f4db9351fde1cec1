"""The mini-kernel: C and assembly sources (src/), the build script (build.py),
the prebuilt images (images/), the files it boots with (rootfs.py) and the
workloads its user programs run (workloads.py)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..machine.elf import ElfImage, load_elf

# init_utsname()->release as the lab reports it (the latency-format header prints it)
UTS_RELEASE = "6.12.0-ftracelab"
# The preemption model: irqentry_exit() preempts kernel code (CONFIG_PREEMPT), which
# print_trace_header() calls "preempt".
PREEMPT_MODEL = "preempt"


@lru_cache(maxsize=1)
def load_images() -> tuple[ElfImage, ElfImage]:
    """(vmlinux, user.elf) from the package's prebuilt images."""
    images = resources.files(__name__) / "images"
    vmlinux = load_elf((images / "vmlinux").read_bytes(), "vmlinux")
    user = load_elf((images / "user.elf").read_bytes(), "user")
    return vmlinux, user
