"""Gemini CLI, configured by the README's ``gemini mcp add``, driven headless (``gemini -p``) by the stub model.

Gemini CLI talks to the model with the Gemini API (``formats/gemini.py``) at ``GOOGLE_GEMINI_BASE_URL``
(API-key auth, ``security.auth.selectedType: gemini-api-key``). The scratch HOME's
``~/.gemini/settings.json`` turns telemetry, usage statistics and update checks off, and
``~/.gemini/trustedFolders.json`` trusts the working folder (in an untrusted folder stdio servers are not
started). ``--yolo`` lets the MCP tools run without asking.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from acp_mcp.sandbox import RunningSandbox

from .._tooling import readme_blocks
from ..conftest import API_KEY, SERVER_ID
from .flow import FINAL_TEXT, FLOW, assert_flow_reached_model
from .harness import acp_mcp_command, node_clients, run_client, sealed_env, server_env
from .stub_model import RunningStub

SERVER = "computer-agents"
MODEL = "gemini-2.5-flash"
STUB_KEY = "stub-key"
SETTINGS: dict[str, Any] = {
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "security": {"auth": {"selectedType": "gemini-api-key"}},
}


def mcp_add_command(gemini: Path, sandbox: RunningSandbox) -> list[str]:
    """The README block's ``gemini mcp add``, placeholders filled in and the sandbox's base URL added."""
    (line,) = [line for line in readme_blocks()["gemini-cli"].splitlines() if line.startswith("gemini mcp add")]
    words = [
        word.replace("tb_...", API_KEY).replace("srv_...", SERVER_ID) if word != "acp-mcp" else acp_mcp_command()
        for word in shlex.split(line)
    ]
    base_url = f"COMPUTER_AGENTS_BASE_URL={server_env(sandbox)['COMPUTER_AGENTS_BASE_URL']}"
    return [str(gemini), *words[1:], "-e", base_url]


def gemini_home(home: Path, workdir: Path) -> None:
    """``~/.gemini``: quiet settings, API-key auth, and the working folder trusted."""
    folder = home / ".gemini"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps(SETTINGS))
    (folder / "trustedFolders.json").write_text(json.dumps({str(workdir): "TRUST_FOLDER"}))


def test_gemini_cli_performs_the_flow_and_the_model_receives_every_result(
    stub: RunningStub, sandbox: RunningSandbox, home: Path, tmp_path: Path
) -> None:
    gemini = node_clients() / "gemini"
    env = sealed_env(home, node24=True, GOOGLE_GEMINI_BASE_URL=stub.url, GEMINI_API_KEY=STUB_KEY)
    workdir = tmp_path / "work"
    workdir.mkdir()
    gemini_home(home, workdir)

    added = run_client(mcp_add_command(gemini, sandbox), env=env, cwd=workdir)
    assert added.returncode == 0, added
    entry = json.loads((home / ".gemini" / "settings.json").read_text())["mcpServers"][SERVER]
    assert entry["command"] == acp_mcp_command() and entry["args"] == [], entry
    assert entry["env"] == server_env(sandbox), entry
    listed = run_client([str(gemini), "mcp", "list"], env=env, cwd=workdir)
    assert listed.returncode == 0, listed
    assert re.search(rf"✓ {SERVER}: .* - Connected", listed.stdout + listed.stderr), listed

    done = run_client([str(gemini), "--yolo", "-m", MODEL, "-o", "json", "-p", "Run the flow."], env=env, cwd=workdir)

    assert done.returncode == 0, done
    assert json.loads(done.stdout)["response"] == FINAL_TEXT, done
    assert_flow_reached_model(stub.model.seen)
    assert [call.name for call in stub.model.calls] == [f"mcp_{SERVER}_{step.tool}" for step in FLOW]
    assert {(r.method, r.path, r.query.get("alt", [""])[0]) for r in stub.model.requests} == {
        ("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", "sse")
    }
    assert {r.headers.get("x-goog-api-key") for r in stub.model.requests} == {STUB_KEY}
    contents = stub.model.requests[-1].body["contents"]
    responses = [part["functionResponse"] for c in contents for part in c["parts"] if "functionResponse" in part]
    assert [r["id"] for r in responses] == [call.id for call in stub.model.calls], "each result answers its call"
    expected = [["error"] if step.name == "missing" else ["output"] for step in FLOW]
    assert [list(r["response"]) for r in responses] == expected, "text only; a tool error as the error's text"
