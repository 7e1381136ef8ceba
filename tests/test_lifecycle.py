"""The run lifecycle end to end: start, wait, pick up, list, cancel, fail, progress, cancellation, resource.

Every test drives the server through a real MCP client against the sandbox over loopback HTTP,
and checks both the requests that reached the API and the result the model reads.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import anyio
import httpx2
import pytest
from mcp import MCPError

from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RecordedRequest, RunningSandbox
from acp_mcp.waiting import PollPolicy

from .conftest import API_KEY, SERVER_ID, api_requests, connect, start_run, text_of

pytestmark = pytest.mark.anyio

RUNS = f"/v1/servers/{SERVER_ID}/runtime/agent/runs"
TOOL_NAMES = ("start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run")


def _fresh_server_id() -> str:
    """A server id no other test uses, so a listing holds only this test's runs."""
    return f"srv_{uuid.uuid4().hex[:10]}"


def _calls(requests: list[RecordedRequest], server_id: str = SERVER_ID) -> list[tuple[str, str]]:
    """(method, path below the server's runs collection) of each request, e.g. ("GET", "/run_1/events")."""
    prefix = f"/v1/servers/{server_id}/runtime/agent/runs"
    assert all(r.path.startswith(prefix) for r in requests), [r.path for r in requests]
    return [(r.method, r.path[len(prefix) :]) for r in requests]


def _parse_next(hint: str) -> tuple[str, dict[str, Any]]:
    """Split a `next` hint such as 'get_agent_run {"serverId": ...}' into tool name and arguments."""
    name, _, arguments = hint.partition(" ")
    return name, json.loads(arguments)


# -- start ---------------------------------------------------------------------------------------


async def test_sync_start_forwards_the_body_exactly_and_returns_the_finished_run_from_one_post(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    body = {
        "content": "hello there",
        "prompt": "a prompt too",
        "title": "My title",
        "mode": "sync",
        "metadata": {"ticket": "T-9", "tags": ["a", "b"]},
    }
    async with connect(settings) as client:
        result = await start_run(client, body)

    (post,) = api_requests(sandbox)  # the sync answer holds the finished run and its events
    assert (post.method, post.path, post.query, post.body) == ("POST", RUNS, {}, body)

    structured = result.structured_content
    run = structured["run"]
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("started", 201, True)
    assert (structured["waitExpired"], structured["next"]) == (False, None)
    assert 0 < structured["waitedSeconds"] < 2  # the sync request itself is the wait
    assert structured["notes"] == []
    assert {k: run[k] for k in ("status", "output", "error", "mode", "title", "input", "metadata")} == {
        "status": "completed",
        "output": "Echo: hello there",
        "error": None,
        "mode": "sync",
        "title": "My title",
        "input": "hello there",
        "metadata": {"ticket": "T-9", "tags": ["a", "b"]},
    }
    assert [(e["role"], e["content"]) for e in structured["events"]] == [
        ("user", "hello there"),
        ("system", "Agent started"),
        ("assistant", "Echo: hello there"),
    ]
    assert structured["resourceUri"] == f"acp://servers/{SERVER_ID}/runs/{run['id']}"


@pytest.mark.parametrize("given", [{}, {"mode": "async"}], ids=["mode-omitted", "mode-async"])
async def test_async_start_is_accepted_with_202_then_awaited_by_polling_its_events(
    settings: Settings, sandbox: RunningSandbox, given: dict[str, str]
) -> None:
    sandbox.state.pace = 0.05  # a few polls happen before the run ends
    async with connect(settings) as client:
        result = await start_run(client, {"content": "hi", **given, "waitSeconds": 5})

    structured = result.structured_content
    run_id = structured["run"]["id"]
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("accepted", 202, True)
    assert (structured["run"]["status"], structured["run"]["output"]) == ("completed", "Echo: hi")
    assert structured["waitExpired"] is False and structured["next"] is None
    assert 0.05 < structured["waitedSeconds"] < 2

    requests = api_requests(sandbox)
    assert requests[0].body == {"content": "hi", "mode": "async"}  # omitted mode is sent as "async"
    calls = _calls(requests)
    assert calls[0] == ("POST", "")
    polls = calls[1:]  # a small run is polled on /events, whose last answer is the result: no extra fetch
    assert len(polls) >= 2 and set(polls) == {("GET", f"/{run_id}/events")}
    assert all(r.query == {} for r in requests)


async def test_a_run_that_outlives_its_wait_returns_its_id_and_the_exact_next_call_which_then_finishes_it(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.pace = 0.05  # 50 steps: about 2.6 s, far longer than the wait
    async with connect(settings) as client:
        began = time.monotonic()
        result = await start_run(client, {"content": "/steps 50", "waitSeconds": 0.3})
        elapsed = time.monotonic() - began

        structured = result.structured_content
        run_id = structured["run"]["id"]
        assert run_id.startswith("run_")
        assert (structured["terminal"], structured["waitExpired"]) == (False, True)
        assert structured["run"]["status"] == "running"
        assert 0.3 <= structured["waitedSeconds"] < 0.6 and 0.3 <= elapsed < 1.0  # the wait, then one last poll
        expected_next = f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
        assert structured["next"] == expected_next
        text = text_of(result)
        assert "Still running after waiting" in text
        assert f"Next: {expected_next}" in text.splitlines()

        sandbox.state.pace = 0.001  # the remaining steps now take a few milliseconds
        sandbox.state.clear_requests()
        name, arguments = _parse_next(structured["next"])
        picked_up = await client.call_tool(name, arguments)

    assert not picked_up.is_error, text_of(picked_up)
    done = picked_up.structured_content
    assert done["run"]["id"] == run_id
    assert (done["run"]["status"], done["run"]["output"], done["terminal"]) == ("completed", "Completed 50 steps", True)
    assert (done["outcome"], done["waitExpired"], done["next"]) == ("fetched", False, None)
    assert done["eventsTotal"] == len(sandbox.state.get_run(SERVER_ID, run_id).events) == 53
    assert _calls(api_requests(sandbox))[0] == ("GET", f"/{run_id}/events")


async def test_wait_seconds_zero_returns_right_after_the_post_with_the_next_call_and_no_polls(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/hang", "waitSeconds": 0})

    # The 202 answer already holds the run's events, so nothing else is fetched.
    assert _calls(api_requests(sandbox)) == [("POST", "")]
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


# -- get -----------------------------------------------------------------------------------------


async def test_get_agent_run_on_a_finished_run_makes_exactly_one_events_request(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "done", "mode": "sync"})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert not result.is_error, text_of(result)
    (request,) = api_requests(sandbox)
    assert (request.method, request.path, request.query, request.body) == ("GET", f"{RUNS}/{run_id}/events", {}, None)
    structured = result.structured_content
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("fetched", None, True)
    assert (structured["waitedSeconds"], structured["waitExpired"], structured["next"]) == (0.0, False, None)
    assert [e["content"] for e in structured["events"]] == ["done", "Agent started", "Echo: done"]
    assert (structured["eventsTotal"], structured["eventOffset"]) == (3, 0)


async def test_get_agent_run_on_a_running_run_polls_it_until_it_finishes(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.pace = 0.05
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "/steps 4", "waitSeconds": 0})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 5}
        )

    structured = result.structured_content
    assert (structured["run"]["status"], structured["run"]["output"]) == ("completed", "Completed 4 steps")
    assert (structured["terminal"], structured["waitExpired"]) == (True, False)
    assert structured["waitedSeconds"] > 0
    assert structured["eventsTotal"] == 7
    calls = _calls(api_requests(sandbox))
    assert len(calls) >= 3 and set(calls) == {("GET", f"/{run_id}/events")}


# -- list ----------------------------------------------------------------------------------------


async def test_list_agent_runs_sends_limit_as_a_query_and_lists_the_newest_runs_first(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = _fresh_server_id()
    async with connect(settings) as client:
        run_ids = []
        for text in ("one", "two", "three"):
            started = await client.call_tool(
                "start_agent_run", {"serverId": server_id, "content": text, "mode": "sync"}
            )
            run_ids.append(started.structured_content["run"]["id"])
        sandbox.state.clear_requests()
        limited = await client.call_tool("list_agent_runs", {"serverId": server_id, "limit": 2})
        everything = await client.call_tool("list_agent_runs", {"serverId": server_id})

    first, second = api_requests(sandbox)
    prefix = f"/v1/servers/{server_id}/runtime/agent/runs"
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


# -- cancel --------------------------------------------------------------------------------------


async def test_cancel_agent_run_stops_a_hanging_run_and_cancelling_it_again_is_harmless(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "/hang", "waitSeconds": 0})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        cancelled = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
        again = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    for result in (cancelled, again):
        assert not result.is_error, text_of(result)
        structured = result.structured_content
        assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("cancelled", 200, True)
        assert (structured["run"]["status"], structured["next"], structured["waitExpired"]) == (
            "cancelled",
            None,
            False,
        )
        assert structured["events"][-1]["content"] == "Run cancelled"
        assert f"Run {run_id} on server {SERVER_ID}: cancelled (HTTP 200, cancelled)." in text_of(result)
    requests = api_requests(sandbox)
    assert [(r.method, r.path, r.query, r.body) for r in requests] == [("POST", f"{RUNS}/{run_id}/cancel", {}, {})] * 2
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "cancelled"


async def test_cancelling_a_completed_run_is_a_tool_error_naming_the_run_and_the_409(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "x", "mode": "sync"})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert result.is_error
    text = text_of(result)
    assert run_id in text and "HTTP 409" in text and "already completed" in text
    assert [(r.method, r.path, r.body) for r in api_requests(sandbox)] == [("POST", f"{RUNS}/{run_id}/cancel", {})]
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "completed"


async def test_cancelling_a_finished_run_does_not_advise_cancelling_or_waiting_for_it(settings: Settings) -> None:
    """The 409 of a cancel means the run already ended: waiting for it or cancelling it again cannot help."""
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "x", "mode": "sync"})).structured_content["run"]["id"]
        result = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert result.is_error
    prefix = "Error executing tool cancel_agent_run: "
    assert text_of(result).startswith(prefix)
    message = text_of(result).removeprefix(prefix)
    assert "cancel_agent_run" not in message, message
    assert "Wait for it to finish" not in message, message
    assert "most likely finished already" in message and "get_agent_run" in message


# -- failure -------------------------------------------------------------------------------------


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


# -- progress ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_notifications_reach_the_client_with_the_run_id_status_and_latest_event(
    settings: Settings, sandbox: RunningSandbox, mode: str
) -> None:
    sandbox.state.pace = 0.1  # /steps 5: about 0.7 s
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(settings, mode=mode) as client:
        result = await client.call_tool(
            "start_agent_run",
            {"serverId": SERVER_ID, "content": "/steps 5", "waitSeconds": 5},
            progress_callback=on_progress,
        )

    assert result.structured_content["run"]["status"] == "completed", text_of(result)
    run_id = result.structured_content["run"]["id"]
    assert len(seen) >= 4, seen
    progress_values = [p for p, _, _ in seen]
    assert progress_values == sorted(progress_values) and progress_values[0] >= 0 and progress_values[-1] <= 5
    messages = [m or "" for _, _, m in seen]
    starting = [m for m in messages if m == f"starting a run on server {SERVER_ID}"]  # before the API answers
    assert messages[: len(starting)] == starting
    assert all(m.startswith((f"run {run_id}: queued", f"run {run_id}: running")) for m in messages[len(starting) :])
    assert any(m.startswith(f"run {run_id}: running") for m in messages), messages
    assert any(" — latest: [user] /steps 5" in m for m in messages), messages
    # total is the wait the caller asked for, and progress counts against it from the start of the call.
    assert {total for _, total, _ in seen} == {5.0}


async def test_progress_keeps_coming_at_the_progress_interval_while_polls_are_further_apart(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    policy = PollPolicy(first_interval=0.5, factor=1, max_interval=0.5, progress_interval=0.1)
    stamps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        stamps.append(time.monotonic())

    async with connect(settings, policy=policy) as client:
        began = time.monotonic()
        result = await client.call_tool(
            "start_agent_run",
            {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 1.0},
            progress_callback=on_progress,
        )
        ended = time.monotonic()

    assert result.structured_content["waitExpired"] is True, text_of(result)
    run_id = result.structured_content["run"]["id"]
    gaps = [b - a for a, b in zip([began, *stamps], [*stamps, ended], strict=True)]
    assert len(stamps) >= 6 and max(gaps) < 0.3, gaps
    # Polls follow the poll interval, not the progress interval: at 0.5 s (and perhaps as the wait ends).
    assert 1 <= _calls(api_requests(sandbox)).count(("GET", f"/{run_id}/events")) <= 2


# -- cancellation of a waiting call --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("how", ["move_on_after", "read_timeout"])
async def test_a_cancelled_waiting_call_returns_at_once_stops_polling_and_leaves_the_run_running(
    settings: Settings, sandbox: RunningSandbox, mode: str, how: str
) -> None:
    async with connect(settings, mode=mode) as client:
        run_id = (await start_run(client, {"content": "/hang", "waitSeconds": 0})).structured_content["run"]["id"]
        arguments = {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 30}
        began = time.monotonic()
        if how == "move_on_after":
            with anyio.move_on_after(0.3) as scope:
                await client.call_tool("get_agent_run", arguments)
            assert scope.cancelled_caught
        else:
            with pytest.raises(MCPError, match=r"(?i)timed out"):
                await client.call_tool("get_agent_run", arguments, read_timeout_seconds=0.3)
        assert time.monotonic() - began < 0.6

        await anyio.sleep(0.1)  # a poll already on the wire when the call was cancelled may still land
        after_cancel = len(api_requests(sandbox))
        await anyio.sleep(0.5)  # the wait policy would poll at least twice in this time
        assert len(api_requests(sandbox)) == after_cancel
        polls = [r for r in api_requests(sandbox) if r.path == f"{RUNS}/{run_id}/events"]
        assert len(polls) >= 3  # get_agent_run's first fetch, then polls until the cancel

        check = await client.call_tool("get_agent_run", {**arguments, "waitSeconds": 0})

    assert not check.is_error, text_of(check)
    assert check.structured_content["run"]["status"] == "running"
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "running"
    assert not any(r.path.endswith("/cancel") for r in api_requests(sandbox))


# -- sync requests that outlive the wait ---------------------------------------------------------


async def test_a_sync_continue_that_outlives_its_wait_returns_the_running_run_with_a_note(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "first", "mode": "sync"})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        began = time.monotonic()
        result = await client.call_tool(
            "continue_agent_run",
            {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "/hang", "mode": "sync", "waitSeconds": 0.5},
        )
        elapsed = time.monotonic() - began

    assert not result.is_error, text_of(result)
    assert 0.5 <= elapsed < 2
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
        ("POST", f"{RUNS}/{run_id}/input", {"content": "/hang", "mode": "sync"}),
        ("GET", f"{RUNS}/{run_id}/events", None),
    ]
    text = text_of(result)
    assert "Note: the sync request did not answer within 0.5s" in text and f"Next: {structured['next']}" in text
    # The call spent its whole wait and the run is still going: that is what waitExpired reports.
    assert structured["waitExpired"] is True


async def test_a_sync_start_that_outlives_its_wait_finds_and_returns_the_run_it_started(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = _fresh_server_id()
    async with connect(settings) as client:
        began = time.monotonic()
        result = await client.call_tool(
            "start_agent_run", {"serverId": server_id, "content": "/hang", "mode": "sync", "waitSeconds": 0.5}
        )
        elapsed = time.monotonic() - began

    assert not result.is_error, text_of(result)
    assert 0.5 <= elapsed < 2
    (started,) = sandbox.state.list_runs(server_id, 10)
    structured = result.structured_content
    assert (structured["run"]["id"], structured["run"]["status"]) == (started.id, "running")
    assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("fetched", None, False)
    assert structured["notes"] == ["the sync start did not answer within 0.5s; this is the run it started"]
    assert structured["next"] == f'get_agent_run {{"serverId": "{server_id}", "resourceRunId": "{started.id}"}}'
    requests = api_requests(sandbox)
    assert [(m, p, r.query) for (m, p), r in zip(_calls(requests, server_id), requests, strict=True)] == [
        ("POST", "", {}),
        ("GET", "", {"limit": "10"}),
        ("GET", f"/{started.id}/events", {}),
    ]
    assert requests[0].body == {"content": "/hang", "mode": "sync"}
    assert structured["waitExpired"] is True


# -- the run resource ----------------------------------------------------------------------------


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
    assert (str(contents.uri), contents.mime_type) == (uri, "application/json")
    full = json.loads(contents.text)
    run = sandbox.state.get_run(SERVER_ID, run_id)
    assert full == sandbox.state.envelope(run, True)
    assert len(full["events"]) == 32 and all(len(e["content"]) == 700 for e in full["events"][2:])
    assert started.structured_content["eventsTotal"] == 32 and len(started.structured_content["events"]) == 20
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{RUNS}/{run_id}/events")]


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

    message = str(caught.value)
    assert "run_does_not_exist" in message and "HTTP 404" in message and "list_agent_runs" in message
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{RUNS}/run_does_not_exist/events")]


# -- how the tools fit together ------------------------------------------------------------------


async def test_every_tool_description_names_another_tool(settings: Settings) -> None:
    async with connect(settings) as client:
        tools = (await client.list_tools()).tools

    assert sorted(t.name for t in tools) == sorted(TOOL_NAMES)
    for tool in tools:
        others = [name for name in TOOL_NAMES if name != tool.name and name in (tool.description or "")]
        assert others, f"{tool.name}'s description names no other tool"


# -- the call's time budget ----------------------------------------------------------------------


async def test_a_poll_answer_with_a_field_of_the_wrong_type_keeps_the_run_id_with_a_note(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    broken = {"run": {"id": "run_x", "status": "running", "metadata": "not-an-object"}, "events": []}
    sandbox.state.pace = 0.05
    sandbox.state.inject(Fault(kind="status", status=200, body=broken, method="GET", path_contains="/events"))
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/steps 3", "waitSeconds": 2})

    structured = result.structured_content
    assert structured["run"]["id"].startswith("run_0")  # the run the POST created, not lost
    assert structured["notes"] == ["checking the run's status failed (InvalidResponseError); call get_agent_run later"]
    assert (
        structured["next"]
        == f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{structured["run"]["id"]}"}}'
    )


async def test_slow_answers_cannot_stretch_a_call_past_its_wait_plus_the_grace(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings.with_overrides(request_timeout=0.3)) as client:
        run_id = (await start_run(client, {"content": "/hang", "waitSeconds": 0})).structured_content["run"]["id"]
        sandbox.state.inject(Fault(kind="slow", delay=5.0, method="GET", times=100))
        began = time.monotonic()
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0.3}
        )
        elapsed = time.monotonic() - began

    assert result.is_error  # every GET timed out; FAST_POLLS' grace is 1 s: the call ends by 0.3 + 1 s
    assert elapsed < 0.3 + 1.0 + 0.5, elapsed
    assert "did not answer in time" in text_of(result)


async def test_a_run_that_ends_just_before_the_wait_does_is_reported_finished(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    policy = PollPolicy(first_interval=0.4, factor=1, max_interval=0.4, progress_interval=0.1, grace=1.0)
    async with connect(settings, policy=policy) as client:
        run_id = (await start_run(client, {"content": "/hang", "waitSeconds": 0})).structured_content["run"]["id"]

        async def cancel_soon() -> None:
            await anyio.sleep(0.5)  # after the poll at 0.4 s, before the wait ends at 0.7 s
            async with httpx2.AsyncClient() as http:
                response = await http.post(
                    f"{sandbox.base_url}/servers/{SERVER_ID}/runtime/agent/runs/{run_id}/cancel",
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                assert response.status_code == 200

        async with anyio.create_task_group() as group:
            group.start_soon(cancel_soon)
            result = await client.call_tool(
                "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0.7}
            )

    structured = result.structured_content
    assert (structured["run"]["status"], structured["terminal"], structured["waitExpired"]) == (
        "cancelled",
        True,
        False,
    )
