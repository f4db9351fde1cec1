"""Event triggers (trace/trace_events_trigger.py): the trigger file's grammar, listing
and errnos as 6.12's, soft mode, and traceon/traceoff/stacktrace firing with counts and
filters on the lab's events."""

from __future__ import annotations

import errno

import pytest

from ftracelab import Lab

#: 6.12's header, its commands in registration order
AVAILABLE = ("# Available triggers:\n# traceon traceoff snapshot stacktrace enable_event disable_event"
             " enable_hist disable_hist hist\n")
TRIGGER = "events/syscalls/sys_exit_read/trigger"


def test_trigger_file_grammar(lab: Lab) -> None:
    fs = lab.tracefs
    assert fs.read(TRIGGER) == AVAILABLE
    fs.write(TRIGGER, "traceon 5")                          # a blank separates the count too
    assert fs.read(TRIGGER) == "traceon:count=5\n"
    assert fs.read("events/syscalls/sys_exit_read/enable") == "0*\n"      # soft mode
    for bad, code in (("traceoff", errno.EEXIST), ("bogus", errno.EINVAL), ("snapshot:x", errno.EINVAL),
                      ("stacktrace:badparam", errno.EINVAL), ("stacktrace if", errno.EINVAL),
                      ("stacktrace:0x", errno.EINVAL), ("traceon+0", errno.EINVAL)):
        with pytest.raises(OSError) as exc:
            fs.append(TRIGGER, bad)
        assert exc.value.errno == code, bad
    fs.append(TRIGGER, "stacktrace:0x10 if ret < 0")
    assert fs.read(TRIGGER) == "stacktrace:count=16 if ret < 0\ntraceon:count=5\n"   # newest first
    fs.append(TRIGGER, "!traceoff")                         # the same type as traceon
    fs.append(TRIGGER, "!traceoff")                         # nothing there: still fine
    assert fs.read(TRIGGER) == "stacktrace:count=16 if ret < 0\n"
    fs.write("error_log", "")
    with pytest.raises(OSError) as exc:
        fs.append(TRIGGER, "traceoff if nofield == 1")
    assert exc.value.errno == errno.EINVAL
    log = str(fs.read("error_log")).splitlines()
    assert log[-3].endswith("event filter parse error: error: Field not found")
    assert log[-2] == "  Command: nofield == 1" and log[-1] == " " * (11 + 8) + "^"
    fs.append(TRIGGER, "!stacktrace")
    assert fs.read("events/syscalls/sys_exit_read/enable") == "0\n"


def test_traceoff_stacktrace_and_traceon_fire(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_event", "syscalls:sys_enter_read syscalls:sys_exit_read")
    fs.write(TRIGGER, "traceoff:1 if ret == 0")
    fs.write("events/syscalls/sys_enter_read/trigger", "stacktrace:2")
    assert lab.run("cat").completed
    assert fs.read("tracing_on") == "0\n"
    assert fs.read(TRIGGER) == "traceoff:count=0 if ret == 0\n"
    assert fs.read("events/syscalls/sys_enter_read/trigger") == "stacktrace:count=0\n"
    df = lab.trace().df_events()
    events = df["event"].astype(str).tolist()
    assert events[-1] == "sys_exit_read" and df["ret"].dropna().iloc[-1] == 0      # the trigger's own
    assert events.count("kernel_stack") == 2
    assert events[events.index("kernel_stack") - 1] == "sys_enter_read"            # after its event
    text = str(fs.read("trace"))
    assert "<stack trace>\n => do_syscall_64\n" in text
    # traceon from an event that is not even enabled (soft mode): counts only when it acts
    fs.write("set_event", "")
    fs.write("events/syscalls/sys_enter_getpid/trigger", "traceon:3")
    fs.write("events/sched/sched_process_exit/enable", "1")
    assert lab.run("getpid", loops=4).completed
    assert fs.read("tracing_on") == "1\n"
    assert fs.read("events/syscalls/sys_enter_getpid/trigger") == "traceon:count=2\n"
    df = lab.trace().df_events()
    assert "sys_enter_getpid" not in set(df["event"].astype(str))                 # soft-disabled
    assert "sched_process_exit" in set(df["event"].astype(str))


def test_enable_and_disable_event_triggers(lab: Lab) -> None:
    """enable_event/disable_event (event_enable_trigger_parse()): the target must exist,
    one of the pair per target, the target in soft mode while they exist; firing
    flips its SOFT_DISABLED bit, a counted one only when that changes something."""
    fs = lab.tracefs
    opening = "events/syscalls/sys_enter_openat/trigger"
    fs.write(opening, "enable_event:sched:sched_switch:1")
    fs.write("events/syscalls/sys_enter_close/trigger", "disable_event:sched:sched_switch")
    assert fs.read(opening) == "enable_event:sched:sched_switch:count=1\n"
    assert fs.read("events/sched/sched_switch/enable") == "0*\n"
    for bad, code in (("enable_event:sched:nope", errno.EINVAL), ("enable_event:sched", errno.EINVAL),
                      ("enable_event", errno.EINVAL), ("enable_event:sched:sched_switch:", errno.EINVAL),
                      ("enable_event:sched:sched_switch:x", errno.EINVAL),
                      ("!enable_event:nosys:sched_switch", errno.EINVAL),
                      ("disable_event:sched:sched_switch", errno.EEXIST),         # the pair is one type
                      ("enable_event:sched:sched_switch if", errno.EINVAL)):
        with pytest.raises(OSError) as exc:
            fs.append(opening, bad)
        assert exc.value.errno == code, bad
    fs.write("set_event", "syscalls:sys_enter_openat syscalls:sys_enter_close")
    assert lab.run("slow-read").completed
    events = lab.trace().df_events()["event"].astype(str).tolist()
    first_close = events.index("sys_enter_close")
    assert "sched_switch" not in events[:events.index("sys_enter_openat")]
    assert "sched_switch" in events[:first_close] and "sched_switch" not in events[first_close:]
    assert fs.read(opening) == "enable_event:sched:sched_switch:count=0\n"
    assert fs.read("events/sched/sched_switch/enable") == "0*\n"
    fs.append(opening, "!enable_event:sched:sched_switch")
    assert fs.read("events/sched/sched_switch/enable") == "0*\n"               # the other one stays
    fs.append("events/syscalls/sys_enter_close/trigger", "!disable_event:sched:sched_switch")
    assert fs.read("events/sched/sched_switch/enable") == "0\n"


def test_enable_hist_and_disable_hist_triggers(lab: Lab) -> None:
    """enable_hist/disable_hist unpause and pause the target's hist triggers."""
    fs = lab.tracefs
    fs.write("events/syscalls/sys_enter_read/trigger", "hist:keys=common_pid:pause")
    fs.write("events/syscalls/sys_enter_openat/trigger", "enable_hist:syscalls:sys_enter_read:1")
    fs.write("events/syscalls/sys_enter_close/trigger", "disable_hist:syscalls:sys_enter_read")
    assert fs.read("events/syscalls/sys_enter_close/trigger") == \
        "disable_hist:syscalls:sys_enter_read:unlimited\n"
    assert lab.run("cat").completed
    hist = str(fs.read("events/syscalls/sys_enter_read/hist"))
    assert "[paused]" in hist and "Hits: 3\n" in hist                            # between open and close
