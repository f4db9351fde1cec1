"""fprobe events through dynamic_events: the definitions the kernel refuses (each with
its error-log message and caret position, the cases of the kernel's fprobe syntax
selftest that apply to a 6.12 kernel without BTF), the listing, removal and busy rules,
and the trace_fprobe.c path end to end: create, enable, run, read, disable, remove."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftracelab import Lab

LONG65 = "12345678901234567890123456789012345678901234567890123456789012345"
NEST14 = "+0(" * 14 + "@0" + ")" * 14

#: (command with ^ at the expected caret, the message error_log shows)
REFUSED: list[tuple[str, str | None]] = [
    ("f^100 vfs_read", "Maxactive is only for function exit"),
    ("f^1a111 vfs_read", "Invalid maxactive number"),
    ("f^100000 vfs_read", "Maxactive is too big"),
    ("f ^non_exist_func", "Failed to register probe event"),
    ("f ^vfs_read+10", "Failed to register probe event"),
    ("f ^do_syscall_64", "Failed to register probe event"),          # exists, but notrace
    ("f:^/bar vfs_read", "Group name is not specified"),
    (f"f:^{LONG65}/bar vfs_read", "Group name is too long"),
    ("f:^foo.1/bar vfs_read", "Group name must follow the same rules as C identifiers"),
    ("f:^ vfs_read", "Event name is not specified"),
    (f"f:foo/^{LONG65} vfs_read", "Event name is too long"),
    ("f:foo/^bar.1 vfs_read", "Event name must follow the same rules as C identifiers"),
    ("f vfs_read ^$stack10000", "Invalid stack number"),
    ("f vfs_read ^$arg10000", "Invalid argument number"),
    ("f vfs_read ^$none_var", "Invalid $-valiable specified"),
    ("f vfs_read ^%ax", "Invalid fetch argument"),          # after "Invalid $-valiable specified"
    ("f vfs_read ^@12345678abcde", "Invalid memory address"),
    ("f vfs_read ^@+10", "File offset is not available with kprobe"),
    ("f vfs_read arg1=\\^x", "Invalid immediate value"),
    ('f vfs_read arg1=\\"abcd^', "String is not closed with '\"'"),
    ("f vfs_read ^+0@0)", "Dereference needs a brace"),
    ("f vfs_read ^+0ab1(@0)", "Invalid dereference offset"),
    ("f vfs_read +0(+0(@0^)", "Dereference brace is not closed"),
    ("f vfs_read +0(^$comm)", "$comm can not be dereferenced"),
    ("f vfs_read ^&1", "Invalid fetch argument"),
    (f"f vfs_read +0(^{NEST14[3:]}", "Dereference is too much nested"),
    ("f vfs_read +0(@11):u8[10^", "Array is not closed"),
    ("f vfs_read +0(@11):u8[10]^a", "Array has wrong suffix"),
    ("f vfs_read +0(@11):u8[^10a]", "Invalid array size"),
    ("f vfs_read +0(@11):u8[^256]", "Array number is too big"),
    ("f vfs_read @11:^unknown_type", "Unknown type is specified"),
    ("f vfs_read $stack0:^string", "String accepts only memory argument"),
    ("f vfs_read @11:^b10@a/16", "Invalid bitfield"),
    ("f vfs_read ^arg123456789012345678901234567890=@11", "Argument name is too long"),
    ("f vfs_read ^=@11", "Argument name is not specified"),
    ("f vfs_read ^var.1=@11", "Argument name must follow the same rules as C identifiers"),
    ("f vfs_read var1=@11 ^var1=@12", "This argument name is already used"),
    ("f vfs_read ^+1234567(+1234567(+1234567(+1234567(+1234567(+1234567(@1234))))))",
     "Argument expression is too long"),
    ("f vfs_read arg1=^", "No argument expression"),
    ("f vfs_read^%hoge", "Invalid probed address suffix"),
    ("f vfs_read ^$arg*", "BTF is not available or not supported"),
    ("f vfs_read ^hoge", "BTF is not available or not supported"),
    ("f vfs_read $comm:^u8", "$comm and immediate-string only accepts string type"),
    ("f ^vfs_read @no_such_symbol", "Invalid probed address or symbol"),     # at registration
    ("f ^vfs_read @nr_user_tasks+1x", "Failed to register probe event"),
    ("f vfs_read ^$retval", None),            # accepted: $retval makes it an exit probe
]


def _errlog(lab: Lab) -> list[str]:
    return str(lab.tracefs.read("error_log")).splitlines()


@pytest.mark.parametrize(("marked", "message"), REFUSED, ids=[c for c, _ in REFUSED])
def test_refused_definitions_log_the_kernels_error(lab: Lab, marked: str, message: str | None) -> None:
    command = marked.replace("^", "")
    pos = len(marked[:marked.rindex("^")])
    writer = lab.tracefs.open_write("dynamic_events")
    lab.tracefs.write("error_log", "")
    if message is None:
        writer(command, True)
        assert "vfs_read__exit vfs_read%return" in str(lab.tracefs.read("dynamic_events"))
        return
    with pytest.raises(OSError) as exc:
        writer(command, True)                # as the selftest: appended, no newline
    assert exc.value.errno in (errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP, errno.ENOENT)
    lines = _errlog(lab)
    assert re.fullmatch(r"\[ *\d+\.\d{6}\] trace_fprobe: error: " + re.escape(message), lines[-3])
    assert lines[-2] == f"  Command: {command}"
    assert lines[-1] == " " * (11 + pos) + "^"             # the selftest's 13 + pos bytes
    assert lab.tracefs.read("dynamic_events") == ""        # nothing made


def test_register_on_fprobe_gives_two_entries(lab: Lab) -> None:
    with pytest.raises(OSError):
        lab.tracefs.append("dynamic_events", "f vfs_read %ax")
    lines = _errlog(lab)
    assert [line.split("error: ")[1] for line in lines if "error:" in line] == [
        "Invalid $-valiable specified", "Invalid fetch argument"]


def test_multiprobe_rules(lab: Lab) -> None:
    """Appending to an event: same kind and arguments; the exact same probe, another
    kind or other arguments are refused (EEXIST) at the kernel's positions."""
    fs = lab.tracefs
    fs.write("dynamic_events", "f:fprobes/testevent kernel_clone")
    cases = [("^f:fprobes/testevent do_exit%return", "Probe type is different from existing probe")]
    for marked, message in cases:
        with pytest.raises(OSError) as exc:
            fs.open_write("dynamic_events")(marked.replace("^", ""), True)
        assert exc.value.errno == errno.EEXIST and message in _errlog(lab)[-3]
    fs.write("dynamic_events", "f:fprobes/testevent kernel_clone abcd=\\1")
    head = "f:fprobes/testevent kernel_clone"
    for marked in (f"{head} ^bcd=\\1", f"{head} ^abcd=\\1:u8", f'{head} ^abcd=\\"foo"', f"^{head} abcd=\\1"):
        with pytest.raises(OSError) as exc:
            fs.open_write("dynamic_events")(marked.replace("^", ""), True)
        assert exc.value.errno == errno.EEXIST
        assert _errlog(lab)[-1] == " " * (11 + marked.index("^")) + "^"
    fs.append("dynamic_events", "f:fprobes/testevent do_sys_openat2 abcd=\\1")      # a second probe
    assert str(fs.read("dynamic_events")).splitlines() == [
        "f:fprobes/testevent kernel_clone abcd=\\1", "f:fprobes/testevent do_sys_openat2 abcd=\\1"]
    with pytest.raises(OSError) as exc:
        fs.append("dynamic_events", "f:sched/sched_switch vfs_read")
    assert exc.value.errno == errno.EEXIST and "already used by another event" in _errlog(lab)[-3]


def test_listing_and_removal(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("dynamic_events", "f vfs_read\n# a comment\n\nf:grp.ev ksys_read%return r=$retval")
    assert fs.read("dynamic_events") == ("f:fprobes/vfs_read__entry vfs_read\n"
                                         "f:grp/ev ksys_read%return r=$retval\n")
    assert fs.exists("events/grp/ev/format") and fs.read("events/grp/enable") == "0\n"
    for bad, code in (("-foo", errno.EINVAL), ("-:", errno.EINVAL), ("-:nothing", errno.ENOENT),
                      ("-:grp/ev vfs_read", errno.ENOENT), ("zz vfs_read", errno.EINVAL)):
        with pytest.raises(OSError) as exc:
            fs.append("dynamic_events", bad)
        assert exc.value.errno == code
    fs.write("events/grp/ev/enable", "1")
    with pytest.raises(OSError) as exc:
        fs.append("dynamic_events", "-:grp/ev")
    assert exc.value.errno == errno.EBUSY
    with pytest.raises(OSError) as exc:
        fs.write("dynamic_events", "")                       # O_TRUNC: nothing goes
    assert exc.value.errno == errno.EBUSY and len(str(fs.read("dynamic_events")).splitlines()) == 2
    fs.write("events/grp/ev/enable", "0")
    fs.append("dynamic_events", "!f:grp/ev ksys_read")
    assert not fs.exists("events/grp") and fs.read("dynamic_events") == "f:fprobes/vfs_read__entry vfs_read\n"
    fs.append("dynamic_events", "-:vfs_read__entry")
    assert fs.read("dynamic_events") == "" and not lab.fgraph.gops


def test_fprobe_events_end_to_end(lab: Lab, golden: Callable[[str, str], None]) -> None:
    fs = lab.tracefs
    fs.write("dynamic_events", "f:myread vfs_read count=$arg3:u32 file=$arg1 ip=$stack0:symbol")
    fs.append("dynamic_events", "f vfs_read%return ret=$retval:s64 cnt=$arg3 c=$comm")
    fs.append("dynamic_events", "f:opens do_sys_openat2 name=+0($arg2):string dfd=$arg1:s32 "
              "bad=+0($arg4):string b=+0($arg2):x8[4]")
    assert str(fs.read("events/fprobes/myread/format")).endswith(
        'print fmt: "(%lx) count=%u file=0x%Lx ip=%pS", REC->__probe_ip, REC->count, REC->file, REC->ip\n')
    fs.write("events/fprobes/enable", "1")
    assert lab.run("cat").completed
    df = lab.trace().df_events()
    reads = df[df["event"] == "myread"]
    assert len(reads) == 3 and (reads["count"] == 4096).all()
    assert (reads["__probe_ip"] == lab.fentry_site("vfs_read")).all()
    exits = df[df["event"] == "vfs_read__exit"]
    assert exits["ret"].tolist() == [4096, 3104, 0] and (exits["cnt"] == 4096).all()
    assert set(exits["c"]) == {"cat"}
    opens = df[df["event"] == "opens"]
    assert opens["name"].tolist() == ["/dev/null", "/var/log/syslog"] and (opens["dfd"] == -100).all()
    text = str(fs.read("trace"))
    assert 'bad=(fault)' in text and "b={0x2f,0x64,0x65,0x76}" in text
    golden("fprobe_events_trace.txt", text)
    fs.write("events/fprobes/enable", "0")
    fs.write("trace", "")
    assert lab.run("cat").completed and lab.trace().df_events().empty      # disabled: nothing
    fs.write("dynamic_events", "")
    assert not fs.exists("events/fprobes") and not lab.fgraph.gops
    assert all(t.stack.curr_ret_stack == 0 for t in lab.fgraph.stacks() if not t.comm.startswith("swapper"))


NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
FETCH = st.sampled_from(["$arg1", "$arg2", "$arg3", "$stack", "$stack0", "$comm", "@nr_user_tasks",
                         "+0($arg2)", "+8(+0($arg1))", "-8($stack)", "\\42", "\\-7", "\\0x10"])
TYPES = st.sampled_from(["", ":u8", ":s16", ":x32", ":u64", ":symbol", ":b3@2/8", ":x8[3]", ":string"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(NAMES, FETCH, TYPES), min_size=1, max_size=4, unique_by=lambda t: t[0]))
def test_accepted_definitions_list_back_as_written(booted_lab: Lab, args: list[tuple[str, str, str]]) -> None:
    """What the grammar takes it lists back as written (name=FETCHARG:TYPE), and what it
    refuses it refuses with an error-log entry and no event."""
    words = [f"{n}={f}{t}" for n, f, t in args]
    line = "f:prop vfs_read " + " ".join(words)
    fs = booted_lab.tracefs
    fs.write("error_log", "")
    try:
        fs.write("dynamic_events", line)
    except OSError:
        assert "trace_fprobe: error:" in str(fs.read("error_log"))
        assert fs.read("dynamic_events") == ""
        return
    assert fs.read("dynamic_events") == f"f:fprobes/prop vfs_read {' '.join(words)}\n"
    fs.write("dynamic_events", "")
