"""The stack tracer (trace/trace_stack.py): t_show()'s text with the disabled note,
the deepest call chain found with each frame's depth and size as check_stack()
computes them, stack_trace_filter with set_ftrace_filter's grammar, stack_max_size."""

from __future__ import annotations

import errno
import re

import pytest

from ftracelab import Lab

HEADER = "        Depth    Size   Location    ({} entries)\n        -----    ----   --------\n"
ROW = re.compile(r"^ *(\d+)\) +(\d+) +(\d+)   (\S+)$")


def _rows(lab: Lab) -> list[tuple[int, int, int, str]]:
    rows = []
    for line in str(lab.tracefs.read("stack_trace")).splitlines()[2:]:
        m = ROW.match(line)
        assert m, line
        rows.append((int(m[1]), int(m[2]), int(m[3]), m[4]))
    return rows


def test_disabled_and_empty(booted_lab: Lab) -> None:
    text = str(booted_lab.tracefs.read("stack_trace"))
    assert text.startswith(HEADER.format(0)) and "#  Stack tracer disabled\n" in text
    assert booted_lab.tracefs.read("stack_max_size") == "0\n"


def test_deepest_chain_with_depths_and_sizes(lab: Lab) -> None:
    lab.stack_tracer.enable()
    assert lab.run("slow-read").completed
    rows = _rows(lab)
    text = str(lab.tracefs.read("stack_trace"))
    assert text.startswith(HEADER.format(len(rows))) and "disabled" not in text
    assert [r[0] for r in rows] == list(range(len(rows))) and len(rows) > 3
    depths = [r[1] for r in rows]
    assert depths == sorted(depths, reverse=True)                   # deepest first
    assert all(a - b == size for (_, a, size, _), b in zip(rows, [*depths[1:], 0], strict=True))
    assert int(lab.tracefs.read("stack_max_size")) == depths[0]      # tracer frames taken off
    assert "+0x9/" in rows[0][3]                                     # its fentry call's return


def test_stack_trace_filter_and_max_size(lab: Lab) -> None:
    fs = lab.tracefs
    assert fs.read("stack_trace_filter") == "#### all functions enabled ####\n"
    with pytest.raises(OSError) as exc:
        fs.write("stack_trace_filter", "no_such_function")
    assert exc.value.errno == errno.EINVAL
    fs.write("stack_trace_filter", "vfs_read")
    assert fs.read("stack_trace_filter") == "vfs_read\n"
    lab.stack_tracer.enable()
    assert lab.run("cat").completed
    rows = _rows(lab)
    assert rows[0][3].startswith("vfs_read+0x9/") and rows[1][3].startswith("ksys_read+")
    fs.write("stack_max_size", "100000")                             # nothing is that deep
    fs.write("trace", "")
    assert lab.run("cat").completed and _rows(lab) == rows
    with pytest.raises(OSError) as exc:
        fs.write("stack_max_size", "-1")
    assert exc.value.errno == errno.EINVAL
    lab.stack_tracer.disable()
    assert "disabled" not in str(fs.read("stack_trace"))            # a maximum is kept
