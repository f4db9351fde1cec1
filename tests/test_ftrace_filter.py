"""Table-driven tests of function patterns and the filter files, derived from
kernel/trace/ftrace.c (ftrace_regex_write/release, match_records, t_show) and
kernel/trace/trace.c (filter_parse_regex), lib/glob.c (glob_match)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.trace.ftrace_regex import RegexType, filter_parse_regex, ftrace_match, glob_match

ALL = "#### all functions enabled ####\n"


@pytest.mark.parametrize("word, search, kind, negate", [
    ("vfs_read", "vfs_read", RegexType.MATCH_FULL, False),
    ("vfs_*", "vfs_", RegexType.MATCH_FRONT_ONLY, False),
    ("*_read", "_read", RegexType.MATCH_END_ONLY, False),
    ("*sys_*", "sys_", RegexType.MATCH_MIDDLE_ONLY, False),
    ("*", "", RegexType.MATCH_END_ONLY, False),
    ("a*c", "a*c", RegexType.MATCH_GLOB, False),
    ("a?c", "a?c", RegexType.MATCH_GLOB, False),
    ("[kv]fs*", "[kv]fs*", RegexType.MATCH_GLOB, False),
    ("*a*c", "*a*c", RegexType.MATCH_GLOB, False),
    ("!vfs_*", "vfs_", RegexType.MATCH_FRONT_ONLY, True),
    ("42", "42", RegexType.MATCH_INDEX, False),
    ("!7", "7", RegexType.MATCH_INDEX, True),
])
def test_filter_parse_regex(word: str, search: str, kind: RegexType, negate: bool) -> None:
    pat = filter_parse_regex(word)
    assert (pat.search, pat.type, pat.negate) == (search, kind, negate)


@pytest.mark.parametrize("pattern, text, expected", [
    ("a*c?[x]", "abbcdx", True),
    ("a*c?[x]", "abbcdy", False),
    ("vfs_[rw]*", "vfs_write", True),
    ("vfs_[!rw]*", "vfs_open", True),
    ("vfs_[!rw]*", "vfs_read", False),
    ("vfs_[^rw]*", "vfs_read", True),    # '^' is an ordinary class member in lib/glob.c
    ("[a-c]*", "bio_endio", True),
    ("[a-c]*", "do_exit", False),
    ("\\*x", "*x", True),
    ("\\*x", "ax", False),
    ("*_*_*", "do_sys_openat2", True),
    ("?", "", False),
    ("[", "[", True),            # an unterminated class is a literal '['
])
def test_glob_match(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


@given(st.text(alphabet="abc_", max_size=8), st.text(alphabet="abc_", max_size=8))
def test_simple_types_agree_with_glob(prefix: str, name: str) -> None:
    """front/end/middle matching is glob matching with * in the same places."""
    for word, glob in ((f"{prefix}*", f"{prefix}*"), (f"*{prefix}", f"*{prefix}"),
                       (f"*{prefix}*", f"*{prefix}*")):
        pat = filter_parse_regex(word)
        if pat.type != RegexType.MATCH_GLOB:
            assert ftrace_match(name, pat) == glob_match(glob, name)


def _lines(lab: Lab, path: str) -> list[str]:
    text = lab.tracefs.read(path)
    assert isinstance(text, str)
    return text.splitlines()


def _names(lab: Lab) -> list[str]:
    return _lines(lab, "available_filter_functions")


# (steps, expected file content); a step is (op, text, errno or 0)
FILTER_CASES = [
    ([(">", "vfs_read", 0)], ["vfs_read"]),
    ([(">", "vfs_read", 0), (">>", "vfs_write", 0)], ["vfs_read", "vfs_write"]),
    ([(">", "vfs_write vfs_read", 0)], ["vfs_read", "vfs_write"]),          # record order
    ([(">", "vfs_*", 0), (">>", "!vfs_open", 0)], ["vfs_read", "vfs_write"]),
    ([(">", "vfs_* !vfs_open", 0)], ["vfs_read", "vfs_write"]),
    ([(">", "vfs_read", 0), (">", "", 0)], ["#### all functions enabled ####"]),
    ([(">", "vfs_read", 0), (">>", "", 0)], ["vfs_read"]),
    ([(">", "vfs_read", 0), (">", "nomatch", errno.EINVAL)], ["#### all functions enabled ####"]),
    ([(">", "vfs_read", 0), (">>", "nomatch", errno.EINVAL)], ["vfs_read"]),
    ([(">", "vfs_read nomatch vfs_write", errno.EINVAL)], ["vfs_read"]),   # stops at the bad word
    ([(">", "do_syscall_64", errno.EINVAL)], ["#### all functions enabled ####"]),  # notrace
    ([(">", "vfs_read:nosuchcmd", errno.EINVAL)], ["#### all functions enabled ####"]),
    ([(">", "0", errno.EINVAL)], ["#### all functions enabled ####"]),
    ([(">", "99999", errno.EINVAL)], ["#### all functions enabled ####"]),
    ([(">", "vfs_read", 0), (">>", "!vfs_write", 0)], ["vfs_read"]),       # removing a non-member
]


@pytest.mark.parametrize("steps, expected", FILTER_CASES)
def test_set_ftrace_filter_semantics(booted_lab: Lab, steps: list[tuple[str, str, int]],
                                     expected: list[str]) -> None:
    fs = booted_lab.tracefs
    fs.write("set_ftrace_filter", "")
    for op, text, err in steps:
        write = fs.write if op == ">" else fs.append
        if err:
            with pytest.raises(OSError) as info:
                write("set_ftrace_filter", text)
            assert info.value.errno == err
        else:
            write("set_ftrace_filter", text)
    assert _lines(booted_lab, "set_ftrace_filter") == expected


def test_index_selects_available_filter_functions_lines(booted_lab: Lab) -> None:
    names = _names(booted_lab)
    booted_lab.tracefs.write("set_ftrace_filter", "3 1")
    assert _lines(booted_lab, "set_ftrace_filter") == [names[0], names[2]]
    booted_lab.tracefs.write("set_ftrace_filter", f"*sys_* !{names.index('ksys_read') + 1}")
    got = _lines(booted_lab, "set_ftrace_filter")
    assert "ksys_read" not in got and "ksys_write" in got
    assert got == [n for n in names if "sys_" in n and n != "ksys_read"]
    booted_lab.tracefs.write("set_ftrace_filter", "")


def test_set_ftrace_notrace(booted_lab: Lab) -> None:
    fs = booted_lab.tracefs
    assert fs.read("set_ftrace_notrace") == ""
    fs.write("set_ftrace_notrace", "*lock*")
    assert all("lock" in n for n in _lines(booted_lab, "set_ftrace_notrace"))
    fs.append("set_ftrace_notrace", "!*unlock*")
    assert not any("unlock" in n for n in _lines(booted_lab, "set_ftrace_notrace"))
    fs.write("set_ftrace_notrace", "")
    assert fs.read("set_ftrace_notrace") == ""


def test_set_ftrace_pid(booted_lab: Lab) -> None:
    fs = booted_lab.tracefs
    assert fs.read("set_ftrace_pid") == "no pid\n"
    fs.write("set_ftrace_pid", "12 3")
    fs.append("set_ftrace_pid", "7")
    assert fs.read("set_ftrace_pid") == "3\n7\n12\n"
    with pytest.raises(OSError) as info:
        fs.write("set_ftrace_pid", "abc")
    assert info.value.errno == errno.EINVAL
    fs.write("set_ftrace_pid", "")
    assert fs.read("set_ftrace_pid") == "no pid\n"


def test_set_ftrace_pid_narrows_the_tracers(lab: Lab) -> None:
    """global_ops has FTRACE_OPS_FL_PID: while a list is set its func is ftrace_pid_func
    (ftrace_update_pid_func(), trampoline repoked), so the function tracer records only
    the listed tasks; set_ftrace_notrace_pid drops tasks; function_graph asks the lists
    (ftrace_trace_task()); options/function-fork makes children follow their parent."""
    fs = lab.tracefs

    def pids() -> set[int]:
        return set(lab.trace().df_events()["pid"].astype(int))
    fs.write("set_ftrace_filter", "ksys_read")
    fs.write("current_tracer", "function")
    fs.write("set_ftrace_pid", "0x66")                          # 102, as kstrtoul() reads it
    assert "(ftrace_pid_func+" in str(fs.read("enabled_functions"))
    assert lab.run("cat").completed and lab.run("cat").completed
    assert pids() == {102}
    fs.write("set_ftrace_pid", "")
    assert fs.read("set_ftrace_pid") == "no pid\n"
    assert "(function_trace_call+" in str(fs.read("enabled_functions"))
    fs.write("set_ftrace_notrace_pid", "104")
    fs.write("trace", "")
    assert lab.run("cat").completed and lab.run("cat").completed          # 103, 104
    assert pids() == {103}
    fs.write("set_ftrace_notrace_pid", "")
    fs.write("current_tracer", "function_graph")
    fs.write("set_ftrace_pid", "106")
    fs.write("trace", "")
    assert lab.run("cat").completed and lab.run("cat").completed          # 105, 106
    assert pids() == {106}
    fs.write("current_tracer", "nop")
    fs.write("set_ftrace_filter", "__do_sys_getpid")
    fs.write("current_tracer", "function")
    fs.write("options/function-fork", "1")
    fs.write("set_ftrace_pid", "107")                           # fork-storm's parent
    fs.write("trace", "")
    assert lab.run("fork-storm", loops=1, tasks=3).completed
    assert pids() == {108, 109, 110}                           # its children, followed
    assert fs.read("set_ftrace_pid") == ""                      # set, and every task gone
