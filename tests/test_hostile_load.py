"""Hostile and heavy load on loopback, bounded in time and count (external lane), one test per limit: each row of
the README's security model, measured against a real server process."""

from __future__ import annotations

import resource
import signal
import socket
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp.types import CallToolResult

from acp_mcp.limits import EXIT_SECONDS
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.uris import run_uri

from ._http import CALLER_TOKEN, INITIALIZE, MCP_HEADERS, bearer, get
from ._tooling import http_server
from .conftest import SERVER_ID, hanging_run, sandbox_env, until
from .test_slow_clients import PARTIAL_HEADERS, STALLED_BODY, all_closed_by

pytestmark = [pytest.mark.external, pytest.mark.anyio]

HELD = 2_000


async def test_two_thousand_slow_connections_without_a_token_cannot_lock_anyone_out(sandbox: RunningSandbox) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * HELD)), hard))
    env = sandbox_env(sandbox, ACP_MCP_READ_TIMEOUT="2", ACP_MCP_HTTP_TOKEN=CALLER_TOKEN)
    with http_server(**env) as server, ExitStack() as held:
        port = urlsplit(server.url).port or 0
        kinds = [b"", PARTIAL_HEADERS, STALLED_BODY]
        socks = []
        for n in range(HELD):
            sock = held.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            if kinds[n % 3]:
                sock.sendall(kinds[n % 3])
            socks.append(sock)
        began = time.monotonic()
        health = get(server.url.replace("/mcp", "/healthz"))
        health_seconds = time.monotonic() - began
        began = time.monotonic()
        async with server.client(CALLER_TOKEN) as client:
            tools = await client.list_tools()
        tools_seconds = time.monotonic() - began
        closed = sum(all_closed_by(time.monotonic() + 15, socks))

    assert health[0] == 200 and health_seconds < 1, health_seconds
    assert len(tools.tools) == 5 and tools_seconds < 1, tools_seconds
    assert closed == HELD


SESSIONS = 1_000
WAITS = 90
"""Calls waiting at once through one MCP client: its HTTP pool holds 100 connections, one of them the listen stream."""
DRAIN_DELAY = 1.0


async def open_sessions(url: str, count: int) -> list[str]:
    """`count` bare 2025-11-25 sessions (an initialize each, nothing after), opened 20 at a time."""
    limit = anyio.Semaphore(20)
    ids: list[str] = []
    async with httpx2.AsyncClient(headers=bearer(CALLER_TOKEN), timeout=30) as http:

        async def one() -> None:
            async with limit:
                response = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
                ids.append(response.headers["mcp-session-id"])

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
    return ids


async def test_whatever_is_open_the_process_exits_once_the_calls_in_flight_are_answered(
    sandbox: RunningSandbox,
) -> None:
    """1,000 idle sessions, a GET stream, a listen stream and 90 waits: the drain ends the streams and the waits
    at once, and the process is gone a second later (not at the 20 s drain deadline, not after tearing down the
    sessions one cancellation at a time)."""
    env = sandbox_env(sandbox, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN, ACP_SERVER_ID=SERVER_ID, ACP_MCP_CALLER_RATE="0")
    arguments = ("--drain-delay-seconds", str(DRAIN_DELAY), "--drain-seconds", "20")
    with http_server(*arguments, **env) as server:
        sessions = await open_sessions(server.url, SESSIONS)
        stream_headers = bearer(CALLER_TOKEN) | {"Accept": "text/event-stream", "mcp-session-id": sessions[0]}
        ended: dict[str, float] = {}
        results: list[CallToolResult] = []
        async with (
            server.client(CALLER_TOKEN) as client,
            httpx2.AsyncClient(timeout=60) as http,
            http.stream("GET", server.url, headers=stream_headers) as stream,
            anyio.create_task_group() as group,
        ):
            assert stream.status_code == 200
            run_id = await hanging_run(client)

            async def read_to_the_end() -> None:
                async for _ in stream.aiter_bytes():
                    pass
                ended["GET stream"] = time.monotonic()

            async def listen() -> None:
                async with client.listen(resource_subscriptions=[run_uri(SERVER_ID, run_id)]) as events:
                    async for _ in events:
                        pass
                ended["listen stream"] = time.monotonic()

            async def wait() -> None:
                results.append(await client.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 60}))

            group.start_soon(read_to_the_end)
            group.start_soon(listen)
            for _ in range(WAITS):
                group.start_soon(wait)
            await until(lambda: len(sandbox.state.requests) > WAITS, seconds=60)  # every wait is polling
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                _, stderr = await anyio.to_thread.run_sync(server.process.communicate)
            exited_after = time.monotonic() - began
            group.cancel_scope.cancel()

    assert len(sessions) == SESSIONS
    assert len(results) == WAITS and all(r.structured_content["waitExpired"] for r in results)
    assert {r.structured_content["next"] for r in results} == {
        f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
    }
    assert sorted(ended) == ["GET stream", "listen stream"], "both streams ended when the drain began"
    assert all(at - began < DRAIN_DELAY + 1 for at in ended.values()), ended
    assert exited_after < DRAIN_DELAY + EXIT_SECONDS + 1, exited_after
    assert server.process.returncode == 0 and "Traceback" not in stderr, stderr
