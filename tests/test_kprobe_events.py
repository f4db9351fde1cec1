"""kprobe events through kprobe_events and dynamic_events: the rows of the kernel's
kprobe_syntax_errors.tc selftest (v6.12.0) that apply to a kernel without BTF, each
with its error-log message and caret; default names, listing, kprobe_events' own
rules, notrace refusal, multiprobe events, and the trace_kprobe.c path end to end
(create, enable, run, read in ``trace`` and ``df_events()``, disable, remove)."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable

import pytest

from ftracelab import Lab
from ftracelab.trace.trace_probe import ERRORS

NAME65 = "12345678901234567890123456789012345678901234567890123456789012345"
OPS14 = "+0(" * 13 + "@0" + ")" * 14

#: (command with ^ at the caret, the error's TP_ERR name): kprobe_syntax_errors.tc
REFUSED: list[tuple[str, str]] = [
    ("p^100 vfs_read", "BAD_MAXACT_TYPE"),
    ("r^1a111 vfs_read", "BAD_MAXACT"),
    ("r^100000 vfs_read", "MAXACT_TOO_BIG"),
    ("p ^non_exist_func", "BAD_PROBE_ADDR"),
    ("p ^hoge-fuga", "BAD_PROBE_ADDR"),
    ("p ^hoge+1000-1000", "BAD_PROBE_ADDR"),
    ("r ^vfs_read+10", "BAD_RETPROBE"),
    ("p:^/bar vfs_read", "NO_GROUP_NAME"),
    (f"p:^{NAME65}/bar vfs_read", "GROUP_TOO_LONG"),
    ("p:^foo.1/bar vfs_read", "BAD_GROUP_NAME"),
    ("p:^ vfs_read", "NO_EVENT_NAME"),
    (f"p:foo/^{NAME65} vfs_read", "EVENT_TOO_LONG"),
    ("p:foo/^bar.1 vfs_read", "BAD_EVENT_NAME"),
    ("p vfs_read ^$retval", "RETVAL_ON_PROBE"),
    ("p vfs_read ^$stack10000", "BAD_STACK_NUM"),
    ("p vfs_read ^$arg10000", "BAD_ARG_NUM"),
    ("p vfs_read ^$none_var", "BAD_VAR"),
    ("p vfs_read ^%none_reg", "BAD_REG_NAME"),
    ("p vfs_read ^@12345678abcde", "BAD_MEM_ADDR"),
    ("p vfs_read ^@+10", "FILE_ON_KPROBE"),
    ("p vfs_read arg1=\\^x", "BAD_IMM"),
    ('p vfs_read arg1=\\"abcd^', "IMMSTR_NO_CLOSE"),
    ("p vfs_read ^+0@0)", "DEREF_NEED_BRACE"),
    ("p vfs_read ^+0ab1(@0)", "BAD_DEREF_OFFS"),
    ("p vfs_read +0(+0(@0^)", "DEREF_OPEN_BRACE"),
    ("p vfs_read +0(^$comm)", "COMM_CANT_DEREF"),
    ("p vfs_read ^&1", "BAD_FETCH_ARG"),
    (f"p vfs_read +0(^{OPS14}", "TOO_MANY_OPS"),
    ("p vfs_read +0(@11):u8[10^", "ARRAY_NO_CLOSE"),
    ("p vfs_read +0(@11):u8[10]^a", "BAD_ARRAY_SUFFIX"),
    ("p vfs_read +0(@11):u8[^10a]", "BAD_ARRAY_NUM"),
    ("p vfs_read +0(@11):u8[^256]", "ARRAY_TOO_BIG"),
    ("p vfs_read @11:^unknown_type", "BAD_TYPE"),
    ("p vfs_read $stack0:^string", "BAD_STRING"),
    ("p vfs_read @11:^b10@a/16", "BAD_BITFIELD"),
    ("p vfs_read ^arg123456789012345678901234567890=@11", "ARG_NAME_TOO_LONG"),
    ("p vfs_read ^=@11", "NO_ARG_NAME"),
    ("p vfs_read ^var.1=@11", "BAD_ARG_NAME"),
    ("p vfs_read var1=@11 ^var1=@12", "USED_ARG_NAME"),
    ("p vfs_read ^+1234567(+1234567(+1234567(+1234567(+1234567(+1234567(@1234))))))", "ARG_TOO_LONG"),
    ("p vfs_read arg1=^", "NO_ARG_BODY"),
    ("p ^vfs_read+3", "BAD_INSN_BNDRY"),           # inside endbr64
    ("p vfs_read^%hoge", "BAD_ADDR_SUFFIX"),
    ("p ^vfs_read+10%return", "BAD_RETPROBE"),
    # not in the selftest: the kernel's registration refusals
    ("p ^do_syscall_64", "FAIL_REG_PROBE"),        # notrace: "Could not probe notrace function"
    ("p ^ksys_read+0x37", "BAD_INSN_BNDRY"),       # inside 'je'
    ("p ^vfs_read @no_such_symbol", "BAD_PROBE_ADDR"),
]
TEXTS = dict(ERRORS)


def _errlog(lab: Lab) -> list[str]:
    return str(lab.tracefs.read("error_log")).splitlines()


@pytest.mark.parametrize(("marked", "code"), REFUSED, ids=[c for c, _ in REFUSED])
def test_refused_definitions_log_the_kernels_error(lab: Lab, marked: str, code: str) -> None:
    command = marked.replace("^", "")
    pos = marked.rindex("^") - (marked.count("^") - 1)
    writer = lab.tracefs.open_write("kprobe_events")
    with pytest.raises(OSError) as exc:
        writer(command, True)
    assert exc.value.errno in (errno.EINVAL, errno.E2BIG, errno.EILSEQ, errno.ENOENT)
    lines = _errlog(lab)
    message = TEXTS[code]
    assert re.fullmatch(r"\[ *\d+\.\d{6}\] trace_kprobe: error: " + re.escape(message), lines[-3])
    assert lines[-2] == f"  Command: {command}"
    assert lines[-1] == " " * (11 + pos) + "^"
    assert lab.tracefs.read("kprobe_events") == "" and not lab.kprobes.by_addr


def test_default_names_and_listing(lab: Lab) -> None:
    fs = lab.tracefs
    addr = lab.machine.kallsyms.lookup_name("ksys_read").addr
    fs.write("kprobe_events", "p vfs_read\np ksys_read+0x38 f=%bx\nr vfs_read\n"
             f"r5:grp/ev ksys_read $retval\np:grp2. kernel_clone\np {addr:#x}\n")
    assert str(fs.read("kprobe_events")).splitlines() == [
        "p:kprobes/p_vfs_read_0 vfs_read",
        "p:kprobes/p_ksys_read_56 ksys_read+56 f=%bx",
        "r:kprobes/r_vfs_read_0 vfs_read",
        "r5:grp/ev ksys_read arg1=$retval",
        "p:grp2/p_kernel_clone_0 kernel_clone",
        f"p:kprobes/p_0x{addr:016x} 0x{addr:016x}",
    ]
    assert fs.read("dynamic_events") == fs.read("kprobe_events")
    assert fs.exists("events/kprobes/p_ksys_read_56/format") and fs.exists("events/grp/ev/id")
    fs.write("kprobe_events", "p vfs_read%return")
    assert fs.read("kprobe_events") == "r:kprobes/r_vfs_read_0 vfs_read\n"


def test_same_place_twice_is_refused_but_siblings_work(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("kprobe_events", "p vfs_read")
    with pytest.raises(OSError) as exc:
        fs.append("kprobe_events", "p vfs_read")          # same name, same probe
    assert exc.value.errno == errno.EEXIST and TEXTS["SAME_PROBE"] in _errlog(lab)[-3]
    with pytest.raises(OSError) as exc:
        fs.append("kprobe_events", "p:kprobes/p_vfs_read_0 vfs_read%return")
    assert exc.value.errno == errno.EEXIST and TEXTS["DIFF_PROBE_TYPE"] in _errlog(lab)[-3]
    fs.append("kprobe_events", "p:kprobes/p_vfs_read_0 vfs_write")   # a second probe of the event
    fs.append("kprobe_events", "r vfs_read")                        # another event on the same address
    assert len(lab.kprobes.by_addr[lab.machine.kallsyms.lookup_name("vfs_read").addr + 4]) == 2


def test_multiprobe_errors(lab: Lab) -> None:
    """The selftest's multiprobe block, with kernel_clone as $FUNCTION_FORK."""
    fs = lab.tracefs
    fs.write("kprobe_events", "p:kprobes/testevent kernel_clone")
    with pytest.raises(OSError):
        fs.open_write("kprobe_events")("r:kprobes/testevent do_exit", True)
    assert TEXTS["DIFF_PROBE_TYPE"] in _errlog(lab)[-3] and _errlog(lab)[-1] == " " * 11 + "^"
    fs.write("kprobe_events", "p:kprobes/testevent kernel_clone abcd=\\1")
    head = "p:kprobes/testevent kernel_clone"
    for marked, code in ((f"{head} ^bcd=\\1", "DIFF_ARG_TYPE"), (f"{head} ^abcd=\\1:u8", "DIFF_ARG_TYPE"),
                         (f'{head} ^abcd=\\"foo"', "DIFF_ARG_TYPE"), (f"^{head} abcd=\\1", "SAME_PROBE")):
        with pytest.raises(OSError) as exc:
            fs.open_write("kprobe_events")(marked.replace("^", ""), True)
        assert exc.value.errno == errno.EEXIST
        assert TEXTS[code] in _errlog(lab)[-3]
        assert _errlog(lab)[-1] == " " * (11 + marked.index("^")) + "^"


def test_kprobe_events_file_rules(lab: Lab) -> None:
    """kprobe_events: only kprobes, '-' removes ('!' does not), O_TRUNC removes only
    kprobes and fails with EBUSY when one is enabled; fprobe lines are not its."""
    fs = lab.tracefs
    fs.write("dynamic_events", "f vfs_read\np ksys_read")
    assert fs.read("kprobe_events") == "p:kprobes/p_ksys_read_0 ksys_read\n"
    with pytest.raises(OSError) as exc:
        fs.append("kprobe_events", "f vfs_write")
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(OSError) as exc:
        fs.append("kprobe_events", "!p:kprobes/p_ksys_read_0")
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(OSError) as exc:
        fs.append("kprobe_events", "-:fprobes/vfs_read__entry")
    assert exc.value.errno == errno.ENOENT
    fs.write("events/kprobes/p_ksys_read_0/enable", "1")
    with pytest.raises(OSError) as exc:
        fs.write("kprobe_events", "")
    assert exc.value.errno == errno.EBUSY
    fs.write("events/kprobes/p_ksys_read_0/enable", "0")
    fs.write("kprobe_events", "")
    assert fs.read("dynamic_events") == "f:fprobes/vfs_read__entry vfs_read\n"
    assert not lab.kprobes.by_addr and not fs.exists("events/kprobes")


def test_kprobe_events_end_to_end(lab: Lab, golden: Callable[[str, str], None]) -> None:
    """kprobe on ftrace (vfs_read), an int3 kprobe mid-function (ksys_read+0x38, out
    of line), a kretprobe with an entry argument, and a kprobe on a jcc."""
    fs = lab.tracefs
    fs.write("kprobe_events", "p:myread vfs_read count=$arg3:u32 file=$arg1 ip=$stack0:symbol")
    fs.append("kprobe_events", "r vfs_read ret=$retval:s64 cnt=$arg3 c=$comm")
    fs.append("kprobe_events", "p ksys_read+0x38 f=%bx pos=+0x10(%bx):s64 sp=$stack cmd=$comm")
    fs.append("kprobe_events", "p ksys_read+0x36 rbx=%bx flags=%flags:x16")
    fs.write("events/kprobes/enable", "1")
    rec = lab.run("cat")
    assert rec.completed
    text = str(fs.read("trace"))
    golden("kprobe_events_trace.txt", text)
    df = lab.trace().df_events()
    counts = df["event"].value_counts().to_dict()
    assert counts == {"myread": 3, "r_vfs_read_0": 3, "p_ksys_read_56": 3, "p_ksys_read_54": 3}
    rets = df[df.event == "r_vfs_read_0"]["ret"].tolist()
    assert rets[-1] == 0 and sum(rets) > 0
    assert str(fs.read("kprobe_profile")).splitlines()[0].split() == ["myread", "3", "0"]
    fs.write("events/kprobes/enable", "0")
    assert lab.run("cat").completed
    assert len(lab.trace().df_events()) == len(df)
    fs.write("kprobe_events", "")
    assert not lab.kprobes.by_addr and not fs.exists("events/kprobes")
    ksys = lab.machine.kallsyms.lookup_name("ksys_read")
    assert b"\xcc" not in lab.machine.read(ksys.addr, ksys.size)
