"""Slow clients over real loopback sockets: a connection whose request does not arrive whole within the read
timeout is closed (no token needed to hold one before), while requests that arrived keep every second they
need, and the server keeps answering everyone else."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest

from acp_mcp.limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_METADATA_CHARS, MAX_REQUEST_BYTES, MAX_TEXT_CHARS
from acp_mcp.repeats import START_MARKER_CHARS
from acp_mcp.sandbox import RunningSandbox

from ._http import CALLER_TOKEN, INITIALIZE, MCP_HEADERS, get
from ._tooling import HttpServer, http_server
from .conftest import SERVER_ID, api_requests, sandbox_env, text_of

pytestmark = pytest.mark.anyio

READ_TIMEOUT = "0.5"
PARTIAL_HEADERS = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
STALLED_BODY = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
)


@contextmanager
def connections(server: HttpServer, first_bytes: bytes, count: int) -> Iterator[list[socket.socket]]:
    port = urlsplit(server.url).port
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port or 0), timeout=5))
            if first_bytes:
                sock.sendall(first_bytes)
            opened.append(sock)
        yield opened


def all_closed_by(deadline: float, socks: Iterable[socket.socket]) -> list[bool]:
    """For each socket, whether the server closed it by `deadline` (monotonic): one bound for all, however many."""
    closed = []
    for sock in socks:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        closed.append(closed_by_the_server(sock))
    return closed


def closed_by_the_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (within the socket's timeout), having sent no more than a status."""
    try:
        while chunk := sock.recv(4096):
            if not chunk.startswith(b"HTTP/1.1 4"):
                return False
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


async def test_connections_that_send_nothing_half_their_headers_or_stall_their_body_are_closed(
    sandbox: RunningSandbox,
) -> None:
    env = sandbox_env(sandbox, ACP_MCP_READ_TIMEOUT=READ_TIMEOUT, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN)
    with (
        http_server(**env) as server,
        connections(server, b"", 30) as idle,
        connections(server, PARTIAL_HEADERS, 30) as partial,
        connections(server, STALLED_BODY, 30) as stalled,
    ):
        health = get(server.url.replace("/mcp", "/healthz"))
        closed = all_closed_by(time.monotonic() + 10, (*idle, *partial, *stalled))

    assert health[0] == 200
    assert closed == [True] * 90


async def test_a_request_that_arrived_whole_keeps_its_whole_wait_past_the_read_timeout(
    sandbox: RunningSandbox,
) -> None:
    sandbox.state.pace = 0.3  # three steps: the call waits about a second, twice the read timeout
    env = sandbox_env(sandbox, ACP_MCP_READ_TIMEOUT=READ_TIMEOUT, ACP_SERVER_ID=SERVER_ID)
    with http_server(**env) as server:
        async with server.client() as client:
            result = await client.call_tool("start_agent_run", {"content": "/steps 3", "waitSeconds": 30})

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["status"] == "completed"
    assert result.structured_content["waitedSeconds"] > float(READ_TIMEOUT)


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends on `sock` before it closes or resets the connection."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


def exchange(server: HttpServer, request: bytes) -> bytes:
    """`request` sent whole on a new connection; everything the server answers before it closes the connection."""
    with connections(server, request, 1) as (sock,):
        return read_to_close(sock)


def health_request(*headers: bytes) -> bytes:
    return b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(headers) + b"Connection: close\r\n\r\n"


async def test_too_many_header_lines_or_bytes_get_431_before_the_token_is_checked(
    sandbox: RunningSandbox,
) -> None:
    with http_server(**sandbox_env(sandbox, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN)) as server:
        lines = exchange(server, health_request(*(b"x-a%d: b\r\n" % n for n in range(MAX_HEADERS))))
        bytes_ = exchange(server, health_request(b"x-big: " + b"b" * MAX_HEADER_BYTES + b"\r\n"))
        fine = exchange(server, health_request(*(b"x-a%d: b\r\n" % n for n in range(MAX_HEADERS - 3))))

    for refused in (lines, bytes_):
        assert refused.startswith(b"HTTP/1.1 431 "), refused
        assert b"headers too large: 100 lines and 16384 bytes at most" in refused
    assert fine.startswith(b"HTTP/1.1 401 "), "at the limit, the request goes on to the token check"


async def test_past_the_connection_cap_a_new_connection_is_answered_503_and_closed_until_one_ends(
    sandbox: RunningSandbox,
) -> None:
    with http_server(**sandbox_env(sandbox, ACP_MCP_MAX_CONNECTIONS="5")) as server:
        health = server.url.replace("/mcp", "/healthz")
        with connections(server, b"", 5):
            over = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        after = await anyio.to_thread.run_sync(get, health)

    assert (
        over == b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    )
    assert after[0] == 200


async def test_a_body_over_one_mib_is_413_unread_and_the_largest_valid_call_fits(sandbox: RunningSandbox) -> None:
    largest = {
        "serverId": SERVER_ID,
        "content": "ä" * MAX_TEXT_CHARS,
        "metadata": {"note": "m" * (MAX_METADATA_CHARS - START_MARKER_CHARS - 11)},
        "waitSeconds": 0,
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "start_agent_run"}}
    keys = {f"k{n}": 1 for n in range(MAX_REQUEST_BYTES // 8)}
    with http_server(**sandbox_env(sandbox, ACP_MCP_STATELESS="true")) as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            headers = MCP_HEADERS | {"MCP-Protocol-Version": "2025-11-25"}
            flood = await http.post(
                server.url, json=call | {"params": {"name": "x", "arguments": keys}}, headers=headers
            )
            fits = await http.post(
                server.url, json=call | {"params": {"name": "start_agent_run", "arguments": largest}}, headers=headers
            )

    assert (flood.status_code, flood.text) == (413, "Request body too large")
    assert fits.status_code == 200 and '"isError":false' in fits.text.replace(" ", "")
    (start,) = api_requests(sandbox, method="POST")
    assert start.body["content"] == largest["content"]


async def test_sessions_are_capped_and_an_idle_one_expires_even_with_its_stream_open(sandbox: RunningSandbox) -> None:
    env = sandbox_env(sandbox, ACP_MCP_MAX_SESSIONS="2", ACP_MCP_SESSION_IDLE_SECONDS="1")
    with http_server(**env) as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            opened = [await http.post(server.url, json=INITIALIZE, headers=MCP_HEADERS) for _ in range(3)]
            first = opened[0].headers["mcp-session-id"]
            stream_headers = {
                "Accept": "text/event-stream",
                "mcp-session-id": first,
                "MCP-Protocol-Version": "2025-11-25",
            }
            with anyio.fail_after(10):
                async with http.stream("GET", server.url, headers=stream_headers) as stream:
                    async for _ in stream.aiter_bytes():
                        pass
            reopened = 0
            with anyio.fail_after(10):
                while reopened < 2:  # both idle sessions expire, the one with the stream too; then two more fit
                    status = (await http.post(server.url, json=INITIALIZE, headers=MCP_HEADERS)).status_code
                    reopened += status == 200
                    await anyio.sleep(0 if status == 200 else 0.2)
            gone = await http.get(server.url, headers=stream_headers)

    assert [r.status_code for r in opened] == [200, 200, 503]
    assert stream.status_code == 200, "the stream ended on its own, a second after it opened"
    assert gone.status_code == 404, "then its session expired"
