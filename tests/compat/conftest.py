"""Fixtures of the client compatibility suite: a fresh stub model and a scratch home per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .stub_model import RunningStub, serve_stub_model


@pytest.fixture
def stub() -> Iterator[RunningStub]:
    with serve_stub_model() as running:
        yield running


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path
