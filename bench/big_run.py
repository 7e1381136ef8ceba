"""Section ``big_run``: ``get_agent_run`` on a run with thousands of events, and its shaping stages in this process."""

from __future__ import annotations

import json
import time
from typing import Any

from mcp import Client
from mcp.types import CallToolResult

from bench.clients import check, result_chars
from bench.harness import RUNS, SERVER_ID, Sandbox
from bench.processes import proc_status
from bench.stats import summary


def bench_shaping(raw: bytes, reps: int) -> dict[str, Any]:
    """Parse and shape a big run in this process: json.loads, RunEnvelope validation, shape_run, tool_result."""
    from acp_mcp.models import RunEnvelope
    from acp_mcp.results import shape_run
    from acp_mcp.tools import tool_result

    stages: dict[str, list[float]] = {"json_loads": [], "validate": [], "shape_run": [], "tool_result": []}
    result = None
    for _ in range(reps):
        t0 = time.perf_counter()
        data = json.loads(raw)
        t1 = time.perf_counter()
        envelope = RunEnvelope.model_validate(data)
        t2 = time.perf_counter()
        shaped = shape_run(envelope, server_id=SERVER_ID, outcome="fetched", http_status=None)
        t3 = time.perf_counter()
        result = tool_result(shaped)
        t4 = time.perf_counter()
        for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name].append(seconds)
    assert result is not None, "reps must be at least 1"
    out: dict[str, Any] = {name: summary(values) for name, values in stages.items()}
    out["result_chars"] = result_chars(result)
    return out


async def bench_big_run(
    sandbox: Sandbox, events: int, size: int, reps: int, session: tuple[Client, int]
) -> dict[str, Any]:
    """get_agent_run on a run with `events` events of `size` characters, and its stages in this process."""
    acp, pid = session
    async with sandbox.http() as http:
        response = await http.post(RUNS, json={"content": f"/events {events} {size}", "mode": "sync"})
        response.raise_for_status()
        run_id = response.json()["run"]["id"]
        fetches: list[float] = []
        raw = b""
        for _ in range(reps):
            began = time.perf_counter()
            got = await http.get(f"{RUNS}/{run_id}/events")
            raw = got.content
            fetches.append(time.perf_counter() - began)
        calls: list[float] = []
        result: CallToolResult | None = None
        for _ in range(reps):
            began = time.perf_counter()
            result = check(await acp.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 0}))
            calls.append(time.perf_counter() - began)
        assert result is not None, "reps must be at least 1"
        memory = proc_status(pid)
    return {
        "events": events,
        "event_size": size,
        "upstream_bytes": len(raw),
        "direct_get_events": summary(fetches),
        "get_agent_run_stdio": summary(calls),
        "get_agent_run_chars": result_chars(result),
        "server_memory_mib": memory,
        "in_process": bench_shaping(raw, reps),
    }
