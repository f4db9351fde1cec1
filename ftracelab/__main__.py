"""Command line: ``python -m ftracelab lab`` opens JupyterLab on notebooks/,
``python -m ftracelab demo`` boots the lab headless and prints what it sees."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def _find_notebooks() -> Path | None:
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (base / "notebooks").is_dir():
            return base / "notebooks"
    return None


def demo() -> int:
    """Boot, show the boot-time conversion and one int3 text poke, run workloads on the SMP kernel."""
    import time

    from .arch.x86_64.insn import NOP5, gen_call
    from .lab import Lab

    t0 = time.perf_counter()
    lab = Lab(cpus=2, seed=0)
    boot_s = time.perf_counter() - t0
    log = lab.ftrace.boot_log
    print(f"Booted the mini-kernel on {lab.cpus} emulated CPUs in {boot_s * 1000:.0f} ms.")
    print(f"ftrace_init: {len(lab.ftrace.records)} fentry call sites converted to NOPs, e.g.:")
    for entry in log[:3]:
        print(f"  {entry}")
    print("\nvfs_read as linked (the ELF image):")
    print(_head(lab.disassemble("vfs_read", source="image"), 3))
    print("vfs_read now (live memory):")
    print(_head(lab.disassemble("vfs_read"), 3))

    afs = lab.tracefs.read("available_filter_functions")
    assert isinstance(afs, str)
    print(f"available_filter_functions: {len(afs.splitlines())} functions "
          f"(first: {', '.join(afs.splitlines()[:4])} ...)\n")

    rec = lab.run("cat", path="/etc/passwd", loops=3)
    print(f"run cat /etc/passwd x3: {rec.syscalls} syscalls, {rec.function_calls} kernel "
          f"function calls, {rec.virtual_ns} ns of virtual time")
    print(f"SMP workloads with their default parameters, on {lab.cpus} CPUs:")
    for name in ("fork-storm", "sleep", "lock-contention"):
        rec = lab.run(name)
        print(f"  {name:<15} {rec.syscalls:>4} syscalls, {rec.function_calls:>6,} function calls, "
              f"{rec.context_switches:>3} context switches, {rec.interrupts:>3} interrupts, "
              f"{rec.tasks:>2} tasks, {rec.virtual_ns:>9,} ns virtual")
    print()

    site = lab.fentry_site("vfs_read")
    poke = lab.text_poke("vfs_read", gen_call(site, lab.symbol("ftrace_stub")))
    print(f"int3 text poke of vfs_read's fentry site {site:#x} to 'call ftrace_stub':")
    print(f"  {poke.step()}")
    rec = lab.run("cat", path="/etc/motd")
    print(f"  (ran cat while int3 is planted: the int3 handler emulated the new call "
          f"{poke.int3_hits} times)")
    print(f"  {poke.step()}")
    print(f"  {poke.step()}")
    print(_head(lab.disassemble("vfs_read"), 2))
    lab.text_poker.poke(site, NOP5)

    print("\nThe function tracer, as from a shell:")
    for path, value in (("set_ftrace_filter", "vfs_* ksys_*"), ("current_tracer", "function"),
                        ("options/func_stack_trace", "0")):
        lab.tracefs.write(path, value)
        print(f"  echo '{value}' > {path}")
    print(f"  vfs_read's site now: {_head(lab.disassemble('vfs_read'), 2).splitlines()[1].strip()}")
    lab.run("cat", path="/etc/motd")
    lab.run("fork-storm", loops=1, tasks=2)
    text = lab.tracefs.read("trace")
    assert isinstance(text, str)
    print("  cat trace:")
    print("".join("    " + line for line in text.splitlines(keepends=True)[:18]))
    df = lab.trace().df_events()
    print(f"lab.trace().df_events(): {len(df)} events; calls per function:")
    print(df["func"].value_counts().head(6).to_string())
    return 0


def _head(text: str, n: int) -> str:
    return "".join(text.splitlines(keepends=True)[:n])


def lab(extra: list[str]) -> int:
    notebooks = _find_notebooks()
    if notebooks is None:
        print("No notebooks/ folder here: run this from a clone of the ftracelab repository.",
              file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={notebooks}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")     # containers and Binder-like sandboxes run as root
    return subprocess.call([*cmd, *extra])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftracelab", description=__doc__)
    parser.add_argument("command", choices=["lab", "demo"], nargs="?", default="lab",
                        help="lab: open JupyterLab on notebooks/ (default); demo: headless demo")
    args, extra = parser.parse_known_args(argv)
    return demo() if args.command == "demo" else lab(extra)


if __name__ == "__main__":
    raise SystemExit(main())
