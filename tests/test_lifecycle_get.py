"""Reading runs end to end: get_agent_run on a finished and a running run, list_agent_runs, the run resource,
and how the tool descriptions point to one another."""

from __future__ import annotations

import json

import pytest
from mcp import MCPError
from mcp.types import TextResourceContents

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.limits import EVENTS_POLL_LIMIT
from acp_mcp.sandbox import Fault, RunningSandbox
from acp_mcp.sandbox.variants import FLAT_BODIES, LIMIT_MAX_50, NO_EVENT_IDS, OLDEST_FIRST

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
)

pytestmark = pytest.mark.anyio

TOOL_NAMES = ("start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run")


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_get_agent_run_on_a_finished_run_makes_exactly_one_events_request(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client, content="done")
        sandbox.state.clear_requests()
        result = await client.call_tool("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert not result.is_error, text_of(result)
    (request,) = api_requests(sandbox)
    assert (request.method, request.path, request.query, request.body) == (
        "GET",
        f"{runs_path()}/{run_id}/events",
        {},
        None,
    )
    structured = result.structured_content
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("fetched", None, True)
    assert (structured["waitedSeconds"], structured["waitExpired"], structured["next"]) == (0.0, False, None)
    assert [e["content"] for e in structured["events"]] == ["done", "Agent started", "Echo: done"]
    assert (structured["eventsTotal"], structured["eventOffset"]) == (3, 0)


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_a_run_with_more_events_than_the_poll_limit_is_polled_by_the_light_get_until_it_finishes(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock
) -> None:
    async with connect(settings, clock=clock) as client:
        long = await start_run(client, {"content": f"/events {EVENTS_POLL_LIMIT + 50} 10", "mode": "sync"})
        run_id = long.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "/steps 2"}
        )

    structured = result.structured_content
    assert (structured["run"]["status"], structured["run"]["output"]) == ("completed", "Completed 2 steps")
    assert (structured["terminal"], structured["waitExpired"], structured["next"]) == (True, False, None)
    assert structured["eventsTotal"] == len(sandbox.state.get_run(SERVER_ID, run_id).events)
    calls = api_calls(api_requests(sandbox))
    # More events than the limit: each poll is the light GET (a flat answer read as the run), then one /events.
    assert calls[0] == ("POST", f"/{run_id}/input") and calls[-1] == ("GET", f"/{run_id}/events")
    assert calls[1:-1] == [("GET", f"/{run_id}")] * len(calls[1:-1]) and len(calls) >= 3


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_get_agent_run_on_a_running_run_polls_it_until_it_finishes(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock
) -> None:
    sandbox.state.pace = 0.05  # the turn ends 0.3 s after the start
    async with connect(settings, clock=clock) as client:
        run_id = (await start_run(client, {"content": "/steps 4", "waitSeconds": 0})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 5}
        )

    structured = result.structured_content
    assert (structured["run"]["status"], structured["run"]["output"]) == ("completed", "Completed 4 steps")
    assert (structured["terminal"], structured["waitExpired"]) == (True, False)
    assert structured["waitedSeconds"] == 0.42  # polls at 0.02, 0.05, 0.095, 0.1625, 0.26375 and 0.415625 s
    assert structured["eventsTotal"] == 7
    assert api_calls(api_requests(sandbox)) == [("GET", f"/{run_id}/events")] * 7  # the first fetch, six polls


@readings(OLDEST_FIRST, LIMIT_MAX_50, FLAT_BODIES)
async def test_list_agent_runs_sends_limit_as_a_query_and_lists_the_newest_runs_first(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = fresh_server_id()
    async with connect(settings) as client:
        run_ids = [await finished_run(client, server_id, text) for text in ("one", "two", "three")]
        sandbox.state.clear_requests()
        limited = await client.call_tool("list_agent_runs", {"serverId": server_id, "limit": 2})
        everything = await client.call_tool("list_agent_runs", {"serverId": server_id})

    first, second = api_requests(sandbox)
    prefix = runs_path(server_id)
    assert (first.method, first.path, first.query, first.body) == ("GET", prefix, {"limit": "2"}, None)
    assert (second.method, second.path, second.query, second.body) == ("GET", prefix, {}, None)

    assert not limited.is_error, text_of(limited)
    structured = limited.structured_content
    assert set(structured) == {"serverId", "agentRuntimeId", "runs", "count", "notes"}
    assert structured["notes"] == []
    assert (structured["serverId"], structured["agentRuntimeId"], structured["count"]) == (server_id, "art_sandbox", 2)
    assert [(r["id"], r["status"], r["input"]) for r in structured["runs"]] == [
        (run_ids[2], "completed", "three"),
        (run_ids[1], "completed", "two"),
    ]
    assert text_of(limited).splitlines() == [
        f"2 run(s) on server {server_id}, newest first:",
        f"- {run_ids[2]}: completed — three",
        f"- {run_ids[1]}: completed — two",
    ]
    assert everything.structured_content["count"] == 3
    assert [r["id"] for r in everything.structured_content["runs"]] == run_ids[::-1]


# -- the run resource ----------------------------------------------------------------------------


async def test_a_list_refused_for_its_limit_is_asked_again_without_one_and_cut_to_the_limit(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = fresh_server_id()
    refused = {"error": "Unprocessable Entity", "message": "limit is not allowed", "code": "VALIDATION_FAILED"}
    async with connect(settings) as client:
        ids = [await finished_run(client, server_id, f"run {n}") for n in range(3)]
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=422, method="GET", path_contains=server_id, body=refused))
        result = await client.call_tool("list_agent_runs", {"serverId": server_id, "limit": 2})

    assert not result.is_error, text_of(result)
    assert [run["id"] for run in result.structured_content["runs"]] == ids[::-1][:2]
    assert result.structured_content["notes"] == ["1 more runs were returned and left out"]
    assert [(r.method, r.path, r.query) for r in api_requests(sandbox)] == [
        ("GET", runs_path(server_id), {"limit": "2"}),
        ("GET", runs_path(server_id), {}),
    ]


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_the_run_resource_holds_the_full_run_and_every_event_as_json(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        started = await start_run(client, {"content": "/events 30 700", "mode": "sync"})
        run_id = started.structured_content["run"]["id"]
        uri = started.structured_content["resourceUri"]
        sandbox.state.clear_requests()
        read = await client.read_resource(uri)

    assert uri == f"acp://servers/{SERVER_ID}/runs/{run_id}"
    (contents,) = read.contents
    assert isinstance(contents, TextResourceContents)
    assert (str(contents.uri), contents.mime_type) == (uri, "application/json")
    full = json.loads(contents.text)
    run = sandbox.state.get_run(SERVER_ID, run_id)
    # The envelope, whichever shape the API answered in (a flat run is read as the envelope of that run).
    assert full == run.envelope(True, event_ids=NO_EVENT_IDS not in sandbox.state.variants)
    assert len(full["events"]) == 32 and all(len(e["content"]) == 700 for e in full["events"][2:])
    assert started.structured_content["eventsTotal"] == 32 and len(started.structured_content["events"]) == 20
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{runs_path()}/{run_id}/events")]


async def test_the_run_resource_template_is_listed(settings: Settings) -> None:
    async with connect(settings) as client:
        templates = (await client.list_resource_templates()).resource_templates

    assert [(t.uri_template, t.mime_type) for t in templates] == [
        ("acp://servers/{serverId}/runs/{resourceRunId}", "application/json")
    ]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_reading_an_unknown_run_resource_raises_an_error_naming_the_run(
    settings: Settings, sandbox: RunningSandbox, mode: str
) -> None:
    async with connect(settings, mode=mode) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource(f"acp://servers/{SERVER_ID}/runs/run_does_not_exist")

    assert str(caught.value) == (
        f"No run 'run_does_not_exist' was found on server '{SERVER_ID}' (HTTP 404 — the API said: "
        f'"Run run_does_not_exist not found"). Check the run id with list_agent_runs {{"serverId": "{SERVER_ID}"}}.'
    )
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{runs_path()}/run_does_not_exist/events")]


# -- how the tools fit together ------------------------------------------------------------------


async def test_every_tool_description_names_another_tool(settings: Settings) -> None:
    async with connect(settings) as client:
        tools = (await client.list_tools()).tools

    assert sorted(t.name for t in tools) == sorted(TOOL_NAMES)
    for tool in tools:
        others = [name for name in TOOL_NAMES if name != tool.name and name in (tool.description or "")]
        assert others, f"{tool.name}'s description names no other tool"
