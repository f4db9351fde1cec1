"""The mini-kernel: C and assembly sources (src/), the build script (build.py),
the prebuilt images (images/), the files it boots with (rootfs.py) and the
workloads its user programs run (workloads.py)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..machine.elf import ElfImage, load_elf


@lru_cache(maxsize=1)
def load_images() -> tuple[ElfImage, ElfImage]:
    """(vmlinux, user.elf) from the package's prebuilt images."""
    images = resources.files(__name__) / "images"
    vmlinux = load_elf((images / "vmlinux").read_bytes(), "vmlinux")
    user = load_elf((images / "user.elf").read_bytes(), "user")
    return vmlinux, user
