"""The benchmark suite stays runnable: ``python -m bench --quick`` runs every section and writes its JSON.

The quick mode uses minimal sample counts; its figures mean nothing. The measurement is
``python -m bench`` (figures in the README's performance section).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import SECTIONS

pytestmark = pytest.mark.external

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_suite_runs_every_section_in_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    for section in SECTIONS:
        assert section in results, section
    assert [row["name"] for row in results["targets"]]
    assert "| Measure | Target |" in done.stdout
    assert results["polling"]["planned_requests_per_60s"] <= 15
    assert results["big_run"]["get_agent_run_chars"]["total"] <= 25_000
    assert results["many_callers"]["failures"] == 0
