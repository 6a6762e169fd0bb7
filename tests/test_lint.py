"""ruff (lint + import order) and mypy over ``src/``, with the settings in pyproject.toml, so
that the test command (and CI, which runs it) checks both."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"{module} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def test_ruff() -> None:
    _run("ruff", "check", "src")


def test_mypy() -> None:
    _run("mypy")  # files, options: [tool.mypy] in pyproject.toml
