"""opencode, configured by the README's ``opencode.json``, driven headless (``opencode run``) by the stub model.

The README block is the project's ``opencode.json``; the scratch HOME's global config adds the stub as
a custom provider (``@ai-sdk/openai-compatible``, bundled in the binary, so nothing is installed at run
time) that speaks Chat Completions (``formats/openai_chat.py``, streamed) at its ``baseURL``, and turns
sharing and auto-update off. The environment turns the model-list download, default plugins and LSP
downloads off. MCP tools run without asking by default; ``--format json`` prints the session's events as
JSON lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from acp_mcp.sandbox import RunningSandbox

from .._tooling import readme_blocks
from ..conftest import API_KEY, SERVER_ID
from .flow import FINAL_TEXT, FLOW, assert_flow_reached_model
from .formats.openai_chat import assert_streamed_turns
from .harness import Done, acp_mcp_command, node_clients, run_client, sealed_env, server_env
from .stub_model import RunningStub

SERVER = "computer-agents"
PROVIDER = "stub"
MODEL = "stub-model"
MODEL_KEY = "sk-stub"
SETTINGS = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def filled_config(sandbox: RunningSandbox) -> dict[str, Any]:
    """The README block with its placeholders filled in and the sandbox's base URL added to ``environment``."""
    config: dict[str, Any] = json.loads(readme_blocks()["opencode"])
    server = config["mcp"][SERVER]
    assert server["command"] == ["acp-mcp"], server
    server["command"] = [acp_mcp_command()]
    server["environment"] = {
        name: value.replace("tb_...", API_KEY).replace("srv_...", SERVER_ID)
        for name, value in server["environment"].items()
    }
    server["environment"]["COMPUTER_AGENTS_BASE_URL"] = server_env(sandbox)["COMPUTER_AGENTS_BASE_URL"]
    return config


def global_config(stub: RunningStub) -> dict[str, Any]:
    """``~/.config/opencode/opencode.json``: the stub as a provider, sharing and auto-update off."""
    options = {"baseURL": f"{stub.url}/v1", "apiKey": MODEL_KEY}
    provider = {"npm": "@ai-sdk/openai-compatible", "name": "Stub", "options": options, "models": {MODEL: {}}}
    return {"autoupdate": False, "share": "disabled", "provider": {PROVIDER: provider}}


def events(done: Done) -> list[dict[str, Any]]:
    """The JSON lines ``--format json`` printed."""
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def report(done: Done, home: Path) -> str:
    """The client's output and the end of its log, for a failure message."""
    logs = sorted((home / ".data" / "opencode" / "log").glob("*.log"))
    log = logs[-1].read_text(errors="replace")[-8000:] if logs else "(no log)"
    return f"{done}\n--- log\n{log}"


def test_opencode_performs_the_flow_and_the_model_receives_every_result(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path
) -> None:
    opencode = node_clients() / "opencode"
    env = sealed_env(home, node24=False, **SETTINGS)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "opencode.json").write_text(json.dumps(filled_config(sandbox)))
    (home / ".config" / "opencode").mkdir()
    (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps(global_config(stub)))

    listed = run_client([str(opencode), "mcp", "list"], env=env, cwd=workdir)
    assert listed.returncode == 0, report(listed, home)
    assert re.search(rf"✓ {SERVER}\s+connected", ANSI.sub("", listed.stdout)), report(listed, home)

    run = ["run", "--model", f"{PROVIDER}/{MODEL}", "--format", "json", "Run the flow."]
    done = run_client([str(opencode), *run], env=env, cwd=workdir, timeout=180)

    assert done.returncode == 0, report(done, home)
    parts = [e["part"] for e in events(done) if "part" in e]
    tools = [(p["tool"], p["state"]["status"]) for p in parts if p["type"] == "tool"]
    assert tools == [(f"{SERVER}_{s.tool}", "error" if s.name == "missing" else "completed") for s in FLOW], tools
    assert [p["text"] for p in parts if p["type"] == "text"] == [FINAL_TEXT], report(done, home)

    assert_flow_reached_model(stub.model.seen)
    assert [call.name for call in stub.model.calls] == [f"{SERVER}_{step.tool}" for step in FLOW]
    assert_streamed_turns(stub.model, MODEL, MODEL_KEY)
    # the model reads exactly the output the client reports: the text block, or for a tool error its text
    outputs = [p["state"].get("output", p["state"].get("error")) for p in parts if p["type"] == "tool"]
    assert stub.model.seen == outputs
