"""tracing_cpumask (trace/trace_cpumask.py): bitmap_parse()'s grammar and errnos,
``%*pb`` text (6.12's file reads ``3`` on two CPUs), and CPUs out of the mask
recording nothing, across a buffer resize and in the snapshot's spare."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab import Lab
from ftracelab.trace.trace_cpumask import format_mask, parse_mask

META = Path(__file__).resolve().parents[2] / "shared" / "real-traces" / "linux-6.12" / "meta"


@pytest.mark.parametrize(("text", "nbits", "want"), [
    ("3", 2, 3), ("1\n", 2, 1), ("0", 2, 0), ("", 2, 0), ("3,", 2, 3), (" 2", 2, 2),
    ("ffffffff,ffffffff", 64, (1 << 64) - 1), ("1,00000000", 64, 1 << 32), ("1 ,0", 64, 1 << 32),
    ("x12345678", 32, 0x12345678),            # eight digits, then a character the kernel steps over
    ("3\ngarbage", 2, 3),                     # up to the first newline
])
def test_parse_mask(text: str, nbits: int, want: int) -> None:
    assert parse_mask(text, nbits) == want


@pytest.mark.parametrize(("text", "nbits", "code"), [
    ("x", 2, errno.EINVAL), ("3g", 2, errno.EINVAL), ("7", 2, errno.EOVERFLOW),
    ("000000001", 2, errno.EOVERFLOW), ("1,0", 2, errno.EOVERFLOW), ("1,0,0", 64, errno.EOVERFLOW),
])
def test_parse_mask_errors(text: str, nbits: int, code: int) -> None:
    with pytest.raises(OSError) as exc:
        parse_mask(text, nbits)
    assert exc.value.errno == code


def test_format_mask() -> None:
    assert [format_mask(3, 2), format_mask(1, 8), format_mask(0, 2)] == ["3", "01", "0"]
    assert format_mask(0xFF_FFFFFFFF, 40) == "ff,ffffffff"


@given(st.integers(1, 160).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, (1 << n) - 1))))
def test_format_then_parse_round_trips(case: tuple[int, int]) -> None:
    nbits, mask = case
    assert parse_mask(format_mask(mask, nbits), nbits) == mask


@pytest.mark.skipif(not (META / "tracing_cpumask.txt").exists(), reason="no real 6.12 capture")
def test_the_file_reads_as_on_a_real_two_cpu_kernel(booted_lab: Lab) -> None:
    assert booted_lab.tracefs.read("tracing_cpumask") == (META / "tracing_cpumask.txt").read_text()


def test_masked_cpus_record_nothing(lab: Lab) -> None:
    fs = lab.tracefs
    fs.write("set_ftrace_filter", "vfs_read ksys_read")
    fs.write("current_tracer", "function")
    fs.write("tracing_cpumask", "2")                       # cat runs on CPU 0
    assert lab.run("cat").completed and lab.trace().df_events().empty
    fs.write("buffer_size_kb", "64")                       # a resize keeps the mask
    assert lab.run("cat").completed and lab.trace().df_events().empty
    fs.write("snapshot", "1")                              # the spare follows it too
    assert lab.trace_array.snapshot.ring is not None
    assert lab.trace_array.snapshot.ring.disabled_cpus == {0}
    for bad, code in (("x", errno.EINVAL), ("7", errno.EOVERFLOW)):
        with pytest.raises(OSError) as exc:
            fs.write("tracing_cpumask", bad)
        assert exc.value.errno == code
    assert fs.read("tracing_cpumask") == "2\n"             # a refused write changes nothing
    fs.write("tracing_cpumask", "3")
    assert lab.run("cat").completed
    assert set(lab.trace().df_events()["cpu"]) == {0}
