"""Event filters (trace/trace_events_filter.py): what the 6.12 parser refuses (errno, the
caret in the filter file and in error_log, the message), what it accepts, and how
filters match records; then filters at work on the lab's events."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.formats.format_file import parse_format
from ftracelab.trace.trace_events_filter import FILTER_ERRORS, EventFilter, FilterError, parse_filter

FORMAT = parse_format("""name: test
ID: 99
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int a;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned int b;\toffset:12;\tsize:4;\tsigned:0;
\tfield:char e[16];\toffset:16;\tsize:16;\tsigned:0;
\tfield:unsigned long g;\toffset:32;\tsize:8;\tsigned:0;
\tfield:u8 h;\toffset:40;\tsize:1;\tsigned:0;
\tfield:s16 i;\toffset:42;\tsize:2;\tsigned:1;
\tfield:__data_loc char[] f;\toffset:44;\tsize:4;\tsigned:1;

print fmt: "a=%d", REC->a
""")
SCHEDULE = (0x1000, 0x1100)


def _lookup(name: str) -> tuple[int, int] | None:
    return SCHEDULE if name in ("schedule", hex(0x1080)) else None


def _parse(text: str) -> object:
    return parse_filter(text, FORMAT, 8, _lookup)


#: (stored text, errno, caret column in the filter file, error_log pos, message); from 6.12
REFUSED = [
    ("foo == 1", errno.EINVAL, 4, 4, "Field not found"),
    ("  foo == 1", errno.EINVAL, 6, 6, "Field not found"),
    ("a == 1 && foo == 2", errno.EINVAL, 14, 14, "Field not found"),
    ("00", errno.EINVAL, 2, 3, "Field not found"),
    ("common_pid", errno.EINVAL, 10, 11, "Invalid operator"),
    ("a = 1", errno.EINVAL, 3, 3, "Invalid operator"),
    ("a =< 1", errno.EINVAL, 3, 3, "Invalid operator"),
    ("a.foo == 1", errno.EINVAL, 2, 2, "Invalid operator"),
    ('a !~ "x"', errno.EINVAL, 3, 3, "Invalid operator"),
    ("(a == 1", errno.ENOENT, 0, 0, "Too many '('"),
    ("(a == 1) && (b == 2", errno.ENOENT, 12, 12, "Too many '('"),
    ("((a == 1)", errno.ENOENT, 0, 0, "Too many '('"),
    ("a == 1)", errno.EPERM, 6, 6, "Too few '('"),
    ("a == 1) && 'x", errno.EPERM, 6, 6, "Too few '('"),
    ('(a == 1 || "x)', errno.ESRCH, 11, 11, "Missing matching quote"),
    ("a == 1 & b == 2", errno.EPERM, 7, 7, "Too many terms in predicate expression"),
    ("a == 1 b", errno.EPERM, 7, 7, "Too many terms in predicate expression"),
    ("(a == 1)(b == 2)", errno.EPERM, 8, 8, "Too many terms in predicate expression"),
    ("a == CPUS{1}x", errno.EPERM, 12, 12, "Too many terms in predicate expression"),
    ("!", errno.EINVAL, 1, 1, "No filter found"),
    ("!!", errno.EINVAL, 2, 2, "No filter found"),
    ("a ~ 1", errno.EINVAL, 5, 5, "Illegal operation for field type"),
    ("a == 'x'", errno.EINVAL, 6, 6, "Expecting numeric field"),
    ("e == 5", errno.EINVAL, 6, 6, "Expecting string field"),
    ("e < 'x'", errno.EINVAL, 5, 5, "Illegal operation for field type"),
    ('e & "x"', errno.EINVAL, 5, 5, "Illegal operation for field type"),
    ("e == abc", errno.EINVAL, 6, 6, "Invalid value (did you forget quotes)?"),
    ("a == +1", errno.EINVAL, 6, 6, "Invalid value (did you forget quotes)?"),
    ("a ==", errno.EINVAL, 4, 5, "Invalid value (did you forget quotes)?"),
    ("a == 1x", errno.EINVAL, 6, 6, "Illegal integer value"),
    ("a == 08", errno.EINVAL, 6, 6, "Illegal integer value"),
    ("b == -1", errno.EINVAL, 6, 6, "Illegal integer value"),
    ("a == 9223372036854775808", errno.EINVAL, 6, 6, "Illegal integer value"),
    ("a == 123456789012345678901234", errno.EINVAL, 29, 30, "Operand too long"),
    ('e == "' + "x" * 256 + '"', errno.EINVAL, 263, 263, "Operand too long"),
    ("g.function == nosuch", errno.EINVAL, 20, 21, "Function not found"),
    ("g.function == 0x1", errno.EINVAL, 17, 18, "Function not found"),
    ("g.function == 12z", errno.EINVAL, 17, 18, "Invalid value (did you forget quotes)?"),
    ("a.function == schedule", errno.EINVAL, 15, 15, "Illegal operation for field type"),
    ("g.function < schedule", errno.EINVAL, 14, 14, "Invalid operator"),
    ("a.function.ustring == schedule", errno.EINVAL, 11, 11, "Invalid operator"),
    ("e == CPUS{1}", errno.EINVAL, 6, 6, "Illegal operation for field type"),
    ("a < CPUS{1}", errno.EINVAL, 5, 5, "Illegal operation for field type"),
    ("a == CPUS1", errno.EINVAL, 10, 11, "Missing '{'"),
    ("a == CPUS {1}", errno.EINVAL, 11, 11, "Missing '{'"),
    ("a == CPUS{1", errno.EINVAL, 11, 12, "Missing '}'"),
    ("a == CPUS{}", errno.EINVAL, 11, 11, "Invalid cpulist"),
    ("a == CPUS{99}", errno.EINVAL, 13, 13, "Invalid cpulist"),
    ("a == CPUS{1-0}", errno.EINVAL, 14, 14, "Invalid cpulist"),
    ('stacktrace == "x"', errno.EINVAL, 15, 15, "Expecting numeric field"),
]
NO_MESSAGE = [("", errno.EINVAL), ("()", errno.EINVAL), ("== 1", errno.EPERM), ("!=1", errno.EPERM),
              ("&& a == 1", errno.EPERM), ("a == 1 ||| b == 1", errno.EPERM), ("a == 1 && ()", errno.EPERM),
              ("&&", errno.EPERM), ("(||)", errno.EPERM), ("&", errno.EPERM), ("(a == 1 ||)", errno.EPERM)]


@pytest.mark.parametrize(("text", "err", "col", "pos", "message"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_refused_filters(text: str, err: int, col: int, pos: int, message: str) -> None:
    with pytest.raises(FilterError) as exc:
        _parse(text)
    e = exc.value
    assert (e.errno, e.pos, FILTER_ERRORS[e.code]) == (err, pos, message)
    assert EventFilter(text, None, e).show() == f"{text}\n{' ' * col}^\nparse_error: {message}\n\n"


@pytest.mark.parametrize(("text", "err"), NO_MESSAGE)
def test_refused_without_a_message(text: str, err: int) -> None:
    with pytest.raises(FilterError) as exc:
        _parse(text)
    assert exc.value.errno == err and exc.value.code == 0
    assert EventFilter(text, None, exc.value).show() == f"{text}\nError: (0)\n\n"


def _record() -> bytes:
    rec = bytearray(64)
    struct.pack_into("<HBBi", rec, 0, 99, 1, 2, 1234)
    struct.pack_into("<iI", rec, 8, -5, 0xF0)
    rec[16:20] = b"bash"
    struct.pack_into("<Q", rec, 32, 0x1080)
    struct.pack_into("<Bxh", rec, 40, 200, -300)
    struct.pack_into("<I", rec, 44, (12 << 16) | 48)
    rec[48:60] = b"hello world\0"
    return bytes(rec)


MATCHES = [("a == -5", True), ("a < 0", True), ("a > -6 && a <= -5", True), ("b & 0x10", True),
           ("b & 0x0f", False), ("b == 0360", True), ("b != 0xf0", False), ("h == 456", True),
           ("i == -300", True), ("common_pid > 1000 && common_type == 99", True), ("cpu == 2", True),
           ("CPU != 2", False), ("cpu & 2", False), ("cpu & CPUS{2}", True), ("cpu == CPUS{1-3}", False),
           ("cpu & CPUS{1-3}", True), ("cpu & CPUS{all}", True), ("cpu & CPUS{0-7:2/4}", False),
           ("a & CPUS{0-7}", False), ('e == "bash"', True), ("e == 'bash'", True), ('e != "bash"', False),
           ('e == "bas"', False), ('e ~ "ba*"', True), ('e ~ "*as*"', True), ('e ~ "b?sh"', True),
           ('e ~ "[ab]ash"', True), ('e ~ "b*h"', True), ('e ~ "*"', True), ('e ~ "*sh"', False),
           ('e ~ "!bash"', False), ('e ~ "1*"', False), ('comm == "bash"', True), ('COMM ~ "*sh"', False),
           ('f ~ "*world"', True), ('f ~ "hello*"', True), ('f ~ "h*d"', True), ('f == "hello"', False),
           ("g.function == schedule", True), ("!!a == -5", True), ("!(a == -5 || b == 0)", False),
           ("a == -5 || b == 0 && a == 0", True), ('e == "a&&b" || a == -5', True),
           ("a == 1 &&", False), ("a == -5 ||", True), ("stacktrace == 0", False)]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_matching(text: str, expected: bool) -> None:
    assert EventFilter(text, _parse(text)).match(_record(), cpu=2, comm="bash") is expected


def test_filters_on_the_lab(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_event", "syscalls:sys_exit_read sched:sched_switch syscalls:sys_enter_openat")
    assert fs.read("events/sched/sched_switch/filter") == "none\n"
    fs.write("events/syscalls/sys_exit_read/filter", "ret == 0")
    fs.write("events/sched/sched_switch/filter", 'prev_comm ~ "ca*"   ')
    assert fs.read("events/sched/sched_switch/filter") == 'prev_comm ~ "ca*"\n'
    with pytest.raises(OSError) as exc:
        fs.write("events/syscalls/sys_enter_openat/filter", "flags == 1)")
    assert exc.value.errno == errno.EPERM
    log = str(fs.read("error_log")).splitlines()
    assert log[-3].endswith("event filter parse error: error: Too few '('")
    assert log[-2] == "  Command: flags == 1)" and log[-1] == " " * (11 + 10) + "^"
    assert lab.run("cat").completed
    df = lab.trace().df_events()
    assert (df.loc[df["event"] == "sys_exit_read", "ret"] == 0).all()
    assert len(df[df["event"] == "sys_exit_read"]) == 1
    assert set(df.loc[df["event"] == "sched_switch", "prev_comm"]) == {"cat"}
    assert (df["event"] == "sys_enter_openat").sum() == 2           # its failed filter passes all
    fs.write("events/sched/filter", "prev_pid == 0")               # every sched event parses it?
    assert fs.read("events/sched/sched_switch/filter") == "prev_pid == 0\n"
    assert "Couldn't find or set field" in str(fs.read("events/sched/sched_waking/filter"))
    assert str(fs.read("events/sched/filter")).startswith("### global filter ###")
    fs.write("events/sched/filter", "0")
    assert fs.read("events/sched/sched_switch/filter") == "none\n"


def test_filters_on_probe_events(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("dynamic_events", "f vfs_read%return ret=$retval:s64")
    fs.write("events/fprobes/vfs_read__exit/filter", "ret > 0 && common_pid != 0")
    fs.write("events/fprobes/enable", "1")
    assert lab.run("cat").completed
    df = lab.trace().df_events()
    assert sorted(df["ret"].tolist()) == [3104, 4096]


PREDS = {"a == -5": True, "a > 0": False, "b & 0x10": True, 'e == "bash"': True, 'e ~ "z*"': False,
         "h < 100": False, "cpu == 2": True, 'comm ~ "*as*"': True}


def _expr(draw: st.DrawFn, depth: int = 0) -> tuple[str, bool]:
    kind = draw(st.sampled_from(["pred", "pred", "not", "and", "or", "paren"] if depth < 3 else ["pred"]))
    if kind == "pred":
        text = draw(st.sampled_from(sorted(PREDS)))
        return text, PREDS[text]
    if kind == "not":
        text, value = _expr(draw, depth + 1)
        return f"!({text})", not value
    if kind == "paren":
        text, value = _expr(draw, depth + 1)
        return f"({text})", value
    (lt, lv), (rt, rv) = _expr(draw, depth + 1), _expr(draw, depth + 1)
    sep = draw(st.sampled_from([" ", "", "  "]))
    if kind == "and":
        return f"({lt}){sep}&&{sep}({rt})", lv and rv
    return f"({lt}){sep}||{sep}({rt})", lv or rv


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, bool]:
    return _expr(draw)


@given(expressions())
def test_boolean_structure_is_ordinary_logic(case: tuple[str, bool]) -> None:
    """Any nesting of &&, || and ! over predicates evaluates as plain boolean logic."""
    text, expected = case
    assert EventFilter(text, _parse(text)).match(_record(), cpu=2, comm="bash") is expected
