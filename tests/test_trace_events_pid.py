"""set_event_pid / set_event_notrace_pid (trace/trace_events_pid.py): the file's
write and read semantics, events kept only for the listed tasks (a sched_switch
when either side is), children following with options/event-fork, the notrace
list, probe events filtered too, and the image's bitmaps cleared with the lists."""

from __future__ import annotations

import errno

import pytest

from ftracelab import Lab
from ftracelab.trace.trace_events_pid import EVENT_FILE_FL_PID_FILTER


def _events(lab: Lab) -> list[tuple[str, int]]:
    df = lab.trace().df_events()
    return list(zip(df["event"].astype(str), df["pid"].astype(int), strict=True))


def _pid_filtered(lab: Lab) -> bool:
    ev = lab.trace_array.events.find("sched", "sched_switch")
    assert ev is not None
    return bool(lab.machine.read_u64(ev.file) & EVENT_FILE_FL_PID_FILTER)


def test_file_semantics(lab: Lab) -> None:
    fs = lab.tracefs
    assert fs.read("set_event_pid") == "" and fs.read("set_event_notrace_pid") == ""
    fs.write("set_event_pid", "300 0x10 12")
    assert fs.read("set_event_pid") == "12\n16\n300\n"                # sorted, 0x10 read as 16
    fs.append("set_event_pid", "7")
    assert fs.read("set_event_pid") == "7\n12\n16\n300\n"
    for bad in ("abc", "99999", "-1"):
        with pytest.raises(OSError) as exc:
            fs.append("set_event_pid", bad)
        assert exc.value.errno == errno.EINVAL
    assert fs.read("set_event_pid") == "7\n12\n16\n300\n"          # >>: untouched by a refusal
    with pytest.raises(OSError):
        fs.write("set_event_pid", "5 nope")                          # >: emptied, then refused
    assert fs.read("set_event_pid") == ""
    assert not _pid_filtered(lab)                                    # no list: no PID_FILTER
    fs.write("set_event_notrace_pid", "5")
    assert _pid_filtered(lab)
    fs.write("set_event_notrace_pid", "")
    assert not lab.trace_array.events.pids.active


def test_only_listed_tasks_and_their_switches(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_event", "sched:sched_switch syscalls:sys_enter_read")
    fs.write("set_event_pid", "102")                  # the second workload's task
    assert lab.run("cat").completed and lab.run("slow-read").completed
    events = _events(lab)
    assert {pid for ev, pid in events if ev == "sys_enter_read"} == {102}
    df = lab.trace().df_events()
    switches = df[df["event"] == "sched_switch"]
    assert len(switches) and all(102 in (p, n) for p, n in zip(switches["prev_pid"], switches["next_pid"],
                                                              strict=True))
    fs.write("trace", "")
    fs.write("set_event_notrace_pid", "103")          # both lists: 103 is in neither's favour
    fs.write("set_event_pid", "103 104")
    assert lab.run("cat").completed and lab.run("cat").completed
    assert {pid for ev, pid in _events(lab) if ev == "sys_enter_read"} == {104}


def test_event_fork_follows_children(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_event", "sched:sched_process_fork sched:sched_process_exit")
    fs.write("set_event_pid", "101")                  # fork-storm's parent on a fresh lab
    fs.write("options/event-fork", "1")
    assert lab.run("fork-storm").completed
    exits = {pid for ev, pid in _events(lab) if ev == "sched_process_exit"}
    assert 101 in exits and len(exits) > 5            # the children were followed
    # each joined the list at fork and left it when freed, as the parent did: the list
    # is now empty but still set, so nothing is traced until it is written again
    assert fs.read("set_event_pid") == "" and lab.trace_array.events.pids.active
    fs.write("trace", "")
    fs.write("options/event-fork", "0")
    fs.write("set_event_pid", "101")
    assert lab.run("fork-storm").completed
    assert not [pid for ev, pid in _events(lab) if ev == "sched_process_exit"]


def test_probe_events_are_filtered_too(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("kprobe_events", "p:myread vfs_read")
    fs.write("events/kprobes/myread/enable", "1")
    fs.write("set_event_pid", "102")
    assert lab.run("cat").completed and lab.run("cat").completed
    assert {pid for ev, pid in _events(lab)} == {102}
