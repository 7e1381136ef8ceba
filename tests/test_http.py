"""Streamable HTTP over real loopback sockets: caller auth, DNS-rebinding checks, read-only mode, shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from acp_mcp.sandbox import RunningSandbox

from .conftest import API_KEY, SERVER_ID, api_requests, start_run, text_of

pytestmark = pytest.mark.anyio

CALLER_TOKEN = "caller-token-5f0c9a7e2b"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "curl", "version": "0"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpServer:
    """A running ``acp-mcp --transport streamable-http`` process."""

    process: subprocess.Popen[str]
    url: str

    @asynccontextmanager
    async def client(self, token: str | None = CALLER_TOKEN) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(self.url, http_client=http)) as client,
        ):
            yield client

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(signum)
        try:
            _, stderr = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr


def _env(sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}
    return env | {"COMPUTER_AGENTS_API_KEY": API_KEY, "COMPUTER_AGENTS_BASE_URL": sandbox.base_url} | extra


@contextmanager
def http_server(sandbox: RunningSandbox, *args: str, **env: str) -> Iterator[HttpServer]:
    port = free_port()
    command = [sys.executable, "-m", "acp_mcp", "--transport", "streamable-http", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        env=_env(sandbox, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = HttpServer(process, f"http://127.0.0.1:{port}/mcp")
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "server did not start listening"
            time.sleep(0.05)
    try:
        yield server
    finally:
        if process.poll() is None:
            server.stop()


@pytest.fixture(scope="module")
def shared_server(running_sandbox: RunningSandbox) -> Iterator[HttpServer]:
    with http_server(running_sandbox, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN, ACP_SERVER_ID=SERVER_ID) as server:
        yield server


async def test_a_caller_with_the_token_continues_a_run_and_receives_progress(
    shared_server: HttpServer, sandbox: RunningSandbox
) -> None:
    sandbox.state.pace = 0.05
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with shared_server.client() as client:
        started = await client.call_tool("start_agent_run", {"content": "first", "mode": "sync"})
        run_id = started.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"resourceRunId": run_id, "content": "/steps 4"}, progress_callback=on_progress
        )

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["output"] == "Completed 4 steps"
    post = api_requests(sandbox, method="POST")[0]
    assert post.path == f"/v1/servers/{SERVER_ID}/runtime/agent/runs/{run_id}/input"
    assert post.body == {"content": "/steps 4", "mode": "async"}
    assert post.headers["authorization"] == f"Bearer {API_KEY}", "the caller's token never goes upstream"
    assert all(CALLER_TOKEN not in r.headers.get("authorization", "") for r in api_requests(sandbox))
    assert progress and all(message.startswith(f"run {run_id}: ") for message in progress)


@pytest.mark.parametrize("token", [None, "wrong-token", CALLER_TOKEN + "x"])
async def test_requests_without_the_right_token_get_401(shared_server: HttpServer, token: str | None) -> None:
    headers = MCP_HEADERS | ({"Authorization": f"Bearer {token}"} if token else {})
    async with httpx2.AsyncClient() as http:
        response = await http.post(shared_server.url, json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="acp-mcp"'
    assert API_KEY not in response.text and CALLER_TOKEN not in response.text


async def test_the_platform_key_sent_by_a_caller_is_not_a_credential(shared_server: HttpServer) -> None:
    headers = MCP_HEADERS | {"Authorization": f"Bearer {API_KEY}", "X-API-Key": API_KEY}
    async with httpx2.AsyncClient() as http:
        response = await http.post(shared_server.url, json=INITIALIZE, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [("Host", "evil.example", 421), ("Origin", "http://evil.example", 403), ("Host", "127.0.0.1.nip.io:80", 421)],
)
async def test_foreign_host_or_origin_headers_are_refused(
    shared_server: HttpServer, header: str, value: str, status: int
) -> None:
    headers = MCP_HEADERS | {"Authorization": f"Bearer {CALLER_TOKEN}", header: value}
    async with httpx2.AsyncClient() as http:
        response = await http.post(shared_server.url, json=INITIALIZE, headers=headers)
    assert response.status_code == status


async def test_loopback_host_and_origin_are_accepted(shared_server: HttpServer) -> None:
    headers = MCP_HEADERS | {"Authorization": f"Bearer {CALLER_TOKEN}", "Origin": "http://localhost:3000"}
    async with httpx2.AsyncClient() as http:
        response = await http.post(shared_server.url, json=INITIALIZE, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")


async def test_stateless_mode_serves_calls_without_sessions(sandbox: RunningSandbox) -> None:
    with http_server(sandbox, "--stateless") as server:
        async with httpx2.AsyncClient() as http:
            response = await http.post(server.url, json=INITIALIZE, headers=MCP_HEADERS)
        assert response.status_code == 200
        assert "mcp-session-id" not in response.headers
        async with server.client(token=None) as client:
            result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "stateless"})
    assert result.structured_content["run"]["output"] == "Echo: stateless"


async def test_read_only_mode_lists_only_read_tools_and_refuses_writes_over_http(sandbox: RunningSandbox) -> None:
    with http_server(sandbox, "--read-only") as server:
        async with server.client(token=None) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            refused = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "write"})
            listed = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})
    assert names == ["get_agent_run", "list_agent_runs"]
    assert refused.is_error
    assert text_of(refused).startswith("start_agent_run is disabled: this MCP server runs in read-only mode")
    assert api_requests(sandbox, method="POST") == []
    assert not listed.is_error


def test_listening_beyond_loopback_without_a_token_is_refused(sandbox: RunningSandbox) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acp_mcp", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "0"],
        env=_env(sandbox),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "ACP_MCP_HTTP_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_ends_the_http_server_promptly_with_a_call_in_flight(
    sandbox: RunningSandbox, signum: int
) -> None:
    with http_server(sandbox) as server:
        async with server.client(token=None) as client:
            started = await client.call_tool(
                "start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 0}
            )
            run_id = started.structured_content["run"]["id"]
            async with anyio.create_task_group() as group:
                group.start_soon(
                    client.call_tool,
                    "get_agent_run",
                    {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 60},
                )
                await anyio.sleep(0.3)
                began = time.monotonic()
                code, stderr = server.stop(signum)
                group.cancel_scope.cancel()
    assert time.monotonic() - began < 5
    assert code in (0, -signum, 128 + signum), stderr
    assert "Traceback" not in stderr


async def test_configured_host_names_and_origins_are_accepted_and_others_still_refused(sandbox: RunningSandbox) -> None:
    allowed = ("--allowed-hosts", "mcp.example.internal", "--allowed-origins", "https://app.example.internal")
    with http_server(sandbox, *allowed) as server:
        async with httpx2.AsyncClient() as http:

            async def status(**headers: str) -> int:
                response = await http.post(server.url, json=INITIALIZE, headers=MCP_HEADERS | headers)
                return response.status_code

            named = await status(Host="mcp.example.internal")
            from_app = await status(Origin="https://app.example.internal")
            other_host = await status(Host="other.example.internal")
            other_origin = await status(Origin="https://evil.example")

    assert (named, from_app, other_host, other_origin) == (200, 200, 421, 403)


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        pytest.param(
            ["--port", "{taken}"], {}, "cannot listen on 127.0.0.1:{taken}: Address already in use", id="port"
        ),
        pytest.param(
            ["--host", "no-such-host.invalid"], {"ACP_MCP_HTTP_TOKEN": "t" * 32}, "cannot listen on", id="host"
        ),
        pytest.param([], {"ACP_MCP_HTTP_TOKEN": "short"}, "ACP_MCP_HTTP_TOKEN is 5 characters", id="short-token"),
        pytest.param([], {"ACP_MCP_PORT": "http"}, "ACP_MCP_PORT: expected a port from 0 to 65535", id="bad-port"),
    ],
)
def test_a_setting_the_server_cannot_serve_with_is_one_line_on_stderr_and_exit_2(
    sandbox: RunningSandbox, arguments: list[str], env: dict[str, str], message: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "acp_mcp",
                "--transport",
                "streamable-http",
                *(a.format(taken=port) for a in arguments),
            ],
            env=_env(sandbox) | env,
            capture_output=True,
            text=True,
            timeout=20,
        )

    assert result.returncode == 2
    assert result.stderr.startswith("acp-mcp: " + message.format(taken=port)), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    """A plain GET (no token), as a load balancer's health check sends it."""
    with httpx2.Client(timeout=5) as http:
        response = http.get(url)
    return response.status_code, dict(response.headers), response.content


async def test_health_endpoints_answer_without_the_token_and_never_touch_the_api(sandbox: RunningSandbox) -> None:
    with http_server(sandbox, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN) as server:
        base = server.url.removesuffix("/mcp")
        health, ready = _get(base + "/healthz"), _get(base + "/readyz")

    assert (health[0], json.loads(health[2])) == (200, {"status": "up"})
    assert (ready[0], json.loads(ready[2])) == (200, {"status": "ready"})
    assert api_requests(sandbox) == []


async def test_sigterm_drains_the_wait_in_flight_ends_early_with_its_run_and_new_requests_get_503(
    sandbox: RunningSandbox,
) -> None:
    with http_server(sandbox, "--drain-seconds", "3", ACP_SERVER_ID=SERVER_ID) as server:
        base = server.url.removesuffix("/mcp")
        async with server.client(token=None) as client:
            run_id = (await start_run(client, {"content": "/hang", "waitSeconds": 0})).structured_content["run"]["id"]
            results: list[Any] = []

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
                ready, refused = _get(base + "/readyz"), _get(server.url)
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
    with http_server(sandbox, "--drain-seconds", "60", ACP_SERVER_ID=SERVER_ID) as server:
        base = server.url.removesuffix("/mcp")
        async with server.client(token=None) as client, anyio.create_task_group() as group:
            # a sync start of a run that never ends: mid-request to the API until the drain deadline
            arguments = {"content": "/hang", "mode": "sync", "waitSeconds": 60}
            group.start_soon(client.call_tool, "start_agent_run", arguments)
            with anyio.fail_after(10):
                while not api_requests(sandbox, method="POST"):  # noqa: ASYNC110  (the sandbox's thread records it)
                    await anyio.sleep(0.02)
                server.process.send_signal(signal.SIGTERM)
                while _get(base + "/readyz")[0] != 503:  # noqa: ASYNC110  (the other process drains)
                    await anyio.sleep(0.02)
            began = time.monotonic()
            code, stderr = server.stop(signal.SIGTERM)
            group.cancel_scope.cancel()

    assert time.monotonic() - began < 5
    assert code == 0, stderr
    assert "Traceback" not in stderr
