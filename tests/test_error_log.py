"""error_log: tracing_log_err()'s entry format, the 16-entry limit, and clearing by
an O_TRUNC open (``echo > error_log``) but not by an append."""

from __future__ import annotations

from ftracelab import Lab
from ftracelab.trace.error_log import TRACING_LOG_ERRS_MAX, ErrorLog

ERRS = ("Failed to parse", "Invalid probe point", "Too many arguments")


def test_entry_format_is_the_kernels() -> None:
    log = ErrorLog()
    log.log(105_207_497_999, "trace_kprobe", "p:myprobe do_sys_openat2+0x1000", ERRS, 1, 10)
    assert log.read() == ("[  105.207497] trace_kprobe: error: Invalid probe point\n"
                          "  Command: p:myprobe do_sys_openat2+0x1000\n"
                          "                     ^\n")


def test_log_keeps_the_newest_sixteen() -> None:
    log = ErrorLog()
    for i in range(TRACING_LOG_ERRS_MAX + 3):
        log.log(i * 1000, "hist", f"cmd{i}", ERRS, 0, 0)
    cmds = [e.cmd for e in log.entries]
    assert cmds == [f"cmd{i}" for i in range(3, TRACING_LOG_ERRS_MAX + 3)]


def test_tracefs_file_append_keeps_truncate_clears(booted_lab: Lab) -> None:
    fs, tr = booted_lab.tracefs, booted_lab.trace_array
    assert fs.read("error_log") == ""
    booted_lab.run("getpid", loops=2)
    tr.log_err("trace_fprobe", "f:bad no_such_function", ERRS, 1, 6)
    text = str(fs.read("error_log"))
    stamp = int(text[1:6]) * 1_000_000 + int(text[7:13])
    assert 0 < stamp <= booted_lab.machine.clock_ns(0) // 1000 + 1
    assert text.endswith("trace_fprobe: error: Invalid probe point\n"
                         "  Command: f:bad no_such_function\n"
                         "                 ^\n")
    fs.append("error_log", "anything")
    assert fs.read("error_log") == text
    fs.write("error_log", "")
    assert fs.read("error_log") == ""
