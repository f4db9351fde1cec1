"""tracefs paths and errnos."""

from __future__ import annotations

import errno

import pytest

from ftracelab import Lab
from ftracelab.tracefs import TraceFS


@pytest.mark.parametrize("path", ["no_such_file", "per_cpu/cpu9/trace", "available_filter_function"])
def test_missing_path_is_enoent(booted_lab: Lab, path: str) -> None:
    with pytest.raises(OSError) as info:
        booted_lab.tracefs.read(path)
    assert info.value.errno == errno.ENOENT and info.value.filename == path
    with pytest.raises(OSError) as info:
        booted_lab.tracefs.write(path, "x")
    assert info.value.errno == errno.ENOENT


def test_read_only_file_rejects_writes_with_einval(booted_lab: Lab) -> None:
    before = booted_lab.tracefs.read("available_filter_functions")
    with pytest.raises(OSError) as info:
        booted_lab.tracefs.write("available_filter_functions", "vfs_read")
    assert info.value.errno == errno.EINVAL
    assert booted_lab.tracefs.read("available_filter_functions") == before


def test_paths_directories_and_echo_semantics() -> None:
    fs = TraceFS()
    seen: list[tuple[str, bool]] = []
    fs.add_file("options/func_stack_trace", read=lambda: "0\n",
                write=lambda text, append: seen.append((text, append)))
    assert fs.read("/options//func_stack_trace") == "0\n"
    assert fs.listdir("") == ["options"] and fs.listdir("options") == ["func_stack_trace"]
    fs.write("options/func_stack_trace", "1")
    fs.append("options/func_stack_trace", "0")
    assert seen == [("1\n", False), ("0\n", True)]
    with pytest.raises(IsADirectoryError):
        fs.read("options")
    with pytest.raises(NotADirectoryError):
        fs.listdir("options/func_stack_trace")
    assert fs.exists("options") and not fs.exists("nope")
