"""GitHub Copilot CLI, configured by the README's ``~/.copilot/mcp-config.json``, driven headless (``copilot -p``).

Copilot CLI talks to a custom model provider ("BYOK") with Chat Completions (``formats/openai_chat.py``,
streamed) at ``COPILOT_PROVIDER_BASE_URL`` with ``COPILOT_PROVIDER_API_KEY`` and ``COPILOT_MODEL``; no
GitHub login is needed. ``COPILOT_OFFLINE=true`` turns GitHub authentication, telemetry, web tools, the
GitHub MCP server and auto-update off. It speaks the 2026-07-28 protocol revision to the server.
``--allow-tool computer-agents`` lets the server's tools run without asking; ``--output-format json``
prints the session's events as JSON lines, including the server's connection status.

Its single-file binary unpacks itself (about 240 MB) on first run; ``COPILOT_PKG_CACHE_HOME`` keeps that
in ``.compat/`` instead of in every scratch HOME.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acp_mcp.sandbox import RunningSandbox

from .._tooling import readme_blocks
from ..conftest import API_KEY, SERVER_ID
from .flow import FINAL_TEXT, FLOW, assert_flow_reached_model
from .formats.openai_chat import assert_streamed_turns
from .harness import CACHE, Done, acp_mcp_command, node_clients, run_client, sealed_env, server_env
from .stub_model import RunningStub

SERVER = "computer-agents"
MODEL = "stub-model"
MODEL_KEY = "sk-stub"
SETTINGS = {
    "COPILOT_OFFLINE": "true",
    "COPILOT_AUTO_UPDATE": "false",
    "COPILOT_PROVIDER_TYPE": "openai",
    "COPILOT_PROVIDER_API_KEY": MODEL_KEY,
    "COPILOT_MODEL": MODEL,
    "COPILOT_PKG_CACHE_HOME": str(CACHE / "copilot"),
}
QUIET_FLAGS = ["--no-auto-update", "--disable-client-telemetry", "--disable-builtin-mcps", "--no-remote"]


def readme_config() -> dict[str, Any]:
    """The README block's ``mcp-config.json``, as written there."""
    config: dict[str, Any] = json.loads(readme_blocks()["copilot-cli"])
    return config


def filled_config(sandbox: RunningSandbox) -> dict[str, Any]:
    """The README block with its placeholders filled in and the sandbox's base URL added to ``env``."""
    config = readme_config()
    server = config["mcpServers"][SERVER]
    assert server["command"] == "acp-mcp", server
    server["command"] = acp_mcp_command()
    server["env"] = {
        name: value.replace("tb_...", API_KEY).replace("srv_...", SERVER_ID) for name, value in server["env"].items()
    }
    server["env"]["COMPUTER_AGENTS_BASE_URL"] = server_env(sandbox)["COMPUTER_AGENTS_BASE_URL"]
    return config


def mcp_add_command(copilot: Path) -> list[str]:
    """``copilot mcp add`` with the README block's server, placeholders kept."""
    server = readme_config()["mcpServers"][SERVER]
    env = [word for name, value in server["env"].items() for word in ("--env", f"{name}={value}")]
    return [str(copilot), "mcp", "add", SERVER, *env, "--", server["command"], *server["args"]]


def copilot_env(home: Path, stub: RunningStub) -> dict[str, str]:
    """Sealed, Node 24 first, the stub as the model provider, offline."""
    return sealed_env(home, node24=True, COPILOT_PROVIDER_BASE_URL=f"{stub.url}/v1", **SETTINGS)


def events(done: Done) -> list[dict[str, Any]]:
    """The JSON lines ``--output-format json`` printed."""
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def report(done: Done, home: Path) -> str:
    """The client's output and the end of its log, for a failure message."""
    logs = sorted((home / ".copilot" / "logs").glob("*.log"))
    log = logs[-1].read_text(errors="replace")[-8000:] if logs else "(no log)"
    return f"{done}\n--- log\n{log}"


def test_copilot_mcp_add_writes_exactly_the_readme_config(home: Path, tmp_path: Path) -> None:
    copilot = node_clients() / "copilot"
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = sealed_env(home, node24=True, **SETTINGS)

    added = run_client(mcp_add_command(copilot), env=env, cwd=workdir)

    assert added.returncode == 0, added
    assert json.loads((home / ".copilot" / "mcp-config.json").read_text()) == readme_config()


def test_copilot_cli_performs_the_flow_and_the_model_receives_every_result(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path
) -> None:
    copilot = node_clients() / "copilot"
    env = copilot_env(home, stub)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (home / ".copilot").mkdir()
    (home / ".copilot" / "mcp-config.json").write_text(json.dumps(filled_config(sandbox)))

    prompt = ["-p", "Run the flow.", "--allow-tool", SERVER, "--output-format", "json", *QUIET_FLAGS]
    done = run_client([str(copilot), *prompt], env=env, cwd=workdir, timeout=180)

    assert done.returncode == 0, report(done, home)
    seen = events(done)
    status = [e["data"] for e in seen if e["type"] == "session.mcp_server_status_changed"]
    assert {"serverName": SERVER, "status": "connected", "configSource": "user"} in status, report(done, home)
    final = [e["data"]["content"] for e in seen if e["type"] == "assistant.message" and e["data"]["content"]]
    assert final == [FINAL_TEXT], report(done, home)
    completed = [e["data"] for e in seen if e["type"] == "tool.execution_complete"]
    assert [c["success"] for c in completed] == [step.name != "missing" for step in FLOW], report(done, home)

    assert_flow_reached_model(stub.model.seen)
    assert [call.name for call in stub.model.calls] == [f"{SERVER}-{step.tool}" for step in FLOW]
    assert_streamed_turns(stub.model, MODEL, MODEL_KEY)
    # the model reads the text block, then the structured content as JSON; an error is prefixed with the server
    for step, result in zip(FLOW, stub.model.seen, strict=True):
        if step.name == "missing":
            assert result.startswith(f"MCP server '{SERVER}': "), result
        else:
            assert json.loads(result.rsplit("\n\n", 1)[1])["serverId"] == SERVER_ID, result
