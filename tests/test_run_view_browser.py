"""The run view in a real browser: a web host built on the pinned ext-apps AppBridge (tests/app_host.mjs, headless
Chromium) renders it for tool calls made over streamable HTTP to an acp-mcp process on the sandbox.

The sandbox runs on a virtual clock, so a run stays queued, then running, until the test moves time on; the view
follows it on its own meanwhile. Screenshots go to test-artifacts/run-view (gitignored).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.run_view import RUN_VIEW_URI
from acp_mcp.sandbox import RunningSandbox

from ._app_host import AppHost, app_host
from ._tooling import ROOT, HttpServer, http_server
from .conftest import FAST_PACE, SERVER_ID, api_calls, api_requests, runs_path, sandbox_env, unmarked

pytestmark = pytest.mark.external

ARTIFACTS = ROOT / "test-artifacts" / "run-view"
PACE = 3.0
"""Seconds (virtual) between the sandbox agent's steps, so the view has times to show."""
VIEW_WAIT = 30.0
"""Seconds for the view to show what the sandbox did: its checks wait up to 5 s each, on a loaded machine."""


@pytest.fixture
def run_clock(sandbox: RunningSandbox) -> VirtualClock:
    """The sandbox on virtual time starting now (the view shows real timestamps): runs move only when told."""
    clock = VirtualClock(wall_start=time.time())
    sandbox.state.clock = clock
    return clock


@pytest.fixture
def server(sandbox: RunningSandbox) -> Iterator[HttpServer]:
    with http_server(**sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID)) as running:
        yield running


@pytest.fixture
def host(server: HttpServer, tmp_path: Path) -> Iterator[AppHost]:
    with app_host(tmp_path) as running:
        opened = running.send("open", url=server.url, theme="light", width=640)
        bound = {tool["name"]: tool["_meta"] for tool in opened["tools"]}
        assert bound["get_agent_run"] == {"ui": {"resourceUri": RUN_VIEW_URI}}
        yield running


def _screenshot(host: AppHost, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    host.send("screenshot", path=str(path))
    assert path.stat().st_size > 1000
    return path


def _status(host: AppHost, text: str) -> str:
    return str(host.send("wait_text", selector="#status", text=text, timeout=VIEW_WAIT + 5)["text"])


def _report(host: AppHost) -> dict[str, Any]:
    """What the app did through the host, once checked that it made no network request and threw nothing."""
    report = host.send("report")
    assert report["page_errors"] == [] and report["foreign_requests"] == [], report
    return report


def _calls(host: AppHost) -> list[dict[str, Any]]:
    return list(_report(host)["view_calls"])


def test_the_view_follows_a_running_run_to_its_output_and_events(
    host: AppHost, sandbox: RunningSandbox, run_clock: VirtualClock
) -> None:
    sandbox.state.pace = PACE
    started = host.send(
        "call",
        tool="start_agent_run",
        arguments={"content": "/steps 2", "title": "Summarise the report", "waitSeconds": 0},
    )["result"]
    run_id = started["structuredContent"]["run"]["id"]
    assert _status(host, "Queued").startswith("Queued")
    assert host.send("text", selector="#title")["text"] == "Summarise the report"
    assert host.send("text", selector="#meta")["text"] == f"Server {SERVER_ID} · Run {run_id}"

    run_clock.advance(PACE * 1.5)  # the agent starts
    assert "Running" in _status(host, "Running")
    host.send("wait_text", selector="#events", text="Agent started", timeout=VIEW_WAIT)
    _screenshot(host, "running-light")

    run_clock.advance(PACE * 3)  # both steps and the answer
    assert _status(host, "Completed") == "Completed in 12s"
    assert host.send("text", selector="[aria-live]")["text"] == "Completed"  # announced; the ticking time is not
    _screenshot(host, "completed-light")
    assert host.send("text", selector="#output")["text"] == "Completed 2 steps"
    events = host.send("text", selector="#events")["text"]
    contents = ["/steps 2", "Agent started", "step 1 of 2", "step 2 of 2", "Completed 2 steps"]
    assert [events.index(content) for content in contents] == sorted(events.index(content) for content in contents)
    assert host.send("text", selector="#events-count")["text"] == "(5 of 5)"

    calls = _calls(host)
    assert {call["name"] for call in calls} == {"get_agent_run"}
    assert calls[0]["arguments"] == {
        "serverId": SERVER_ID,
        "resourceRunId": run_id,
        "waitSeconds": 5,
        "maxEvents": 20,
        "eventOffset": 1,
    }
    (start,) = api_requests(sandbox, method="POST")
    assert (start.path, unmarked(start.body)) == (
        runs_path(),
        {"content": "/steps 2", "title": "Summarise the report", "mode": "async"},
    )
    assert {call for call in api_calls(api_requests(sandbox, method="GET"))} <= {
        ("GET", f"/{run_id}"),
        ("GET", f"/{run_id}/events"),
    }


def test_continue_and_cancel_from_the_view_reach_the_sandbox_as_tool_calls(
    host: AppHost, sandbox: RunningSandbox, run_clock: VirtualClock
) -> None:
    done = host.send("call", tool="start_agent_run", arguments={"content": "first", "mode": "sync"})["result"]
    run_id = done["structuredContent"]["run"]["id"]
    assert _status(host, "Completed").startswith("Completed")
    sandbox.state.clear_requests()

    host.send("fill", selector="#follow-up", value="/hang")
    host.send("press", selector="#follow-up", key="Control+Enter")  # the keyboard's way to send
    _status(host, "Queued")
    run_clock.advance(FAST_PACE * 1.5)
    _status(host, "Running")
    host.send("press", selector="#cancel", key="Enter")
    assert _status(host, "Cancelled").startswith("Cancelled")
    host.send("wait_text", selector="#events", text="Run cancelled", timeout=VIEW_WAIT)

    host.send("theme", theme="dark")
    _screenshot(host, "cancelled-dark")
    host.send("theme", theme="light")
    _screenshot(host, "cancelled-light")

    calls = [(call["name"], call["arguments"], call["is_error"]) for call in _calls(host)]
    ids = {"serverId": SERVER_ID, "resourceRunId": run_id}
    assert [call for call in calls if call[0] != "get_agent_run"] == [
        ("continue_agent_run", {**ids, "content": "/hang", "waitSeconds": 0}, False),
        ("cancel_agent_run", ids, False),
    ]
    posts = [(r.method, r.path, r.body) for r in api_requests(sandbox, method="POST")]
    assert posts == [
        ("POST", f"{runs_path()}/{run_id}/input", {"content": "/hang", "mode": "async"}),
        ("POST", f"{runs_path()}/{run_id}/cancel", {}),
    ]


def test_earlier_events_and_the_full_output_are_loaded_on_request(
    host: AppHost, sandbox: RunningSandbox, run_clock: VirtualClock
) -> None:
    many = host.send("call", tool="start_agent_run", arguments={"content": "/events 30 10", "mode": "sync"})["result"]
    run_id = many["structuredContent"]["run"]["id"]
    assert host.send("wait_text", selector="#events-count", text="(20 of 32)")["text"] == "(20 of 32)"
    host.send("click", selector="#earlier")
    host.send("wait_text", selector="#events-count", text="(32 of 32)")
    assert host.send("text", selector="#events li:first-child .content")["text"] == "/events 30 10"

    host.send("call", tool="start_agent_run", arguments={"content": "/output 5000", "mode": "sync"})
    assert len(host.send("text", selector="#output")["text"]) < 4100
    host.send("click", selector="#full-output")
    host.send("wait", selector="#full-output", state="hidden")
    output = host.send("text", selector="#output")["text"]

    report = _report(host)
    assert [(c["name"], c["arguments"]) for c in report["view_calls"]] == [
        (
            "get_agent_run",
            {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0, "maxEvents": 12, "eventOffset": 0},
        )
    ]
    assert len(report["view_reads"]) == 1 and report["view_reads"][0].startswith("acp://servers/")
    assert len(output) == 5000


def test_a_failed_call_is_shown_in_the_words_the_model_reads(host: AppHost) -> None:
    failed = host.send("call", tool="get_agent_run", arguments={"resourceRunId": "run_999999", "waitSeconds": 0})
    (block,) = failed["result"]["content"]

    assert failed["result"]["isError"] is True
    assert host.send("wait_text", selector="#error", text="run_999999")["text"] == block["text"]
    assert _calls(host) == []


def test_the_view_follows_the_hosts_theme_and_font_and_fits_300_to_900_pixels(host: AppHost) -> None:
    host.send("call", tool="start_agent_run", arguments={"content": "a " * 400, "mode": "sync"})
    _status(host, "Completed")
    light = host.send("style", selector="body", property="background-color")["value"]
    assert "DejaVu Sans" in host.send("style", selector="body", property="font-family")["value"]

    host.send("theme", theme="dark")
    dark = host.send("style", selector="body", property="background-color")["value"]
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(24, 24, 27)")

    for width in (300, 900):
        size = host.send("width", width=width)
        assert size["scroll_width"] <= size["client_width"] == width, size
        _screenshot(host, f"completed-dark-{width}px")


def test_the_view_stops_following_when_the_host_closes_it(host: AppHost, run_clock: VirtualClock) -> None:
    host.send("call", tool="start_agent_run", arguments={"content": "/hang", "waitSeconds": 0})
    host.send("wait", selector='#view[data-following="true"]', state="attached")

    host.send("teardown")
    host.send("wait", selector='#view[data-following="false"]', state="attached", timeout=VIEW_WAIT)
    run_clock.advance(FAST_PACE * 2)  # the run goes on, but nothing follows it any more
    calls = _calls(host)

    assert calls and {call["name"] for call in calls} == {"get_agent_run"}
    status = _status(host, "Queued")
    assert "following" not in status and host.send("report")["view_calls"] == calls


MARKDOWN = """Report follows
# Findings
- **fast** path
- `slow` path

<img src="http://example.com/x.png" onerror="window.pwned = 1"><b>bold?</b>
```
<script>window.pwned = 1</script>
```"""


def test_output_is_shown_as_markdown_built_from_text_so_html_in_it_stays_text(host: AppHost) -> None:
    host.send("call", tool="start_agent_run", arguments={"content": MARKDOWN, "mode": "sync"})
    _status(host, "Completed")

    assert host.send("text", selector="#output h3")["text"] == "Findings"
    assert host.send("text", selector="#output li strong")["text"] == "fast"
    assert host.send("text", selector="#output li code")["text"] == "slow"
    assert host.send("text", selector="#output pre code")["text"] == "<script>window.pwned = 1</script>"
    shown = host.send("text", selector="#output")["text"]
    assert '<img src="http://example.com/x.png" onerror="window.pwned = 1"><b>bold?</b>' in shown
    for tag in ("img", "b", "script"):
        assert host.send("count", selector=f"#output {tag}")["count"] == 0
    assert _report(host)["foreign_requests"] == []
    _screenshot(host, "markdown-light")


def test_a_burst_of_events_moves_the_window_to_the_latest_page(host: AppHost, run_clock: VirtualClock) -> None:
    started = host.send("call", tool="start_agent_run", arguments={"content": "/steps 45", "waitSeconds": 0})
    run_id = started["result"]["structuredContent"]["run"]["id"]
    _status(host, "Queued")

    run_clock.advance(FAST_PACE * 100)  # 47 more events at once
    assert _status(host, "Completed").startswith("Completed")
    host.send("wait", selector='#view[data-following="false"]', state="attached", timeout=VIEW_WAIT)

    assert host.send("text", selector="#events-count")["text"] == "(20 of 48)"
    assert host.send("text", selector="#events li:last-child .content")["text"] == "Completed 45 steps"
    assert host.send("text", selector="#events li:first-child .content")["text"] == "step 27 of 45"
    ids = {"serverId": SERVER_ID, "resourceRunId": run_id, "maxEvents": 20}
    assert [call["arguments"] for call in _calls(host)] == [
        {**ids, "waitSeconds": 5, "eventOffset": 1},
        {**ids, "waitSeconds": 0},
    ]
