"""The load script stays runnable: a small bounded run over streamable HTTP, no failures.

The full run (2,000 calls at concurrency 50) is `python -m bench.load_http`; its figures are in the README.
"""

from __future__ import annotations

import pytest

from bench.load_http import run_load

pytestmark = pytest.mark.external


def test_the_load_script_serves_every_call_over_http_without_failures() -> None:
    report = run_load(calls=60, concurrency=6, time_limit=60)

    assert (report.calls, report.failures) == (60, 0)
    assert report.calls_per_second > 0
    assert report.latency_p50_ms <= report.latency_p99_ms
    assert 0 < report.rss_start_mib <= report.rss_end_mib + 5
