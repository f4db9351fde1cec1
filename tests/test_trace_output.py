"""The ``trace`` text: byte for byte what Linux 6.12 prints for the same events,
golden files for the option variants, and the latency-flag characters."""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ftracelab
from ftracelab import Lab
from ftracelab.trace.trace_output import (
    OutputOptions,
    delay_mark,
    function_lines,
    header,
    lat_context,
    lat_fmt,
    timestamps,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-traces" / "linux-6.12"


@pytest.mark.parametrize("flags, pc, expected", [
    (0, 0, "....."),
    (0x01, 0, "d...."),
    (0x81, 0, "D...."),
    (0x80, 0, "b...."),
    (0x04 | 0x20, 0, ".N..."),
    (0x04, 0, ".n..."),
    (0x20, 0, ".p..."),
    (0x08, 1, "..h1."),
    (0x18, 2, "..H2."),
    (0x10, 0, "..s.."),
    (0x48, 0, "..Z.."),
    (0x40, 0, "..z.."),
    (0x01 | 0x08, 0x21, "d.h12"),
])
def test_lat_fmt(flags: int, pc: int, expected: str) -> None:
    assert lat_fmt(flags, pc) == expected


def test_function_trace_matches_linux_6_12() -> None:
    """Render the real a4 capture's raw pages; compare with the kernel's own text."""
    scenario = REAL / "a4_trace_clock" / "local"
    if not scenario.exists():
        pytest.skip("the real Linux 6.12 captures are not here")
    kernel = (scenario / "trace.txt").read_text()
    body = [line for line in kernel.splitlines() if not line.startswith("#")]
    tasks = [line.split()[0].rsplit("-", 1) for line in body]
    cmdlines = {int(pid): comm for comm, pid in tasks}
    trace = ftracelab.open_trace(scenario, kallsyms=REAL / "meta" / "kallsyms.txt.gz",
                                 cmdlines=cmdlines, events=[REAL / "meta" / "events"])
    df = trace.df_events().sort_values("ts", kind="stable")
    symbols = trace.symbols
    assert symbols is not None

    def sym(addr: int, offset: bool) -> str:
        return str(symbols.lookup([addr])[0])

    lines = function_lines(df, sym)
    n = len(lines)
    text = header("function", n, n, 2) + "".join(line + "\n" for line in lines)
    assert text == kernel


def _lab_trace() -> Lab:
    lab = Lab(cpus=2, seed=0)
    lab.tracefs.write("set_ftrace_filter", "vfs_* ksys_* __do_sys_getpid")
    lab.tracefs.write("current_tracer", "function")
    lab.run("cat", path="/etc/motd")
    lab.run("fork-storm", loops=1, tasks=2)
    return lab


@pytest.mark.parametrize("option", ["", "noprint-parent", "sym-offset", "sym-addr",
                                    "nocontext-info", "noirq-info", "record-tgid", "raw",
                                    "hex", "latency-format", "verbose",
                                    "latency-format+verbose"])
def test_trace_golden(option: str, golden: Callable[[str, str], None]) -> None:
    lab = _lab_trace()
    for word in filter(None, option.split("+")):
        lab.tracefs.write("trace_options", word)
    text = lab.tracefs.read("trace")
    assert isinstance(text, str)
    golden(f"trace_function{'_' + option if option else ''}.txt", text)
    assert lab.tracefs.read("trace") == text            # reading does not consume


@pytest.mark.parametrize("gap_ns, mark", [
    (0, " "), (10_000, " "), (10_001, "+"), (100_001, "!"), (1_000_001, "#"),
    (10_000_001, "*"), (100_000_001, "@"), (1_000_000_001, "$")])
def test_delay_marks(gap_ns: int, mark: str) -> None:
    """trace_find_mark(): a symbol once the delay is strictly above a threshold."""
    assert delay_mark(gap_ns) == mark


def test_latency_context_columns() -> None:
    """lat_print_generic + lat_print_timestamp: comm cut to 8, µs since the time
    base rounded as ns2usecs, and the mark of the gap (rounded to µs) to the next."""
    line = lat_context("fork-storm", 102, 1, 0x01, 0x1, 5_400_000 + 1_499, 5_400_000 + 160_000,
                       time_start=400_000)
    assert line == "fork-sto-102       1d..1. 5001us!: "
    assert lat_context("cat", 7, 0, 0, 0, 10_000, 10_000, 0) == "     cat-7         0.....   10us : "
    # verbose: "%16s %7d %3d %d %08x %08lx " then "[%08llx] %ld.%03ldms (+%ld.%03ldms): "
    assert lat_context("fork-storm", 102, 1, 0x01, 0x21, 5_401_499, 5_560_000, 400_000,
                       idx=26) == ("      fork-storm     102   1 1 00000001 0000001a "
                                   "[00001519] 5.001ms (+0.159ms): ")


def test_latency_format_header_and_reset() -> None:
    """An empty buffer prints just the tracer line; setting a tracer empties the buffer
    and restarts the time base (tracer_init -> tracing_reset_online_cpus)."""
    lab = _lab_trace()
    fs = lab.tracefs
    fs.write("options/latency-format", "1")
    assert "latency trace v1.1.5" in str(fs.read("trace"))
    fs.write("current_tracer", "nop")
    assert fs.read("trace") == "# tracer: nop\n#\n"
    assert lab.trace().df_events().empty
    fs.write("options/latency-format", "0")
    fs.write("options/context-info", "0")
    assert fs.read("trace") == "# tracer: nop\n#\n"


def test_trace_bin_is_the_entries_memory() -> None:
    """options/bin: the header, then per entry pid, cpu, ts and ip, parent_ip as raw
    little-endian memory (print_bin_fmt + trace_fn_bin); stack entries print
    trace_nop_print's text. Parsed back, the stream is the buffer's entries."""
    lab = _lab_trace()
    lab.tracefs.write("options/func_stack_trace", "1")
    lab.run("getpid", loops=1)
    lab.tracefs.write("trace_options", "bin")
    data = lab.tracefs.read("trace")
    assert isinstance(data, bytes)
    text_header = header("function", 0, 0, 2).split("\n")[-3:]
    body = data[data.index(text_header[-2].encode()) + len(text_header[-2]) + 1:]
    df = lab.trace().df_events()
    df = df[df["event"].isin(["function", "kernel_stack"])]
    pos = 0
    for row in df.itertuples():
        pid, cpu, ts = struct.unpack_from("<iiQ", body, pos)
        pos += 16
        assert (pid, cpu, ts) == (row.pid, row.cpu, row.ts)
        if row.event == "function":
            assert struct.unpack_from("<QQ", body, pos) == (row.ip, row.parent_ip)
            pos += 16
        else:
            assert body[pos:pos + 8] == b"type: 4\n"
            pos += 8
    assert pos == len(body) and len(df) > 10


def test_trace_options_file_and_errors(booted_lab: Lab) -> None:
    fs = booted_lab.tracefs
    opts = fs.read("trace_options")
    assert isinstance(opts, str)
    assert opts.splitlines()[:3] == ["print-parent", "nosym-offset", "nosym-addr"]
    assert opts.splitlines()[-2:] == ["notest_nop_accept", "notest_nop_refuse"]
    with pytest.raises(OSError):
        fs.write("trace_options", "no-such-option")
    fs.write("options/sym-addr", "1")
    assert "\nsym-addr\n" in str(fs.read("trace_options"))
    fs.write("options/sym-addr", "0")
    with pytest.raises(OSError):
        fs.write("options/sym-addr", "2")


def test_echo_to_trace_clears(booted_lab: Lab) -> None:
    fs = booted_lab.tracefs
    fs.write("current_tracer", "function")
    booted_lab.run("getpid", loops=3)
    assert "entries-in-buffer/entries-written: 0/0" not in str(fs.read("trace"))
    fs.write("trace", "")
    assert "entries-in-buffer/entries-written: 0/0" in str(fs.read("trace"))
    fs.write("current_tracer", "nop")


def test_trace_pipe_consumes(golden: Callable[[str, str], None]) -> None:
    lab = _lab_trace()
    fs = lab.tracefs
    everything = str(fs.read("trace"))
    lines = [line for line in everything.splitlines() if not line.startswith("#")]
    piped = str(fs.read("trace_pipe"))
    golden("trace_pipe_function.txt", piped)
    assert sorted(piped.splitlines()) == sorted(lines)      # same events, merged by time
    assert fs.read("trace_pipe") == ""                      # consumed; it does not block
    assert "entries-in-buffer/entries-written: 0/" in str(fs.read("trace"))
    lab.run("cat", path="/etc/motd")
    more = str(fs.read("trace_pipe")).splitlines()
    assert len(more) == 8 and all("cat-" in line for line in more)   # 2 opens, 2+2 reads, 1+1 writes


def test_per_cpu_trace_files() -> None:
    lab = _lab_trace()
    whole = [ln for ln in str(lab.tracefs.read("trace")).splitlines() if not ln.startswith("#")]
    per_cpu = []
    for cpu in range(2):
        text = str(lab.tracefs.read(f"per_cpu/cpu{cpu}/trace"))
        assert text.startswith("# tracer: function\n#\n# entries-in-buffer/entries-written: ")
        mine = [ln for ln in text.splitlines() if not ln.startswith("#")]
        assert all(f"[{cpu:03d}]" in ln for ln in mine)
        per_cpu += mine
    assert sorted(per_cpu) == sorted(whole)
    taken = str(lab.tracefs.read("per_cpu/cpu1/trace_pipe")).splitlines()
    assert taken and all("[001]" in ln for ln in taken)
    rest = [ln for ln in str(lab.tracefs.read("trace")).splitlines() if not ln.startswith("#")]
    assert sorted(rest + taken) == sorted(whole)


def test_stack_traces_and_markers_match_linux_6_12() -> None:
    """a2: function entries, kernel_stack entries ([FTRACE TRAMPOLINE] ...) and a
    trace_marker line, with record-tgid, rendered byte for byte as 6.12 does."""
    scenario = REAL / "a2_function_stacktrace"
    if not scenario.exists():
        pytest.skip("the real Linux 6.12 captures are not here")
    kernel = (scenario / "trace.txt").read_text()     # trace_marker_raw's raw_data line too
    trace = ftracelab.open_trace(scenario, kallsyms=REAL / "meta" / "kallsyms.txt.gz",
                                 cmdlines=scenario / "saved_cmdlines.txt",
                                 events=[REAL / "meta" / "events"])
    df = trace.df_events().sort_values("ts", kind="stable")
    symbols = trace.symbols
    assert symbols is not None

    def sym(addr: int, offset: bool) -> str:
        return str(symbols.lookup([addr])[0])

    opts = OutputOptions(record_tgid=True)
    lines = function_lines(df, sym, opts, tgid=lambda pid: None, record=trace.record)
    n = len(df)
    text = header("function", n, n, 2, opts) + "".join(line + "\n" for line in lines)
    assert text == kernel


def test_func_stack_trace_and_trace_marker(lab: Lab, golden: Callable[[str, str], None]) -> None:
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "vfs_write")
    fs.write("current_tracer", "function")
    fs.write("options/func_stack_trace", "1")
    fs.write("trace_marker", "workload start")
    lab.run("cat", path="/etc/motd")
    text = str(fs.read("trace"))
    golden("trace_function_stack.txt", text)
    assert "tracing_mark_write: workload start\n" in text
    assert (" => [FTRACE TRAMPOLINE]\n => vfs_write\n => ksys_write\n => do_syscall_64\n"
            " => entry_SYSCALL_64_after_hwframe\n") in text
    df = lab.trace().df_events()
    stacks = df[df["event"] == "kernel_stack"]
    assert len(stacks) == 1 and int(stacks["size"].iloc[0]) == 5
    assert stacks["caller"].iloc[0][0] == 0x7FFF_FFFF


@pytest.mark.parametrize("event", ["function", "kernel_stack", "print"])
def test_format_files_are_6_12s(booted_lab: Lab, event: str) -> None:
    ours = booted_lab.tracefs.read(f"events/ftrace/{event}/format")
    real = REAL / "a2_function_stacktrace" / "events" / "ftrace" / event / "format"
    if not real.exists():
        pytest.skip("the real Linux 6.12 captures are not here")
    assert ours == real.read_text()


def test_a_python_tracer_writes_through_trace_marker(lab: Lab) -> None:
    """A Python callback writes events with the kernel's own writer, as the task it traces."""
    fs = lab.tracefs

    def py_tracer(ip: int, parent_ip: int, ops: object, fregs: object) -> None:
        fs.write("trace_marker", f"{lab.kallsyms.format_short(ip)} count={fregs.rdx}")  # type: ignore[attr-defined]

    lab.ftrace.register(py_tracer, filter="ksys_read")
    lab.run("cat", path="/etc/motd")
    lines = [ln for ln in str(fs.read("trace")).splitlines() if not ln.startswith("#")]
    assert lines == [ln for ln in lines if "cat-101" in ln and "tracing_mark_write: ksys_read "
                     "count=4096" in ln] and len(lines) == 2


def test_a_python_tracer_writes_what_the_native_one_does() -> None:
    """trace_function() from a Python callback fills the same TRACE_FN records (pid,
    flags, preempt count, ip, parent ip; comm saved) as the native function tracer."""
    def run(python: bool) -> pd.DataFrame:
        lab = Lab(cpus=2, seed=0)
        tr = lab.trace_array
        if python:
            lab.ftrace.register(lambda ip, parent, ops, fregs: tr.trace_function(ip, parent),
                                filter="vfs_* ksys_*")
        else:
            lab.tracefs.write("set_ftrace_filter", "vfs_* ksys_*")
            lab.tracefs.write("current_tracer", "function")
        lab.run("cat", path="/etc/motd")
        return lab.trace().df_events()

    cols = ["cpu", "pid", "comm", "event", "common_flags", "common_preempt_count",
            "ip", "parent_ip", "func", "parent"]
    native, python = run(False), run(True)
    assert len(native) == 8
    pd.testing.assert_frame_equal(python[cols].reset_index(drop=True),
                                  native[cols].reset_index(drop=True))
    assert python["ts"].is_monotonic_increasing


def test_python_writer_respects_tracing_off(lab: Lab) -> None:
    lab.tracefs.write("tracing_on", "0")
    assert not lab.trace_array.trace_function(0xFFFFFFFF81000000, 0)
    lab.tracefs.write("tracing_on", "1")
    assert lab.trace_array.trace_function(0xFFFFFFFF81000000, 0)
    assert len(lab.trace().df_events()) == 1


def test_record_tgid_with_the_function_tracer_alone() -> None:
    """As on the real 6.12 (a2 capture): the function tracer records no tgids, so
    saved_tgids stays empty and every line shows "(-------)"."""
    lab = _lab_trace()
    lab.tracefs.write("options/record-tgid", "1")
    lab.run("getpid", loops=1)
    assert lab.tracefs.read("saved_tgids") == ""
    body = [ln for ln in str(lab.tracefs.read("trace")).splitlines() if not ln.startswith("#")]
    assert body and all("(-------)" in ln for ln in body)
    real = REAL / "a2_function_stacktrace" / "saved_tgids.txt"
    if real.exists():
        assert real.read_text() == ""


def test_raw_data_lines() -> None:
    """trace_raw_data(): the id in hex, then every byte after it that the record holds
    (padding included); raw prints the same, hex falls back to trace_nop_print."""
    df = pd.DataFrame({"ts": [1_000], "event": ["raw_data"], "comm": ["w"], "pid": [5],
                       "cpu": [0], "common_flags": [0], "common_preempt_count": [0],
                       "buf": ["ab"]})
    rec = struct.pack("<HBBiI", 18, 0, 0, 5, 0x2A) + b"ab\0\0"

    def lines(**opts: bool) -> list[str]:
        return function_lines(df, lambda a, o: "", OutputOptions(context_info=False, **opts),
                              record=lambda row: rec)

    assert lines() == lines(raw=True) == ["# 2a buf: 61 62 00 00"]
    assert lines(hex=True) == ["type: 18\n"]
    assert function_lines(df, lambda a, o: "", OutputOptions()) == []   # no record bytes


def test_trace_marker_raw_and_the_markers_errnos(lab: Lab) -> None:
    """trace_marker_raw writes a raw_data entry reserved as the kernel reserves it
    (12 + count, at least 25 bytes), so its line shows the unfilled bytes as a real
    6.12's does (a2_function_stacktrace: ``# 1 buf: 72 61 77 21 00 ...``); both markers
    refuse with EINVAL while options/markers is off and EBADF while tracing is off."""
    fs = lab.tracefs
    fs.write_bytes("trace_marker_raw", struct.pack("<I", 1) + b"raw!")
    line = str(fs.read("trace")).splitlines()[-1]
    assert line.endswith(": # 1 buf: 72 61 77 21 00 00 00 00 00 00 00 00 00 00 00 00")
    for path, data, code in (("trace_marker_raw", b"abc", errno.EINVAL),
                             ("trace_marker_raw", bytes(4070), errno.EINVAL)):
        with pytest.raises(OSError) as exc:
            fs.write_bytes(path, data)
        assert exc.value.errno == code
    fs.write("tracing_on", "0")
    for path in ("trace_marker", "trace_marker_raw"):
        with pytest.raises(OSError) as exc:
            fs.write_bytes(path, b"12345678")
        assert exc.value.errno == errno.EBADF
    fs.write("tracing_on", "1")
    fs.write("options/markers", "0")
    with pytest.raises(OSError) as exc:
        fs.write("trace_marker", "x")
    assert exc.value.errno == errno.EINVAL


def test_func_no_repeats(lab: Lab) -> None:
    """options/func-no-repeats (function_no_repeats_trace_call()): calls repeating the
    CPU's last ip and parent only count; the next other call first writes a
    func_repeats entry, printed with its count and the last repeat's time, and in raw
    mode as "%lu %lu %u %llu". Turning the option off re-registers function_trace_call."""
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "__do_sys_getpid ksys_write")
    fs.write("current_tracer", "function")
    fs.write("options/func-no-repeats", "1")
    assert "(function_no_repeats_trace_call+" in str(fs.read("enabled_functions"))
    assert lab.run("getpid", loops=10).completed and lab.run("write").completed
    df = lab.trace().df_events()
    assert df["event"].astype(str).tolist() == ["function", "func_repeats", "function"]
    rep = df.iloc[1]
    assert int(rep["count"]) == 9 and int(rep["pid"]) == df.iloc[2]["pid"]   # written by the next call
    delta = (int(rep["top_delta_ts"]) << 32) | int(rep["bottom_delta_ts"])
    last = timestamps(np.array([int(rep["ts"]) - delta]))[0]
    line = str(fs.read("trace")).splitlines()[-2]
    assert line.endswith(f"__do_sys_getpid <-do_syscall_64 (repeats: 9, last_ts: {last})")
    fs.write("options/raw", "1")
    ks = lab.kallsyms
    assert str(fs.read("trace")).splitlines()[-2].endswith(
        f"{ks['__do_sys_getpid'] + 4} {int(rep['parent_ip'])} 9 {delta}")
    fs.write("options/raw", "0")
    fs.write("options/func-no-repeats", "0")
    assert "(function_trace_call+" in str(fs.read("enabled_functions"))


def test_printk_msg_only_and_the_nop_tracers_test_options(lab: Lab) -> None:
    """printk-msg-only (with trace_printk) prints a print entry's text alone, ahead of
    the raw/hex/bin formats (print_trace_line()'s order); test_nop_refuse is refused
    (nop_set_flag(): EINVAL, the option unchanged), test_nop_accept taken."""
    fs = lab.tracefs
    fs.write("trace_marker", "hello")
    fs.write("options/printk-msg-only", "1")
    assert str(fs.read("trace")).splitlines()[-1] == "hello"
    fs.write("options/raw", "1")
    assert str(fs.read("trace")).splitlines()[-1] == "hello"
    fs.write("options/trace_printk", "0")                      # msg-only needs trace_printk
    assert str(fs.read("trace")).splitlines()[-1].endswith(" hello")
    with pytest.raises(OSError) as exc:
        fs.write("options/test_nop_refuse", "1")
    assert exc.value.errno == errno.EINVAL and fs.read("options/test_nop_refuse") == "0\n"
    fs.write("options/test_nop_accept", "1")
    assert fs.read("options/test_nop_accept") == "1\n"


def test_record_cmd_off_leaves_comms_unknown(lab: Lab) -> None:
    """options/record-cmd cleared: no comm is saved, so tasks print as <...>."""
    fs = lab.tracefs
    fs.write("options/record-cmd", "0")
    fs.write("set_ftrace_filter", "ksys_read")
    fs.write("current_tracer", "function")
    assert lab.run("cat").completed
    assert fs.read("saved_cmdlines") == ""
    assert str(fs.read("trace")).splitlines()[-1].lstrip().startswith("<...>-101 ")
    fs.write("options/record-cmd", "1")
    assert lab.run("cat").completed
    assert str(fs.read("trace")).splitlines()[-1].lstrip().startswith("cat-102 ")


def test_annotate_marks_where_each_cpu_buffer_starts(lab: Lab) -> None:
    """options/annotate after an overrun (TRACE_FILE_ANNOTATE): test_cpu_buff_start()
    writes '##### CPU N buffer started ####' before a CPU's first entry, except within
    the trace's first two entries; trace_pipe never does; noannotate drops them."""
    fs = lab.tracefs
    fs.write("buffer_size_kb", "8")
    fs.write("current_tracer", "function")
    assert lab.run("fork-storm").completed
    lines = str(fs.read("trace")).splitlines()
    marks = [k for k, line in enumerate(lines) if line.startswith("##### CPU ")]
    assert [lines[k] for k in marks] == ["##### CPU 0 buffer started ####"]
    assert "[000]" in lines[marks[0] + 1] and "[000]" not in "".join(lines[12:marks[0]])
    fs.write("options/annotate", "0")
    assert "#####" not in str(fs.read("trace"))
    fs.write("options/annotate", "1")
    assert "#####" not in str(fs.read("trace_pipe"))
