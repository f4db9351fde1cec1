"""Function commands in set_ftrace_filter, after the kernel's selftest
tools/testing/selftests/ftrace/test.d/ftrace/func_set_ftrace_file.tc, and what
they do when the functions run."""

from __future__ import annotations

import errno

import pytest

from ftracelab import Lab

ALL = "#### all functions enabled ####"
F1, F2 = "schedule", "do_sched_yield"


def _lines(lab: Lab) -> list[str]:
    return str(lab.tracefs.read("set_ftrace_filter")).splitlines()


def test_func_set_ftrace_file_selftest(lab: Lab) -> None:
    fs = lab.tracefs
    assert _lines(lab) == [ALL]
    fs.write("set_ftrace_filter", f"{F1}:traceoff")
    assert sorted(_lines(lab)) == sorted([ALL, f"{F1}:traceoff:unlimited"])
    fs.write("set_ftrace_filter", F1)
    assert sorted(_lines(lab)) == sorted([F1, f"{F1}:traceoff:unlimited"])
    fs.append("set_ftrace_filter", F2)
    assert sorted(_lines(lab)) == sorted([F1, F2, f"{F1}:traceoff:unlimited"])
    fs.append("set_ftrace_filter", f"{F2}:traceoff")
    assert sorted(_lines(lab)) == sorted([F1, F2, f"{F1}:traceoff:unlimited",
                                          f"{F2}:traceoff:unlimited"])
    fs.write("set_ftrace_filter", F1)
    assert sorted(_lines(lab)) == sorted([F1, f"{F1}:traceoff:unlimited",
                                          f"{F2}:traceoff:unlimited"])
    fs.write("set_ftrace_filter", "")
    assert sorted(_lines(lab)) == sorted([ALL, f"{F1}:traceoff:unlimited",
                                          f"{F2}:traceoff:unlimited"])
    # the selftest's globbed part: *lock*, then remove subsets with !glob:traceoff
    names = str(fs.read("available_filter_functions")).split()

    def actual() -> list[str]:
        return sorted({ln.split(":")[0] for ln in _lines(lab) if not ln.startswith("#")})

    fs.append("set_ftrace_filter", f"!{F1}:traceoff")
    fs.append("set_ftrace_filter", f"!{F2}:traceoff")
    expected = sorted({n for n in names if "lock" in n})
    fs.write("set_ftrace_filter", "*lock*:traceoff")
    assert actual() == expected
    fs.append("set_ftrace_filter", "!*spin*lock:traceoff")
    expected = [n for n in expected if not ("spin" in n and n.endswith("lock"))]
    assert actual() == expected
    fs.append("set_ftrace_filter", "!m*lock:traceoff")
    expected = [n for n in expected if not (n.startswith("m") and n.endswith("lock"))]
    assert actual() == expected
    fs.append("set_ftrace_filter", "!*:traceoff")
    assert actual() == []
    assert lab.ftrace.ops == []                          # the probe ops is gone too


@pytest.mark.parametrize("word", ["vfs_read:nosuchcmd", "vfs_read:mod:ext4", "nomatch:traceoff",
                                  ":traceoff", "vfs_read:traceoff:x"])
def test_bad_commands_are_einval(booted_lab: Lab, word: str) -> None:
    with pytest.raises(OSError) as info:
        booted_lab.tracefs.write("set_ftrace_filter", word)
    assert info.value.errno == errno.EINVAL


def test_traceoff_with_a_count_and_traceon(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "vfs_* ksys_*")
    fs.write("current_tracer", "function")
    fs.append("set_ftrace_filter", "vfs_write:traceoff:1")
    lab.run("cat", path="/etc/motd")
    assert fs.read("tracing_on") == "0\n"
    assert "vfs_write:traceoff:count=0" in _lines(lab)
    funcs = list(lab.trace().df_events()["func"])
    assert "vfs_write" not in funcs and funcs[-1] == "ksys_write"   # stopped right there
    fs.append("set_ftrace_filter", "vfs_read:traceon")
    lab.run("cat", path="/etc/motd")
    assert fs.read("tracing_on") == "1\n"                   # the count was used up: stays on


def test_stacktrace_and_dump(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "vfs_read")
    fs.write("current_tracer", "function")
    fs.append("set_ftrace_filter", "vfs_read:stacktrace:1")
    fs.append("set_ftrace_filter", "vfs_write:cpudump")
    assert "vfs_write:cpudump:count=1" in _lines(lab)
    lab.run("cat", path="/etc/motd")
    assert "vfs_read:stacktrace:count=0" in _lines(lab)
    assert lab.dmesg.startswith("Dumping ftrace buffer:\n")
    assert " => vfs_read\n => ksys_read\n => do_syscall_64\n" in lab.dmesg
    assert fs.read("tracing_on") == "0\n"                   # ftrace_dump() turns tracing off
    assert "entries-in-buffer/entries-written: 0/" in str(fs.read("trace"))   # consumed


# ---- enable_event / disable_event (trace_events.c: event_enable_func()) ----------------------

def _events(lab: Lab, name: str) -> int:
    df = lab.trace().df_events()
    return 0 if df.empty else int((df["event"] == name).sum())


def test_enable_event_soft_mode_until_the_function_runs(lab: Lab) -> None:
    """The event is registered in soft mode (set_event lists it, enable reads 0*),
    records nothing until do_nanosleep runs, then records (1*); '!' removes the probe
    and soft mode with it, leaving the event as the probe left it: on. Before the
    probe fired, removing it turns the event off again."""
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "do_nanosleep:enable_event:sched:sched_switch")
    assert _lines(lab) == [ALL, "do_nanosleep:enable_event:sched:sched_switch:unlimited"]
    assert fs.read("events/sched/sched_switch/enable") == "0*\n"
    assert fs.read("set_event") == "sched:sched_switch\n"
    assert fs.read("events/sched/enable") == "X\n"
    assert lab.run("cat").completed and _events(lab, "sched_switch") == 0
    assert lab.run("sleep").completed and _events(lab, "sched_switch") > 0
    assert fs.read("events/sched/sched_switch/enable") == "1*\n"
    fs.append("set_ftrace_filter", "!do_nanosleep:enable_event:sched:sched_switch")
    assert _lines(lab) == [ALL] and fs.read("events/sched/sched_switch/enable") == "1\n"
    assert fs.read("set_event") == "sched:sched_switch\n"
    fs.write("events/sched/sched_switch/enable", "0")
    fs.write("set_ftrace_filter", "do_nanosleep:enable_event:sched:sched_switch")
    fs.append("set_ftrace_filter", "!do_nanosleep:enable_event:sched:sched_switch")
    assert fs.read("events/sched/sched_switch/enable") == "0\n" and fs.read("set_event") == ""
    before = _events(lab, "sched_switch")
    assert lab.run("sleep").completed and _events(lab, "sched_switch") == before


def test_disable_event_with_a_count_and_probe_events(lab: Lab) -> None:
    """disable_event:...:1 turns a user-enabled kprobe event off at the first
    getpid (the count runs down only when the state changes), and the user's
    'echo 1 > enable' turns it on again."""
    fs = lab.tracefs
    fs.write("kprobe_events", "p:kp ksys_read")
    fs.write("events/kprobes/kp/enable", "1")
    fs.write("set_ftrace_filter", "__do_sys_getpid:disable_event:kprobes:kp:1")
    assert _lines(lab) == [ALL, "__do_sys_getpid:disable_event:kprobes:kp:count=1"]
    assert fs.read("events/kprobes/kp/enable") == "1*\n"
    assert lab.run("cat").completed
    reads = _events(lab, "kp")
    assert reads > 0
    assert lab.run("getpid").completed and lab.run("cat").completed
    assert _events(lab, "kp") == reads and fs.read("events/kprobes/kp/enable") == "0*\n"
    assert _lines(lab) == [ALL, "__do_sys_getpid:disable_event:kprobes:kp:count=0"]
    fs.write("events/kprobes/kp/enable", "1")
    assert lab.run("cat").completed and _events(lab, "kp") > reads


@pytest.mark.parametrize("word", [
    "vfs_write:enable_event:sched", "vfs_write:enable_event:sched:nope",
    "vfs_write:enable_event:nosys:sched_switch", "nope:enable_event:sched:sched_switch",
    "vfs_write:enable_event:sched:sched_switch:x"])
def test_enable_event_errors(lab: Lab, word: str) -> None:
    with pytest.raises(OSError) as exc:
        lab.tracefs.write("set_ftrace_filter", word)
    assert exc.value.errno == errno.EINVAL
    assert _lines(lab) == [ALL] and lab.tracefs.read("set_event") == ""
