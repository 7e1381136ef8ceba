"""Section ``concurrency``: one call vs a burst of concurrent calls in one stdio session, with the server's CPU."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

from bench.clients import RawStdio, continue_args, raw_session, together
from bench.harness import SIDES, base_env, new_runs, sandbox_process
from bench.processes import Children, cpu_seconds
from bench.stats import interleaved

SINGLES = 3
"""Single calls timed on each side before each burst."""


@dataclass
class _Side:
    """One side's bare session and what its rounds measured (seconds)."""

    client: RawStdio
    pid: int
    singles: list[float] = field(default_factory=list)
    bursts: list[float] = field(default_factory=list)
    burst_cpu: list[float] = field(default_factory=list)

    async def round(self, ids: list[str]) -> None:
        """`SINGLES` calls one by one, then one concurrent call per run id left in `ids`."""
        for _ in range(SINGLES):
            began = time.perf_counter()
            await self.client.call_tool("continue_agent_run", continue_args(ids.pop()))
            self.singles.append(time.perf_counter() - began)
        cpu_before = cpu_seconds(self.pid)
        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for run_id in ids:
                group.start_soon(self.client.call_tool, "continue_agent_run", continue_args(run_id))
        self.bursts.append(time.perf_counter() - began)
        self.burst_cpu.append(cpu_seconds(self.pid) - cpu_before)

    def summary(self, concurrency: int) -> dict[str, Any]:
        """Medians in ms: one call, the burst's wall time and the server CPU it took."""
        one = statistics.median(self.singles)
        burst = statistics.median(self.bursts)
        cpu = statistics.median(self.burst_cpu)
        return {
            "one_call_ms": round(one * 1000, 1),
            "burst_wall_ms": round(burst * 1000, 1),
            "ratio": round(burst / one, 3),
            "server_cpu_per_burst_ms": round(cpu * 1000),
            "server_cpu_per_call_ms": round(cpu * 1000 / concurrency, 2),
            "bursts": len(self.bursts),
        }


async def bench_concurrency(concurrency: int, rounds: int, latency: float) -> dict[str, Any]:
    """One call vs `concurrency` concurrent calls in one stdio session (bare JSON-RPC client), each call
    on its own run, against a sandbox that adds `latency` seconds to every request; with the server's
    CPU time during each burst, which is what bounds it."""
    out: dict[str, Any] = {"latency_s": latency, "concurrency": concurrency}
    with sandbox_process(latency=latency) as sandbox:
        env, children = base_env(sandbox.base_url), Children()
        async with (
            sandbox.http(limits=httpx2.Limits(max_connections=1000)) as http,
            together(*(raw_session(side, env, children) for side in SIDES)) as sessions,
        ):
            sides = {side: _Side(client, pid) for side, (client, pid) in zip(SIDES, sessions, strict=True)}
            pool = await new_runs(http, 2 * rounds * (concurrency + SINGLES) + 2)
            for side in sides.values():  # warm the connection pools
                await side.client.call_tool("continue_agent_run", continue_args(pool.pop()))
            for r in range(rounds):
                for name in interleaved(SIDES, r):
                    await sides[name].round([pool.pop() for _ in range(SINGLES + concurrency)])
    for name, side in sides.items():
        out[name] = side.summary(concurrency)
    return out
