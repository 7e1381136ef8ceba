"""A start repeated after its call was cancelled gets the run the first one started (by its id, or by its marker
when the API had not answered), not a second run."""

from __future__ import annotations

import anyio
import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.limits import MAX_REMEMBERED_STARTS
from acp_mcp.repeats import AbandonedStarts
from acp_mcp.sandbox import RunningSandbox

from .conftest import SERVER_ID, api_requests, connect, runs_path, text_of, until

HANG = {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 30}


def test_a_cancelled_start_is_returned_once_within_the_window() -> None:
    clock = VirtualClock()
    starts = AbandonedStarts(window=60, clock=clock.now)
    key = starts.key("srv", {"content": "x", "mode": "async"})
    starts.remember(key, "run_000001", marker="m1")
    clock.advance(60)

    earlier = starts.take(key)

    assert earlier is not None and (earlier.run_id, earlier.marker) == ("run_000001", "m1")
    assert starts.take(key) is None, "taken once"


def test_a_cancelled_start_is_forgotten_after_the_window() -> None:
    clock = VirtualClock()
    starts = AbandonedStarts(window=60, clock=clock.now)
    starts.remember("k", "run_000001", marker="m1")
    clock.advance(60.5)

    assert starts.take("k") is None


def test_starts_differ_by_server_and_by_any_field_of_the_body() -> None:
    key = AbandonedStarts.key
    assert key("a", {"content": "x", "mode": "async"}) == key("a", {"mode": "async", "content": "x"})
    assert key("a", {"content": "x"}) != key("b", {"content": "x"})
    assert key("a", {"content": "x"}) != key("a", {"content": "x", "title": "t"})


def test_only_the_newest_cancelled_starts_are_kept() -> None:
    starts = AbandonedStarts(clock=VirtualClock().now)
    for n in range(MAX_REMEMBERED_STARTS + 1):
        starts.remember(f"k{n}", f"run_{n:06d}", marker=f"m{n}")

    assert starts.take("k0") is None
    assert starts.take(f"k{MAX_REMEMBERED_STARTS}") is not None


@pytest.mark.anyio
async def test_a_start_repeated_after_its_call_was_cancelled_returns_the_run_it_started(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, "start_agent_run", HANG)
                await until(lambda: bool(api_requests(sandbox, method="POST")))  # the sandbox's thread records it
                scope.cancel()  # the client gives up, as a client whose timeout ran out does
        await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})  # one round trip: the cancel has landed
        first_id = sandbox.state.list_runs(SERVER_ID, 1)[0].id

        repeat = await client.call_tool("start_agent_run", {**HANG, "waitSeconds": 0})
        again = await client.call_tool("start_agent_run", {**HANG, "waitSeconds": 0})

    assert not repeat.is_error, text_of(repeat)
    assert repeat.structured_content["run"]["id"] == first_id
    assert repeat.structured_content["outcome"] == "fetched"
    assert repeat.structured_content["notes"] == [
        f"an identical start_agent_run was cancelled (the client stopped waiting) after it started run {first_id}; "
        "that run is returned instead of starting a second one. To start another run anyway, change the content "
        "or add a title"
    ]
    assert again.structured_content["run"]["id"] != first_id, "only the first repeat is folded into the earlier run"
    assert len(api_requests(sandbox, method="POST")) == 2


@pytest.mark.anyio
async def test_a_start_cancelled_before_the_api_answered_is_found_by_its_marker_when_repeated(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    held = {"serverId": SERVER_ID, "content": "/hang", "mode": "sync", "waitSeconds": 30}  # answered only at its end
    async with connect(settings) as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, "start_agent_run", held)
                await until(lambda: bool(api_requests(sandbox, method="POST")))
                scope.cancel()  # no answer yet: the run's id is not known, only the marker the start carried
        (post,) = api_requests(sandbox, method="POST")
        sandbox.state.clear_requests()
        repeat = await client.call_tool("start_agent_run", {**held, "waitSeconds": 0})
        requests = api_requests(sandbox)
        found = repeat.structured_content["run"]["id"] if not repeat.is_error else None
        if found:  # the hanging run is stopped, so it holds nothing open
            await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": found})

    assert not repeat.is_error, text_of(repeat)
    (first,) = [run for run in sandbox.state.list_runs(SERVER_ID, 10) if run.metadata == post.body["metadata"]]
    assert repeat.structured_content["run"]["id"] == first.id
    assert repeat.structured_content["notes"][0].startswith(
        f"an identical start_agent_run was cancelled (the client stopped waiting) after it started run {first.id};"
    )
    assert [(r.method, r.path, r.query) for r in requests] == [  # no second POST: the marker found the run
        ("GET", runs_path(), {"limit": "10"}),
        ("GET", f"{runs_path()}/{first.id}/events", {}),
    ]
