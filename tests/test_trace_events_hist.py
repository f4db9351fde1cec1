"""Hist triggers (trace/trace_events_hist.py): the grammar and error_log entries of
6.12's trace_events_hist.c, the hist file's text (byte for byte against a real 6.12
capture when ../shared/real-traces is present), the map's limits, pause/cont/clear,
and the lab's events aggregated end to end."""

from __future__ import annotations

import errno
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.formats.format_file import parse_format
from ftracelab.trace.trace_events_filter import EventFilter
from ftracelab.trace.trace_events_hist import HistContext, HistError, HistTrigger, parse_hist

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-traces" / "linux-6.12" / "g_events"
TRIGGER = "events/syscalls/sys_enter_read/trigger"
HIST = "events/syscalls/sys_enter_read/hist"
READ_FORMAT = """name: sys_enter_read
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:char * buf;\toffset:24;\tsize:8;\tsigned:0;
\tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;

print fmt: "fd: 0x%08lx", ((unsigned long)(REC->fd))
"""


def _ctx(log: list[tuple[str, int, int]] | None = None) -> HistContext:
    fmt = parse_format(READ_FORMAT, system="syscalls")
    return HistContext(fmt, lambda cmd, code, pos: (log if log is not None else []).append((cmd, code, pos)),
                       lambda text: EventFilter(text, None), lambda nr: {0: "sys_read"}.get(nr),
                       lambda addr, off: f"sym_{addr:x}" + ("+0x0/0x10" if off else ""))


def _rec(pid: int, fd: int = 3, count: int = 4096) -> bytes:
    return struct.pack("<HBBiiiQQQ", 700, 0, 0, pid, 0, 0, fd, 0, count)


# ---- the grammar and the kernel's errors ----------------------------------------------

ERRORS = [
    # (written after "hist:", errno, error_log message or None, caret in "hist:..." )
    ("keys=nofield", errno.EINVAL, "Couldn't find field", 10),
    ("keys=fd.foo", errno.EINVAL, "Invalid field modifier", 13),
    ("keys=fd:sort=", errno.EINVAL, "Empty assignment", 13),
    ("keys=fd:sort=foo", errno.EINVAL, "Sort field must be a key or a val", 18),
    ("keys=fd:sort=fd.up", errno.EINVAL, "Invalid sort modifier", 21),
    ("keys=fd:sort=hitcount,fd,count", errno.EINVAL, "Too many sort fields (Max = 2)", 13),
    ("keys=fd:sort=,fd", errno.EINVAL, "Empty sort field", 13),
    ("keys=fd.percent", errno.EINVAL, "Invalid field modifier", 13),
    ("keys=fd:vals=count.log2", errno.EINVAL, "Invalid field modifier", 18),
    ("keys=fd:vals=hitcount.percent", errno.EINVAL, "Invalid field modifier", 18),   # 6.12 refuses it
    ("keys=fd:nohitcount", errno.ENOENT, "Non-hitcount value is required for 'nohitcount'", 0),
    ("keys=fd.buckets=0", errno.EINVAL, "Invalid field modifier", 21),       # errpos("0")
    ("keys=count.buckets", errno.EINVAL, "Invalid field modifier", 0),       # errpos(""): 0
    ("keys=fd:cont", errno.ENOENT, "Can't clear or continue a nonexistent hist trigger", 0),
    ("keys=fd:vals=2x", errno.EINVAL, "Expecting numeric literal", 18),
    ("keys=fd.sym-offset.x", errno.EINVAL, "Couldn't find field", 24),      # SYSTEM.EVENT.VAR: "x"
    ("keys=fd:vals=count.sym-offset", errno.EINVAL, "Invalid field modifier", 0),   # symXoffset: no strstr
    ("keys=comm", errno.EINVAL, "Couldn't find field", 10),                  # no comm for hist
    ("keys=common_pid.execname,fd.execname", errno.EINVAL, "Invalid field modifier", 21),   # the first one
    ("vals=count", errno.EINVAL, None, 0),                                   # no keys: nothing logged
    ("keys=fd:size=3", errno.EINVAL, None, 0),
    ("keys=fd:size=262144", errno.EINVAL, None, 0),
    ("keys=fd,count,buf,common_pid", errno.EINVAL, None, 0),
    ("keys=fd:vals=count,buf,common_pid", errno.EINVAL, None, 0),
    ("keys=fd:bogus", errno.EINVAL, None, 0),
    ("keys=fd:", errno.EINVAL, None, 0),
    ("keys=fd if", errno.EINVAL, None, 0),
    ("if fd == 1", errno.EINVAL, None, 0),
    ("keys=__syscall_nr.syscall,fd,count,buf", errno.EINVAL, None, 0),
    ("keys=ts0=common_timestamp", errno.EINVAL, "Couldn't find field", 10),
    ("keys=fd:ts0=common_timestamp", errno.EOPNOTSUPP, None, 0),
    ("keys=fd:vals=count+1", errno.EOPNOTSUPP, None, 0),
    ("keys=fd:onmax(count).save(fd)", errno.EOPNOTSUPP, None, 0),
    ("keys=fd:name=h1", errno.EOPNOTSUPP, None, 0),
]


@pytest.mark.parametrize(("param", "code", "message", "caret"), ERRORS)
def test_rejected_hist_commands(booted_lab: Lab, param: str, code: int, message: str | None,
                                caret: int) -> None:
    fs = booted_lab.tracefs
    fs.write("error_log", "")
    with pytest.raises(OSError) as exc:
        fs.append(TRIGGER, "hist:" + param)
    assert exc.value.errno == code
    log = str(fs.read("error_log")).splitlines()
    if message is None:
        assert log == []
        return
    assert log[-3].endswith(f"] hist:syscalls:sys_enter_read: error: {message}")
    assert log[-2] == f"  Command: hist:{param}"
    assert log[-1] == " " * (11 + caret) + "^"
    assert str(fs.read(TRIGGER)).startswith("# Available triggers:")          # nothing registered


ACCEPTED = [
    ("keys=common_pid.execname:vals=hitcount:sort=hitcount.descending",
     "hist:keys=common_pid.execname:vals=hitcount:sort=hitcount.descending:size=2048 [active]"),
    ("key=fd.hex,count.log2:values=count,2:sort=count.descending,fd:size=200",
     "hist:keys=fd.hex,count.log2:vals=hitcount,count,2:sort=count.descending,fd.hex:size=256 [active]"),
    ("keys=count.buckets=1024:vals=hitcount,count.hex:nohitcount",
     "hist:keys=count.buckets=1024:vals=count.hex:sort=hitcount:size=2048:nohitcount [active]"),
    ("keys=stacktrace,cpu:pause",
     "hist:keys=common_stacktrace,common_cpu:vals=hitcount:sort=hitcount:size=2048 [paused]"),
    ("keys=__syscall_nr.syscall,buf.sym-offset if fd == 0",
     "hist:keys=__syscall_nr.syscall,buf.sym-offset:vals=hitcount:sort=hitcount:size=2048 if fd == 0"
     " [active]"),
    ("keys=fd:vals=hitcount,hitcount",
     "hist:keys=fd:vals=hitcount,hitcount:sort=hitcount:size=2048 [active]"),
]


@pytest.mark.parametrize(("param", "line"), ACCEPTED)
def test_accepted_hist_commands_read_back(lab: Lab, param: str, line: str) -> None:
    fs = lab.tracefs
    fs.write(TRIGGER, "hist:" + param)
    assert fs.read(TRIGGER) == line + "\n"
    assert fs.read("events/syscalls/sys_enter_read/enable") == "0*\n"        # soft mode
    assert str(fs.read(HIST)).startswith(f"# event histogram\n#\n# trigger info: {line}\n#\n\n")
    fs.append(TRIGGER, "!hist:" + param)
    assert str(fs.read(TRIGGER)).startswith("# Available triggers:")
    assert fs.read(HIST) == "" and fs.read("events/syscalls/sys_enter_read/enable") == "0\n"


# ---- the map: limits, sorting, pause/cont/clear ----------------------------------------

def test_full_map_drops_new_keys() -> None:
    h = parse_hist("keys=common_pid:size=128", _ctx())
    for pid in range(200):
        h.update(_rec(pid), 0, 0, "t", [])
    h.update(_rec(5), 0, 0, "t", [])                       # an existing key still counts
    text = h.show(0)
    assert text.endswith("\nTotals:\n    Hits: 129\n    Entries: 128\n    Dropped: 72\n")
    assert "{ common_pid:          5 } hitcount:          2\n" in text


def test_sorting_and_the_signed_key_compare() -> None:
    h = parse_hist("keys=common_pid:vals=count:sort=count.descending,common_pid", _ctx())
    for pid, count in ((-1, 10), (7, 10), (3, 50)):
        h.update(_rec(pid, count=count), 0, 0, "t", [])
    rows = [line for line in h.show(0).splitlines() if line.startswith("{")]
    # count 50 first; among equal counts the key compares as the s32 it is: -1 < 7;
    # the key prints as the u64 the kernel stored (sign-extended)
    assert [r.split("}")[0] for r in rows] == ["{ common_pid:          3 ",
                                               "{ common_pid: 18446744073709551615 ",
                                               "{ common_pid:          7 "]
    assert rows[0].endswith("} hitcount:          1  count:         50")


def test_pause_cont_clear_and_eexist(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write(TRIGGER, "hist:keys=common_pid")
    fs.append(TRIGGER, "hist:keys=common_pid:size=4096:pause")       # same histogram: paused
    assert fs.read(TRIGGER) == "hist:keys=common_pid:vals=hitcount:sort=hitcount:size=2048 [paused]\n"
    assert lab.run("cat").completed
    assert "Hits: 0\n" in str(fs.read(HIST))
    fs.append(TRIGGER, "hist:keys=common_pid:cont")
    assert lab.run("cat").completed
    hits = int(re.search(r"Hits: (\d+)", str(fs.read(HIST))).group(1))   # type: ignore[union-attr]
    assert hits > 0
    with pytest.raises(OSError) as exc:
        fs.append(TRIGGER, "hist:keys=common_pid:size=256")               # size is not compared
    assert exc.value.errno == errno.EEXIST
    fs.append(TRIGGER, "hist:keys=common_pid if fd == 0")                  # a filter differs: a second one
    assert str(fs.read(HIST)).count("# event histogram") == 2
    fs.append(TRIGGER, "hist:keys=common_pid:clear")
    older = str(fs.read(HIST)).split("\n\n# event histogram")[1]           # newest first
    assert "[active]" in older and older.endswith("Hits: 0\n    Entries: 0\n    Dropped: 0\n")


def test_hist_counts_while_tracing_is_off(lab: Lab) -> None:
    """The record goes to the triggers even when the ring buffer takes nothing
    (trace_event_buffer_lock_reserve()'s temp buffer for EVENT_FILE_FL_TRIGGER_COND)."""
    fs = lab.tracefs
    fs.write("tracing_on", "0")
    fs.write(TRIGGER, "hist:keys=fd:vals=count if count > 1")
    assert lab.run("cat").completed
    text = str(fs.read(HIST))
    assert re.search(r"\{ fd: +\d+ \} hitcount: +\d+  count: +\d+\n", text)
    assert lab.trace().df_events().empty


def test_lab_histograms_golden(lab: Lab, golden: Callable[[str, str], None]) -> None:
    fs = lab.tracefs
    fs.write(TRIGGER, "hist:keys=common_pid.execname:vals=hitcount:sort=hitcount.descending")
    fs.write("events/raw_syscalls/sys_enter/trigger", "hist:keys=id.syscall:vals=hitcount:sort=id")
    fs.write("events/syscalls/sys_exit_read/trigger",
             "hist:keys=ret.log2,common_cpu:vals=ret:sort=common_cpu,ret.descending")
    fs.write("events/sched/sched_switch/trigger", "hist:keys=common_stacktrace:sort=hitcount.descending")
    assert lab.run("cat").completed and lab.run("slow-read").completed
    text = "".join(f"== {p}\n{fs.read(p)!s}" for p in (
        HIST, "events/raw_syscalls/sys_enter/hist", "events/syscalls/sys_exit_read/hist",
        "events/sched/sched_switch/hist"))
    assert "{ id: sys_read                      [  0] } hitcount:" in text
    golden("hist_triggers.txt", text)


# ---- against the real kernel's text -----------------------------------------------------

@pytest.mark.skipif(not (REAL / "hist.sys_enter_read.txt").exists(), reason="no real 6.12 capture")
def test_hist_text_is_the_kernels_byte_for_byte() -> None:
    """The capture's histogram re-rendered from its own numbers gives the same bytes;
    the same command reads back the same trigger line."""
    real = (REAL / "hist.sys_enter_read.txt").read_text()
    h = parse_hist("keys=common_pid.execname:vals=hitcount:sort=hitcount.descending", _ctx())
    assert h.line() == (REAL / "trigger.sys_enter_read.txt").read_text()
    for m in re.finditer(r"^\{ common_pid: (.{16})\[ *(\d+)\] \} hitcount: +(\d+)$", real, re.M):
        comm, pid, hits = m.group(1).rstrip(), int(m.group(2)), int(m.group(3))
        for _ in range(hits):
            h.update(_rec(pid), 0, 0, comm, [])
    h.drops = int(re.search(r"Dropped: (\d+)", real).group(1))   # type: ignore[union-attr]
    assert h.show(0) == real


# ---- the grammar's properties -----------------------------------------------------------

FIELDS = ["fd", "count", "buf", "common_pid", "__syscall_nr", "common_cpu", "cpu"]
KEY_MODS = ["", ".hex", ".sym", ".sym-offset", ".log2", ".buckets=16", ".syscall"]


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(KEY_MODS)), min_size=1, max_size=3),
       vals=st.lists(st.sampled_from(["count", "fd", "count.hex", "hitcount", "7"]), max_size=2),
       sort=st.lists(st.sampled_from(["hitcount", "count", "fd.descending", "hitcount.descending"]),
                     max_size=2),
       size=st.sampled_from([None, 128, 500, 4096]))
def test_a_trigger_line_parses_back_to_itself(keys: list[tuple[str, str]], vals: list[str],
                                              sort: list[str], size: int | None) -> None:
    """Whatever the parser accepts prints as a line that parses to the same line."""
    param = "keys=" + ",".join(f + m for f, m in keys)
    param += (":vals=" + ",".join(vals)) if vals else ""
    param += (":sort=" + ",".join(sort)) if sort else ""
    param += f":size={size}" if size else ""
    try:
        h = parse_hist(param, _ctx())
    except HistError as exc:
        assert exc.errno in (errno.EINVAL, errno.ENOENT)
        return
    line = h.line()
    sort = line.split(":sort=")[1].split(":")[0].split(",")
    # the kernel prints a sort key with its modifier (fd.hex.descending), which it cannot parse back
    assume(all(s.removesuffix(".descending").count(".") == 0 for s in sort))
    again = parse_hist(line.removeprefix("hist:").removesuffix(" [active]\n"), _ctx())
    assert again.line() == line


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="keysvalortiz=:,.-+$ 0123456789_hcnfdubpxm", max_size=40))
def test_any_text_is_a_trigger_or_a_hist_error(text: str) -> None:
    log: list[tuple[str, int, int]] = []
    try:
        parse_hist(text, _ctx(log))
    except HistError as exc:
        for cmd, code, pos in log:                        # every logged caret lies in the command
            assert cmd == "hist:" + text and 0 <= pos <= len(cmd) and code > 0
        assert exc.errno in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP, errno.ENOMEM)


def test_update_sums_wrap_at_64_bits() -> None:
    h: HistTrigger = parse_hist("keys=fd:vals=count", _ctx())
    for _ in range(2):
        h.update(_rec(1, count=(1 << 64) - 1), 0, 0, "t", [])
    assert "count: 18446744073709551614\n" in h.show(0)


def test_hist_on_a_kprobe_event_arms_its_probe(lab: Lab) -> None:
    """A trigger puts the probe event in soft mode, which registers its kprobe
    (trace_event_enable_disable(file, 1, 1)); the event is then busy."""
    fs = lab.tracefs
    fs.write("kprobe_events", "p:myread vfs_read count=%dx:u64")
    fs.write("events/kprobes/myread/trigger", "hist:keys=count.log2:sort=count")
    assert fs.read("events/kprobes/myread/enable") == "0*\n"
    assert lab.run("slow-read").completed
    assert "{ count: ~ 2^10 } hitcount:         18\n" in str(fs.read("events/kprobes/myread/hist"))
    with pytest.raises(OSError) as exc:
        fs.append("kprobe_events", "-:myread")
    assert exc.value.errno == errno.EBUSY
    fs.append("events/kprobes/myread/trigger", "!hist:keys=count.log2:sort=count")
    fs.append("kprobe_events", "-:myread")
    assert not fs.exists("events/kprobes/myread")


def test_a_hist_trigger_shows_itself_in_a_notebook() -> None:
    h = parse_hist("keys=common_pid.execname", _ctx())
    h.update(_rec(7), 0, 0, "a<b", [])
    assert "a&lt;b" in h._repr_html_() and "# event histogram" in h._repr_html_()
