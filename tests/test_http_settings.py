"""Streamable HTTP settings: stateless and read-only modes, health endpoints, and settings it cannot serve with."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from acp_mcp.sandbox import RunningSandbox

from ._http import CALLER_TOKEN, get, post_initialize
from ._tooling import ROOT, http_server, python_env
from .conftest import SERVER_ID, api_requests, sandbox_env, text_of

pytestmark = pytest.mark.anyio

SERVE_HTTP = [sys.executable, "-m", "acp_mcp", "--transport", "streamable-http"]


def serve_until_exit(sandbox: RunningSandbox, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``acp-mcp --transport streamable-http ARGS``, expected to exit on its own (within 20 s)."""
    return subprocess.run(
        [*SERVE_HTTP, *args],
        cwd=ROOT,
        env=python_env(**sandbox_env(sandbox, **env)),
        capture_output=True,
        text=True,
        timeout=20,
    )


async def test_stateless_mode_serves_calls_without_sessions(sandbox: RunningSandbox) -> None:
    with http_server("--stateless", **sandbox_env(sandbox)) as server:
        response = await post_initialize(server.url)
        async with server.client() as client:
            result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "stateless"})

    assert response.status_code == 200
    assert "mcp-session-id" not in response.headers
    assert result.structured_content["run"]["output"] == "Echo: stateless"


async def test_read_only_mode_lists_only_read_tools_and_refuses_writes_over_http(sandbox: RunningSandbox) -> None:
    with http_server("--read-only", **sandbox_env(sandbox)) as server:
        async with server.client() as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            refused = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "write"})
            listed = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    assert names == ["get_agent_run", "list_agent_runs"]
    assert refused.is_error
    assert text_of(refused) == (
        "start_agent_run is disabled: this MCP server runs in read-only mode (ACP_MCP_READ_ONLY). "
        "Only get_agent_run and list_agent_runs are available; ask the user if a run must be changed."
    )
    assert api_requests(sandbox, method="POST") == []
    assert not listed.is_error


def test_listening_beyond_loopback_without_a_token_is_refused(sandbox: RunningSandbox) -> None:
    result = serve_until_exit(sandbox, "--host", "0.0.0.0", "--port", "0")

    assert result.returncode == 2
    assert "ACP_MCP_HTTP_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


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
        result = serve_until_exit(sandbox, *(a.format(taken=port) for a in arguments), **env)

    assert result.returncode == 2
    assert result.stderr.startswith("acp-mcp: " + message.format(taken=port)), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


async def test_health_endpoints_answer_without_the_token_and_never_touch_the_api(sandbox: RunningSandbox) -> None:
    with http_server(**sandbox_env(sandbox, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN)) as server:
        base = server.url.removesuffix("/mcp")
        health, ready = get(base + "/healthz"), get(base + "/readyz")

    assert (health[0], json.loads(health[2])) == (200, {"status": "up"})
    assert (ready[0], json.loads(ready[2])) == (200, {"status": "ready"})
    assert api_requests(sandbox) == []
