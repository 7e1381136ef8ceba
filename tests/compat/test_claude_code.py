"""Claude Code, configured by the README's ``claude mcp add``, driven headless (``claude -p``) by the stub model.

Claude Code talks to the model with the Anthropic Messages API (``formats/anthropic.py``, always
streamed) at ``ANTHROPIC_BASE_URL`` with ``ANTHROPIC_API_KEY``; its own variables turn telemetry,
error reporting, auto-update and all other non-essential traffic off. Tool search is turned off so
the server's tools are offered to the model directly (not behind ``ToolSearch``), and MCP connections
block the first turn so the tools are there when the model is first asked. ``--allowedTools
mcp__computer-agents`` lets the server's tools run without asking.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from acp_mcp.sandbox import RunningSandbox

from .._tooling import readme_blocks
from ..conftest import API_KEY, SERVER_ID
from .flow import FINAL_TEXT, FLOW, assert_flow_reached_model
from .harness import Done, acp_mcp_command, node_clients, run_client, sealed_env, server_env
from .stub_model import Request, RunningStub

SERVER = "computer-agents"
MODEL = "claude-sonnet-4-5"
MODEL_KEY = "sk-ant-stub"
SETTINGS = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_COST_WARNINGS": "1",
    "ENABLE_TOOL_SEARCH": "false",
    "MCP_CONNECTION_NONBLOCKING": "false",
}


def mcp_add_command(claude: Path, sandbox: RunningSandbox) -> list[str]:
    """The README block's ``claude mcp add``, placeholders filled in and the sandbox's base URL added."""
    (line,) = [line for line in readme_blocks()["claude-code"].splitlines() if line.startswith("claude mcp add")]
    words = shlex.split(line)
    split = words.index("--")
    options = [word.replace("tb_...", API_KEY).replace("srv_...", SERVER_ID) for word in words[1:split]]
    server = [acp_mcp_command() if word == "acp-mcp" else word for word in words[split:]]
    base_url = f"COMPUTER_AGENTS_BASE_URL={server_env(sandbox)['COMPUTER_AGENTS_BASE_URL']}"
    return [str(claude), *options, "--env", base_url, *server]


def claude_env(home: Path, stub: RunningStub) -> dict[str, str]:
    """Sealed, Node 24 first, the stub as the Anthropic API, everything non-essential off."""
    return sealed_env(home, node24=True, ANTHROPIC_BASE_URL=stub.url, ANTHROPIC_API_KEY=MODEL_KEY, **SETTINGS)


def tool_results(request: Request) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of a Messages request, in order."""
    return [
        block
        for message in (request.body or {}).get("messages") or []
        if message.get("role") == "user" and isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def report(done: Done, debug: Path) -> str:
    """The client's output and the end of its debug log, for a failure message."""
    log = debug.read_text(errors="replace")[-8000:] if debug.exists() else "(no debug log)"
    return f"{done}\n--- debug log\n{log}"


def test_claude_code_performs_the_flow_and_the_model_receives_every_result(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path
) -> None:
    claude = node_clients() / "claude"
    env = claude_env(home, stub)
    workdir = tmp_path / "work"
    workdir.mkdir()

    added = run_client(mcp_add_command(claude, sandbox), env=env, cwd=workdir)
    assert added.returncode == 0, added
    config = json.loads((home / ".claude.json").read_text())["mcpServers"][SERVER]
    assert config == {"type": "stdio", "command": acp_mcp_command(), "args": [], "env": server_env(sandbox)}
    listed = run_client([str(claude), "mcp", "list"], env=env, cwd=workdir)
    assert listed.returncode == 0, listed
    assert any(
        line.startswith(f"{SERVER}: ") and line.endswith("✔ Connected") for line in listed.stdout.splitlines()
    ), listed

    debug = tmp_path / "claude-debug.log"
    prompt = ["-p", "Run the flow.", "--model", MODEL, "--output-format", "json", "--debug-file", str(debug)]
    done = run_client([str(claude), *prompt, "--allowedTools", f"mcp__{SERVER}"], env=env, cwd=workdir, timeout=180)
    assert done.returncode == 0, report(done, debug)
    outcome = json.loads(done.stdout)
    assert outcome["is_error"] is False and outcome["result"] == FINAL_TEXT, report(done, debug)

    assert_flow_reached_model(stub.model.seen)
    assert [call.name for call in stub.model.calls] == [f"mcp__{SERVER}__{step.tool}" for step in FLOW]
    turns = [request for request in stub.model.requests if request.path == "/v1/messages"]
    assert all(turn.body["stream"] is True and turn.headers.get("x-api-key") == MODEL_KEY for turn in turns)
    blocks = tool_results(max(turns, key=lambda turn: len(tool_results(turn))))
    assert [block["tool_use_id"] for block in blocks] == [f"toolu_{call.id}" for call in stub.model.calls]
    assert [bool(block.get("is_error")) for block in blocks] == [step.name == "missing" for step in FLOW], blocks
