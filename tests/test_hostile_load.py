"""Hostile load on loopback, bounded in time and count (external lane): 2,000 connections held by someone without a
token, sending nothing, half their headers or a stalled body, while a health check and an authenticated tools/list
are timed. They are closed at the read timeout, and the server answers within a second throughout."""

from __future__ import annotations

import resource
import socket
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest

from acp_mcp.sandbox import RunningSandbox

from ._http import CALLER_TOKEN, get
from ._tooling import http_server
from .conftest import sandbox_env
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
