"""Build the mini-kernel (``vmlinux``) and the lab's user programs (``user.elf``).

This is the lab's ``make``: it runs gcc and GNU ld with fixed flags and writes
the two ELF files plus ``build-info.json`` (toolchain versions and hashes).
The results are committed as package data, so users never need a compiler;
``tests/test_kernel_rebuild.py`` rebuilds them wherever the recorded
toolchain is installed and checks that the bytes match.

Traceable C files are compiled with ``-pg -mfentry -mrecord-mcount`` and
``-fcf-protection=branch``, as a modern distro kernel is: every traceable
function starts ``endbr64; call __fentry__`` and the call site (function+4) is
recorded in ``__mcount_loc``. Functions Linux 6.12 marks ``notrace`` or
``noinstr`` carry the same attribute here, and the assembly files (entry code,
trampolines) are never instrumented.

Run ``python -m ftracelab.kernel.build [--out DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

SRC = Path(__file__).with_name("src")
IMAGES = Path(__file__).with_name("images")

# Link order decides text addresses, hence available_filter_functions order.
KERNEL_SOURCES = [
    "arch/x86/kernel/ftrace_64.S",
    "arch/x86/kernel/apic.c",
    "arch/x86/kernel/process.c",
    "arch/x86/entry/entry_64.S",
    "arch/x86/entry/common.c",
    "arch/x86/entry/syscall_64.c",
    "init/main.c",
    "kernel/fork.c",
    "kernel/exit.c",
    "kernel/softirq.c",
    "kernel/irq/handle.c",
    "kernel/sched/core.c",
    "kernel/sched/fair.c",
    "kernel/sched/wait.c",
    "kernel/locking.c",
    "kernel/time/hrtimer.c",
    "kernel/time/vclock.c",
    "kernel/trace/fgraph.c",
    "kernel/trace/ftrace.c",
    "kernel/trace/trace_functions_graph.c",
    "kernel/trace/ring_buffer.c",
    "kernel/trace/trace_functions.c",
    "kernel/trace/trace_events.c",
    "samples/fprobe_latency.c",
    "mm/slub.c",
    "mm/mmap.c",
    "fs/read_write.c",
    "fs/open.c",
    "fs/namei.c",
    "fs/file.c",
    "fs/ramfs.c",
    "security/security.c",
    "block/blk-mq.c",
    "drivers/block/null_blk.c",
    "drivers/mem.c",
    "drivers/tty/serial8250.c",
    "lib/iov_iter.c",
    "lib/string.c",
]
USER_SOURCES = ["user/workloads.c"]

COMMON_CFLAGS = [
    "-std=gnu11", "-O2", "-Wall", "-ffreestanding", "-fno-pic", "-fno-pie",
    "-fno-stack-protector", "-nostdlib", "-mno-red-zone", "-mgeneral-regs-only",
    "-fno-asynchronous-unwind-tables", "-fno-jump-tables", "-fno-common",
    "-fno-tree-loop-distribute-patterns", "-fno-ident",
    # No .constprop/.isra clones: symbol names stay those of the source.
    "-fno-ipa-cp", "-fno-ipa-sra", "-fno-partial-inlining",
]
KERNEL_CFLAGS = [
    *COMMON_CFLAGS, "-mcmodel=kernel", "-fcf-protection=branch",
    "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer",
    "-pg", "-mfentry", "-mrecord-mcount", "-Iinclude",
]
USER_CFLAGS = [*COMMON_CFLAGS, "-mcmodel=small", "-fcf-protection=none"]
LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack",
           "--build-id=none", "--no-warn-rwx-segments"]

OUTPUTS = ("vmlinux", "user.elf")


def toolchain() -> dict[str, str]:
    """First version line of gcc and ld; the rebuild check compares these."""
    def first_line(cmd: str) -> str:
        out = subprocess.run([cmd, "--version"], capture_output=True, text=True, check=True)
        return out.stdout.splitlines()[0]
    return {"gcc": first_line("gcc"), "ld": first_line("ld")}


def _compile(src: str, obj: Path, flags: list[str]) -> None:
    # Relative source names keep the host's paths out of the image.
    subprocess.run(["gcc", *flags, "-c", src, "-o", str(obj)], cwd=SRC, check=True)


def _compile_all(sources: list[str], flags: list[str], prefix: Path) -> list[Path]:
    objs = []
    for i, src in enumerate(sources):
        obj = prefix.with_name(f"{prefix.name}{i:02d}.o")
        _compile(src, obj, flags)
        objs.append(obj)
    return objs


def _link(objs: list[Path], script: str, out: Path) -> None:
    subprocess.run(["ld", *LDFLAGS, "-T", str(SRC / script), "-o", str(out),
                    *map(str, objs)], check=True)


def build(out_dir: Path) -> dict[str, object]:
    """Build both images into out_dir and return the build-info record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ftracelab-build-") as tmp:
        objdir = Path(tmp)
        _link(_compile_all(KERNEL_SOURCES, KERNEL_CFLAGS, objdir / "k"), "kernel.lds",
              out_dir / "vmlinux")
        _link(_compile_all(USER_SOURCES, USER_CFLAGS, objdir / "u"), "user/user.lds",
              out_dir / "user.elf")
    info: dict[str, object] = {
        "toolchain": toolchain(),
        "sha256": {name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
                   for name in OUTPUTS},
    }
    (out_dir / "build-info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES,
                        help="output folder (default: the package's images/)")
    args = parser.parse_args(argv)
    if shutil.which("gcc") is None or shutil.which("ld") is None:
        parser.error("gcc and GNU ld are needed to rebuild the mini-kernel")
    info = build(args.out)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
