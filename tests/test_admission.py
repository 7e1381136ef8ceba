"""Limits a caller meets in one process, each answered at once with "busy, retry in N s" and nothing sent:
calls that wait on runs (``ACP_MCP_MAX_WAITS``) and sync calls holding the API pool (`MAX_SYNC_REQUESTS`)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from acp_mcp.composition import compose
from acp_mcp.config import Settings
from acp_mcp.limits import MAX_SYNC_REQUESTS
from acp_mcp.sandbox import RunningSandbox

from .conftest import FAST_POLLS, SERVER_ID, api_requests, error_text, hanging_run, text_of, until

pytestmark = pytest.mark.anyio


async def test_a_call_past_the_wait_limit_is_told_busy_at_once_and_a_call_that_does_not_wait_goes_through(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    application = compose(settings.with_overrides(max_waits=2), policy=FAST_POLLS)
    waits = application.state.waits
    async with Client(application.server) as client:
        runs = [await hanging_run(client) for _ in range(3)]
        results: list[Any] = []
        async with anyio.create_task_group() as group:
            for run in runs[:2]:
                arguments = {"serverId": SERVER_ID, "resourceRunId": run, "waitSeconds": 60}

                async def waiting(arguments: dict[str, Any] = arguments) -> None:
                    results.append(await client.call_tool("get_agent_run", arguments))

                group.start_soon(waiting)
            await until(lambda: waits.open == 2)
            sent = len(api_requests(sandbox))
            busy = await client.call_tool(
                "start_agent_run", {"serverId": SERVER_ID, "content": "one more", "waitSeconds": 30}
            )
            refused_without_a_request = len(api_requests(sandbox)) == sent
            at_once = await client.call_tool(
                "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": runs[2], "waitSeconds": 0}
            )
            for run in runs[:2]:
                await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run})

    assert error_text(busy, "start_agent_run") == (
        "This MCP server is busy (2 calls are waiting on runs, its limit; a call with waitSeconds 0 is not limited); "
        "nothing was sent to the ACP API. Retry the same call in 5s."
    )
    assert refused_without_a_request
    assert not at_once.is_error, text_of(at_once)
    assert [r.structured_content["run"]["status"] for r in results] == ["cancelled", "cancelled"]
    assert waits.open == 0


async def test_sync_calls_past_their_limit_are_told_busy_and_the_pool_stays_free_for_other_calls(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    application = compose(settings.with_overrides(max_waits=MAX_SYNC_REQUESTS + 10), policy=FAST_POLLS)
    hang = {"serverId": SERVER_ID, "content": "/hang", "mode": "sync", "waitSeconds": 60}
    async with Client(application.server) as client:
        finished = await client.call_tool(
            "start_agent_run", {"serverId": SERVER_ID, "content": "done", "mode": "sync", "waitSeconds": 10}
        )
        done = finished.structured_content["run"]["id"]

        def holding_syncs() -> int:
            return sum(r.method == "POST" and r.body.get("content") == "/hang" for r in api_requests(sandbox))

        async with anyio.create_task_group() as group:
            for _ in range(MAX_SYNC_REQUESTS):
                group.start_soon(client.call_tool, "start_agent_run", hang)
            await until(lambda: holding_syncs() == MAX_SYNC_REQUESTS)
            busy = await client.call_tool("start_agent_run", hang)
            refused_without_a_request = holding_syncs() == MAX_SYNC_REQUESTS
            other = await client.call_tool("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": done})
            group.cancel_scope.cancel()

    assert error_text(busy, "start_agent_run") == (
        f"This MCP server is busy ({MAX_SYNC_REQUESTS} sync calls are open, its limit; a call without mode 'sync' "
        "is not limited); nothing was sent to the ACP API. Retry the same call in 5s."
    )
    assert refused_without_a_request
    assert other.structured_content["run"]["status"] == "completed"
