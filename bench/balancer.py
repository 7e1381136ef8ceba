"""Replicas behind HAProxy: throughput and p99 with 1, 2 and 3 `--stateless` replicas, and a drain measured.

Also the one home of the HAProxy configuration the hosting test uses (`haproxy_config`). Everything
runs on loopback; HAProxy is Debian's package.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.processes import free_port, terminate_and_wait, wait_listening

DRAIN_SECONDS = 10


RETRIES = """\
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503"""
NO_RETRIES = "    retries 0"


def haproxy_config(front: int, stats: Path, ports: dict[str, int], *, retries: bool = True) -> str:
    """Round robin over `ports`, health checks on ``/readyz`` (two in a row change a replica's state), and
    (with `retries`, as the README configures it) retries of a refused connection or a 503 on another replica."""
    servers = "\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in ports.items())
    return f"""\
global
    stats socket {stats} mode 600 level admin
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 2s
{RETRIES if retries else NO_RETRIES}
    option http-buffer-request

frontend mcp
    bind 127.0.0.1:{front}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 100ms fall 2 rise 2
{servers}
"""


def replica_command(port: int, *extra: str) -> list[str]:
    """argv of one `--stateless` replica on `port`."""
    command = [sys.executable, "-m", "acp_mcp", "--transport", "streamable-http", "--stateless", "--port", str(port)]
    return [*command, "--drain-seconds", str(DRAIN_SECONDS), *extra]


@contextlib.contextmanager
def balanced(env: dict[str, str], replicas: int) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """`replicas` replicas behind HAProxy: the front URL and the replica processes."""
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise RuntimeError("haproxy is missing: install Debian's haproxy")
    ports = {f"r{n + 1}": free_port() for n in range(replicas)}
    front = free_port()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        config = Path(folder) / "haproxy.cfg"
        config.write_text(haproxy_config(front, Path(folder) / "stats.sock", ports))
        processes = []
        for port in ports.values():
            process = subprocess.Popen(
                replica_command(port), env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            stack.callback(terminate_and_wait, process, DRAIN_SECONDS + 5)
            processes.append(process)
        proxy = subprocess.Popen(
            [haproxy, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        stack.callback(terminate_and_wait, proxy, DRAIN_SECONDS + 5)
        for port, process in zip(ports.values(), processes, strict=True):
            wait_listening(port, process)
        _wait_ready(front)
        yield f"http://127.0.0.1:{front}/mcp", processes


def _wait_ready(front: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(f"http://127.0.0.1:{front}/readyz", timeout=1).status_code == 200:
                time.sleep(0.5)  # every replica's checks pass, not just the first
                return
        time.sleep(0.1)
    raise RuntimeError("no replica became ready behind HAProxy")


async def _load(url: str, calls: int, concurrency: int, during: Any = None) -> list[float]:
    """`calls` sync starts through `url` by `concurrency` clients; each call's latency (seconds)."""
    latencies: list[float] = []
    numbers = iter(range(calls))

    async def worker() -> None:
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            for n in numbers:
                began = time.perf_counter()
                result = await client.call_tool("start_agent_run", {"content": f"balanced {n}", "mode": "sync"})
                if result.is_error:
                    raise RuntimeError(f"call failed: {result.content}")
                latencies.append(time.perf_counter() - began)

    async with anyio.create_task_group() as group:
        if during is not None:
            group.start_soon(during, latencies)
        for _ in range(concurrency):
            group.start_soon(worker)
    return latencies


def bench_balancer(env: dict[str, str], calls: int, concurrency: int) -> dict[str, Any]:
    """Calls/s and latency through HAProxy with 1, 2 and 3 replicas; then a drain under load with 3."""
    out: dict[str, Any] = {"calls": calls, "concurrency": concurrency}
    for replicas in (1, 2, 3):
        with balanced(env, replicas) as (url, _):
            anyio.run(_load, url, min(calls, 40), concurrency)  # warm-up
            began = time.perf_counter()
            latencies = anyio.run(_load, url, calls, concurrency)
            seconds = time.perf_counter() - began
        latencies.sort()
        out[f"replicas_{replicas}"] = {
            "calls_per_second": round(calls / seconds, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
        }
    with balanced(env, 3) as (url, processes):
        drain: dict[str, float] = {}

        async def sigterm_one(latencies: list[float]) -> None:
            while len(latencies) < calls // 3:  # noqa: ASYNC110  (the workers fill it)
                await anyio.sleep(0.01)
            began = time.perf_counter()
            processes[0].send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(processes[0].wait)
            drain["exit_seconds"] = round(time.perf_counter() - began, 2)
            drain["calls_done_at_sigterm"] = calls // 3

        latencies = anyio.run(_load, url, calls, concurrency, sigterm_one)
        out["drain"] = drain | {"calls_completed": len(latencies), "max_latency_ms": round(1000 * max(latencies), 1)}
    return out
