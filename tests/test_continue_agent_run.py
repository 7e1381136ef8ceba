"""`continue_agent_run` end to end: the exact request that reaches the API and the exact result."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import RecordedRequest, RunningSandbox
from acp_mcp.sandbox.variants import BUSY_INPUT_QUEUES, FLAT_BODIES, NO_EVENT_IDS

from ._errors import SERVER_ID_REQUIRED
from .conftest import (
    API_KEY,
    SERVER_ID,
    api_calls,
    api_requests,
    connect,
    error_text,
    finished_run,
    readings,
    refusal,
    runs_path,
    text_of,
)

pytestmark = pytest.mark.anyio

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


METADATA = {"ticket": "T-1", "nested": {"n": 1}}


def assert_input_request(post: RecordedRequest, run_id: str) -> None:
    """`post` is the input request of the sync continue below: its path, exact body and headers."""
    assert post.method == "POST"
    assert post.path == f"{runs_path()}/{run_id}/input"
    assert post.body == {"content": "second", "mode": "sync", "metadata": METADATA}
    assert post.headers["authorization"] == f"Bearer {API_KEY}"
    assert post.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", post.headers["idempotency-key"])
    assert post.query == {}


def assert_continued_run(structured: dict[str, Any], run_id: str) -> None:
    """`structured` is the result of the sync continue below: the run after its second turn, every event listed."""
    run = structured["run"]
    assert structured["serverId"] == SERVER_ID
    assert structured["agentRuntimeId"] == "art_sandbox"
    assert structured["outcome"] == "continued"
    assert structured["httpStatus"] == 200
    assert structured["terminal"] is True
    assert structured["waitExpired"] is False
    assert structured["next"] is None
    assert structured["notes"] == []
    assert structured["resourceUri"] == f"acp://servers/{SERVER_ID}/runs/{run_id}"
    assert {k: run[k] for k in ("id", "status", "output", "error", "mode", "input", "metadata")} == {
        "id": run_id,
        "status": "completed",
        "output": "Echo: second",
        "error": None,
        "mode": "sync",
        "input": "second",
        "metadata": METADATA,
    }
    assert ISO.match(run["createdAt"]) and ISO.match(run["completedAt"])
    assert [(e["role"], e["content"]) for e in structured["events"]] == [
        ("user", "first"),
        ("system", "Agent started"),
        ("assistant", "Echo: first"),
        ("user", "second"),
        ("system", "Agent started"),
        ("assistant", "Echo: second"),
    ]
    assert structured["eventsTotal"] == 6
    assert structured["eventOffset"] == 0
    assert set(structured["events"][0]) == {"id", "role", "content", "logType", "logLevel", "createdAt"}


@readings(FLAT_BODIES, NO_EVENT_IDS, BUSY_INPUT_QUEUES)
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sync_continue_sends_exactly_the_given_fields_and_returns_the_continued_run(
    settings: Settings, sandbox: RunningSandbox, mode: str
) -> None:
    async with connect(settings, mode=mode) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run",
            {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "second", "mode": "sync", "metadata": METADATA},
        )

    assert not result.is_error, text_of(result)
    (post,) = api_requests(sandbox)  # the answer held the finished run and its events: nothing else is fetched
    assert_input_request(post, run_id)
    assert_continued_run(result.structured_content, run_id)


async def test_text_block_carries_status_output_and_latest_events(settings: Settings) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "again", "mode": "sync"}
        )

    (text,) = result.content
    assert text.type == "text"
    assert text.text.splitlines() == [
        f"Run {run_id} on server {SERVER_ID}: completed (HTTP 200, continued).",
        "Output: Echo: again",
        "Events 2-6 of 6:",
        "- [system/status] Agent started",
        "- [assistant/message] Echo: first",
        "- [user/message] again",
        "- [system/status] Agent started",
        "- [assistant/message] Echo: again",
        f"Full run: acp://servers/{SERVER_ID}/runs/{run_id}",
    ]


async def test_a_resource_link_to_the_full_run_follows_the_text_when_configured(settings: Settings) -> None:
    async with connect(replace(settings, resource_links=True)) as client:
        run_id = await finished_run(client)
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "again", "mode": "sync"}
        )

    text, link = result.content
    assert text.type == "text" and text.text.endswith(f"Full run: acp://servers/{SERVER_ID}/runs/{run_id}")
    assert link.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "type": "resource_link",
        "uri": f"acp://servers/{SERVER_ID}/runs/{run_id}",
        "name": f"run-{run_id}",
        "title": f"Run {run_id} with all events",
        "mimeType": "application/json",
    }


@readings(BUSY_INPUT_QUEUES)
async def test_input_to_a_running_run_is_refused_or_queued_behind_its_turn_as_the_api_reads_it(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock, variant: str
) -> None:
    async with connect(settings, clock=clock) as client:
        started = await client.call_tool(
            "start_agent_run", {"serverId": SERVER_ID, "content": "/steps 2", "waitSeconds": 0}
        )
        run_id = started.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "next", "mode": "async"}
        )

    calls = api_calls(api_requests(sandbox))
    assert calls[0] == ("POST", f"/{run_id}/input")
    if variant == BUSY_INPUT_QUEUES:  # accepted, and the queued turn runs once the first has ended
        assert not result.is_error, text_of(result)
        structured = result.structured_content
        assert (structured["outcome"], structured["httpStatus"]) == ("accepted", 202)
        assert (structured["run"]["status"], structured["run"]["output"]) == ("completed", "Echo: next")
        assert calls[1:] == [("GET", f"/{run_id}/events")] * len(calls[1:]) and len(calls) >= 2
    else:
        assert "is busy or in a state that does not allow this (HTTP 409 RUN_BUSY" in error_text(
            result, "continue_agent_run"
        )
        assert calls == [("POST", f"/{run_id}/input")]  # a refused POST is not sent again


@readings(FLAT_BODIES, NO_EVENT_IDS, BUSY_INPUT_QUEUES)
async def test_async_continue_reports_202_accepted_and_waits_for_the_turn(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "later", "mode": "async"}
        )

    assert not result.is_error, text_of(result)
    assert result.structured_content["outcome"] == "accepted"
    assert result.structured_content["httpStatus"] == 202
    assert result.structured_content["run"]["status"] == "completed"
    assert result.structured_content["run"]["output"] == "Echo: later"
    methods_and_paths = [(r.method, r.path.rsplit("/", 1)[-1]) for r in api_requests(sandbox)]
    assert methods_and_paths[0] == ("POST", "input")
    assert len(methods_and_paths) >= 2 and set(methods_and_paths[1:]) == {("GET", "events")}  # polls, no refetch


async def test_omitted_mode_is_sent_as_async_and_awaited(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "prompt": "via prompt"}
        )

    assert api_requests(sandbox)[0].body == {"prompt": "via prompt", "mode": "async"}
    assert result.structured_content["run"]["output"] == "Echo: via prompt"


async def test_ids_are_percent_encoded_as_one_path_segment_each(settings: Settings, sandbox: RunningSandbox) -> None:
    server_id = "team a+b@ü"
    async with connect(settings) as client:
        started = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "x"})
        run_id = started.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"serverId": server_id, "resourceRunId": run_id, "content": "y", "mode": "sync"}
        )

    assert not result.is_error, text_of(result)
    assert api_requests(sandbox)[0].path == f"/v1/servers/team%20a%2Bb%40%C3%BC/runtime/agent/runs/{run_id}/input"
    assert result.structured_content["serverId"] == server_id
    assert result.structured_content["resourceUri"] == f"acp://servers/team%20a%2Bb%40%C3%BC/runs/{run_id}"


async def test_default_server_id_applies_when_the_call_omits_it(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings.with_overrides(default_server_id="srv_default")) as client:
        result = await client.call_tool("start_agent_run", {"content": "hello"})

    assert not result.is_error, text_of(result)
    assert api_requests(sandbox)[0].path == "/v1/servers/srv_default/runtime/agent/runs"
    assert result.structured_content["serverId"] == "srv_default"


async def test_without_server_id_or_default_the_error_names_both_ways(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    arguments = {"resourceRunId": "run_1", "content": "x"}

    assert await refusal(settings, sandbox, "continue_agent_run", arguments) == SERVER_ID_REQUIRED


async def test_content_or_prompt_is_required_before_anything_is_sent(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    arguments = {"serverId": SERVER_ID, "resourceRunId": "run_1", "metadata": {"a": 1}}

    assert await refusal(settings, sandbox, "continue_agent_run", arguments) == (
        "Invalid arguments, nothing was sent: give content (the text for the agent) or prompt."
    )
