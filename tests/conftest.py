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
