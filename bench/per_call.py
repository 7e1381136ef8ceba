"""Section ``per_call``: ``continue_agent_run`` (sync) over stdio on each side and a direct POST, plus memory."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client

from bench.clients import RawStdio, check, continue_args, raw_session, stdio_session, together
from bench.harness import ACP, RUNS, THIN, Sandbox, base_env, new_runs
from bench.processes import Children, proc_status
from bench.stats import interleaved, ratio, summary

CALLS_PER_RUN = 20
"""A fresh run every this many calls, on every side, so responses stay the same size on both."""
SIDES = (ACP, THIN, "direct", f"{ACP}/sdk", f"{THIN}/sdk")
"""The bare JSON-RPC clients, a direct POST to the sandbox, and the SDK `Client`s."""


@dataclass
class _Callers:
    """One timed call on each side, each on the side's current run."""

    http: httpx2.AsyncClient
    raw: dict[str, RawStdio]
    sdk: dict[str, Client]
    runs: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, Any] = field(default_factory=dict)

    async def call(self, side: str) -> None:
        """One call on `side`; a bare client's call also records the result's size."""
        run_id = self.runs[side]
        if side == "direct":
            body = {"content": "ping", "mode": "sync"}
            (await self.http.post(f"{RUNS}/{run_id}/input", json=body)).raise_for_status()
        elif side in self.raw:
            result, wire = await self.raw[side].call_tool("continue_agent_run", continue_args(run_id))
            self.sizes[side] = {"wire_bytes": wire, "structured": len(json.dumps(result.get("structuredContent")))}
        else:
            check(await self.sdk[side].call_tool("continue_agent_run", continue_args(run_id)))

    async def sample(self, samples: int, warmup: int) -> dict[str, list[float]]:
        """Seconds per call on every side, interleaved, after `warmup` uncounted rounds."""
        timings: dict[str, list[float]] = {side: [] for side in SIDES}
        for i in range(warmup + samples):
            if i % CALLS_PER_RUN == 0:
                self.runs = dict(zip(SIDES, await new_runs(self.http, len(SIDES)), strict=True))
            for side in interleaved(SIDES, i):
                began = time.perf_counter()
                await self.call(side)
                if i >= warmup:
                    timings[side].append(time.perf_counter() - began)
        return timings


async def bench_per_call(sandbox: Sandbox, samples: int, warmup: int) -> dict[str, Any]:
    """`continue_agent_run` (sync) through each server over stdio, and a direct POST, interleaved.

    Each server is driven twice, by two processes of it: a bare JSON-RPC client (`RawStdio`: what the
    server costs) and the SDK's `Client` (what a Python MCP client sees, including its jsonschema
    validation of the result against the tool's outputSchema)."""
    env, children = base_env(sandbox.base_url), Children()
    sessions = (
        raw_session(ACP, env, children),
        raw_session(THIN, env, children),
        stdio_session(ACP, env, children),
        stdio_session(THIN, env, children),
    )
    async with sandbox.http() as http, together(*sessions) as opened:
        (acp, acp_pid), (thin, thin_pid), (acp_sdk, _), (thin_sdk, _) = opened
        pids = {ACP: acp_pid, THIN: thin_pid}
        memory = {side: {"idle_after_init": proc_status(pid)["VmRSS"]} for side, pid in pids.items()}
        callers = _Callers(http, {ACP: acp, THIN: thin}, {f"{ACP}/sdk": acp_sdk, f"{THIN}/sdk": thin_sdk})
        timings = await callers.sample(samples, warmup)
        for side, pid in pids.items():
            status = proc_status(pid)
            memory[side] |= {"rss_after_calls": status["VmRSS"], "peak_hwm": status["VmHWM"]}
        validation = await _validation_seconds(acp_sdk, callers.runs[f"{ACP}/sdk"], 50)
    out: dict[str, Any] = {side: summary(values) for side, values in timings.items()}
    for prefix, suffix in (("", ""), ("sdk_", "/sdk")):
        a, t = out[ACP + suffix], out[THIN + suffix]
        out[prefix + "ratio_median"] = ratio(a["median"], t["median"])
        out[prefix + "ratio_p99"] = ratio(a["p99"], t["p99"])
        out[prefix + "overhead_median_ms"] = round(a["median"] - t["median"], 3)
    out["sdk_client_output_schema_validation_ms"] = summary(validation)
    out["result_size"] = callers.sizes
    out["memory_mib"] = memory
    return out


async def _validation_seconds(client: Client, run_id: str, times: int) -> list[float]:
    """Seconds the SDK `Client` spends checking one ``continue_agent_run`` result against its outputSchema."""
    result = check(await client.call_tool("continue_agent_run", continue_args(run_id)))
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        await client.session.validate_tool_result("continue_agent_run", result)
        seconds.append(time.perf_counter() - began)
    return seconds
