"""Section ``cold_start``: spawn to the tools/list answer, idle memory, the tool list's size, where start-up goes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.clients import INITIALIZE, INITIALIZED, SyncStdio, request
from bench.harness import ACP, ROOT, SIDES, THIN, Sandbox, base_env, server_args
from bench.processes import close_and_wait, proc_status
from bench.stats import interleaved, ratio, summary


def cold_start_once(side: str, env: dict[str, str]) -> tuple[float, float, int, int]:
    """Seconds from spawn to the tools/list answer, the idle VmRSS (MiB) then, the tool count and the
    answer's size on the wire (characters of compact JSON)."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *server_args(side)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    try:
        client = SyncStdio(process)
        client.send(request(1, "initialize", INITIALIZE))
        client.answer(1)
        client.send(INITIALIZED)
        client.send(request(2, "tools/list"))
        listed = client.answer(2)
        elapsed = time.perf_counter() - began
        tools = listed["result"]["tools"]
        wire = len(json.dumps(listed, separators=(",", ":")))
        rss = proc_status(process.pid)["VmRSS"]
    finally:
        close_and_wait(process)
    return elapsed, rss, len(tools), wire


def bench_cold_start(sandbox: Sandbox, samples: int) -> dict[str, Any]:
    """`samples` cold starts per side, interleaved, after one uncounted start each that warms the .pyc caches."""
    env = base_env(sandbox.base_url)
    times: dict[str, list[float]] = {ACP: [], THIN: []}
    rss: dict[str, list[float]] = {ACP: [], THIN: []}
    tools: dict[str, int] = {}
    wire: dict[str, int] = {}
    for side in SIDES if samples > 1 else ():
        cold_start_once(side, env)
    for i in range(samples):
        for side in interleaved(SIDES, i):
            seconds, mib, tools[side], wire[side] = cold_start_once(side, env)
            times[side].append(seconds)
            rss[side].append(mib)
    out: dict[str, Any] = {side: summary(values) for side, values in times.items()}
    out["ratio_median"] = ratio(out[ACP]["median"], out[THIN]["median"])
    # Each iteration starts both servers back to back, so the per-pair ratio cancels the slow drift of
    # the machine's load (other jobs), which the ratio of the two medians does not.
    pairs = [a / t for a, t in zip(times[ACP], times[THIN], strict=True)]
    out["ratio_paired_median"] = round(statistics.median(pairs), 3)
    out["idle_rss_mib"] = {side: round(statistics.median(v), 1) for side, v in rss.items()}
    out["tools"] = tools
    out["tools_list_wire_chars"] = wire
    return out


STARTUP_PROBE = """
import json, time
t0 = time.perf_counter()
from mcp.server.mcpserver import MCPServer
import httpx2
t1 = time.perf_counter()
import bench.thin_proxy
t2 = time.perf_counter()
import acp_mcp.cli, acp_mcp.composition
from acp_mcp.config import Settings
t3 = time.perf_counter()
acp_mcp.composition.compose(Settings())
t4 = time.perf_counter()
from pydantic import TypeAdapter
from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema
from acp_mcp.results import RunResult
TypeAdapter(RunResult).json_schema(schema_generator=StrictJsonSchema)
t5 = time.perf_counter()
print(json.dumps({"sdk_and_httpx2": t1 - t0, "thin_proxy_module": t2 - t1, "acp_mcp_imports": t3 - t2,
                  "acp_build_server": t4 - t3, "run_result_output_schema_once": t5 - t4}))
"""
"""Run in a fresh interpreter: the seconds each stage of acp-mcp's start-up takes."""


def startup_breakdown(samples: int) -> dict[str, float]:
    """Where start-up time goes, in a fresh interpreter each time (median ms of `samples`)."""
    runs: list[dict[str, float]] = []
    for _ in range(samples):
        done = subprocess.run(
            [sys.executable, "-c", STARTUP_PROBE],
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            check=True,
        )
        runs.append(json.loads(done.stdout))
    return {name: round(statistics.median(r[name] for r in runs) * 1000, 1) for name in runs[0]}
