"""Static trace events of the mini-kernel (trace/trace_events.py, kernel/trace/trace_events.c):
their format files against a real 6.12's, enabling through the events/ tree and set_event
with the kernel's errnos, the records the tracepoints write, and the trace text (golden)."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ftracelab import Lab

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-traces" / "linux-6.12"
REAL_FORMATS = {
    "sched/sched_switch": REAL / "meta" / "events" / "sched" / "sched_switch" / "format",
    "sched/sched_wakeup": REAL / "meta" / "events" / "sched" / "sched_wakeup" / "format",
    "sched/sched_waking": REAL / "meta" / "events" / "sched" / "sched_waking" / "format",
    "syscalls/sys_enter_openat": REAL / "g_events" / "events" / "syscalls" / "sys_enter_openat" / "format",
    "syscalls/sys_exit_openat": REAL / "g_events" / "events" / "syscalls" / "sys_exit_openat" / "format",
    "syscalls/sys_enter_read": REAL / "g_events" / "events" / "syscalls" / "sys_enter_read" / "format",
    "syscalls/sys_exit_read": REAL / "g_events" / "events" / "syscalls" / "sys_exit_read" / "format",
    "raw_syscalls/sys_enter": REAL / "meta" / "events" / "raw_syscalls" / "sys_enter" / "format",
    "raw_syscalls/sys_exit": REAL / "meta" / "events" / "raw_syscalls" / "sys_exit" / "format",
}


def _without_id(text: str) -> str:
    return re.sub(r"^ID: \d+\n", "", text, flags=re.M)


@pytest.mark.parametrize("path", sorted(REAL_FORMATS))
def test_formats_are_the_kernels(booted_lab: Lab, path: str) -> None:
    real = REAL_FORMATS[path]
    if not real.exists():
        pytest.skip(f"{real} is not here")
    mine = str(booted_lab.tracefs.read(f"events/{path}/format"))
    assert _without_id(mine) == _without_id(real.read_text())


def test_enable_files_and_set_event(lab: Lab) -> None:
    fs = lab.tracefs
    assert fs.read("events/enable") == "0\n" and fs.read("set_event") == ""
    assert fs.read("available_events").splitlines()[-1] == "sched:sched_process_fork"    # newest first
    fs.write("events/sched/sched_switch/enable", "1")
    assert fs.read("events/sched/enable") == "X\n" and fs.read("events/enable") == "X\n"
    assert fs.read("set_event") == "sched:sched_switch\n"
    fs.append("set_event", "irq: :sys_enter_openat")          # a system, an event of any system
    assert set(str(fs.read("set_event")).split()) == {
        "sched:sched_switch", "irq:softirq_entry", "irq:softirq_exit", "irq:softirq_raise",
        "irq:irq_handler_entry", "irq:irq_handler_exit", "syscalls:sys_enter_openat"}
    assert fs.read("events/irq/enable") == "1\n"
    fs.append("set_event", "!irq:softirq_raise")
    assert fs.read("events/irq/softirq_raise/enable") == "0\n"
    for path, bad in (("events/sched/sched_switch/enable", "2"), ("events/sched/enable", "x"),
                      ("set_event", "no_such_event"), ("set_event", "sched:sched_switc")):
        with pytest.raises(OSError) as exc:
            fs.append(path, bad)
        assert exc.value.errno == errno.EINVAL
    assert fs.read("events/sched/sched_switch/enable") == "1\n"        # failed writes change nothing
    fs.write("set_event", "sched_wakeup")                     # an opening write clears the rest first
    assert fs.read("set_event") == "sched:sched_wakeup\n"
    fs.write("events/enable", "1")
    assert fs.read("events/enable") == "1\n"
    fs.write("events/enable", "0")
    assert fs.read("set_event") == ""
    assert int(str(fs.read("events/sched/sched_switch/id"))) >= 20


def test_records_carry_what_happened(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_event", "sched:* syscalls:sys_enter_openat syscalls:sys_exit_openat "
             "syscalls:sys_exit_read irq:softirq_entry irq:softirq_exit raw_syscalls:sys_enter")
    assert lab.run("slow-read", loops=2).completed
    df = lab.trace().df_events()
    events = set(df["event"].astype(str))
    assert {"sched_switch", "sched_waking", "sched_wakeup", "sched_wakeup_new", "sched_process_fork",
            "sched_process_exit", "sys_enter_openat", "sys_exit_openat", "sys_exit_read",
            "softirq_entry", "softirq_exit", "sys_enter"} <= events
    fork = df[df["event"] == "sched_process_fork"].iloc[0]
    reader = int(fork["child_pid"])
    opens = df[(df["event"] == "sys_enter_openat") & (df["pid"] == reader)]
    assert len(opens) >= 1 and (opens["dfd"] == 0xFFFFFF9C).all()         # AT_FDCWD, an int
    reads = df[(df["event"] == "sys_exit_read") & (df["pid"] == reader)]
    assert (reads["ret"] >= 0).all() and reads["ret"].max() > 0
    raw = df[(df["event"] == "sys_enter") & (df["pid"] == reader)]
    assert set(raw["id"].astype(int)) >= {0, 257}                   # read, openat
    switch = df[df["event"] == "sched_switch"]
    assert ((switch["prev_pid"] == reader) | (switch["next_pid"] == reader)).any()
    assert (switch.loc[switch["prev_pid"] == reader, "prev_state"] >= 0).all()
    soft = df[df["event"].isin(["softirq_entry", "softirq_exit"])]
    assert set(soft["vec"].astype(int)) == {4}                            # BLOCK_SOFTIRQ
    assert (soft["common_flags"] & 0x10).all()                            # in softirq context
    wakes = df[df["event"] == "sched_wakeup"]
    assert (wakes["field_pid"] == reader).any()                           # the disk woke the reader


def test_disabled_events_write_nothing(lab: Lab) -> None:
    assert lab.run("cat").completed
    assert all(lab.trace_array.events.written(ev) == 0 for ev in lab.trace_array.events.events)
    assert lab.trace().df_events().empty


def test_event_text_golden(lab: Lab, golden: Callable[[str, str], None]) -> None:
    lab.tracefs.write("set_event", "sched:sched_switch sched:sched_wakeup sched:sched_waking "
                      "sched:sched_process_fork sched:sched_process_exit syscalls:sys_enter_openat "
                      "syscalls:sys_exit_openat syscalls:sys_enter_read syscalls:sys_exit_read "
                      "irq_vectors:local_timer_entry")
    assert lab.run("cat").completed
    assert lab.run("fork-storm", loops=1, tasks=2).completed
    text = str(lab.tracefs.read("trace"))
    golden("events_trace.txt", text)
    lab.tracefs.write("options/raw", "1")
    assert all(re.match(r"\d+ \d \d+ type: \d+$", line) for line in
               str(lab.tracefs.read("trace")).splitlines() if not line.startswith("#"))


def test_irq_handler_events_from_the_uart(lab: Lab, golden: Callable[[str, str], None]) -> None:
    """serial-write: IRQ 4 (ttyS0) fires when the UART's FIFO drains; each handler
    run sits between irq_handler_entry and irq_handler_exit in hardirq context, and
    the wake-up of the sleeping writer comes from inside it."""
    fs = lab.tracefs
    for ev in ("irq/irq_handler_entry", "irq/irq_handler_exit", "sched/sched_wakeup"):
        fs.write(f"events/{ev}/enable", "1")
    rec = lab.run("serial-write", size=600, chunk=300)
    assert rec.completed
    df = lab.trace().df_events()
    entries, exits = df[df.event == "irq_handler_entry"], df[df.event == "irq_handler_exit"]
    assert len(entries) == len(exits) == 600 // 16 + 1           # one per FIFO load, and the last
    assert set(entries["irq"]) == {4} and set(entries["name"]) == {"ttyS0"} and set(exits["ret"]) == {1}
    lines = [line for line in str(fs.read("trace")).splitlines() if not line.startswith("#")]
    assert all(" d.h" in line or " dnh" in line for line in lines if "irq_handler" in line)
    wakeups = [i for i, line in enumerate(lines) if "sched_wakeup: comm=serial-write" in line]
    assert wakeups and all("irq_handler_entry" in lines[i - 1] for i in wakeups)
    assert lab.machine.read(lab.machine.symbols["lab_irq_armed"], 4) == bytes(4)    # nothing left
    golden("irq_handler_events.txt", "\n".join(lines[:12]) + "\n")


def test_stacktrace_option_follows_each_event(lab: Lab) -> None:
    """options/stacktrace: after every event's record a kernel_stack from the
    tracepoint's caller up (sched_switch: __schedule first; a syscall event:
    do_syscall_64, entry_SYSCALL_64_after_hwframe), in the event's own context."""
    fs = lab.tracefs
    fs.write("options/stacktrace", "1")
    fs.write("set_event", "sched:sched_switch syscalls:sys_enter_read")
    assert lab.run("cat").completed
    df = lab.trace().df_events()
    events = df["event"].astype(str).tolist()
    assert events[1::2] == ["kernel_stack"] * (len(events) // 2) and "kernel_stack" not in events[0::2]
    first = {ev: tuple(lab.kallsyms.format_short(a) for a in df.iloc[i + 1]["caller"])
             for i, ev in enumerate(events) if ev != "kernel_stack"}
    assert first["sched_switch"][0] == "__schedule"
    assert first["sys_enter_read"] == ("do_syscall_64", "entry_SYSCALL_64_after_hwframe")
    pairs = df.iloc[0::2][["common_flags", "common_preempt_count"]].to_numpy()
    assert (pairs == df.iloc[1::2][["common_flags", "common_preempt_count"]].to_numpy()).all()
    fs.write("options/stacktrace", "0")
    fs.write("trace", "")
    assert lab.run("cat").completed and "kernel_stack" not in set(lab.trace().df_events()["event"])


def test_fields_option_prints_every_field(lab: Lab) -> None:
    """options/fields (print_event_fields()): every entry as ``name:`` and its own fields
    by filter type and size: strings as text, 8-byte values as 0x%llx (%lld), function
    addresses (__field_fn) as %pS, a print entry's char buf[] of size 0 as nothing."""
    fs = lab.tracefs
    fs.write("set_event", "sched:sched_switch syscalls:sys_enter_read")
    fs.write("set_ftrace_filter", "ksys_read")
    fs.write("current_tracer", "function")
    fs.write("trace_marker", "hi")
    assert lab.run("cat").completed
    fs.write("options/fields", "1")
    text = str(fs.read("trace"))
    assert re.search(r": print: ip=0xffffffff[0-9a-f]+ \(-\d+\) buf=\n", text)
    assert (": sched_switch: prev_comm=swapper/0 prev_pid=0x0 (0) prev_prio=0x78 (120) prev_state=0x0 (0)"
            " next_comm=cat next_pid=0x65 (101) next_prio=0x78 (120)\n") in text
    assert (": sys_enter_read: __syscall_nr=0x0 (0) fd=0x1 (1) buf=(0x0000000000403020)"
            " count=0x1000 (4096)\n") in text
    assert re.search(r": function: ip=ksys_read\+0x4/0x\w+ parent_ip=do_syscall_64\+0x\w+/0x\w+\n", text)
