"""The real process over stdio: a client that spawns ``python -m acp_mcp``, and raw JSON-RPC on its pipes."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from acp_mcp.config import settings_fields
from acp_mcp.sandbox import RunningSandbox

from ._tooling import ROOT, free_port, python_env
from .conftest import API_KEY, SERVER_ID, api_requests, error_text, sandbox_env, text_of

pytestmark = pytest.mark.anyio


HANDSHAKE: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def _sandbox_env(sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    return python_env(**sandbox_env(sandbox, **extra))


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m acp_mcp ARGS`` to its end with stdin at EOF."""
    command = [sys.executable, "-m", "acp_mcp", *args]
    return subprocess.run(command, input="", capture_output=True, text=True, timeout=20, env=env)


def _params(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "acp_mcp", *args], env=env)


async def test_a_stdio_client_continues_a_run_end_to_end(sandbox: RunningSandbox) -> None:
    async with Client(_params(_sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID))) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        started = await client.call_tool("start_agent_run", {"content": "over stdio", "mode": "sync"})
        run_id = started.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"resourceRunId": run_id, "content": "and again", "mode": "sync"}
        )

    assert names == ["start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"]
    assert not result.is_error, text_of(result)
    (post,) = api_requests(sandbox)
    assert (post.method, post.path, post.body) == (
        "POST",
        f"/v1/servers/{SERVER_ID}/runtime/agent/runs/{run_id}/input",
        {"content": "and again", "mode": "sync"},
    )
    assert post.headers["authorization"] == f"Bearer {API_KEY}"
    assert result.structured_content["outcome"] == "continued"
    assert result.structured_content["run"]["output"] == "Echo: and again"
    assert text_of(result).startswith(f"Run {run_id} on server {SERVER_ID}: completed (HTTP 200, continued).")


async def test_without_a_key_the_server_starts_lists_tools_and_names_the_variable(sandbox: RunningSandbox) -> None:
    async with Client(_params(python_env(COMPUTER_AGENTS_BASE_URL=sandbox.base_url))) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("continue_agent_run", {"serverId": "s", "resourceRunId": "r", "content": "x"})

    assert len(tools) == 5
    assert error_text(result, "continue_agent_run") == (
        "No Computer Agents API key is configured. Ask the user to set COMPUTER_AGENTS_API_KEY in this MCP server's "
        "environment (their client's MCP server config), then restart the server. "
        "To try the tools without an account, start the server with `acp-mcp --sandbox`."
    )
    assert api_requests(sandbox) == []


async def test_sandbox_flag_serves_every_tool_with_no_account() -> None:
    async with Client(_params(python_env(), "--sandbox", "--sandbox-pace", "0.01")) as client:
        started = await client.call_tool("start_agent_run", {"content": "no account needed"})
        run_id = started.structured_content["run"]["id"]
        continued = await client.call_tool("continue_agent_run", {"resourceRunId": run_id, "content": "more"})
        listed = await client.call_tool("list_agent_runs", {})

    assert not started.is_error, text_of(started)
    assert continued.structured_content["run"]["output"] == "Echo: more"
    assert continued.structured_content["serverId"] == "srv_sandbox"
    assert listed.structured_content["count"] == 1


def _exchange(
    env: dict[str, str], messages: Sequence[dict[str, Any] | str], expected_ids: set[int | str | None]
) -> tuple[list[str], str]:
    """Write `messages` (a string as the raw line), keep stdin open until every expected response arrives;
    return stdout lines and stderr."""
    with subprocess.Popen(
        [sys.executable, "-m", "acp_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as process:
        assert process.stdin and process.stdout and process.stderr
        timer = threading.Timer(30, process.kill)
        timer.start()
        stderr_lines: list[str] = []
        stderr = process.stderr
        drain = threading.Thread(target=lambda: stderr_lines.extend(stderr), daemon=True)
        drain.start()
        for message in messages:
            process.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        process.stdin.flush()
        lines, seen = [], set()
        for line in process.stdout:
            lines.append(line)
            with contextlib.suppress(ValueError):
                seen.add(json.loads(line).get("id"))
            if expected_ids <= seen:
                break
        process.stdin.close()
        exit_code = process.wait(timeout=10)
        timer.cancel()
        drain.join(timeout=5)
    assert exit_code == 0, "".join(stderr_lines)
    return lines, "".join(stderr_lines)


def _call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def test_stdout_carries_only_json_rpc_and_logs_go_to_stderr_without_the_key(sandbox: RunningSandbox) -> None:
    messages = [
        *HANDSHAKE,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        _call(3, "start_agent_run", {"serverId": SERVER_ID, "content": "purity", "mode": "sync"}),
        _call(4, "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": "run_missing", "content": "x"}),
        _call(5, "start_agent_run", {"serverId": SERVER_ID, "content": "x", "metadata": {"score": float("nan")}}),
    ]
    lines, stderr = _exchange(_sandbox_env(sandbox, ACP_MCP_LOG_LEVEL="DEBUG"), messages, {1, 2, 3, 4, 5})

    parsed = [json.loads(line) for line in lines]
    assert all(message["jsonrpc"] == "2.0" for message in parsed)
    responses = {message["id"]: message for message in parsed if "id" in message}
    assert responses[3]["result"]["isError"] is False
    assert responses[4]["result"]["isError"] is True
    assert responses[5]["result"]["isError"] is True  # NaN reaches a Python server over stdio; it is refused
    assert "NaN and Infinity are not allowed" in responses[5]["result"]["content"][0]["text"]
    assert "HTTP Request: POST" in stderr, "debug logs reach stderr"
    assert API_KEY not in stderr and API_KEY not in "".join(lines)
    assert "Traceback" not in stderr


def test_every_line_gets_an_answer_even_one_the_server_cannot_parse(sandbox: RunningSandbox) -> None:
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"a": deep}
    messages: list[dict[str, Any] | str] = [
        *HANDSHAKE,
        _call(2, "start_agent_run", {"serverId": SERVER_ID, "content": "x", "metadata": deep}),
        "{not json",
        '{"jsonrpc": "2.0", "id": "q", "method": 5}',
        _call(3, "list_agent_runs", {"serverId": SERVER_ID}),
    ]
    lines, stderr = _exchange(_sandbox_env(sandbox), messages, {1, 2, None, "q", 3})

    responses = {message.get("id"): message for message in map(json.loads, lines)}
    assert responses[2]["error"] == {
        "code": -32600,
        "message": "Invalid request: the message is nested too deeply to read; send arguments nested less deeply.",
    }
    assert responses[None]["error"] == {"code": -32700, "message": "Parse error: the line is not valid JSON."}
    assert responses["q"]["error"]["code"] == -32600
    assert responses[3]["result"]["isError"] is False, "the server goes on serving"
    assert api_requests(sandbox, method="POST") == []
    assert "Traceback" not in stderr


def test_stdin_eof_ends_the_server_promptly_and_quietly(sandbox: RunningSandbox) -> None:
    result = _run(_sandbox_env(sandbox))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_help_lists_every_setting_and_no_key_flag() -> None:
    result = _run(python_env(), "--help")
    assert result.returncode == 0
    for text in (
        "{serve,demo,sandbox}",
        "--base-url",
        "COMPUTER_AGENTS_BASE_URL",
        "--sandbox",
        *(name for _, setting in settings_fields() for name in (setting.flag, setting.env)),
    ):
        assert text in result.stdout, text
    assert not re.search(r"--(api-)?key(?![-\w])", result.stdout), "the key is never a flag (--keys-file is a file)"


def test_a_bad_setting_stops_start_up_with_the_variable_named() -> None:
    result = _run(python_env(ACP_MCP_WAIT_SECONDS="forever"))
    assert result.returncode == 2
    assert result.stderr.startswith("acp-mcp: ACP_MCP_WAIT_SECONDS:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_stdio_server_promptly_and_quietly_with_a_call_in_flight(
    sandbox: RunningSandbox, signum: int
) -> None:
    messages = [
        *HANDSHAKE,
        _call(2, "start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 60}),
    ]
    with subprocess.Popen(
        [sys.executable, "-m", "acp_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_sandbox_env(sandbox),
        text=True,
    ) as process:
        assert process.stdin and process.stdout
        for message in messages:
            process.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        deadline = time.monotonic() + 10
        while not api_requests(sandbox, method="GET"):  # the call is waiting on the run
            assert time.monotonic() < deadline
            time.sleep(0.02)
        began = time.monotonic()
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=10)
        elapsed = time.monotonic() - began

    assert elapsed < 3
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in stdout.splitlines())


def test_the_standalone_sandbox_prints_its_url_and_key_serves_runs_and_stops_on_sigterm() -> None:
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "acp_mcp", "sandbox", "--port", str(port), "--pace", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=python_env(),
        text=True,
    ) as process:
        assert process.stdout
        base_line, key_line = process.stdout.readline().strip(), process.stdout.readline().strip()
        assert base_line == f"COMPUTER_AGENTS_BASE_URL=http://127.0.0.1:{port}/v1"
        key = key_line.removeprefix("COMPUTER_AGENTS_API_KEY=")
        assert key_line.startswith("COMPUTER_AGENTS_API_KEY=sandbox-") and len(key) > 20
        response = httpx2.post(
            f"http://127.0.0.1:{port}/v1/servers/s1/runtime/agent/runs",
            json={"content": "standalone", "mode": "sync"},
            headers={"Authorization": f"Bearer {key}"},
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert response.status_code == 201
    assert response.json()["run"]["output"] == "Echo: standalone"
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_the_demo_starts_and_continues_a_run_on_the_sandbox_and_prints_what_the_client_got() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acp_mcp", "demo", "--pace", "0.01"],
        capture_output=True,
        text=True,
        timeout=60,
        env=python_env(),
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stderr
    tools, run_id, text, structured = (part.split("\n", 1)[1] for part in result.stdout.split("\n== ")[1:])
    assert tools.strip() == "start_agent_run, continue_agent_run, get_agent_run, list_agent_runs, cancel_agent_run"
    assert text.startswith(f"Run {run_id.strip()} ")
    continued = json.loads(structured)
    assert (continued["run"]["id"], continued["outcome"], continued["run"]["status"]) == (
        run_id.strip(),
        "accepted",
        "completed",
    )
    assert continued["run"]["output"] == "Echo: Summarise what you just did."
    assert "Traceback" not in result.stderr
