"""What every section runs against: the sandbox in its own process and the two servers under test.

The servers are spawned as MCP clients spawn them (``python -m acp_mcp`` / ``python -m bench.thin_proxy``)
with this interpreter and the same environment; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2

from bench.processes import close_and_wait, free_port, terminate_and_wait, wait_listening

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: every child's working directory and ``PYTHONPATH``."""
KEY = "sandbox-bench-key"
SERVER_ID = "srv_bench"
ACP = "acp-mcp"
THIN = "thin"
SIDES = (ACP, THIN)
RUNS = f"servers/{SERVER_ID}/runtime/agent/runs"


def base_env(base_url: str) -> dict[str, str]:
    """The environment both servers get: the same key, base URL, server id and interpreter path."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
    return keep | {
        "PYTHONPATH": str(ROOT),
        "COMPUTER_AGENTS_API_KEY": KEY,
        "COMPUTER_AGENTS_BASE_URL": base_url,
        "ACP_SERVER_ID": SERVER_ID,
        "ACP_MCP_LOG_LEVEL": "ERROR",
    }


def server_args(side: str, *extra: str) -> list[str]:
    """argv (after the interpreter) that starts `side`."""
    module = "acp_mcp" if side == ACP else "bench.thin_proxy"
    return ["-m", module, *extra]


@dataclass
class Sandbox:
    """A sandbox process and HTTP clients for it (the direct-call reference and the control routes)."""

    process: subprocess.Popen[bytes]
    base_url: str

    @property
    def root(self) -> str:
        """The sandbox's origin, where its ``/_sandbox`` control routes live."""
        return self.base_url.removesuffix("/v1")

    def http(self, **kwargs: Any) -> httpx2.AsyncClient:
        """An authorised client for the API (``/v1``); `kwargs` go to `httpx2.AsyncClient`."""
        return httpx2.AsyncClient(
            base_url=self.base_url + "/", headers={"Authorization": f"Bearer {KEY}"}, timeout=120.0, **kwargs
        )

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """One request to a control route, its JSON answer."""
        with httpx2.Client(base_url=self.root, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
            response = http.request(method, path, json=body)
            response.raise_for_status()
            return response.json()


@contextlib.contextmanager
def sandbox_process(pace: float = 0.0, latency: float = 0.0) -> Iterator[Sandbox]:
    """Start `bench.sandbox_proc` and wait for its URL."""
    env = os.environ | {"ACP_SANDBOX_KEY": KEY, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.sandbox_proc", "--pace", str(pace), "--latency", str(latency)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("COMPUTER_AGENTS_BASE_URL="):
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield Sandbox(process, line.split("=", 1)[1])
    finally:
        close_and_wait(process)


async def new_runs(http: httpx2.AsyncClient, count: int, content: str = "bench") -> list[str]:
    """`count` finished runs (sync starts, concurrently)."""
    ids: list[str] = [""] * count

    async def one(i: int) -> None:
        response = await http.post(RUNS, json={"content": content, "mode": "sync"})
        response.raise_for_status()
        ids[i] = response.json()["run"]["id"]

    async with anyio.create_task_group() as group:
        for i in range(count):
            group.start_soon(one, i)
    return ids


ServerEnv = Callable[[str], dict[str, str]]
"""A server's environment, given the URL it will serve at (an OAuth server's audience is its own URL)."""


@contextlib.contextmanager
def http_servers(env: dict[str, str], *sides: str) -> Iterator[list[tuple[str, int]]]:
    """Each side served over streamable HTTP on its own port (started in parallel): (URL, pid) each."""
    with serve_http([(side, lambda _url: env, ()) for side in sides]) as served:
        yield served


@contextlib.contextmanager
def serve_http(servers: Sequence[tuple[str, ServerEnv, Sequence[str]]]) -> Iterator[list[tuple[str, int]]]:
    """Each (side, environment, extra arguments) served over streamable HTTP on its own port, started in
    parallel: (URL, pid) each."""
    with contextlib.ExitStack() as stack:
        started = []
        for side, env, extra in servers:
            port = free_port()
            url = f"http://127.0.0.1:{port}/mcp"
            command = [
                sys.executable,
                *server_args(side, "--transport", "streamable-http", "--port", str(port), *extra),
            ]
            devnull = subprocess.DEVNULL
            process = stack.enter_context(
                subprocess.Popen(command, env=env(url), cwd=ROOT, stdin=devnull, stdout=devnull, stderr=devnull)
            )
            stack.callback(terminate_and_wait, process)
            started.append((url, port, process))
        for _, port, process in started:
            wait_listening(port, process)
        yield [(url, process.pid) for url, _, process in started]
