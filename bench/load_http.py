"""Bounded load over streamable HTTP on loopback: N tool calls at concurrency C against the sandbox.

    python -m bench.load_http [--calls 2000] [--concurrency 50] [--json results.json]

Starts the sandbox (pace 0) in this process and ``acp-mcp --transport streamable-http`` as a
subprocess, opens C MCP sessions, and has them share N ``continue_agent_run`` calls (mode sync).
Reports failures, throughput, latency percentiles and the server's memory (RSS) before and after.
Traffic goes to 127.0.0.1 only; the run is bounded by the call count and a time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from acp_mcp.sandbox import SandboxState, serve_in_thread
from bench.processes import free_port, proc_status, wait_listening

KEY = "sandbox-load-key"
SERVER_ID = "srv_load"


@dataclass
class LoadReport:
    """What one load run measured."""

    calls: int
    concurrency: int
    failures: int
    seconds: float
    calls_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    rss_start_mib: float
    rss_end_mib: float


async def _worker(url: str, calls: list[int], latencies: list[float], failures: list[str]) -> None:
    async with httpx2.AsyncClient(timeout=60) as http, Client(streamable_http_client(url, http_client=http)) as client:
        started = await client.call_tool("start_agent_run", {"content": "load", "mode": "sync"})
        run_id = (started.structured_content or {}).get("run", {}).get("id")
        while calls:
            calls.pop()
            began = time.perf_counter()
            result = await client.call_tool(
                "continue_agent_run", {"resourceRunId": run_id, "content": "ping", "mode": "sync", "maxEvents": 5}
            )
            latencies.append(time.perf_counter() - began)
            if result.is_error:
                failures.append(str(result.content[0]))


async def _drive(url: str, calls: int, concurrency: int, time_limit: float) -> tuple[list[float], list[str], float]:
    pending = list(range(calls))
    latencies: list[float] = []
    failures: list[str] = []
    began = time.perf_counter()
    with anyio.fail_after(time_limit):
        async with anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(_worker, url, pending, latencies, failures)
    return latencies, failures, time.perf_counter() - began


def run_load(calls: int = 2000, concurrency: int = 50, time_limit: float = 600) -> LoadReport:
    """Run the load and return its report."""
    port = free_port()
    with serve_in_thread(SandboxState(api_key=KEY, pace=0.0)) as sandbox:
        env = os.environ | {
            "COMPUTER_AGENTS_API_KEY": KEY,
            "COMPUTER_AGENTS_BASE_URL": sandbox.base_url,
            "ACP_SERVER_ID": SERVER_ID,
            "ACP_MCP_LOG_LEVEL": "ERROR",
        }
        command = [sys.executable, "-m", "acp_mcp", "--transport", "streamable-http", "--port", str(port)]
        with subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL) as process:
            try:
                wait_listening(port, process)
                rss_start = proc_status(process.pid)["VmRSS"]
                latencies, failures, seconds = anyio.run(
                    _drive, f"http://127.0.0.1:{port}/mcp", calls, concurrency, time_limit
                )
                rss_end = proc_status(process.pid)["VmRSS"]
            finally:
                process.terminate()
                process.wait(timeout=10)
    ordered = sorted(latencies)
    return LoadReport(
        calls=len(latencies),
        concurrency=concurrency,
        failures=len(failures),
        seconds=round(seconds, 2),
        calls_per_second=round(len(latencies) / seconds, 1),
        latency_p50_ms=round(statistics.median(ordered) * 1000, 1),
        latency_p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        rss_start_mib=round(rss_start, 1),
        rss_end_mib=round(rss_end, 1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--time-limit", type=float, default=600)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = run_load(args.calls, args.concurrency, args.time_limit)
    for name, value in asdict(report).items():
        print(f"{name:>18}  {value}")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
