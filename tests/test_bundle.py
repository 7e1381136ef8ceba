"""The MCP Bundle: built once per session by scripts/build_bundle.py, unpacked, launched as a host would.

The launch command comes from mcpb's own getMcpConfigForManifest (scripts/mcpb_launch_config.mjs),
so ``${__dirname}``, ``${user_config.*}``, the defaults and the required-key rule are the hosts'. The
server then runs on a Python that does not have ``mcp`` installed, proving ``server/lib`` is
self-contained. Building takes about 25 s (pip install of ~30 packages, then mcpb pack).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from acp_mcp import __version__
from acp_mcp.sandbox import RunningSandbox
from scripts import build_bundle

from ._tooling import ROOT, node_env, node_tool
from .conftest import API_KEY, SERVER_ID, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.external]

TOOL_NAMES = ["start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"]


def _has_mcp(python: str) -> bool:
    env = {"PATH": os.environ.get("PATH", "")}
    probe = subprocess.run([python, "-c", "import mcp"], env=env, capture_output=True, timeout=30)
    return probe.returncode == 0


def _python_without_mcp() -> list[str]:
    """A Python of the bundle's minor version that cannot import mcp: a system one, else this one with -S."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [f"/usr/bin/python{version}", "/usr/bin/python3", f"/usr/local/bin/python{version}"]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python3"))
    for candidate in candidates:
        if not Path(candidate).exists():
            continue
        check = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.stdout.strip() == version and not _has_mcp(candidate):
            return [candidate]
    return [sys.executable, "-S"]  # no site-packages at all: only the stdlib and the bundle's lib


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node_tool("mcpb")
    out_dir = tmp_path_factory.mktemp("dist")
    began = time.monotonic()
    path = build_bundle.build(out_dir)
    seconds = time.monotonic() - began
    unpacked = tmp_path_factory.mktemp("unpacked")
    subprocess.run(
        [str(node_tool("mcpb")), "unpack", str(path), str(unpacked)],
        check=True,
        capture_output=True,
        env=node_env(out_dir),
        timeout=120,
    )
    return {"path": path, "dir": unpacked, "seconds": seconds}


def launch_config(bundle_dir: Path, user_config: dict[str, Any]) -> dict[str, Any] | None:
    done = subprocess.run(
        ["node", str(ROOT / "scripts" / "mcpb_launch_config.mjs"), str(bundle_dir), json.dumps(user_config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    config: dict[str, Any] | None = json.loads(done.stdout)
    return config


def test_the_bundle_holds_the_manifest_entry_point_and_libraries_but_no_tests_or_caches(bundle: dict[str, Any]) -> None:
    path: Path = bundle["path"]
    assert path.name.startswith(f"acp-mcp-{__version__}-") and path.suffix == ".mcpb"
    manifest = json.loads((bundle["dir"] / "manifest.json").read_text())
    assert (bundle["dir"] / manifest["server"]["entry_point"]).is_file()
    assert (bundle["dir"] / "server" / "lib" / "acp_mcp" / "server.py").is_file()
    assert (bundle["dir"] / "server" / "lib" / "mcp").is_dir()
    major, minor = sys.version_info[:2]
    assert manifest["compatibility"]["runtimes"]["python"] == f">={major}.{minor} <{major}.{minor + 1}"
    assert len(manifest["compatibility"]["platforms"]) == 1, "a python bundle is platform-specific"
    names = zipfile.ZipFile(path).namelist()
    assert not [n for n in names if "__pycache__/" in n or n.endswith(".pyc") or "/tests/" in f"/{n}"]
    assert not [n for n in names if n.startswith("server/lib/bin/")]
    print(f"bundle built in {bundle['seconds']:.1f} s: {path.stat().st_size / 1e6:.1f} MB, {len(names)} files")


def test_the_host_launch_command_needs_the_key_and_applies_the_defaults(bundle: dict[str, Any]) -> None:
    assert launch_config(bundle["dir"], {}) is None, "no key: the host must not start the server"
    config = launch_config(bundle["dir"], {"api_key": "tb_x"})
    assert config is not None
    assert config["args"] == [f"{bundle['dir']}/server/main.py"]
    assert config["env"] == {
        "PYTHONPATH": f"{bundle['dir']}/server/lib",
        "COMPUTER_AGENTS_API_KEY": "tb_x",
        "COMPUTER_AGENTS_BASE_URL": "https://api.computer-agents.com",
        "ACP_SERVER_ID": "",  # an empty default, so no literal "${user_config.server_id}" reaches the server
        "ACP_MCP_READ_ONLY": "false",
    }


async def test_the_unpacked_bundle_serves_the_tools_on_a_python_without_mcp(
    bundle: dict[str, Any], sandbox: RunningSandbox
) -> None:
    config = launch_config(
        bundle["dir"], {"api_key": API_KEY, "base_url": sandbox.base_url.removesuffix("/v1"), "server_id": SERVER_ID}
    )
    assert config is not None
    python = _python_without_mcp()
    assert config["command"] == ("python" if sys.platform == "win32" else "python3")
    params = StdioServerParameters(command=python[0], args=[*python[1:], *config["args"]], env=config["env"])
    async with Client(params) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("start_agent_run", {"content": "from the bundle", "mode": "sync"})

    assert names == TOOL_NAMES
    assert not result.is_error, text_of(result)
    assert result.structured_content["serverId"] == SERVER_ID
    assert result.structured_content["run"]["output"] == "Echo: from the bundle"


async def test_the_bundle_read_only_setting_reaches_the_server(bundle: dict[str, Any], sandbox: RunningSandbox) -> None:
    config = launch_config(
        bundle["dir"], {"api_key": API_KEY, "base_url": sandbox.base_url.removesuffix("/v1"), "read_only": True}
    )
    assert config is not None and config["env"]["ACP_MCP_READ_ONLY"] == "true"
    python = _python_without_mcp()
    params = StdioServerParameters(command=python[0], args=[*python[1:], *config["args"]], env=config["env"])
    async with Client(params) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert names == ["get_agent_run", "list_agent_runs"]
