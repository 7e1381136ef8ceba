"""The README's "Install in your client" blocks: each parsed, checked against what the server accepts, and
launched where possible, so none goes stale.

Each block is a fenced block right after an ``<!-- install:NAME -->`` marker. Client configs
(Claude Desktop, Cursor, VS Code, Windows, Claude Code) start the server from this checkout with the
block's args and env (placeholders swapped for the test key and server id, the base URL pointed at
the sandbox) and make a call that only works if the env names are right; the Inspector CLI block is
run as written with the repo's pinned Inspector. uvx and the HTTP and web-UI blocks are checked
statically (uv is not required by the tests; the web UI opens a browser).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mcp import Client, StdioServerParameters

from acp_mcp.config import (
    BASE_URL_VARIABLES,
    CONNECT_SECRET_VARIABLE,
    HTTP_TOKEN_VARIABLE,
    KEK_VARIABLE,
    KEY_VARIABLES,
    Settings,
    settings_fields,
)
from acp_mcp.sandbox import RunningSandbox

from ._tooling import ROOT, node_env, node_tool, python_env, readme_blocks, readme_section
from .conftest import API_KEY, SERVER_ID, text_of

README = ROOT / "README.md"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPT = next(iter(PYPROJECT["project"]["scripts"]))
STANDARD_VARIABLES = {"HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR"}
SERVER_VARIABLES = {
    *KEY_VARIABLES,
    *BASE_URL_VARIABLES,
    HTTP_TOKEN_VARIABLE,
    KEK_VARIABLE,
    CONNECT_SECRET_VARIABLE,
    *(s.env for _, s in settings_fields()),
}
PLACEHOLDERS = {"tb_...": API_KEY, "srv_...": SERVER_ID, "${input:computer-agents-key}": API_KEY}
BLOCKS = [
    "pip",
    "uvx",
    "claude-desktop",
    "bundle",
    "claude-code",
    "gemini-cli",
    "codex",
    "copilot-cli",
    "opencode",
    "pydantic-ai",
    "openai-agents",
    "langchain",
    "fast-agent",
    "cursor",
    "vscode",
    "inspector-ui",
    "inspector-cli",
    "windows",
    "http",
    "proxy",
]
LAUNCHABLE = ["claude-desktop", "claude-code", "cursor", "vscode", "windows"]


def section() -> str:
    return readme_section("Install in your client")


def blocks() -> dict[str, str]:
    return readme_blocks()


@cache
def help_flags() -> frozenset[str]:
    done = subprocess.run(
        [sys.executable, "-m", "acp_mcp", "--help"], cwd=ROOT, env=python_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", done.stdout))


def config_entry(name: str) -> dict[str, Any]:
    data = json.loads(blocks()[name])
    servers = data["servers"] if name == "vscode" else data["mcpServers"]
    assert list(servers) == ["computer-agents"]
    entry: dict[str, Any] = servers["computer-agents"]
    return entry


def claude_code_entry() -> dict[str, Any]:
    """The server entry of the ``claude mcp add`` block (the compatibility suite runs it with the real CLI)."""
    words = shlex.split(blocks()["claude-code"])
    assert words[:4] == ["claude", "mcp", "add", "computer-agents"], "the name comes first: --env takes several values"
    dash = words.index("--")
    options, command = words[4:dash], words[dash + 1 :]
    env = dict(value.split("=", 1) for flag, value in itertools.pairwise(options) if flag == "--env")
    assert options[options.index("--transport") + 1] == "stdio"
    return {"command": command[0], "args": command[1:], "env": env}


def entry(name: str) -> dict[str, Any]:
    return claude_code_entry() if name == "claude-code" else config_entry(name)


def check_server_words(command: str, args: list[str]) -> None:
    """The command is this package's script (bare, absolute, or .exe) and every flag is one acp-mcp has."""
    assert re.split(r"[\\/]", command)[-1].removesuffix(".exe") == SCRIPT, command
    unknown = [arg for arg in args if arg.startswith("--") and arg.split("=")[0] not in help_flags()]
    assert not unknown, f"flags acp-mcp --help does not list: {unknown}"


def test_every_block_in_the_section_is_marked_and_checked() -> None:
    assert section().count("```") == 2 * len(BLOCKS), "an unmarked block would go untested"
    assert list(blocks()) == BLOCKS


@pytest.mark.parametrize("name", LAUNCHABLE)
def test_client_configs_use_only_the_servers_variables_and_flags(name: str) -> None:
    config = entry(name)
    check_server_words(config["command"], config.get("args", []))
    assert set(config["env"]) <= SERVER_VARIABLES
    assert KEY_VARIABLES[0] in config["env"] and "ACP_SERVER_ID" in config["env"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", LAUNCHABLE)
async def test_client_configs_start_a_server_that_answers_with_their_settings(
    name: str, sandbox: RunningSandbox
) -> None:
    config = entry(name)
    env = {key: PLACEHOLDERS.get(value, value) for key, value in config["env"].items()}
    env |= {"COMPUTER_AGENTS_BASE_URL": sandbox.base_url}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "acp_mcp", *config.get("args", [])], env=python_env(**env), cwd=str(ROOT)
    )
    async with Client(params) as client:
        result = await client.call_tool("start_agent_run", {"content": f"configured for {name}", "mode": "sync"})

    assert not result.is_error, text_of(result)
    assert result.structured_content["serverId"] == SERVER_ID, "ACP_SERVER_ID from the block reached the server"
    assert sandbox.state.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_vscode_block_uses_servers_type_stdio_and_a_password_input() -> None:
    data = json.loads(blocks()["vscode"])
    assert "mcpServers" not in data
    assert config_entry("vscode")["type"] == "stdio"
    (prompt,) = data["inputs"]
    assert prompt["type"] == "promptString" and prompt["password"] is True
    assert config_entry("vscode")["env"][KEY_VARIABLES[0]] == "${input:" + prompt["id"] + "}"


def test_windows_block_uses_an_absolute_exe_path() -> None:
    command = config_entry("windows")["command"]
    assert re.fullmatch(r"[A-Z]:\\.+\\Scripts\\acp-mcp\.exe", command), command


def test_pip_and_uvx_blocks_name_this_package_and_its_script() -> None:
    assert f"pip install {PYPROJECT['project']['name']} " in blocks()["pip"]
    for line in blocks()["uvx"].splitlines():
        words = shlex.split(line, comments=True)
        assert words[0] == "uvx"
        if words[1] == "--from":
            assert (ROOT / words[2] / "pyproject.toml").exists()
            words = words[2:]
        check_server_words(words[1], words[2:])


def test_bundle_block_runs_the_build_script() -> None:
    words = shlex.split(blocks()["bundle"], comments=True)
    assert words[:3] == ["npm", "ci", "&&"]
    assert (ROOT / words[4]).is_file() and words[4] == "scripts/build_bundle.py"


def _inspector_words(line: str) -> tuple[list[str], list[str]]:
    words = shlex.split(line)
    assert words[:2] == ["npx", "@modelcontextprotocol/inspector"]
    dash = words.index("--")
    return words[2:dash], words[dash + 1 :]


def test_inspector_ui_block_passes_known_variables_and_the_command_after_dashes() -> None:
    options, server = _inspector_words(blocks()["inspector-ui"])
    env = [value for flag, value in itertools.pairwise(options) if flag == "-e"]
    assert {item.split("=")[0] for item in env} <= SERVER_VARIABLES and env
    check_server_words(server[0], server[1:])


@pytest.mark.external
@pytest.mark.parametrize("line", blocks()["inspector-cli"].splitlines())
def test_inspector_cli_block_runs_as_written(line: str, tmp_path: Path) -> None:
    options, server = _inspector_words(line)
    check_server_words(server[0], server[1:])
    command = [str(node_tool("mcp-inspector")), *options, "-e", f"PYTHONPATH={ROOT}", "-q", "--"]
    done = subprocess.run(
        [*command, sys.executable, "-m", "acp_mcp", *server[1:]],
        cwd=ROOT,
        env=node_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)


def test_http_block_points_at_the_default_endpoint_with_the_caller_token() -> None:
    words = shlex.split(blocks()["http"])
    assert words[:6] == ["claude", "mcp", "add", "--transport", "http", "computer-agents"]
    url = urlsplit(words[6])
    defaults = Settings()
    assert (url.hostname, url.port, url.path) == (defaults.host, defaults.port, "/mcp")
    assert words[7:] == ["--header", f"Authorization: Bearer <{HTTP_TOKEN_VARIABLE}>"]
    assert "(#serve-over-http-for-other-agents)" in section()
    assert "\n## Serve over HTTP for other agents\n" in README.read_text()


def test_proxy_block_uses_the_standard_variables() -> None:
    env = json.loads(blocks()["proxy"])["env"]
    assert set(env) <= SERVER_VARIABLES | STANDARD_VARIABLES
    assert {"HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE"} <= set(env)
