"""Sync requests that outlive the call's wait, and starts whose answer is lost: the run they concern is
returned as it is, with a note."""

from __future__ import annotations

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox
from acp_mcp.sandbox.variants import FLAT_BODIES, NO_EVENT_IDS

from .conftest import (
    SERVER_ID,
    api_calls,
    api_requests,
    connect,
    finished_run,
    fresh_server_id,
    readings,
    runs_path,
    start_run,
    text_of,
    unmarked,
)

pytestmark = pytest.mark.anyio


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_a_sync_continue_that_outlives_its_wait_returns_the_running_run_with_a_note(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run",
            {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "/hang", "mode": "sync", "waitSeconds": 0.5},
        )

    assert not result.is_error, text_of(result)
    # The HTTP request was cut at the wait (0.5 s, real time: a socket timeout), not at the 5 s request timeout.
    assert 0.5 <= result.structured_content["waitedSeconds"] < settings.request_timeout
    structured = result.structured_content
    assert (structured["run"]["id"], structured["run"]["status"], structured["run"]["input"]) == (
        run_id,
        "running",
        "/hang",
    )
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("fetched", None, False)
    assert structured["notes"] == ["the sync request did not answer within 0.5s; the run goes on on the platform"]
    assert structured["next"] == f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
    assert [(r.method, r.path, r.body) for r in api_requests(sandbox)] == [
        ("POST", f"{runs_path()}/{run_id}/input", {"content": "/hang", "mode": "sync"}),
        ("GET", f"{runs_path()}/{run_id}/events", None),
    ]
    text = text_of(result)
    assert "Note: the sync request did not answer within 0.5s" in text and f"Next: {structured['next']}" in text
    # The call spent its whole wait and the run is still going: that is what waitExpired reports.
    assert structured["waitExpired"] is True


@readings()
async def test_a_sync_start_that_outlives_its_wait_finds_and_returns_the_run_it_started(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = fresh_server_id()
    async with connect(settings) as client:
        result = await client.call_tool(
            "start_agent_run", {"serverId": server_id, "content": "/hang", "mode": "sync", "waitSeconds": 0.5}
        )

    assert not result.is_error, text_of(result)
    assert 0.5 <= result.structured_content["waitedSeconds"] < settings.request_timeout  # cut at the wait
    (started,) = sandbox.state.list_runs(server_id, 10)
    structured = result.structured_content
    assert (structured["run"]["id"], structured["run"]["status"]) == (started.id, "running")
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("fetched", None, False)
    assert structured["notes"] == ["the sync start did not answer within 0.5s; this is the run it started"]
    assert structured["next"] == f'get_agent_run {{"serverId": "{server_id}", "resourceRunId": "{started.id}"}}'
    requests = api_requests(sandbox)
    assert [(m, p, r.query) for (m, p), r in zip(api_calls(requests, server_id), requests, strict=True)] == [
        ("POST", "", {}),
        ("GET", "", {"limit": "10"}),
        ("GET", f"/{started.id}/events", {}),
    ]
    assert unmarked(requests[0].body) == {"content": "/hang", "mode": "sync"}
    assert structured["waitExpired"] is True


@readings()
@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_a_start_whose_connection_breaks_after_it_went_out_returns_the_run_found_by_its_marker(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock, mode: str
) -> None:
    server_id = fresh_server_id()
    async with connect(settings, clock=clock) as client:
        for _ in range(2):  # the same text started before: only the marker tells the lost start's run apart
            await start_run(client, {"serverId": server_id, "content": "same", "mode": "sync"})
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="lost_answer", method="POST", path_contains=server_id))
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "same", "mode": mode})

    assert not result.is_error, text_of(result)
    requests = api_requests(sandbox)
    post = requests[0]
    assert unmarked(post.body) == {"content": "same", "mode": mode}
    (lost,) = [run for run in sandbox.state.list_runs(server_id, 10) if run.metadata == post.body["metadata"]]
    structured = result.structured_content
    assert (structured["run"]["id"], structured["run"]["status"], structured["terminal"]) == (
        lost.id,
        "completed",
        True,
    )
    assert (structured["outcome"], structured["httpStatus"]) == ("fetched", None)
    assert structured["notes"] == [
        "the start's answer was lost (ProtocolError); this is the run it started, found by the marker in its "
        "metadata: do not start it again"
    ]
    calls = [(m, p, r.query) for (m, p), r in zip(api_calls(requests, server_id), requests, strict=True)]
    # One POST (never sent again), the lookup by marker, then the run's events until it finished.
    assert calls[:3] == [("POST", "", {}), ("GET", "", {"limit": "10"}), ("GET", f"/{lost.id}/events", {})]
    assert calls[3:] == [("GET", f"/{lost.id}/events", {})] * len(calls[3:])
    assert len(sandbox.state.list_runs(server_id, 10)) == 3
