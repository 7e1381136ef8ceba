"""Section ``many_callers``: many distinct OAuth callers on one ``--stateless`` replica, with its memory.

Every caller has a token of its own (its own subject, mapped to the sandbox's key in the keys file), and
makes what a client makes first: tools/list (a token the server has not seen), then ``list_agent_runs``
twice (the first makes the caller's own API client and connection pool, the second reuses them), as bare
JSON-RPC POSTs, a fixed number of callers at a time. Three requests a caller stay far under the per-caller
rate limit. The server's RSS is read before (after one warm-up caller) and after.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2

from bench.clients import Message, post_message, request
from bench.harness import ACP, Sandbox, base_env, serve_http
from bench.issuer import oauth_env, serve_issuer, write_keys
from bench.processes import cpu_seconds, proc_status
from bench.stats import summary

WARM_SUBJECT = "bench-warm-up"
LIST_CALL = {"name": "list_agent_runs", "arguments": {"limit": 1}}
KEPT_FAILURES = 5
"""Failures whose text the results keep (all are counted)."""
NONE_ANSWERED = {"n": 0, "median": math.nan, "p99": math.nan, "min": math.nan}


REQUESTS_PER_CALLER = 3
STEPS = ("first_request", "first_call", "repeat_call")
"""What each caller's requests are timed as: tools/list with a new token, its first call, the same call again."""


@dataclass
class _Load:
    """What the callers saw: each step's seconds (`STEPS`), and the failures."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    failures: list[str] = field(default_factory=list)


def _problem(answer: Message) -> str | None:
    """Why a JSON-RPC answer is a failure (an error, or a tool error), or None."""
    if "error" in answer:
        return f"JSON-RPC error {answer['error']}"
    if answer.get("result", {}).get("isError"):
        return f"tool error {answer['result'].get('content')}"
    return None


async def _callers(url: str, tokens: list[str], concurrency: int) -> tuple[_Load, float]:
    """Each token's caller makes tools/list then the same call twice, `concurrency` callers at a time: the load
    and the wall seconds."""
    load = _Load()
    pending = iter(tokens)
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def caller(http: httpx2.AsyncClient) -> None:
        messages = [request(1, "tools/list"), request(2, "tools/call", LIST_CALL), request(3, "tools/call", LIST_CALL)]
        for token in pending:
            times: list[float] = []
            try:
                for message in messages:
                    began = time.perf_counter()
                    problem = _problem(await post_message(http, url, message, token))
                    times.append(time.perf_counter() - began)
                    if problem is not None:
                        raise RuntimeError(problem)
            except (RuntimeError, httpx2.HTTPError) as exc:
                load.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            for step, seconds in zip(STEPS, times, strict=True):
                load.seconds[step].append(seconds)

    async with httpx2.AsyncClient(timeout=120, limits=limits) as http:
        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(caller, http)
        return load, time.perf_counter() - began


def bench_many_callers(sandbox: Sandbox, callers: int, concurrency: int) -> dict[str, Any]:
    """`callers` distinct OAuth callers, `concurrency` at a time, on one ``--stateless`` replica."""
    subjects = [f"bench-caller-{n:05d}" for n in range(callers)]
    with serve_issuer() as issuer, tempfile.TemporaryDirectory() as folder:
        keys = write_keys(Path(folder) / "keys.json", [WARM_SUBJECT, *subjects])
        base = base_env(sandbox.base_url)
        with serve_http([(ACP, lambda url: oauth_env(base, issuer, url, keys), ["--stateless"])]) as [(url, pid)]:
            tokens = [issuer.mint(subject, url) for subject in subjects]
            rss_idle = proc_status(pid)["VmRSS"]
            warm, _ = anyio.run(_callers, url, [issuer.mint(WARM_SUBJECT, url)], 1)  # imports, the issuer's keys
            if warm.failures:
                raise RuntimeError(f"the warm-up caller failed: {warm.failures[0]}")
            rss_start, cpu_start = proc_status(pid)["VmRSS"], cpu_seconds(pid)
            load, seconds = anyio.run(_callers, url, tokens, concurrency)
            status, cpu = proc_status(pid), cpu_seconds(pid) - cpu_start
    answered = len(load.seconds[STEPS[-1]])
    return {
        "callers": callers,
        "concurrency": concurrency,
        "answered": answered,
        "failures": len(load.failures),
        "failure_examples": load.failures[:KEPT_FAILURES],
        "seconds": round(seconds, 2),
        "callers_per_second": round(answered / seconds, 1),
        "calls_per_second": round((REQUESTS_PER_CALLER - 1) * answered / seconds, 1),
        "requests_per_second": round(REQUESTS_PER_CALLER * answered / seconds, 1),
        "latency_ms": {step: summary(times) if times else NONE_ANSWERED for step, times in load.seconds.items()},
        "server_cpu_per_caller_ms": round(1000 * cpu / callers, 2),
        "rss_mib": {
            "idle": round(rss_idle, 1),
            "start": round(rss_start, 1),
            "end": round(status["VmRSS"], 1),
            "peak": round(status["VmHWM"], 1),
        },
        "rss_kib_per_caller": round(1024 * (status["VmRSS"] - rss_start) / callers, 1),
    }
