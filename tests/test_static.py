"""The repository's own checks run with the suite, so the test command gives CI's verdict: lint, format and
types (mypy strict over every Python file in the repo). The MCPB manifest is checked in `test_ecosystem`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._tooling import ROOT

CHECKS = {
    "ruff": [sys.executable, "-m", "ruff", "check", "."],
    "ruff-format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "mypy": [sys.executable, "-m", "mypy"],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_repository_passes(name: str) -> None:
    done = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
