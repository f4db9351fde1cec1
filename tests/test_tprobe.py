"""Tracepoint probe events (``t`` in dynamic_events, trace_fprobe.c): v6.12's
tprobe_syntax_errors.tc and add_remove_tprobe.tc as the lab runs them, the stub
and fprobe under a tprobe, its arguments against the tracepoint's own event, and
two events of one name (tracepoints/sched_switch beside sched/sched_switch)."""

from __future__ import annotations

import errno
import re

import pytest

from ftracelab import Lab
from ftracelab.machine.memory import TASK_PID

LONG65 = "12345678901234567890123456789012345678901234567890123456789012345"
NEST14 = "+0(" * 14 + "@0" + ")" * 14

#: v6.12's tprobe_syntax_errors.tc: (command with ^ at the caret, error_log message).
#: kfree is no tracepoint of the lab; 6.12 with modules takes such a name as a stub
#: that may load later, so the checks after the name behave as on a real kernel.
REFUSED: list[tuple[str, str]] = [
    ("t^100 kfree", "Maxactive is only for function exit"),
    ("t:^/bar kfree", "Group name is not specified"),
    (f"t:^{LONG65}/bar kfree", "Group name is too long"),
    ("t:^foo.1/bar kfree", "Group name must follow the same rules as C identifiers"),
    ("t:^ kfree", "Event name is not specified"),
    (f"t:foo/^{LONG65} kfree", "Event name is too long"),
    ("t:foo/^bar.1 kfree", "Event name must follow the same rules as C identifiers"),
    ("t kfree ^$retval", "$retval is not available on probe"),
    ("t kfree ^$stack10000", "Invalid stack number"),
    ("t kfree ^$arg10000", "Invalid argument number"),
    ("t kfree ^$none_var", "Invalid $-valiable specified"),
    ("t kfree ^%rax", "Invalid fetch argument"),              # after "Invalid $-valiable specified"
    ("t kfree ^@12345678abcde", "Invalid memory address"),
    ("t kfree ^@+10", "File offset is not available with kprobe"),
    ("t kfree arg1=\\^x", "Invalid immediate value"),
    ('t kfree arg1=\\"abcd^', "String is not closed with '\"'"),
    ("t kfree ^+0@0)", "Dereference needs a brace"),
    ("t kfree ^+0ab1(@0)", "Invalid dereference offset"),
    ("t kfree +0(+0(@0^)", "Dereference brace is not closed"),
    ("t kfree +0(^$comm)", "$comm can not be dereferenced"),
    ("t kfree ^&1", "Invalid fetch argument"),
    (f"t kfree +0(^{NEST14[3:]}", "Dereference is too much nested"),
    ("t kfree +0(@11):u8[10^", "Array is not closed"),
    ("t kfree +0(@11):u8[10]^a", "Array has wrong suffix"),
    ("t kfree +0(@11):u8[^10a]", "Invalid array size"),
    ("t kfree +0(@11):u8[^256]", "Array number is too big"),
    ("t kfree @11:^unknown_type", "Unknown type is specified"),
    ("t kfree $stack0:^string", "String accepts only memory argument"),
    ("t kfree @11:^b10@a/16", "Invalid bitfield"),
    ("t kfree ^arg123456789012345678901234567890=@11", "Argument name is too long"),
    ("t kfree ^=@11", "Argument name is not specified"),
    ("t kfree ^var.1=@11", "Argument name must follow the same rules as C identifiers"),
    ("t kfree var1=@11 ^var1=@12", "This argument name is already used"),
    ("t kfree ^+1234567(+1234567(+1234567(+1234567(+1234567(+1234567(@1234))))))",
     "Argument expression is too long"),
    ("t kfree arg1=^", "No argument expression"),
    ("t kfree^%return", "Invalid probed address suffix"),
    ("t kfree ^$arg*", "BTF is not available or not supported"),
]


def _errlog(lab: Lab) -> list[str]:
    return str(lab.tracefs.read("error_log")).splitlines()


@pytest.mark.parametrize(("marked", "message"), REFUSED, ids=[c for c, _ in REFUSED])
def test_tprobe_syntax_errors(booted_lab: Lab, marked: str, message: str) -> None:
    command = marked.replace("^", "")
    pos = len(marked[:marked.rindex("^")])
    fs = booted_lab.tracefs
    fs.write("error_log", "")
    with pytest.raises(OSError) as exc:
        fs.open_write("dynamic_events")(command, True)
    assert exc.value.errno in (errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP)   # as for f probes
    lines = _errlog(booted_lab)
    assert re.fullmatch(r"\[ *\d+\.\d{6}\] trace_fprobe: error: " + re.escape(message), lines[-3])
    assert lines[-2] == f"  Command: {command}"
    assert lines[-1] == " " * (11 + pos) + "^"
    assert fs.read("dynamic_events") == ""


def test_tprobe_multiprobe_errors(lab: Lab) -> None:
    """The selftest's multiprobe part: a t event takes no f probe, and its args must agree."""
    fs = lab.tracefs
    fs.write("dynamic_events", "t:tracepoint/testevent kfree")
    with pytest.raises(OSError) as exc:
        fs.open_write("dynamic_events")("f:tracepoint/testevent kfree", True)
    assert exc.value.errno == errno.EEXIST
    assert _errlog(lab)[-3].endswith("error: Probe type is different from existing probe")
    fs.write("dynamic_events", "t:tracepoints/testevent kfree abcd=\\1")
    head = "t:tracepoints/testevent kfree"
    for marked in (f"{head} ^bcd=\\1", f"{head} ^abcd=\\1:u8", f'{head} ^abcd=\\"foo"', f"^{head} abcd=\\1"):
        with pytest.raises(OSError) as exc:
            fs.open_write("dynamic_events")(marked.replace("^", ""), True)
        assert exc.value.errno == errno.EEXIST
        assert _errlog(lab)[-1] == " " * (11 + marked.index("^")) + "^"


def test_add_remove_tprobe(lab: Lab) -> None:
    """add_remove_tprobe.tc, with its tracepoints (kmem_cache_alloc/free are stubs here)."""
    fs = lab.tracefs
    fs.append("dynamic_events", "t:myevent1 kmem_cache_alloc")
    fs.append("dynamic_events", "t:myevent2 kmem_cache_free")
    assert fs.read("dynamic_events") == ("t:tracepoints/myevent1 kmem_cache_alloc\n"
                                         "t:tracepoints/myevent2 kmem_cache_free\n")
    assert fs.exists("events/tracepoints/myevent1") and fs.exists("events/tracepoints/myevent2")
    fs.append("dynamic_events", "-:myevent2")
    assert fs.read("dynamic_events") == "t:tracepoints/myevent1 kmem_cache_alloc\n"
    fs.write("dynamic_events", "")
    assert not fs.exists("events/tracepoints")


def test_tprobe_reads_the_tracepoints_arguments(lab: Lab) -> None:
    """A tprobe on sched_switch: the stub goes on the tracepoint (tp_probestubs) and an
    fprobe on __probestub_sched_switch; $arg2/$arg3 are prev and next (the stub's
    dummy first argument skipped), so the pids it reads agree with the event's own
    record of the same switch, and its text prints the stub's site. The event's name
    is the tracepoint's, like sched/sched_switch, and each still prints its own way."""
    fs = lab.tracefs
    m = lab.machine
    index = lab.trace_array.events.tracepoint_index("sched_switch")
    assert index is not None
    stub = m.symbols["tp_probestubs"] + index
    pid = f"+0x{TASK_PID:x}"
    fs.write("dynamic_events", f"t sched_switch preempt=$arg1:u8 prev_pid={pid}($arg2):s32 "
                               f"next_pid={pid}($arg3):s32")
    assert fs.read("dynamic_events") == (f"t:tracepoints/sched_switch sched_switch preempt=$arg1:u8 "
                                         f"prev_pid={pid}($arg2):s32 next_pid={pid}($arg3):s32\n")
    assert m.read(stub, 1) == b"\x01"                                  # the stub is on the tracepoint
    fs.write("events/tracepoints/sched_switch/enable", "1")
    fs.write("events/sched/sched_switch/enable", "1")
    assert lab.run("slow-read").completed
    df = lab.trace().df_events()
    df = df[df["event"] == "sched_switch"]
    probe = df[df["preempt"].notna()]
    event = df[df["preempt"].isna()]
    assert len(probe) == len(event) > 0
    assert probe["prev_pid"].tolist() == event["prev_pid"].tolist()
    assert probe["next_pid"].tolist() == event["next_pid"].tolist()
    text = str(fs.read("trace"))
    assert re.search(r"sched_switch: \(__probestub_sched_switch\+0x4/0x\w+\) preempt=0 prev_pid=\d+ "
                     r"next_pid=\d+\n", text)
    assert re.search(r"sched_switch: prev_comm=\S+ prev_pid=\d+ prev_prio=120", text)
    fs.write("events/tracepoints/sched_switch/enable", "0")
    fs.write("events/sched/sched_switch/enable", "0")
    fs.write("dynamic_events", "")
    assert m.read(stub, 1) == b"\x00"
