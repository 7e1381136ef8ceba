"""Section ``polling``: requests spent waiting on a run that never ends, and how late a completion is noticed."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx2
from mcp import Client

from bench.clients import check
from bench.harness import RUNS, Sandbox


def planned_polls(seconds: float) -> int:
    """Requests the real `PollPolicy` makes in `seconds` of waiting (the first events fetch included)."""
    from acp_mcp.waiting import PollPolicy

    count, at = 1, 0.0
    for interval in PollPolicy().intervals():
        at += interval
        if at >= seconds:
            return count
        count += 1
    raise AssertionError("unreachable")


def worst_cases(count: int) -> list[dict[str, float]]:
    """For the first `count` poll windows: a completion just after one poll is noticed one interval later."""
    from acp_mcp.waiting import PollPolicy

    windows, at = [], 0.0
    intervals = PollPolicy().intervals()
    for _ in range(count + 1):
        step = next(intervals)
        if at:
            windows.append({"from_s": round(at, 3), "to_s": round(at + step, 3), "worst_delay_s": round(step, 3)})
        at += step
    return windows


async def bench_polling(
    sandbox: Sandbox, wait: float, completions: list[float], session: tuple[Client, int]
) -> dict[str, Any]:
    """Requests spent waiting on a run that never finishes, and how late a completion is noticed."""
    acp, _ = session
    out: dict[str, Any] = {"planned_requests_per_60s": planned_polls(60.0), "worst_case_notice": worst_cases(4)}
    async with sandbox.http() as http:
        out["hang"] = await _hang(sandbox, http, acp, wait)
        notices = [await _notice(sandbox, http, acp, after) for after in completions]
        sandbox.control("PUT", "/_sandbox/pace", {"pace": 0})
    out["notice"] = notices
    return out


async def _hang(sandbox: Sandbox, http: httpx2.AsyncClient, acp: Client, wait: float) -> dict[str, Any]:
    """``get_agent_run`` waiting `wait` seconds on a run that never ends: the requests it made upstream."""
    response = await http.post(RUNS, json={"content": "/hang", "mode": "async"})
    run_id = response.json()["run"]["id"]
    sandbox.control("DELETE", "/_sandbox/requests")
    began = time.perf_counter()
    result = check(await acp.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": wait}))
    waited = time.perf_counter() - began
    log = sandbox.control("GET", "/_sandbox/requests")["requests"]
    count = sum(1 for r in log if run_id in r["path"])
    await http.post(f"{RUNS}/{run_id}/cancel", json={})
    return {
        "wait_s": wait,
        "waited_s": round(waited, 2),
        "requests": count,
        "planned_requests": planned_polls(wait),
        "per_minute": round(count * 60 / wait, 1),
        "wait_expired": (result.structured_content or {}).get("waitExpired"),
    }


async def _notice(sandbox: Sandbox, http: httpx2.AsyncClient, acp: Client, after: float) -> dict[str, Any]:
    """How long after a run that completes in about `after` seconds ``get_agent_run`` returns it."""
    sandbox.control("PUT", "/_sandbox/pace", {"pace": after / 2})  # a plain turn takes two paces
    began_wall = time.time()
    response = await http.post(RUNS, json={"content": "notice me", "mode": "async"})
    run_id = response.json()["run"]["id"]
    result = check(await acp.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 45}))
    returned = time.time()
    run = (result.structured_content or {}).get("run") or {}
    completed = datetime.fromisoformat(run["completedAt"].replace("Z", "+00:00")).timestamp()
    return {
        "completes_after_s": round(completed - began_wall, 2),
        "noticed_after_ms": round((returned - completed) * 1000),
        "status": run.get("status"),
    }
