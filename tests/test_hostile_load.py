"""Hostile and heavy load on loopback, bounded in time and count (external lane), one test per limit: each row of
the README's security model, measured against a real server process."""

from __future__ import annotations

import json
import resource
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextResourceContents

from acp_mcp.composition import compose
from acp_mcp.config import Settings
from acp_mcp.limits import DEFAULT_MAX_WAITS, EXIT_SECONDS, GRACE_SECONDS, MAX_API_CONNECTIONS
from acp_mcp.sandbox import Fault, RunningSandbox
from acp_mcp.uris import run_uri

from ._http import CALLER_TOKEN, INITIALIZE, MCP_HEADERS, bearer, get
from ._tooling import http_server
from .conftest import FAST_POLLS, SERVER_ID, api_requests, error_text, hanging_run, sandbox_env, text_of, until
from .test_slow_clients import PARTIAL_HEADERS, STALLED_BODY, all_closed_by, read_to_close

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


LIMIT = DEFAULT_MAX_WAITS
"""Waits at once for the wait-limit test: the default (a multiple of 100, an MCP client's HTTP pool)."""


async def test_at_the_wait_limit_every_wait_answers_on_time_and_one_more_is_told_busy_at_once(
    sandbox: RunningSandbox,
) -> None:
    env = sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID, ACP_MCP_CALLER_RATE="0")
    took: list[float] = []
    with http_server(**env) as server, anyio.fail_after(120):
        async with server.client() as client:
            run_id = await hanging_run(client)
        arguments = {"resourceRunId": run_id, "waitSeconds": 10}

        async def waits(count: int) -> None:
            async with server.client() as client, anyio.create_task_group() as group:

                async def one() -> None:
                    began = time.monotonic()
                    result = await client.call_tool("get_agent_run", arguments)
                    assert result.structured_content["waitExpired"], result
                    took.append(time.monotonic() - began)

                for _ in range(count):
                    group.start_soon(one)

        async with anyio.create_task_group() as group:
            for _ in range(LIMIT // 100):  # 100 calls per client: its HTTP pool's size
                group.start_soon(waits, 100)
            await until(lambda: len(api_requests(sandbox, method="GET")) >= LIMIT, seconds=60)  # all hold a slot
            async with server.client() as client:
                began = time.monotonic()
                busy = await client.call_tool("get_agent_run", arguments)
                busy_after = time.monotonic() - began

    assert busy.is_error and f"busy ({LIMIT:,} calls are waiting on runs, its limit" in text_of(busy)
    assert busy_after < 1, busy_after
    assert len(took) == LIMIT
    assert max(took) < 10 + GRACE_SECONDS, sorted(took)[-5:]


UNREAD = 10


def rss_mib(pid: int) -> float:
    """The process's resident memory now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_clients_that_never_read_a_ten_mb_run_are_dropped_at_the_write_deadline(sandbox: RunningSandbox) -> None:
    env = sandbox_env(sandbox, ACP_MCP_STATELESS="true", ACP_MCP_WRITE_TIMEOUT="1", ACP_SERVER_ID=SERVER_ID)
    with http_server(**env) as server:
        async with server.client() as client:
            result = await client.call_tool("start_agent_run", {"content": "/events 1000 10000", "mode": "sync"})
            uri = result.structured_content["resourceUri"]
            whole = await resource_chars(client, uri)
        read = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}
        body = json.dumps(read).encode()
        head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        head += b"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n"
        request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        port = urlsplit(server.url).port or 0
        rounds = [await unread_round(request, port, server.process.pid) for _ in range(2)]
        grown = rss_mib(server.process.pid) - rounds[0].rss
        async with server.client() as client:
            again = await resource_chars(client, uri)

    assert whole > 10_000_000 and again == whole
    assert all(got < whole for r in rounds for got in r.received), "each unread answer was cut off, not sent whole"
    assert grown < 100, f"the first round's memory was freed and reused by the second: grew {grown:.0f} MiB"


async def resource_chars(client: Client, uri: str) -> int:
    """The length of the text the resource reads as."""
    (contents,) = (await client.read_resource(uri)).contents
    assert isinstance(contents, TextResourceContents)
    return len(contents.text)


@dataclass
class UnreadRound:
    received: list[int]
    """Bytes each connection got before the server dropped it."""
    rss: float
    """The server's resident memory after the round, in MiB."""


async def unread_round(request: bytes, port: int, pid: int) -> UnreadRound:
    """`UNREAD` connections send `request` and read nothing until the write deadline (1 s) has passed."""
    with ExitStack() as held:
        socks = []
        for _ in range(UNREAD):
            sock = held.enter_context(socket.socket())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
            socks.append(sock)
        await anyio.sleep(4)  # the answers are stuck; the write deadline passes
        return UnreadRound([drained(sock) for sock in socks], rss_mib(pid))


def drained(sock: socket.socket) -> int:
    """How many bytes the server sent on `sock` before it dropped the connection (at most 5 s between reads)."""
    sock.settimeout(5)
    return len(read_to_close(sock))


async def test_a_call_that_finds_every_api_connection_busy_is_told_busy_not_unreachable(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    """100 calls hold all of a caller's API connections (the API answers each after 8 s); one more waits 5 s for
    a connection, then is answered "busy", and nothing of it reached the API."""
    patient = settings.with_overrides(request_timeout=30.0)  # the slow answers hold their connections
    async with Client(compose(patient, policy=FAST_POLLS).server) as client:
        run_id = await hanging_run(client)
        sandbox.state.inject(Fault(kind="slow", method="GET", delay=8, times=MAX_API_CONNECTIONS))
        arguments = {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        async with anyio.create_task_group() as group:
            for _ in range(MAX_API_CONNECTIONS):
                group.start_soon(client.call_tool, "get_agent_run", arguments)
            await until(lambda: len(api_requests(sandbox, method="GET")) == MAX_API_CONNECTIONS)
            busy = await client.call_tool("get_agent_run", arguments)
            reached = len(api_requests(sandbox, method="GET"))

    assert error_text(busy, "get_agent_run") == (
        f"This MCP server is busy (all {MAX_API_CONNECTIONS} connections to the ACP API are in use); nothing was "
        "sent to the ACP API. Retry the same call in 5s."
    )
    assert reached == MAX_API_CONNECTIONS
