"""The snapshot (trace/trace_snapshot.py and the image's tracing_snapshot_instance_cond()):
the snapshot file's commands, help and errno, the swap (tracing_on inherited),
the snapshot trigger (the triggering record lands in the snapshot) and the
snapshot function command, and a snapshot taken with no spare allocated."""

from __future__ import annotations

import errno

import pytest

from ftracelab import Lab
from ftracelab.formats.ring_buffer_page import decode_pages
from ftracelab.trace.trace_snapshot import SNAPSHOT_HELP, SNAPSHOT_PERCPU_HELP


def _body(text: str | bytes) -> list[str]:
    return [line for line in str(text).splitlines() if not line.startswith("#")]


def test_snapshot_file(lab: Lab) -> None:
    fs = lab.tracefs
    assert fs.read("snapshot") == "# tracer: nop\n#\n#\n# * Snapshot is freed *\n#\n" + SNAPSHOT_HELP
    fs.write("set_ftrace_filter", "vfs_read ksys_read")
    fs.write("current_tracer", "function")
    assert lab.run("cat").completed
    before = _body(fs.read("trace"))
    assert len(before) == 6
    fs.write("snapshot", "1")
    assert _body(fs.read("snapshot")) == before and _body(fs.read("trace")) == []
    assert "entries-in-buffer/entries-written: 6/6" in str(fs.read("snapshot"))
    assert lab.run("cat").completed
    assert _body(fs.read("snapshot")) == before and len(_body(fs.read("trace"))) == 6
    fs.write("snapshot", "2")                                 # clear, keep allocated
    assert fs.read("snapshot") == "# tracer: function\n#\n#\n# * Snapshot is allocated *\n#\n" + SNAPSHOT_HELP
    assert len(_body(fs.read("trace"))) == 6
    fs.write("snapshot", "0")
    assert "Snapshot is freed" in str(fs.read("snapshot"))
    for bad in ("x", "-1", "1x", ""):
        with pytest.raises(OSError) as exc:
            fs.write("snapshot", bad)
        assert exc.value.errno == errno.EINVAL


def test_swap_inherits_tracing_on(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("current_tracer", "function")
    fs.write("tracing_on", "0")
    fs.write("snapshot", "1")
    assert fs.read("tracing_on") == "0\n"
    assert lab.run("getpid", loops=3).completed and _body(fs.read("trace")) == []
    fs.write("tracing_on", "1")
    assert lab.run("getpid", loops=3).completed and _body(fs.read("trace"))


def test_snapshot_trigger(lab: Lab) -> None:
    """snapshot:1 on sys_exit_read when read returns 0: the snapshot ends with that
    record, the live buffer holds what came after; the trigger armed the snapshot."""
    fs = lab.tracefs
    assert str(fs.read("events/syscalls/sys_exit_read/trigger")).startswith("# Available triggers:\n")
    fs.write("events/syscalls/sys_exit_read/trigger", "snapshot:1 if ret == 0")
    assert fs.read("events/syscalls/sys_exit_read/trigger") == "snapshot:count=1 if ret == 0\n"
    assert "Snapshot is allocated" in str(fs.read("snapshot"))
    with pytest.raises(OSError) as exc:
        fs.append("events/syscalls/sys_exit_read/trigger", "snapshot")
    assert exc.value.errno == errno.EEXIST
    fs.write("events/syscalls/enable", "1")
    assert lab.run("cat").completed
    snap, live = _body(fs.read("snapshot")), _body(fs.read("trace"))
    assert snap[-1].endswith("sys_read -> 0x0") and "sys_read -> 0x0" not in "".join(live)
    assert live and all("sys_close" in line or "sys_exit_group" in line for line in live)
    assert fs.read("events/syscalls/sys_exit_read/trigger") == "snapshot:count=0 if ret == 0\n"
    fs.append("events/syscalls/sys_exit_read/trigger", "!snapshot")
    assert lab.trace_array.snapshot.armed == 0


def test_snapshot_function_command_and_no_spare(lab: Lab) -> None:
    """ksys_read:snapshot:1 swaps at the first ksys_read; with the spare freed
    under it, a snapshot writes the kernel's two lines and stops tracing."""
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "ksys_read:snapshot:1")
    assert str(fs.read("set_ftrace_filter")).splitlines()[1] == "ksys_read:snapshot:count=1"
    fs.write("events/syscalls/sys_enter_openat/enable", "1")
    assert lab.run("cat").completed
    snap = _body(fs.read("snapshot"))                      # cat's two opens came before
    assert len(snap) == 2 and all("sys_openat" in line for line in snap) and not _body(fs.read("trace"))
    assert str(fs.read("set_ftrace_filter")).splitlines()[1] == "ksys_read:snapshot:count=0"
    fs.write("set_ftrace_filter", "ksys_read:snapshot")
    fs.write("snapshot", "0")
    fs.write("trace", "")
    assert lab.run("cat").completed
    lines = _body(fs.read("trace"))
    assert [line.split(": ", 1)[1] for line in lines[-2:]] == [
        "tracing_snapshot_instance_cond: *** SNAPSHOT NOT ALLOCATED ***",
        "tracing_snapshot_instance_cond: *** stopping trace here!   ***"]
    assert fs.read("tracing_on") == "0\n"


def test_per_cpu_snapshot_files(lab: Lab) -> None:
    """per_cpu/cpuN/snapshot: echo 1 swaps only that CPU's ring (update_max_tr_single()),
    echo 0 is EINVAL, another number empties that CPU's spare; the per-CPU help text;
    snapshot_raw hands out the spare's pages; with tracing off the swap does nothing."""
    fs = lab.tracefs
    help_text = str(fs.read("per_cpu/cpu0/snapshot"))
    assert "* Snapshot is freed *" in help_text and SNAPSHOT_PERCPU_HELP in help_text
    fs.write("set_ftrace_filter", "vfs_read ksys_read")
    fs.write("current_tracer", "function")
    assert lab.run("cat").completed
    live1 = _body(fs.read("per_cpu/cpu1/trace"))
    fs.write("per_cpu/cpu0/snapshot", "1")
    assert "cat-" in str(fs.read("per_cpu/cpu0/snapshot"))
    assert "* Snapshot is allocated *" in str(fs.read("per_cpu/cpu1/snapshot"))   # cpu1 untouched
    assert _body(fs.read("per_cpu/cpu0/trace")) == [] and _body(fs.read("per_cpu/cpu1/trace")) == live1
    with pytest.raises(OSError) as exc:
        fs.write("per_cpu/cpu0/snapshot", "0")
    assert exc.value.errno == errno.EINVAL
    raw = fs.read("per_cpu/cpu0/snapshot_raw")
    assert isinstance(raw, bytes) and len(decode_pages(raw, cpu=0)) == 6
    assert fs.read("per_cpu/cpu0/snapshot_raw") == b""                  # consumed
    assert lab.run("cat").completed
    fs.write("tracing_on", "0")
    fs.write("per_cpu/cpu0/snapshot", "1")                               # -EAGAIN: nothing swapped
    assert len(_body(fs.read("per_cpu/cpu0/trace"))) == 6
    fs.write("tracing_on", "1")
    fs.write("per_cpu/cpu0/snapshot", "1")
    assert len(_body(fs.read("per_cpu/cpu0/snapshot"))) == 6 and _body(fs.read("per_cpu/cpu0/trace")) == []
    fs.write("per_cpu/cpu0/snapshot", "2")                               # this CPU's spare emptied
    assert "* Snapshot is allocated *" in str(fs.read("per_cpu/cpu0/snapshot"))
