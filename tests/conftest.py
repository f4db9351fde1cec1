"""Shared fixtures. Golden files live in tests/golden/; regenerate them with
FTRACELAB_UPDATE_GOLDEN=1 pytest and review the diff."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ftracelab import Lab

GOLDEN = Path(__file__).with_name("golden")


@pytest.fixture(scope="module")
def booted_lab() -> Lab:
    """A booted lab shared by a module's read-only tests."""
    return Lab(cpus=2, seed=0)


@pytest.fixture
def lab() -> Lab:
    """A fresh lab for tests that change state."""
    return Lab(cpus=2, seed=0)


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if os.environ.get("FTRACELAB_UPDATE_GOLDEN"):
            path.write_text(text)
        assert path.exists(), f"missing golden file {path}; run with FTRACELAB_UPDATE_GOLDEN=1"
        assert text == path.read_text(), f"output differs from {path}"
    return check


@pytest.fixture
def idle_loop_only() -> Callable[[Lab], None]:
    """Checks that no call is in flight on any shadow stack but the idle loop's: each
    idle task halts inside do_idle() (traceable, as in 6.12), every other stack is empty."""
    def check(lab: Lab) -> None:
        for task in lab.fgraph.stacks():
            names = [lab.kallsyms.format_short(f.func) for f in task.stack.frames()]
            allowed = [[], ["do_idle"]] if task.comm.startswith("swapper/") else [[]]
            assert names in allowed, f"{task.comm}: calls in flight {names}"
            assert task.stack.curr_ret_depth == len(names) - 1 and task.stack.trace_overrun == 0
    return check
