"""The README's Python snippets run as a reader tries them: each on a fresh lab
(``lab = Lab()``), in its own namespace, from the repository root."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ftracelab import Lab

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_readme_snippet_runs(code: str, tmp_path: Path) -> None:
    namespace: dict[str, object] = {"Lab": Lab, "lab": Lab()}
    cwd = os.getcwd()
    os.chdir(tmp_path)                     # snippets may write a capture folder
    try:
        exec(compile(code, str(README), "exec"), namespace)
    finally:
        os.chdir(cwd)


def test_readme_has_snippets() -> None:
    assert len(SNIPPETS) >= 10
