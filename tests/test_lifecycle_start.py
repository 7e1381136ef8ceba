"""Starting a run end to end: sync and async starts, a run that outlives its wait, no wait at all, a failed run.

Every test drives the server through a real MCP client against the sandbox over loopback HTTP,
and checks both the requests that reached the API and the result the model reads.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.sandbox.variants import FLAT_BODIES, NO_EVENT_IDS

from .conftest import (
    FAST_PACE,
    SERVER_ID,
    api_calls,
    api_requests,
    connect,
    finished_run,
    readings,
    runs_path,
    start_run,
    text_of,
    unmarked,
)

pytestmark = pytest.mark.anyio


def _parse_next(hint: str) -> tuple[str, dict[str, Any]]:
    """Split a `next` hint such as 'get_agent_run {"serverId": ...}' into tool name and arguments."""
    name, _, arguments = hint.partition(" ")
    return name, json.loads(arguments)


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_sync_start_forwards_the_body_exactly_and_returns_the_finished_run_from_one_post(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock
) -> None:
    body = {
        "content": "hello there",
        "prompt": "a prompt too",
        "title": "My title",
        "mode": "sync",
        "metadata": {"ticket": "T-9", "tags": ["a", "b"]},
    }
    async with connect(settings, clock=clock) as client:
        result = await start_run(client, body)

    (post,) = api_requests(sandbox)  # the sync answer holds the finished run and its events
    assert (post.method, post.path, post.query, unmarked(post.body)) == ("POST", runs_path(), {}, body)

    structured = result.structured_content
    run = structured["run"]
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("started", 201, True)
    assert (structured["waitExpired"], structured["next"]) == (False, None)
    assert structured["waitedSeconds"] == 2 * FAST_PACE  # the sync request itself is the wait: a turn of two paces
    assert structured["notes"] == []
    assert {k: run[k] for k in ("status", "output", "error", "mode", "title", "input", "metadata")} == {
        "status": "completed",
        "output": "Echo: hello there",
        "error": None,
        "mode": "sync",
        "title": "My title",
        "input": "hello there",
        "metadata": post.body["metadata"],  # the caller's, with the start's marker
    }
    assert [(e["role"], e["content"]) for e in structured["events"]] == [
        ("user", "hello there"),
        ("system", "Agent started"),
        ("assistant", "Echo: hello there"),
    ]
    assert structured["resourceUri"] == f"acp://servers/{SERVER_ID}/runs/{run['id']}"


@readings(FLAT_BODIES, NO_EVENT_IDS)
@pytest.mark.parametrize("given", [{}, {"mode": "async"}], ids=["mode-omitted", "mode-async"])
async def test_async_start_is_accepted_with_202_then_awaited_by_polling_its_events(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock, given: dict[str, str]
) -> None:
    sandbox.state.pace = 0.05  # the turn ends 0.1 s after the start
    async with connect(settings, clock=clock) as client:
        result = await start_run(client, {"content": "hi", **given, "waitSeconds": 5})

    structured = result.structured_content
    run_id = structured["run"]["id"]
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("accepted", 202, True)
    assert (structured["run"]["status"], structured["run"]["output"]) == ("completed", "Echo: hi")
    assert structured["waitExpired"] is False and structured["next"] is None
    assert structured["waitedSeconds"] == 0.16  # polls at 0.02, 0.05, 0.095 and 0.1625 s (FAST_POLLS)

    requests = api_requests(sandbox)
    assert unmarked(requests[0].body) == {"content": "hi", "mode": "async"}  # omitted mode is sent as "async"
    calls = api_calls(requests)
    assert calls[0] == ("POST", "")
    polls = calls[1:]  # a small run is polled on /events, whose last answer is the result: no extra fetch
    assert polls == [("GET", f"/{run_id}/events")] * 4
    assert all(r.query == {} for r in requests)


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_a_run_that_outlives_its_wait_returns_its_id_and_the_exact_next_call_which_then_finishes_it(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock
) -> None:
    sandbox.state.pace = 0.05  # 50 steps: the turn ends 2.6 s after the start, far later than the wait
    async with connect(settings, clock=clock) as client:
        result = await start_run(client, {"content": "/steps 50", "waitSeconds": 0.3})

        structured = result.structured_content
        run_id = structured["run"]["id"]
        assert run_id.startswith("run_")
        assert (structured["terminal"], structured["waitExpired"]) == (False, True)
        assert structured["run"]["status"] == "running"
        assert structured["waitedSeconds"] == 0.3  # the wait, then one last poll as it ends
        assert sum(clock.slept) == pytest.approx(0.3)
        expected_next = f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
        assert structured["next"] == expected_next
        text = text_of(result)
        assert "Still running after waiting" in text
        assert f"Next: {expected_next}" in text.splitlines()

        sandbox.state.clear_requests()
        name, arguments = _parse_next(structured["next"])
        picked_up = await client.call_tool(name, arguments)

    assert not picked_up.is_error, text_of(picked_up)
    done = picked_up.structured_content
    assert done["run"]["id"] == run_id
    assert (done["run"]["status"], done["run"]["output"], done["terminal"]) == ("completed", "Completed 50 steps", True)
    assert (done["outcome"], done["waitExpired"], done["next"]) == ("fetched", False, None)
    assert done["eventsTotal"] == len(sandbox.state.get_run(SERVER_ID, run_id).events) == 53
    assert api_calls(api_requests(sandbox))[0] == ("GET", f"/{run_id}/events")


async def test_wait_seconds_zero_returns_right_after_the_post_with_the_next_call_and_no_polls(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/hang", "waitSeconds": 0})

    # The 202 answer already holds the run's events, so nothing else is fetched.
    assert api_calls(api_requests(sandbox)) == [("POST", "")]
    structured = result.structured_content
    run_id = structured["run"]["id"]
    assert structured["run"]["status"] == "queued"
    assert (structured["outcome"], structured["httpStatus"]) == ("accepted", 202)
    assert (structured["terminal"], structured["waitExpired"], structured["waitedSeconds"]) == (False, False, 0.0)
    assert structured["next"] == f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
    assert [e["content"] for e in structured["events"]] == ["/hang"] and structured["eventsTotal"] == 1
    text = text_of(result)
    assert "Still" not in text
    assert f"Next: {structured['next']}" in text.splitlines()


async def test_a_failed_run_is_a_normal_result_with_its_error_not_a_tool_error(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "/fail boom"})

    assert not result.is_error, text_of(result)
    structured = result.structured_content
    assert (structured["run"]["status"], structured["run"]["error"], structured["run"]["output"]) == (
        "failed",
        "boom",
        None,
    )
    assert (structured["terminal"], structured["waitExpired"], structured["next"]) == (True, False, None)
    assert structured["events"][-1] == {**structured["events"][-1], "content": "boom", "logLevel": "error"}
    lines = text_of(result).splitlines()
    assert lines[0] == f"Run {structured['run']['id']} on server {SERVER_ID}: failed (HTTP 202, accepted)."
    assert "Error: boom" in lines


@pytest.mark.parametrize("organization", ["org_7f3a", None], ids=["organization", "none"])
async def test_every_request_names_the_configured_organization_and_none_without_one(
    settings: Settings, sandbox: RunningSandbox, organization: str | None
) -> None:
    async with connect(replace(settings, organization_id=organization)) as client:
        run_id = await finished_run(client)
        await client.call_tool("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
        await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    requests = api_requests(sandbox)
    assert [(r.method, r.path) for r in requests] == [
        ("POST", runs_path()),
        ("GET", f"{runs_path()}/{run_id}/events"),
        ("GET", runs_path()),
    ]
    assert [r.headers.get("x-computer-agents-organization") for r in requests] == [organization] * 3
