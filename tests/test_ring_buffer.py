"""The emulated ring buffer: the native writer's pages decode with the same reader
as real captures; overwrite and producer/consumer modes; lost-event accounting;
trace_pipe_raw consumes pages, the writer's partial page last; determinism down to the bytes."""

from __future__ import annotations

import errno
import struct

import numpy as np
import pytest

from ftracelab import Lab
from ftracelab.formats.ring_buffer_page import decode_pages
from ftracelab.machine.cpu import EntryCounter

RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30


def _function_tracer(lab: Lab, glob: str) -> None:
    lab.tracefs.write("set_ftrace_filter", glob)
    lab.tracefs.write("current_tracer", "function")


def _stats(lab: Lab, cpu: int) -> dict[str, str]:
    text = lab.tracefs.read(f"per_cpu/cpu{cpu}/stats")
    assert isinstance(text, str)
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_function_tracer_records_every_call(lab: Lab) -> None:
    calls = EntryCounter(lab.machine, [lab.symbol("vfs_read")])
    _function_tracer(lab, "vfs_read")
    lab.run("cat", loops=2)
    df = lab.trace().df_events()
    assert len(df) == calls.close() == 6
    assert set(df["func"]) == {"vfs_read"} and set(df["parent"]) == {"ksys_read"}
    assert set(df["comm"]) == {"cat"} and (df["event"] == "function").all()
    assert df["ip"].dtype == np.uint64 and (df["ip"] == lab.fentry_site("vfs_read")).all()
    assert df["ts"].is_monotonic_increasing
    assert _stats(lab, 0)["entries"] == "6" and _stats(lab, 0)["bytes"] == str(6 * 28)


def test_tracing_on_off(lab: Lab) -> None:
    _function_tracer(lab, "vfs_*")
    lab.tracefs.write("tracing_on", "0")
    lab.run("cat")
    assert len(lab.trace().df_events()) == 0
    lab.tracefs.write("tracing_on", "1")
    lab.run("cat")
    assert len(lab.trace().df_events()) == 7


def test_overwrite_loses_the_oldest_and_counts_them(lab: Lab) -> None:
    lab.tracefs.write("buffer_size_kb", "8")                # 3 pages per CPU
    _function_tracer(lab, "*")
    lab.run("getpid", loops=400)
    s = _stats(lab, 0)
    assert int(s["overrun"]) > 0 and int(s["dropped events"]) == 0
    df = lab.trace().df_events()
    assert len(df[df["cpu"] == 0]) == int(s["entries"])
    # a consuming read marks the loss in the first page it returns
    raw = lab.tracefs.read("per_cpu/cpu0/trace_pipe_raw")
    assert isinstance(raw, bytes) and len(raw) % 4096 == 0 and raw
    commit = struct.unpack_from("<q", raw, 8)[0]
    size = commit & 0xFFFFF
    assert commit & RB_MISSED_EVENTS
    pages = decode_pages(raw, cpu=0)
    if 4080 - size >= 8:              # room after the data: the count is stored there
        assert commit & RB_MISSED_STORED
        assert struct.unpack_from("<q", raw, 16 + size)[0] == int(s["overrun"])
        assert int(pages.lost[0]) == int(s["overrun"])
    else:                             # a full page: "events were lost", count unknown
        assert not commit & RB_MISSED_STORED and int(pages.lost[0]) == -1
    assert lab.tracefs.read("per_cpu/cpu0/trace_pipe_raw") == b""     # nothing unread left


def test_producer_consumer_drops_the_newest(lab: Lab) -> None:
    lab.tracefs.write("buffer_size_kb", "8")
    lab.tracefs.write("options/overwrite", "0")
    _function_tracer(lab, "*")
    lab.run("getpid", loops=400)
    s = _stats(lab, 0)
    assert int(s["dropped events"]) > 0 and int(s["overrun"]) == 0
    df = lab.trace().df_events()
    first = df[df["cpu"] == 0]
    assert first["comm"].iloc[0] in ("getpid", "<idle>")         # the oldest events stay


def test_long_gaps_use_time_extend(lab: Lab) -> None:
    _function_tracer(lab, "hrtimer_wakeup")
    lab.run("sleep", loops=3, sleep_ns=200_000_000)                  # > 2**27 ns apart
    df = lab.trace().df_events()
    assert len(df) == 3
    gaps = np.diff(df["ts"].to_numpy())
    assert (gaps > 1 << 27).all() and (np.abs(gaps - 200_000_000) < 1_000_000).all()
    raw = b"".join(lab.trace_array.buffer.snapshot(int(df["cpu"].iloc[0])))
    headers = np.frombuffer(raw[16:16 + 64], dtype="<u4")
    assert (headers & 0x1F == 30).any()                             # a TIME_EXTEND event


def test_same_seed_same_ring_buffer_bytes() -> None:
    def pages(seed: int) -> list[bytes]:
        lab = Lab(cpus=2, seed=seed)
        _function_tracer(lab, "*")
        lab.run("lock-contention")
        return [p for cpu in range(2) for p in lab.trace_array.buffer.snapshot(cpu)]

    a, b, c = pages(4), pages(4), pages(5)
    assert a == b and a != c


def test_saved_cmdlines_and_dump(lab: Lab, tmp_path: object) -> None:
    import ftracelab

    _function_tracer(lab, "__do_sys_getpid")
    lab.run("fork-storm", loops=1, tasks=2)
    text = lab.tracefs.read("saved_cmdlines")
    assert text == "102 fork-storm\n103 fork-storm\n"       # the children call getpid
    root = lab.tracefs.dump(str(tmp_path))
    trace = ftracelab.open_trace(root)
    assert trace.df_events().equals(lab.trace().df_events())
    assert (root / "kallsyms").read_text().startswith("ffffffff81000000 T __fentry__")


def test_trace_pipe_raw_hands_out_the_partial_page(lab: Lab) -> None:
    """As on a real 6.12 (the captures' last page has a short commit): the page being
    written comes out with its unread events; the next read has nothing until new
    events come, then only those."""
    _function_tracer(lab, "vfs_read")
    assert lab.run("cat").completed
    raw = lab.tracefs.read("per_cpu/cpu0/trace_pipe_raw")
    assert isinstance(raw, bytes) and len(raw) == 4096
    assert 0 < struct.unpack_from("<q", raw, 8)[0] < 4080
    first = decode_pages(raw, cpu=0)
    assert len(first) == 3
    assert lab.tracefs.read("per_cpu/cpu0/trace_pipe_raw") == b""
    assert lab.run("cat").completed
    second = decode_pages(lab.tracefs.read("per_cpu/cpu0/trace_pipe_raw"), cpu=0)    # type: ignore[arg-type]
    assert len(second) == 3 and int(second.ts.min()) > int(first.ts.max())


def test_buffer_size_kb_reads_whole_pages(lab: Lab) -> None:
    """tracing_entries_read(): a ring holds whole 4080-byte pages, so the default 1408 KB
    reads back 1410 as on a real kernel; per_cpu/cpuN/buffer_size_kb resizes one CPU's
    ring and buffer_size_kb then reads X; the snapshot's spare follows CPU by CPU."""
    fs = lab.tracefs
    assert fs.read("buffer_size_kb") == "1410\n" and fs.read("buffer_total_size_kb") == "2820\n"
    fs.write("buffer_size_kb", "8")                        # 3 pages: 12240 bytes
    assert fs.read("buffer_size_kb") == "11\n" and fs.read("per_cpu/cpu0/buffer_size_kb") == "11\n"
    fs.write("per_cpu/cpu1/buffer_size_kb", "64")          # 17 pages
    assert fs.read("buffer_size_kb") == "X\n" and fs.read("per_cpu/cpu1/buffer_size_kb") == "67\n"
    assert fs.read("buffer_total_size_kb") == "78\n"
    fs.write("snapshot", "1")
    spare = lab.trace_array.snapshot.ring
    assert spare is not None and [spare.nr_pages(c) for c in (0, 1)] == [3, 17]
    for bad in ("0", "-4", "x"):
        with pytest.raises(OSError) as exc:
            fs.write("per_cpu/cpu0/buffer_size_kb", bad)
        assert exc.value.errno == errno.EINVAL


def test_free_buffer(lab: Lab) -> None:
    """echo > free_buffer: every ring down to its two pages (7 KB), tracing left on
    unless options/disable_on_free is set."""
    fs = lab.tracefs
    fs.write("free_buffer", "")
    assert fs.read("buffer_size_kb") == "7\n" and fs.read("tracing_on") == "1\n"
    fs.write("buffer_size_kb", "1408")
    fs.write("options/disable_on_free", "1")
    fs.write("free_buffer", "")
    assert fs.read("buffer_size_kb") == "7\n" and fs.read("tracing_on") == "0\n"
