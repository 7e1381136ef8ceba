"""Real MCP clients other than the Python SDK: the MCP Inspector CLI (the conformance suite: test_conformance.py).

It is a Node tool pinned in package.json (``npm ci``). The Inspector drives the server over stdio
(a new server process per call, all pointed at the session's sandbox so runs persist between
calls) and over streamable HTTP, through a full start -> continue -> get -> cancel flow; and, over
streamable HTTP, a hosted acp-mcp that is an OAuth 2.1 resource server, with the caller's access
token passed as an ``Authorization: Bearer`` header (``--header``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acp_mcp.sandbox import RunningSandbox

from ._issuer import RunningIssuer, serve_issuer
from ._tooling import ROOT, HttpServer, free_port, http_server, node_env, node_tool, run_json
from .conftest import API_KEY, SERVER_ID, api_requests, fresh_server_id, marked, runs_path, sandbox_env
from .test_http_oauth import oauth_env

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


# The Inspector against an OAuth-protected acp-mcp: the caller's access token as a header

READ_TOOLS = ["get_agent_run", "list_agent_runs"]
AUTH_REQUIRED_WITHOUT_A_TTY = (
    "Interactive OAuth requires a TTY on stdin or stderr (or MCP_AUTO_OPEN_ENABLED=true). "
    "For CI/non-interactive runs use --stored-auth-only."
)
AUTH_REQUIRED_FROM_THE_401 = {
    # what the Inspector makes of the server's 401 when it may not start OAuth, in each protocol era
    "legacy": 'Error POSTing to endpoint: {"error": "invalid_token", "error_description": "Authentication required"}',
    "modern": "Version negotiation failed: the server requires authorization (HTTP 401)",
}


@pytest.fixture(scope="module")
def issuer() -> Iterator[RunningIssuer]:
    with serve_issuer() as running:
        yield running


@pytest.fixture(scope="module")
def oauth_http(
    issuer: RunningIssuer, running_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    """A `--stateless` OAuth resource server: tokens from `issuer` for its URL; the subject alice acts with the
    key the keys file maps her to (there is no shared key)."""
    keys = tmp_path_factory.mktemp("inspector-oauth") / "keys.json"
    keys.write_text(json.dumps({"subjects": {"alice": API_KEY}}))
    env = sandbox_env(running_sandbox, ACP_SERVER_ID=SERVER_ID, **oauth_env(issuer, free_port(), keys))
    del env["COMPUTER_AGENTS_API_KEY"]
    with http_server("--stateless", **env) as server:
        yield server


def bearer_inspector(server: HttpServer, home: Path, access: str | None, era: str = "legacy") -> Inspector:
    """The Inspector on `server` over streamable HTTP, sending ``Authorization: Bearer <access>`` if given."""
    header = ["--header", f"Authorization: Bearer {access}"] if access else []
    return Inspector(["--server-url", server.url, "--transport", "http", *header], home, era)


def listed_tools(inspector: Inspector) -> list[str]:
    code, out, err = inspector.run("--method", "tools/list")
    assert code == 0, f"exit {code}: {err}"
    assert isinstance(out, dict), out
    return [tool["name"] for tool in out["result"]["tools"]]


def assert_only_the_mapped_key_went_upstream(sandbox: RunningSandbox, access: str) -> None:
    requests = api_requests(sandbox)
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {API_KEY}"}
    assert all(access not in json.dumps([r.headers, r.query, r.body]) for r in requests)


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_with_a_full_bearer_header_lists_all_five_tools_and_starts_and_lists_runs_with_the_mapped_key(
    oauth_http: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox, tmp_path: Path, era: str
) -> None:
    access = issuer.mint(aud=oauth_http.url, sub="alice", scope="runs:read runs:write")
    inspector = bearer_inspector(oauth_http, tmp_path, access, era)
    server_id = fresh_server_id()

    tools = listed_tools(inspector)
    started = inspector.call(
        "start_agent_run", {"serverId": server_id, "content": "hello with a token", "mode": "sync"}
    )
    listed = inspector.call("list_agent_runs", {"serverId": server_id})

    assert tools == TOOL_NAMES
    assert (started["outcome"], started["run"]["status"]) == ("started", "completed")
    assert started["run"]["output"] == "Echo: hello with a token"
    assert [(run["id"], run["status"]) for run in listed["runs"]] == [(started["run"]["id"], "completed")]
    run_id = started["run"]["id"]
    # the modern Inspector declares the tasks extension: the start answers a task, whose tasks/get reads the run's
    # events once; the legacy one gets the finished run from the start's one POST
    task_get = [("GET", f"{runs_path(server_id)}/{run_id}/events", None)] if era == "modern" else []
    requests = api_requests(sandbox)
    assert [(r.method, r.path, r.body) for r in requests] == [
        ("POST", runs_path(server_id), marked({"content": "hello with a token", "mode": "sync"}, requests[0].body)),
        *task_get,
        ("GET", runs_path(server_id), None),
    ]
    assert_only_the_mapped_key_went_upstream(sandbox, access)


def test_inspector_with_a_read_only_bearer_header_lists_the_two_read_tools_lists_runs_and_cannot_start_one(
    oauth_http: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    access = issuer.mint(aud=oauth_http.url, sub="alice", scope="runs:read")
    inspector = bearer_inspector(oauth_http, tmp_path, access)
    server_id = fresh_server_id()

    tools = listed_tools(inspector)
    listed = inspector.call("list_agent_runs", {"serverId": server_id})
    code, out, err = inspector.run(
        "--method", "tools/call", "--tool-name", "start_agent_run", "--tool-args-json", '{"content": "hi"}'
    )

    assert tools == READ_TOOLS
    assert listed["runs"] == []
    assert (code, out) == (5, "")
    assert json.loads(err) == {
        "error": {"code": "tool_not_found", "message": "Tool 'start_agent_run' not found on server."}
    }
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", runs_path(server_id))]
    assert_only_the_mapped_key_went_upstream(sandbox, access)


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_without_a_bearer_header_exits_3_auth_required_and_nothing_reaches_the_api(
    oauth_http: HttpServer, sandbox: RunningSandbox, tmp_path: Path, era: str
) -> None:
    inspector = bearer_inspector(oauth_http, tmp_path, None, era)

    interactive = inspector.run("--method", "tools/list")
    stored_only = inspector.run("--method", "tools/list", "--stored-auth-only")

    # Without a TTY the Inspector will not start an interactive OAuth login; told to use stored auth only (there is
    # none), it reports the server's 401.
    assert interactive[:2] == stored_only[:2] == (3, "")
    assert json.loads(interactive[2]) == {"error": {"code": "auth_required", "message": AUTH_REQUIRED_WITHOUT_A_TTY}}
    assert json.loads(stored_only[2]) == {
        "error": {"code": "auth_required", "message": AUTH_REQUIRED_FROM_THE_401[era]}
    }
    assert api_requests(sandbox) == []
