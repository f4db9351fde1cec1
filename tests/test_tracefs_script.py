"""The tracefs script shell and the %%tracefs cell magic."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ftracelab import Lab
from ftracelab.tracefs_script import TracefsShell, run_tracefs_script, tracefs

CASES: list[tuple[str, str, str]] = [
    # (id, script, everything it prints)
    ("ftrace.rst filter recipe",
     """
     cd /sys/kernel/tracing
     echo vfs_read > set_ftrace_filter
     echo vfs_write >> set_ftrace_filter
     cat set_ftrace_filter
     """,
     "vfs_read\nvfs_write\n"),
    ("debugfs path and absolute files",
     "cat /sys/kernel/debug/tracing/current_tracer\ncat /sys/kernel/tracing/options/overwrite",
     "nop\n1\n"),
    ("comments and blank lines",
     """
     # a whole-line comment: echo nope > current_tracer

     echo vfs_read > set_ftrace_filter   # trailing comment
     echo a#b '# quoted' "#" # the rest is a comment
     cat set_ftrace_filter
     """,
     "a#b # quoted #\nvfs_read\n"),
    ("quotes keep spaces",
     "echo \"vfs_read  vfs_write\" > set_ftrace_filter; cat set_ftrace_filter",
     "vfs_read\nvfs_write\n"),
    ("quoted operators are words; glued redirections",
     "echo '>' \">>\" \\> a\\ b\necho vfs_read >set_ftrace_filter;echo vfs_write>>set_ftrace_filter\n"
     "cat set_ftrace_filter",
     "> >> > a b\nvfs_read\nvfs_write\n"),
    ("a write error is reported and the script goes on",
     """
     echo vfs_read > set_ftrace_filter
     echo nomatch > set_ftrace_filter
     cat set_ftrace_filter
     echo vfs_read > set_ftrace_filter
     echo nomatch >> set_ftrace_filter
     cat set_ftrace_filter
     """,
     "bash: echo: write error: Invalid argument\n#### all functions enabled ####\n"
     "bash: echo: write error: Invalid argument\nvfs_read\n"),
    ("echo > FILE clears the filter",
     "echo vfs_read > set_ftrace_filter\necho > set_ftrace_filter\ncat set_ftrace_filter",
     "#### all functions enabled ####\n"),
    ("read errors",
     "cat nofile\ncat options\ncat /proc/sys/kernel/ftrace_enabled\ncat current_tracer",
     "cat: nofile: No such file or directory\ncat: options: Is a directory\n"
     "cat: /proc/sys/kernel/ftrace_enabled: outside the emulated tracefs (/sys/kernel/tracing)\nnop\n"),
    ("redirection errors",
     "echo 1 > nofile\necho 1 > options\necho vfs_read > available_filter_functions\n"
     "echo 1 > /proc/sys/kernel/ftrace_enabled",
     "bash: nofile: No such file or directory\nbash: options: Is a directory\n"
     "bash: echo: write error: Invalid argument\n"
     "bash: /proc/sys/kernel/ftrace_enabled: outside the emulated tracefs (/sys/kernel/tracing)\n"),
    ("cd into options and back",
     "cd options; cat overwrite\npwd\ncd ..\npwd\ncd nodir\ncd current_tracer\ncat current_tracer",
     "1\n/sys/kernel/tracing/options\n/sys/kernel/tracing\n"
     "bash: cd: nodir: No such file or directory\nbash: cd: current_tracer: Not a directory\nnop\n"),
    ("echo -n writes no newline; echo -e",
     "echo -n function > current_tracer\ncat current_tracer\necho -n a; echo b\necho -e 'x\\ty\\c'; echo",
     "function\nab\nx\ty\n"),
    ("unsupported commands and syntax are reported, then the script goes on",
     "sleep 1\ncat trace | head\necho $$ > set_ftrace_pid\nX=1\ncat set_ftrace_pid",
     "bash: sleep: command not found\n"
     "bash: |: not supported by this shell (it runs echo, cat, cd, ls, pwd, :, true, with > and >>)\n"
     "bash: $$: not supported by this shell (it runs echo, cat, cd, ls, pwd, :, true, with > and >>)\n"
     "bash: X=1: variable assignments are not supported by this shell\nno pid\n"),
    ("a syntax error ends the script, as in bash",
     "echo first\necho 'unclosed\necho never",
     "first\nbash: unexpected EOF while looking for matching `''\n"),
    (": and true",
     ": anything at all\ntrue\necho vfs_read > set_ftrace_filter\n: > set_ftrace_filter\n"
     "cat set_ftrace_filter",
     "#### all functions enabled ####\n"),
    ("unquoted globs expand against the current directory (the trap ftrace.rst warns about)",
     "echo set_ftrace*\necho nomatch* 'set_ftrace*'\necho per_cpu/cpu?/stats",
     "set_ftrace_filter set_ftrace_notrace set_ftrace_notrace_pid set_ftrace_pid\nnomatch* set_ftrace*\n"
     "per_cpu/cpu0/stats per_cpu/cpu1/stats\n"),
    ("ls",
     "ls per_cpu\nls options/overwrite\nls nope",
     "cpu0\ncpu1\noptions/overwrite\nls: cannot access 'nope': No such file or directory\n"),
]


@pytest.mark.parametrize(("script", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_script(lab: Lab, script: str, expected: str) -> None:
    script = "\n".join(line.strip() for line in script.splitlines())
    assert run_tracefs_script(lab.tracefs, script) == expected


def test_quoted_glob_reaches_the_kernel(lab: Lab) -> None:
    out = run_tracefs_script(lab.tracefs, "echo 'vfs_*' > set_ftrace_filter\ncat set_ftrace_filter")
    functions = lab.tracefs.read("available_filter_functions")
    assert isinstance(functions, str)
    expected = {line.split()[0] for line in functions.splitlines() if line.startswith("vfs_")}
    assert {"vfs_read", "vfs_write"} <= set(out.splitlines()) == expected


def test_ls_of_the_root(lab: Lab) -> None:
    listing = run_tracefs_script(lab.tracefs, "ls").splitlines()
    assert "available_filter_functions" in listing and "options" in listing
    assert listing == sorted(listing) == lab.tracefs.listdir("")
    assert run_tracefs_script(lab.tracefs, "ls /sys/kernel/tracing") == "\n".join(listing) + "\n"


def test_binary_file_is_not_printed(lab: Lab) -> None:
    out = run_tracefs_script(lab.tracefs, "cat per_cpu/cpu0/trace_pipe_raw")
    assert out.startswith("cat: per_cpu/cpu0/trace_pipe_raw: binary file (")
    assert out.endswith(" bytes); use lab.tracefs.read()\n")


def test_cwd_argument_and_session(lab: Lab) -> None:
    assert run_tracefs_script(lab.tracefs, "cat overwrite; pwd", cwd="options") == \
        "1\n/sys/kernel/tracing/options\n"
    shell = TracefsShell(lab.tracefs, "/sys/kernel/debug/tracing/per_cpu")
    assert shell.run("cd cpu1") == ""
    assert shell.run("pwd") == "/sys/kernel/tracing/per_cpu/cpu1\n"
    with pytest.raises(OSError):
        TracefsShell(lab.tracefs, "nodir")


def test_function_alias_prints(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    tracefs(lab, "cat current_tracer")
    assert capsys.readouterr().out == "nop\n"


def test_cell_magic(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    run_cell_magic: Callable[[str, str, str], object] = shell.run_cell_magic   # untyped in IPython
    shell.run_line_magic("load_ext", "ftracelab.tracefs_script")
    shell.user_ns["lab"] = lab
    shell.user_ns["other"] = Lab(cpus=2, seed=0)
    try:
        capsys.readouterr()
        run_cell_magic("tracefs", "", "cat current_tracer")
        assert capsys.readouterr().out == "nop\n"
        run_cell_magic("tracefs", "other", "echo function > current_tracer\ncat current_tracer")
        assert capsys.readouterr().out == "function\n"
        assert lab.tracefs.read("current_tracer") == "nop\n"
        with pytest.raises(UsageError):
            run_cell_magic("tracefs", "missing", "pwd")
    finally:
        del shell.user_ns["lab"], shell.user_ns["other"]
