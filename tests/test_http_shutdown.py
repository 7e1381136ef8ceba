"""Streamable HTTP shutdown: a signal ends the process promptly; SIGTERM drains the calls in flight first."""

from __future__ import annotations

import contextlib
import json
import signal
import time

import anyio
import pytest
from mcp.types import CallToolResult

from acp_mcp.sandbox import RunningSandbox

from ._http import get
from ._tooling import http_server
from .conftest import SERVER_ID, api_requests, hanging_run, sandbox_env, text_of, until

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_ends_the_http_server_promptly_with_a_call_in_flight(
    sandbox: RunningSandbox, signum: int
) -> None:
    with http_server("--drain-delay-seconds", "0", **sandbox_env(sandbox)) as server:
        async with server.client() as client:
            run_id = await hanging_run(client)
            async with anyio.create_task_group() as group:
                group.start_soon(
                    client.call_tool,
                    "get_agent_run",
                    {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 60},
                )
                await until(lambda: bool(api_requests(sandbox, method="GET")))  # the call is waiting on the run
                began = time.monotonic()
                code, stderr = server.stop(signum)
                group.cancel_scope.cancel()
    assert time.monotonic() - began < 5
    assert code in (0, -signum, 128 + signum), stderr
    assert "Traceback" not in stderr


async def test_sigterm_drains_the_wait_in_flight_ends_early_with_its_run_and_new_requests_get_503(
    sandbox: RunningSandbox,
) -> None:
    arguments = ("--drain-seconds", "3", "--drain-delay-seconds", "0")
    with http_server(*arguments, **sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID)) as server:
        base = server.url.removesuffix("/mcp")
        async with server.client() as client:
            run_id = await hanging_run(client)
            results: list[CallToolResult] = []

            async def wait_for_the_run() -> None:
                results.append(await client.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 60}))

            async def hold_the_drain_open() -> None:  # a sync start is mid-request to the API until the deadline
                with contextlib.suppress(Exception):
                    await client.call_tool("start_agent_run", {"content": "/hang", "mode": "sync", "waitSeconds": 60})

            async with anyio.create_task_group() as group:
                group.start_soon(wait_for_the_run)
                group.start_soon(hold_the_drain_open)
                with anyio.fail_after(10):
                    while len(api_requests(sandbox, method="POST")) < 2 or len(api_requests(sandbox)) < 4:  # noqa: ASYNC110
                        await anyio.sleep(0.02)  # both calls are in flight, the get polling in its wait
                    began = time.monotonic()
                    server.process.send_signal(signal.SIGTERM)
                    while not results:  # noqa: ASYNC110  (the wait ends early in the other process)
                        await anyio.sleep(0.02)
                ready, refused = get(base + "/readyz"), get(server.url)
                _, stderr = server.process.communicate(timeout=20)
                exited_after = time.monotonic() - began
                group.cancel_scope.cancel()

    (result,) = results
    assert not result.is_error, text_of(result)
    assert (result.structured_content["waitExpired"], result.structured_content["run"]["status"]) == (True, "running")
    hint = f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
    assert result.structured_content["next"] == hint
    assert any("shutting down for a restart" in note for note in result.structured_content["notes"])
    assert (ready[0], json.loads(ready[2])) == (503, {"status": "draining"})
    assert (refused[0], refused[1]["retry-after"], refused[1]["connection"]) == (503, "1", "close")
    assert server.process.returncode == 0, stderr
    assert 3 <= exited_after < 10, "the sync start held the drain open until its deadline, then was cancelled"
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "running", "the run goes on"


async def test_a_second_signal_ends_the_drain_at_once(sandbox: RunningSandbox) -> None:
    with http_server("--drain-seconds", "60", **sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID)) as server:
        base = server.url.removesuffix("/mcp")
        async with server.client() as client, anyio.create_task_group() as group:
            # a sync start of a run that never ends: mid-request to the API until the drain deadline
            arguments = {"content": "/hang", "mode": "sync", "waitSeconds": 60}
            group.start_soon(client.call_tool, "start_agent_run", arguments)
            with anyio.fail_after(10):
                while not api_requests(sandbox, method="POST"):  # noqa: ASYNC110  (the sandbox's thread records it)
                    await anyio.sleep(0.02)
                server.process.send_signal(signal.SIGTERM)
                while get(base + "/readyz")[0] != 503:  # noqa: ASYNC110  (the other process drains)
                    await anyio.sleep(0.02)
            began = time.monotonic()
            code, stderr = server.stop(signal.SIGTERM)
            group.cancel_scope.cancel()

    assert time.monotonic() - began < 5
    assert code == 0, stderr
    assert "Traceback" not in stderr
