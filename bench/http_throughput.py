"""Section ``http``: throughput and latency of many sessions over streamable HTTP, rounds alternating sides.

(Not ``bench/http.py``: that name would shadow the standard library's ``http`` for anything run from ``bench/``.)
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from bench.clients import CLIENT_MODE, check, continue_args, together
from bench.harness import ACP, THIN, Sandbox, base_env, http_servers, new_runs
from bench.processes import proc_status
from bench.stats import interleaved, ratio, summary


async def _no_validation(name: str, result: CallToolResult) -> None:
    """Stands in for `ClientSession.validate_tool_result` on the "bare" sessions."""


async def _open_sessions(
    stack: contextlib.AsyncExitStack, urls: dict[str, str], names: dict[str, tuple[str, bool]], concurrency: int
) -> dict[str, list[Client]]:
    """`concurrency` SDK `Client`s per name (all opened concurrently), the bare ones without validation."""
    managers = []
    for side, _ in names.values():
        for _ in range(concurrency):
            client_http = await stack.enter_async_context(httpx2.AsyncClient(timeout=120))
            transport = streamable_http_client(urls[side], http_client=client_http)
            managers.append(Client(transport, mode=CLIENT_MODE))
    clients = iter(await stack.enter_async_context(together(*managers)))
    sessions: dict[str, list[Client]] = {name: [] for name in names}
    for name, (_, bare) in names.items():
        for _ in range(concurrency):
            client = next(clients)
            if bare:
                client.session.validate_tool_result = _no_validation  # the bare sessions skip the check
            sessions[name].append(client)
    return sessions


async def _round(clients: list[Client], ids: list[str], per_worker: int) -> tuple[float, list[float]]:
    """Each client makes `per_worker` calls on its own run, all clients at once: wall seconds, each call's."""
    times: list[float] = []

    async def worker(client: Client, run_id: str) -> None:
        for _ in range(per_worker):
            began = time.perf_counter()
            check(await client.call_tool("continue_agent_run", continue_args(run_id)))
            times.append(time.perf_counter() - began)

    began = time.perf_counter()
    async with anyio.create_task_group() as group:
        for client, run_id in zip(clients, ids, strict=True):
            group.start_soon(worker, client, run_id)
    return time.perf_counter() - began, times


async def bench_http(sandbox: Sandbox, concurrency: int, calls_per_round: int, rounds: int) -> dict[str, Any]:
    """Throughput at `concurrency` sessions over streamable HTTP, rounds alternating between the sides.

    Every side is driven twice: by SDK `Client`s as shipped, and by SDK `Client`s whose outputSchema
    validation is switched off ("bare"), since this load generator shares the 2 cores with the server."""
    names = {f"{side}{'/bare' if bare else ''}": (side, bare) for bare in (False, True) for side in (ACP, THIN)}
    wall: dict[str, list[float]] = {name: [] for name in names}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    per_worker = max(1, calls_per_round // concurrency)
    with http_servers(base_env(sandbox.base_url), ACP, THIN) as ((acp_url, acp_pid), (thin_url, thin_pid)):
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(sandbox.http())
            sessions = await _open_sessions(stack, {ACP: acp_url, THIN: thin_url}, names, concurrency)
            first = 0 if rounds > 1 else 1  # round 0 warms up (skipped in --quick)
            for r in range(first, rounds + 1):
                for name in interleaved(list(names), r):
                    ids = await new_runs(http, concurrency)
                    seconds, times = await _round(sessions[name], ids, per_worker)
                    if r:
                        wall[name].append(seconds)
                        latencies[name].extend(times)
        memory = {ACP: proc_status(acp_pid), THIN: proc_status(thin_pid)}
    out: dict[str, Any] = {"concurrency": concurrency, "calls_per_round": per_worker * concurrency, "rounds": rounds}
    for name in names:
        calls = per_worker * concurrency * len(wall[name])
        out[name] = {
            "calls": calls,
            "calls_per_second": round(calls / sum(wall[name]), 1),
            "latency_ms": summary(latencies[name]),
        }
    out["memory_mib"] = memory
    out["throughput_ratio"] = ratio(out[ACP]["calls_per_second"], out[THIN]["calls_per_second"])
    out["bare_throughput_ratio"] = ratio(
        out[f"{ACP}/bare"]["calls_per_second"], out[f"{THIN}/bare"]["calls_per_second"]
    )
    return out
