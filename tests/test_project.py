"""Project-level promises: cheap import, layering, the rebuilt image."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ftracelab
from ftracelab.kernel import build

PKG = Path(ftracelab.__file__).parent


def test_import_is_lazy() -> None:
    code = ("import sys, ftracelab; "
            "print(sorted(m for m in ('unicorn', 'capstone', 'elftools', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_unicorn_only_in_machine() -> None:
    offenders = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                 if "unicorn" in _imports(p) and p.parent.name != "machine"]
    assert offenders == []


def test_modules_say_what_they_emulate() -> None:
    for p in PKG.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(p.read_text()))
        assert doc, f"{p.relative_to(PKG)} has no module docstring"


def test_rebuilt_image_matches_committed(tmp_path: Path) -> None:
    info = json.loads((build.IMAGES / "build-info.json").read_text())
    if shutil.which("gcc") is None or shutil.which("ld") is None:
        pytest.skip("gcc/ld not installed: the committed image cannot be rebuilt here")
    have = build.toolchain()
    if have != info["toolchain"]:
        pytest.skip(f"toolchain {have} differs from the image's {info['toolchain']}; "
                    "a different compiler legitimately produces different bytes")
    build.build(tmp_path)
    for name in build.OUTPUTS:
        assert (tmp_path / name).read_bytes() == (build.IMAGES / name).read_bytes(), \
            f"{name} rebuilt from src/ differs from the committed image: rebuild and commit"
