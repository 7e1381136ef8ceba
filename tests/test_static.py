"""The repository's own checks run with the suite, so the test command gives CI's verdict: lint, format,
types (mypy strict over every Python file in the repo) and the MCPB manifest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._tooling import ROOT, node_tool

CHECKS = {
    "ruff": [sys.executable, "-m", "ruff", "check", "."],
    "ruff-format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "mypy": [sys.executable, "-m", "mypy"],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_repository_passes(name: str) -> None:
    done = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"


def test_the_bundle_manifest_is_valid() -> None:
    done = subprocess.run(
        [node_tool("mcpb"), "validate", "manifest.json"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes" in done.stdout
