"""Codex CLI, configured by the README's ``codex mcp add``, run headless by its ``codex exec`` line.

The stub model is a custom model provider (Responses API, ``formats/openai_responses.py``) in the
scratch ``CODEX_HOME``'s ``config.toml``, written before ``codex mcp add`` adds the server to it.
Codex offers an MCP server's tools in a ``namespace`` tool (``mcp__computer_agents``), calls them
with ``name`` + ``namespace``, and hands the model ``Wall time: ...\\nOutput:\\n`` followed by the
structured content as JSON (or, for a tool error, the text blocks). ``codex mcp list`` reads the
config only; it does not start the server. Without the block's ``required=true`` the first model
request goes out before the server has listed its tools; without ``default_tools_approval_mode``
every call fails "requires approval" under ``codex exec``.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from acp_mcp.limits import MAX_WAIT_SECONDS
from acp_mcp.sandbox import RunningSandbox

from .._tooling import readme_blocks
from ..conftest import API_KEY, SERVER_ID
from .flow import FLOW, TOOLS, Final, ToolCall, assert_flow_reached_model, client_name
from .harness import Done, acp_mcp_command, node_clients, run_client, sealed_env, server_env
from .stub_model import RunningStub

SERVER = "computer-agents"
NAMESPACE = "mcp__computer_agents"
KEY_VARIABLE = "STUB_MODEL_API_KEY"
STUB_KEY = "stub-key-not-secret"
PROMPT = "Run the compatibility flow."


def codex_config(stub: RunningStub) -> str:
    """``config.toml`` before ``codex mcp add``: the stub as the model, no prompts, nothing sent off the machine.

    ``features.plugins = false`` stops the curated-plugin sync (git and HTTPS to GitHub) at start.
    """
    return f"""\
model = "stub-model"
model_provider = "stub"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[otel]
exporter = "none"

[features]
plugins = false

[model_providers.stub]
name = "stub"
base_url = "{stub.url}/v1"
wire_api = "responses"
env_key = "{KEY_VARIABLE}"
request_max_retries = 0
stream_max_retries = 0
"""


def block_commands() -> tuple[list[str], list[str]]:
    """The README block's ``codex mcp add`` and ``codex exec`` lines, as words."""
    lines = [shlex.split(line) for line in readme_blocks()["codex"].splitlines() if line.startswith("codex ")]
    (add,) = [words for words in lines if words[:3] == ["codex", "mcp", "add"]]
    (run,) = [words for words in lines if words[:2] == ["codex", "exec"]]
    return add, run


def mcp_add_command(codex: Path, sandbox: RunningSandbox) -> list[str]:
    """The block's ``codex mcp add``: placeholders filled in, the sandbox's base URL added as one more ``--env``."""
    add, _ = block_commands()
    words = [acp_mcp_command() if word == "acp-mcp" else word.replace("tb_...", API_KEY) for word in add]
    words = [word.replace("srv_...", SERVER_ID) for word in words]
    dash = words.index("--")
    base_url = f"COMPUTER_AGENTS_BASE_URL={server_env(sandbox)['COMPUTER_AGENTS_BASE_URL']}"
    return [str(codex), *words[1:dash], "--env", base_url, *words[dash:]]


def exec_command(codex: Path) -> list[str]:
    """The block's ``codex exec`` with its options, our prompt, and what a scratch directory needs."""
    _, run = block_commands()
    options = run[2:-1]
    assert not run[-1].startswith("-"), "the block's exec line ends with the prompt"
    return [str(codex), "exec", *options, "--strict-config", "--skip-git-repo-check", "--ephemeral", "--json", PROMPT]


def configured_codex(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    """Codex with the stub as its model and the server added by the README's ``codex mcp add``, seen by ``mcp list``."""
    codex = node_clients() / "codex"
    env = sealed_env(home, CODEX_HOME=str(home / ".codex"), STUB_MODEL_API_KEY=STUB_KEY)
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(codex_config(stub))
    added = run_client(mcp_add_command(codex, sandbox), env=env, cwd=tmp_path)
    assert added.returncode == 0, added
    listed = run_client([str(codex), "mcp", "list", "--json"], env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed
    (entry,) = json.loads(listed.stdout)
    assert entry["name"] == SERVER and entry["enabled"] is True, entry
    assert entry["transport"]["command"] == acp_mcp_command() and entry["transport"]["args"] == [], entry
    assert entry["transport"]["env"] == server_env(sandbox), entry
    return codex, env


def run_exec(codex: Path, env: dict[str, str], tmp_path: Path) -> tuple[Done, list[dict[str, Any]]]:
    """``codex exec`` in an empty directory: the process, and its JSON events."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    done = run_client(exec_command(codex), env=env, cwd=workdir, timeout=240)
    assert done.returncode == 0, done
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert events[-1]["type"] == "turn.completed", done
    return done, events


def mcp_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished MCP tool calls among ``codex exec --json`` events."""
    items = [event["item"] for event in events if event["type"] == "item.completed"]
    return [item for item in items if item["type"] == "mcp_tool_call"]


def test_codex_block_lets_a_tool_call_outlast_the_longest_wait() -> None:
    """Codex cancels a call after ``tool_timeout_sec`` (300 s by default), progress notifications or not."""
    _, run = block_commands()
    options = dict(value.split("=", 1) for flag, value in itertools.pairwise(run) if flag == "-c")
    assert float(options[f"mcp_servers.{SERVER}.tool_timeout_sec"]) > MAX_WAIT_SECONDS + 5, options


def test_codex_exec_runs_the_flow_through_the_readme_config_and_the_model_gets_each_result(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path
) -> None:
    codex, env = configured_codex(stub, sandbox, home, tmp_path)

    done, events = run_exec(codex, env, tmp_path)

    assert_flow_reached_model(stub.model.seen)
    calls = mcp_items(events)
    assert [(item["server"], item["tool"]) for item in calls] == [(SERVER, step.tool) for step in FLOW], done
    assert [item["status"] for item in calls] == ["completed"] * 4 + ["failed", "completed"], done
    requests = stub.model.requests
    assert {(r.method, r.path) for r in requests} == {("POST", "/v1/responses")}, "nothing but the Responses API"
    for request in requests:
        assert request.headers["authorization"] == f"Bearer {STUB_KEY}"
        assert request.body["stream"] is True and request.body["store"] is False
        (namespace,) = [tool for tool in request.body["tools"] if tool.get("name") == NAMESPACE]
        assert {tool["name"] for tool in namespace["tools"]} == TOOLS | {"list_agent_runs"}
    outputs = [item["output"] for item in requests[-1].body["input"] if item["type"] == "function_call_output"]
    assert [isinstance(output, str) for output in outputs] == [True] * 4 + [False, True], "a tool error as parts"
    start = stub.model.seen[0]
    assert start.startswith("Wall time: ") and "\nOutput:\n{" in start, "a result as its structured content JSON"
    assert '"outcome":"started"' in start and "Run run_" not in start, "not as its text block"


def test_codex_model_sending_max_events_over_the_limit_is_told_the_field_and_the_limit(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codex strips ``maximum`` from the schema it shows the model, so a model may well send ``maxEvents: 100``."""

    def decide(offered: list[str], results: list[str]) -> ToolCall | Final:
        name = client_name("get_agent_run", offered)
        if name is None:
            return Final("ok")
        stub.model.seen = list(results)
        if results:
            return Final("done")
        return ToolCall("call_1", name, {"resourceRunId": "run_000001", "maxEvents": 100})

    monkeypatch.setattr(stub.model, "decide", decide)
    codex, env = configured_codex(stub, sandbox, home, tmp_path)

    run_exec(codex, env, tmp_path)

    namespace = next(tool for tool in stub.model.requests[0].body["tools"] if tool.get("name") == NAMESPACE)
    get_run = next(tool for tool in namespace["tools"] if tool["name"] == "get_agent_run")
    assert "maximum" not in get_run["parameters"]["properties"]["maxEvents"], "Codex shows the model no limit"
    (seen,) = stub.model.seen
    assert re.search(r"\bmaxEvents\b[^.\n]*\bat most 40\b", seen), seen
    for leak in ("validation error", "pydantic", "less_than_equal", "Input should be"):
        assert leak not in seen, seen
    assert not sandbox.state.requests, "nothing is sent to the API for invalid arguments"
