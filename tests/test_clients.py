"""Real MCP clients other than the Python SDK: the MCP Inspector CLI (the conformance suite: test_conformance.py).

It is a Node tool pinned in package.json (``npm ci``). The Inspector drives the server over stdio
(a new server process per call, all pointed at the session's sandbox so runs persist between
calls) and over streamable HTTP, through a full start -> continue -> get -> cancel flow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acp_mcp.sandbox import RunningSandbox

from ._tooling import ROOT, HttpServer, http_server, node_env, node_tool, run_json
from .conftest import SERVER_ID, sandbox_env

pytestmark = pytest.mark.external

TOOL_NAMES = ["start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"]
CALLER_TOKEN = "inspector-caller-token-7d1e"


@pytest.fixture(scope="module")
def shared_http(running_sandbox: RunningSandbox) -> Iterator[HttpServer]:
    with http_server(
        **sandbox_env(running_sandbox, ACP_SERVER_ID=SERVER_ID, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN)
    ) as server:
        yield server


class Inspector:
    """``mcp-inspector --cli`` against one server, stdio or HTTP; each call is a separate Inspector run."""

    def __init__(self, target: list[str], home: Path, era: str = "legacy") -> None:
        self.command = [str(node_tool("mcp-inspector")), "--cli", "--protocol-era", era]
        self.target = target
        self.env = node_env(home)

    def run(self, *method: str) -> tuple[int, object, str]:
        # stdio targets end with `--` and the server's command, so the method options go first
        command = [*self.command, "--format", "json", "-q", *method, *self.target]
        return run_json(command, env=self.env)

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        args = json.dumps(arguments)
        code, out, err = self.run("--method", "tools/call", "--tool-name", tool, "--tool-args-json", args)
        assert code == 0, f"exit {code}: {err}"
        assert isinstance(out, dict), out
        result: dict[str, Any] = out["result"]
        assert result["isError"] is False
        content: dict[str, Any] = result["structuredContent"]
        return content


def stdio_inspector(sandbox: RunningSandbox, home: Path, era: str = "legacy") -> Inspector:
    env = sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID, PYTHONPATH=str(ROOT))
    options = [item for name, value in env.items() for item in ("-e", f"{name}={value}")]
    return Inspector([*options, "--cwd", str(ROOT), "--", sys.executable, "-m", "acp_mcp"], home, era)


def http_inspector(server: HttpServer, home: Path, era: str = "legacy") -> Inspector:
    target = ["--server-url", server.url, "--transport", "http", "--header", f"Authorization: Bearer {CALLER_TOKEN}"]
    return Inspector(target, home, era)


@pytest.fixture(
    params=[("stdio", "legacy"), ("stdio", "modern"), ("streamable-http", "legacy"), ("streamable-http", "modern")],
    ids=lambda p: "-".join(p),
)
def inspector(request: pytest.FixtureRequest, sandbox: RunningSandbox, tmp_path: Path) -> Inspector:
    """The Inspector CLI on each transport, in each protocol era (legacy: 2025-11-25, modern: 2026-07-28)."""
    transport, era = request.param
    if transport == "stdio":
        return stdio_inspector(sandbox, tmp_path, era)
    return http_inspector(request.getfixturevalue("shared_http"), tmp_path, era)


def test_inspector_lists_the_tools_and_strict_finds_no_portability_problem(inspector: Inspector) -> None:
    code, out, err = inspector.run("--method", "tools/list", "--strict")
    assert code == 0, f"exit {code}: {err}"
    assert isinstance(out, dict), out
    assert [tool["name"] for tool in out["result"]["tools"]] == TOOL_NAMES


def test_inspector_runs_start_continue_get_and_cancel(inspector: Inspector) -> None:
    started = inspector.call("start_agent_run", {"content": "hello from the inspector", "mode": "sync"})
    run_id = started["run"]["id"]
    assert (started["outcome"], started["run"]["output"]) == ("started", "Echo: hello from the inspector")

    continued = inspector.call("continue_agent_run", {"resourceRunId": run_id, "content": "and more", "mode": "sync"})
    assert (continued["outcome"], continued["run"]["id"]) == ("continued", run_id)
    assert continued["run"]["output"] == "Echo: and more"

    fetched = inspector.call("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 0})
    assert (fetched["outcome"], fetched["run"]["status"], fetched["terminal"]) == ("fetched", "completed", True)
    assert [event["content"] for event in fetched["events"] if event["role"] == "user"] == [
        "hello from the inspector",
        "and more",
    ]

    hanging = inspector.call("start_agent_run", {"content": "/hang", "waitSeconds": 0})
    assert hanging["terminal"] is False
    cancelled = inspector.call("cancel_agent_run", {"resourceRunId": hanging["run"]["id"]})
    assert (cancelled["outcome"], cancelled["run"]["status"]) == ("cancelled", "cancelled")


def test_inspector_exits_5_on_a_tool_error(sandbox: RunningSandbox, tmp_path: Path) -> None:
    code, _, err = stdio_inspector(sandbox, tmp_path).run(
        "--method", "tools/call", "--tool-name", "get_agent_run", "--tool-args-json", '{"resourceRunId": "run_nope"}'
    )
    assert code == 5, err
    assert "tool_is_error" in err
