"""acp-mcp's measured cost, side by side with the floor (`bench/thin_proxy.py`) on the same SDK and sandbox.

    python -m bench [--quick] [--samples 300] [--cold-samples 30] [--json bench/results/latest.json]

Every comparison is sampled interleaved (A, B, B, A, ...) in one run, so machine noise hits both
sides alike. The sandbox runs in its own process (pace 0), the servers are spawned exactly as MCP
clients spawn them (``python -m acp_mcp`` / ``python -m bench.thin_proxy``) with the same
interpreter, and traffic stays on 127.0.0.1. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bench.balancer import DRAIN_SECONDS, bench_balancer
from bench.processes import close_and_wait, free_port, proc_status, wait_listening

ROOT = Path(__file__).resolve().parent.parent
KEY = "sandbox-bench-key"
SERVER_ID = "srv_bench"
ACP = "acp-mcp"
THIN = "thin"
RUNS = f"servers/{SERVER_ID}/runtime/agent/runs"
CALLS_PER_RUN = 20
"""A fresh run every this many calls, on every side, so responses stay the same size on both."""
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
CLIENT_MODE = "legacy"
"""The 2025-11-25 initialize handshake that Claude Desktop, Cursor and the Inspector use today."""


# -- statistics -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """Median, p99, min and count, scaled (seconds -> ms by default)."""
    return {
        "n": len(values),
        "median": round(statistics.median(values) * scale, 3),
        "p99": round(pct(values, 99) * scale, 3),
        "min": round(min(values) * scale, 3),
    }


# -- processes ------------------------------------------------------------------------------------


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
    """A sandbox process and an HTTP client for it (the direct-call reference and the control routes)."""

    process: subprocess.Popen[bytes]
    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def http(self, **kwargs: Any) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            base_url=self.base_url + "/", headers={"Authorization": f"Bearer {KEY}"}, timeout=120.0, **kwargs
        )

    def control(self, method: str, path: str, body: Any = None) -> Any:
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


_CLAIMED: set[int] = set()
"""Server pids already attributed to a session."""


def server_child(side: str) -> int:
    """The pid of this process's unclaimed child running `side` (the server a stdio `Client` spawned)."""
    me, wanted = os.getpid(), "\0".join(server_args(side)).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in _CLAIMED:
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == me and wanted in (entry / "cmdline").read_bytes():
                    _CLAIMED.add(int(entry.name))
                    return int(entry.name)
    raise RuntimeError(f"no {side} server process found")


@contextlib.asynccontextmanager
async def stdio_session(side: str, env: dict[str, str]) -> AsyncIterator[tuple[Client, int]]:
    """An MCP client session over stdio to a freshly spawned `side`, and the server's pid."""
    params = StdioServerParameters(command=sys.executable, args=server_args(side), env=env, cwd=ROOT)
    errlog = open(os.devnull, "w")  # noqa: ASYNC230, SIM115 - /dev/null never blocks
    try:
        async with Client(_stdio(params, errlog), mode=CLIENT_MODE, read_timeout_seconds=300) as client:
            yield client, server_child(side)
    finally:
        errlog.close()


def _stdio(params: StdioServerParameters, errlog: Any) -> Any:
    from mcp.client.stdio import stdio_client

    return stdio_client(params, errlog=errlog)


class RawStdio:
    """A bare JSON-RPC client over stdio: one line per message, answers matched by id, no result validation.

    It isolates what the server costs: the SDK `Client` also validates every structured result against
    the tool's outputSchema with `jsonschema` in the client process (see `bench_per_call`). Requests may
    be concurrent; a reader task hands each answer to its waiter.
    """

    def __init__(self, process: Any) -> None:
        from anyio.streams.buffered import BufferedByteReceiveStream

        self.process = process
        self.reader = BufferedByteReceiveStream(process.stdout)
        self.last_id = 0
        self.waiting: dict[int, tuple[anyio.Event, list[tuple[dict[str, Any], int]]]] = {}

    async def read_forever(self) -> None:
        while True:
            try:
                line = await self.reader.receive_until(b"\n", 256 * 1024 * 1024)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                return
            message: dict[str, Any] = json.loads(line)
            waiter = self.waiting.pop(message.get("id"), None)  # type: ignore[arg-type]
            if waiter is not None:
                waiter[1].append((message, len(line)))
                waiter[0].set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
        """The answer to one request, and its size in bytes on the wire."""
        self.last_id += 1
        done, box = anyio.Event(), []
        self.waiting[self.last_id] = (done, box)
        await self.send({"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params or {}})
        await done.wait()
        message, size = box[0]
        if "error" in message:
            raise RuntimeError(f"{method} failed: {message['error']}")
        return message["result"], size

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], int]:
        result, size = await self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"tool call failed: {result['content']}")
        return result, size


@contextlib.asynccontextmanager
async def raw_session(side: str, env: dict[str, str]) -> AsyncIterator[tuple[RawStdio, int]]:
    """A `RawStdio` session to a freshly spawned `side` (after initialize and tools/list), and its pid."""
    command = [sys.executable, *server_args(side)]
    async with (
        await anyio.open_process(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL) as process,
        anyio.create_task_group() as group,
    ):
        _CLAIMED.add(process.pid)
        raw = RawStdio(process)
        group.start_soon(raw.read_forever)
        try:
            await raw.request("initialize", INITIALIZE)
            await raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await raw.request("tools/list")
            yield raw, process.pid
        finally:
            await process.stdin.aclose()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
            group.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def together(*managers: contextlib.AbstractAsyncContextManager[Any]) -> AsyncIterator[list[Any]]:
    """Enter several async context managers concurrently (servers start in parallel), each in its own task."""
    values: list[Any] = [None] * len(managers)
    readies = [anyio.Event() for _ in managers]
    stop = anyio.Event()

    async def hold(index: int) -> None:
        async with managers[index] as value:
            values[index] = value
            readies[index].set()
            await stop.wait()

    async with anyio.create_task_group() as group:
        for index in range(len(managers)):
            group.start_soon(hold, index)
        for ready in readies:
            await ready.wait()
        try:
            yield values
        finally:
            stop.set()


# -- sandbox helpers ------------------------------------------------------------------------------


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


def continue_args(run_id: str) -> dict[str, Any]:
    return {"resourceRunId": run_id, "content": "ping", "mode": "sync", "maxEvents": 20}


def result_chars(result: Any) -> dict[str, int]:
    """What a tool result costs the model: text blocks, structured content, and the whole JSON result."""
    text = sum(len(getattr(b, "text", "")) for b in result.content)
    structured = len(json.dumps(result.structured_content)) if result.structured_content is not None else 0
    whole = len(result.model_dump_json(by_alias=True, exclude_none=True))
    return {"text": text, "structured": structured, "total": whole}


def check(result: Any) -> Any:
    if result.is_error:
        raise RuntimeError(f"tool call failed: {result.content}")
    return result


# -- 1. per call over stdio + memory --------------------------------------------------------------


async def bench_per_call(sandbox: Sandbox, samples: int, warmup: int) -> dict[str, Any]:
    """`continue_agent_run` (sync) through each server over stdio, and a direct POST, interleaved.

    Each server is driven twice, by two processes of it: a bare JSON-RPC client (`RawStdio`: what the
    server costs) and the SDK's `Client` (what a Python MCP client sees, including its jsonschema
    validation of the result against the tool's outputSchema)."""
    env = base_env(sandbox.base_url)
    sides = (ACP, THIN, "direct", f"{ACP}/sdk", f"{THIN}/sdk")
    timings: dict[str, list[float]] = {side: [] for side in sides}
    sizes: dict[str, Any] = {}
    memory: dict[str, dict[str, float]] = {}
    async with (
        sandbox.http() as http,
        together(
            raw_session(ACP, env), raw_session(THIN, env), stdio_session(ACP, env), stdio_session(THIN, env)
        ) as sessions,
    ):
        (acp, acp_pid), (thin, thin_pid), (acp_sdk, _), (thin_sdk, _) = sessions
        memory[ACP] = {"idle_after_init": proc_status(acp_pid)["VmRSS"]}
        memory[THIN] = {"idle_after_init": proc_status(thin_pid)["VmRSS"]}
        runs: dict[str, str] = {}

        async def call(side: str) -> None:
            run_id = runs[side]
            if side == "direct":
                body = {"content": "ping", "mode": "sync"}
                (await http.post(f"{RUNS}/{run_id}/input", json=body)).raise_for_status()
            elif side in (ACP, THIN):
                raw = acp if side == ACP else thin
                result, wire = await raw.call_tool("continue_agent_run", continue_args(run_id))
                sizes[side] = {"wire_bytes": wire, "structured": len(json.dumps(result.get("structuredContent")))}
            else:
                client = acp_sdk if side.startswith(ACP) else thin_sdk
                check(await client.call_tool("continue_agent_run", continue_args(run_id)))

        total = warmup + samples
        for i in range(total):
            if i % CALLS_PER_RUN == 0:
                runs = dict(zip(sides, await new_runs(http, len(sides)), strict=True))
            for side in sides if i % 2 == 0 else reversed(sides):
                began = time.perf_counter()
                await call(side)
                if i >= warmup:
                    timings[side].append(time.perf_counter() - began)
        for side, pid in ((ACP, acp_pid), (THIN, thin_pid)):
            status = proc_status(pid)
            memory[side] |= {"rss_after_calls": status["VmRSS"], "peak_hwm": status["VmHWM"]}
        validation = []
        result = check(await acp_sdk.call_tool("continue_agent_run", continue_args(runs[f"{ACP}/sdk"])))
        for _ in range(50):
            began = time.perf_counter()
            await acp_sdk.session.validate_tool_result("continue_agent_run", result)
            validation.append(time.perf_counter() - began)
    out: dict[str, Any] = {side: summary(values) for side, values in timings.items()}
    for prefix, suffix in (("", ""), ("sdk_", "/sdk")):
        a, t = out[ACP + suffix], out[THIN + suffix]
        out[prefix + "ratio_median"] = round(a["median"] / t["median"], 3)
        out[prefix + "ratio_p99"] = round(a["p99"] / t["p99"], 3)
        out[prefix + "overhead_median_ms"] = round(a["median"] - t["median"], 3)
    out["sdk_client_output_schema_validation_ms"] = summary(validation)
    out["result_size"] = sizes
    out["memory_mib"] = memory
    return out


# -- 2. cold start --------------------------------------------------------------------------------


def _rpc(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()


def _answer(process: subprocess.Popen[bytes], request_id: int) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("server closed stdout during start-up")
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message


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
        _rpc(
            process,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": INITIALIZE,
            },
        )
        _answer(process, 1)
        _rpc(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        listed = _answer(process, 2)
        elapsed = time.perf_counter() - began
        tools = listed["result"]["tools"]
        wire = len(json.dumps(listed, separators=(",", ":")))
        rss = proc_status(process.pid)["VmRSS"]
    finally:
        close_and_wait(process)
    return elapsed, rss, len(tools), wire


def bench_cold_start(sandbox: Sandbox, samples: int) -> dict[str, Any]:
    env = base_env(sandbox.base_url)
    times: dict[str, list[float]] = {ACP: [], THIN: []}
    rss: dict[str, list[float]] = {ACP: [], THIN: []}
    tools: dict[str, int] = {}
    wire: dict[str, int] = {}
    for side in (ACP, THIN) if samples > 1 else ():  # warm the .pyc caches, not counted
        cold_start_once(side, env)
    for i in range(samples):
        for side in (ACP, THIN) if i % 2 == 0 else (THIN, ACP):
            seconds, mib, tools[side], wire[side] = cold_start_once(side, env)
            times[side].append(seconds)
            rss[side].append(mib)
    out: dict[str, Any] = {side: summary(values) for side, values in times.items()}
    out["ratio_median"] = round(out[ACP]["median"] / out[THIN]["median"], 3)
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
import acp_mcp.cli, acp_mcp.server
from acp_mcp.config import Settings
t3 = time.perf_counter()
acp_mcp.server.build_server(Settings())
t4 = time.perf_counter()
from pydantic import TypeAdapter
from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema
from acp_mcp.results import RunResult
TypeAdapter(RunResult).json_schema(schema_generator=StrictJsonSchema)
t5 = time.perf_counter()
print(json.dumps({"sdk_and_httpx2": t1 - t0, "thin_proxy_module": t2 - t1, "acp_mcp_imports": t3 - t2,
                  "acp_build_server": t4 - t3, "run_result_output_schema_once": t5 - t4}))
"""


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


# -- 3. concurrency -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_concurrency(concurrency: int, rounds: int, latency: float) -> dict[str, Any]:
    """One call vs `concurrency` concurrent calls in one stdio session (bare JSON-RPC client), each call
    on its own run, against a sandbox that adds `latency` seconds to every request; with the server's
    CPU time during each burst, which is what bounds it."""
    out: dict[str, Any] = {"latency_s": latency, "concurrency": concurrency}
    singles: dict[str, list[float]] = {ACP: [], THIN: []}
    bursts: dict[str, list[float]] = {ACP: [], THIN: []}
    burst_cpu: dict[str, list[float]] = {ACP: [], THIN: []}
    with sandbox_process(latency=latency) as sandbox:
        env = base_env(sandbox.base_url)
        async with (
            sandbox.http(limits=httpx2.Limits(max_connections=1000)) as http,
            together(raw_session(ACP, env), raw_session(THIN, env)) as sessions,
        ):
            (acp, acp_pid), (thin, thin_pid) = sessions
            clients = {ACP: (acp, acp_pid), THIN: (thin, thin_pid)}
            pool = await new_runs(http, 2 * rounds * (concurrency + 3) + 2)
            for side in (ACP, THIN):  # warm the connection pools
                await clients[side][0].call_tool("continue_agent_run", continue_args(pool.pop()))
            for r in range(rounds):
                for side in (ACP, THIN) if r % 2 == 0 else (THIN, ACP):
                    client, pid = clients[side]
                    for _ in range(3):
                        began = time.perf_counter()
                        await client.call_tool("continue_agent_run", continue_args(pool.pop()))
                        singles[side].append(time.perf_counter() - began)
                    ids = [pool.pop() for _ in range(concurrency)]
                    cpu_before = cpu_seconds(pid)
                    began = time.perf_counter()
                    async with anyio.create_task_group() as group:
                        for run_id in ids:
                            group.start_soon(client.call_tool, "continue_agent_run", continue_args(run_id))
                    bursts[side].append(time.perf_counter() - began)
                    burst_cpu[side].append(cpu_seconds(pid) - cpu_before)
    for side in (ACP, THIN):
        one = statistics.median(singles[side])
        burst = statistics.median(bursts[side])
        cpu = statistics.median(burst_cpu[side])
        out[side] = {
            "one_call_ms": round(one * 1000, 1),
            "burst_wall_ms": round(burst * 1000, 1),
            "ratio": round(burst / one, 3),
            "server_cpu_per_burst_ms": round(cpu * 1000),
            "server_cpu_per_call_ms": round(cpu * 1000 / concurrency, 2),
            "bursts": len(bursts[side]),
        }
    return out


# -- 4. big runs ----------------------------------------------------------------------------------


def bench_shaping(raw: bytes, reps: int) -> dict[str, Any]:
    """Parse and shape a big run in this process: json.loads, RunEnvelope validation, shape_run, tool_result."""
    from acp_mcp.models import RunEnvelope
    from acp_mcp.results import shape_run
    from acp_mcp.tools import tool_result

    stages: dict[str, list[float]] = {"json_loads": [], "validate": [], "shape_run": [], "tool_result": []}
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
    out: dict[str, Any] = {name: summary(values) for name, values in stages.items()}
    out["result_chars"] = result_chars(result)
    return out


async def bench_big_run(sandbox: Sandbox, events: int, size: int, reps: int, session: Any) -> dict[str, Any]:
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
        result = None
        for _ in range(reps):
            began = time.perf_counter()
            result = check(await acp.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 0}))
            calls.append(time.perf_counter() - began)
        memory = proc_status(pid)
    out: dict[str, Any] = {
        "events": events,
        "event_size": size,
        "upstream_bytes": len(raw),
        "direct_get_events": summary(fetches),
        "get_agent_run_stdio": summary(calls),
        "get_agent_run_chars": result_chars(result),
        "server_memory_mib": memory,
        "in_process": bench_shaping(raw, reps),
    }
    return out


# -- 5. polling -----------------------------------------------------------------------------------


async def big_run_and_polling(sandbox: Sandbox, options: Options) -> dict[str, Any]:
    """Both sections in one acp-mcp stdio session (one server start fewer)."""
    async with stdio_session(ACP, base_env(sandbox.base_url)) as session:
        big: dict[str, Any] = {}
        wanted = options.only or list(SECTIONS)
        if "big_run" in wanted:
            big = await bench_big_run(sandbox, options.big_events, options.big_size, options.big_reps, session)
        if "polling" in wanted:
            began = time.perf_counter()
            big["polling"] = await bench_polling(sandbox, options.poll_wait, options.completions, session)
            big["polling"]["section_seconds"] = round(time.perf_counter() - began, 1)
        return big


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


async def bench_polling(sandbox: Sandbox, wait: float, completions: list[float], session: Any) -> dict[str, Any]:
    """Requests spent waiting on a run that never finishes, and how late a completion is noticed."""
    acp, _ = session
    out: dict[str, Any] = {"planned_requests_per_60s": planned_polls(60.0), "worst_case_notice": worst_cases(4)}
    async with sandbox.http() as http:
        response = await http.post(RUNS, json={"content": "/hang", "mode": "async"})
        run_id = response.json()["run"]["id"]
        sandbox.control("DELETE", "/_sandbox/requests")
        began = time.perf_counter()
        result = check(await acp.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": wait}))
        waited = time.perf_counter() - began
        log = sandbox.control("GET", "/_sandbox/requests")["requests"]
        count = sum(1 for r in log if run_id in r["path"])
        await http.post(f"{RUNS}/{run_id}/cancel", json={})
        out["hang"] = {
            "wait_s": wait,
            "waited_s": round(waited, 2),
            "requests": count,
            "planned_requests": planned_polls(wait),
            "per_minute": round(count * 60 / wait, 1),
            "wait_expired": (result.structured_content or {}).get("waitExpired"),
        }
        notices = []
        for after in completions:
            sandbox.control("PUT", "/_sandbox/pace", {"pace": after / 2})  # a plain turn takes two paces
            began_wall = time.time()
            response = await http.post(RUNS, json={"content": "notice me", "mode": "async"})
            run_id = response.json()["run"]["id"]
            result = check(await acp.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 45}))
            returned = time.time()
            run = (result.structured_content or {}).get("run") or {}
            completed = datetime.fromisoformat(run["completedAt"].replace("Z", "+00:00")).timestamp()
            notices.append(
                {
                    "completes_after_s": round(completed - began_wall, 2),
                    "noticed_after_ms": round((returned - completed) * 1000),
                    "status": run.get("status"),
                }
            )
        sandbox.control("PUT", "/_sandbox/pace", {"pace": 0})
    out["notice"] = notices
    return out


# -- 6. streamable HTTP throughput ----------------------------------------------------------------


@contextlib.contextmanager
def http_servers(env: dict[str, str], *sides: str) -> Iterator[list[tuple[str, int]]]:
    """Each side served over streamable HTTP on its own port (started in parallel): (URL, pid) each."""
    with contextlib.ExitStack() as stack:
        started = []
        for side in sides:
            port = free_port()
            command = [sys.executable, *server_args(side, "--transport", "streamable-http", "--port", str(port))]
            devnull = subprocess.DEVNULL
            process = stack.enter_context(
                subprocess.Popen(command, env=env, cwd=ROOT, stdin=devnull, stdout=devnull, stderr=devnull)
            )
            stack.callback(_stop, process)
            started.append((port, process))
        for port, process in started:
            wait_listening(port, process)
        yield [(f"http://127.0.0.1:{port}/mcp", process.pid) for port, process in started]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


async def _no_validation(name: str, result: Any) -> None:
    """Stands in for `ClientSession.validate_tool_result` on the "bare" sessions."""


async def bench_http(sandbox: Sandbox, concurrency: int, calls_per_round: int, rounds: int) -> dict[str, Any]:
    """Throughput at `concurrency` sessions over streamable HTTP, rounds alternating between the sides.

    Every side is driven twice: by SDK `Client`s as shipped, and by SDK `Client`s whose outputSchema
    validation is switched off ("bare"), since this load generator shares the 2 cores with the server."""
    env = base_env(sandbox.base_url)
    variants = [(side, bare) for bare in (False, True) for side in (ACP, THIN)]
    names = [f"{side}{'/bare' if bare else ''}" for side, bare in variants]
    wall: dict[str, list[float]] = {name: [] for name in names}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    per_worker = max(1, calls_per_round // concurrency)
    with http_servers(env, ACP, THIN) as ((acp_url, acp_pid), (thin_url, thin_pid)):
        urls = {ACP: acp_url, THIN: thin_url}
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(sandbox.http())
            sessions: dict[str, list[Client]] = {name: [] for name in names}
            managers = []
            for side, _ in variants:
                for _ in range(concurrency):
                    client_http = await stack.enter_async_context(httpx2.AsyncClient(timeout=120))
                    transport = streamable_http_client(urls[side], http_client=client_http)
                    managers.append(Client(transport, mode=CLIENT_MODE))
            clients = iter(await stack.enter_async_context(together(*managers)))
            for name, (_, bare) in zip(names, variants, strict=True):
                for _ in range(concurrency):
                    client = next(clients)
                    if bare:
                        client.session.validate_tool_result = _no_validation  # type: ignore[method-assign]
                    sessions[name].append(client)
            first = 0 if rounds > 1 else 1  # round 0 warms up (skipped in --quick)
            for r in range(first, rounds + 1):
                for name in names if r % 2 == 0 else list(reversed(names)):
                    ids = await new_runs(http, concurrency)
                    times: list[float] = []

                    async def worker(client: Client, run_id: str, times: list[float] = times) -> None:
                        for _ in range(per_worker):
                            began = time.perf_counter()
                            check(await client.call_tool("continue_agent_run", continue_args(run_id)))
                            times.append(time.perf_counter() - began)

                    began = time.perf_counter()
                    async with anyio.create_task_group() as group:
                        for client, run_id in zip(sessions[name], ids, strict=True):
                            group.start_soon(worker, client, run_id)
                    if r:
                        wall[name].append(time.perf_counter() - began)
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
    out["throughput_ratio"] = round(out[ACP]["calls_per_second"] / out[THIN]["calls_per_second"], 3)
    bare = out[f"{ACP}/bare"]["calls_per_second"] / out[f"{THIN}/bare"]["calls_per_second"]
    out["bare_throughput_ratio"] = round(bare, 3)
    return out


# -- the suite ------------------------------------------------------------------------------------


@dataclass
class Options:
    samples: int = 300
    warmup: int = 20
    cold_samples: int = 30
    concurrency: int = 100
    concurrency_rounds: int = 5
    latency: float = 0.2
    big_events: int = 10_000
    big_size: int = 1_000
    big_reps: int = 10
    poll_wait: float = 20.0
    completions: list[float] = field(default_factory=lambda: [0.6, 1.2, 2.0, 4.0, 10.0])
    http_concurrency: int = 20
    http_calls_per_round: int = 100
    http_rounds: int = 4
    balancer_calls: int = 300
    balancer_concurrency: int = 20
    only: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls) -> Options:
        return cls(
            samples=10,
            warmup=2,
            cold_samples=1,
            concurrency=10,
            concurrency_rounds=1,
            latency=0.05,
            big_events=1_000,
            big_reps=2,
            poll_wait=1.0,
            completions=[0.6],
            http_concurrency=2,
            http_calls_per_round=4,
            http_rounds=1,
            balancer_calls=12,
            balancer_concurrency=2,
        )


SECTIONS = ("cold_start", "per_call", "concurrency", "big_run", "polling", "http", "balancer")


def run_suite(options: Options, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every section (or `options.only`) and return the results."""
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_before": list(os.getloadavg()),
        "options": options.__dict__,
        "client_mode": CLIENT_MODE,
    }
    wanted = options.only or list(SECTIONS)

    def section(name: str, run: Callable[[], Any]) -> None:
        if name in wanted:
            report(f"... {name}")
            began = time.perf_counter()
            results[name] = run()
            results[name]["section_seconds"] = round(time.perf_counter() - began, 1)

    def arun(fn: Callable[..., Awaitable[dict[str, Any]]], *args: Any) -> Callable[[], dict[str, Any]]:
        return lambda: anyio.run(fn, *args)

    with sandbox_process() as sandbox:
        section("cold_start", lambda: bench_cold_start(sandbox, options.cold_samples))
        section("per_call", arun(bench_per_call, sandbox, options.samples, options.warmup))
        section(
            "concurrency", arun(bench_concurrency, options.concurrency, options.concurrency_rounds, options.latency)
        )
        if {"big_run", "polling"} & set(wanted):
            section("big_run", arun(big_run_and_polling, sandbox, options))
            results["polling"] = results["big_run"].pop("polling", None)
            if results["polling"] is None:
                del results["polling"]
            if "big_run" not in wanted:
                del results["big_run"]
        section(
            "http",
            arun(bench_http, sandbox, options.http_concurrency, options.http_calls_per_round, options.http_rounds),
        )
        section(
            "balancer",
            lambda: bench_balancer(base_env(sandbox.base_url), options.balancer_calls, options.balancer_concurrency),
        )
    if "cold_start" in wanted and options.cold_samples > 1:
        results["cold_start"]["startup_breakdown_ms"] = startup_breakdown(5)
    results["load_after"] = list(os.getloadavg())
    results["targets"] = targets(results)
    return results


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met."""
    rows: list[dict[str, Any]] = []

    def row(name: str, target: str, measured: str, met: bool) -> None:
        rows.append({"name": name, "target": target, "measured": measured, "met": met})

    if "per_call" in results:
        p = results["per_call"]
        row(
            "per call over stdio (bare JSON-RPC client)",
            "<= 1.2x thin",
            f"{p[ACP]['median']:.2f} vs {p[THIN]['median']:.2f} ms median ({p['ratio_median']}x); "
            f"p99 {p[ACP]['p99']:.2f} vs {p[THIN]['p99']:.2f} ({p['ratio_p99']}x); "
            f"direct POST {p['direct']['median']:.2f}",
            p["ratio_median"] <= 1.2,
        )
        a, t, v = p[f"{ACP}/sdk"], p[f"{THIN}/sdk"], p["sdk_client_output_schema_validation_ms"]
        row(
            "per call over stdio (Python SDK `Client`)",
            "<= 1.2x thin",
            f"{a['median']:.2f} vs {t['median']:.2f} ms median ({p['sdk_ratio_median']}x); "
            f"p99 {a['p99']:.2f} vs {t['p99']:.2f}; of which client-side outputSchema check {v['median']:.2f} ms",
            p["sdk_ratio_median"] <= 1.2,
        )
        m = p["memory_mib"]
        ratio = m[ACP]["peak_hwm"] / m[THIN]["peak_hwm"]
        row(
            "peak RSS (VmHWM)",
            "<= 1.15x thin",
            f"{m[ACP]['peak_hwm']:.1f} vs {m[THIN]['peak_hwm']:.1f} MiB ({ratio:.3f}x)",
            ratio <= 1.15,
        )
    if "cold_start" in results:
        c = results["cold_start"]
        row(
            "cold start to tools/list",
            "<= 1.1x thin",
            f"{c['ratio_paired_median']}x (median of {c[ACP]['n']} back-to-back pairs); medians "
            f"{c[ACP]['median']:.0f} vs {c[THIN]['median']:.0f} ms ({c['ratio_median']}x), "
            f"min {c[ACP]['min']:.0f} vs {c[THIN]['min']:.0f} ms",
            c["ratio_paired_median"] <= 1.1,
        )
        chars = c["tools_list_wire_chars"][ACP]
        row("tools/list on the wire", "<= 15,000 characters", f"{chars:,} characters", chars <= 15_000)
        idle = c["idle_rss_mib"]
        row("idle RSS after tools/list", "(info)", f"{idle[ACP]:.1f} vs {idle[THIN]:.1f} MiB", True)
    if "concurrency" in results:
        k = results["concurrency"]
        row(
            f"{k['concurrency']} concurrent calls, one session, {k['latency_s'] * 1000:.0f} ms upstream",
            "<= 1.5x one call",
            f"{k[ACP]['burst_wall_ms']:.0f} vs {k[ACP]['one_call_ms']:.0f} ms ({k[ACP]['ratio']}x); "
            f"thin {k[THIN]['burst_wall_ms']:.0f} vs {k[THIN]['one_call_ms']:.0f} ms ({k[THIN]['ratio']}x); "
            f"server CPU {k[ACP]['server_cpu_per_call_ms']} vs {k[THIN]['server_cpu_per_call_ms']} ms per call",
            k[ACP]["ratio"] <= 1.5,
        )
    if "big_run" in results:
        b = results["big_run"]
        shaped = b["in_process"]["shape_run"]["median"] + b["in_process"]["tool_result"]["median"]
        chars = b["get_agent_run_chars"]["total"]
        row(
            f"big run ({b['events']:,} events, {b['upstream_bytes'] / 1e6:.1f} MB)",
            "<= 100 ms, <= 25,000 chars",
            f"shaped in {shaped:.2f} ms; {chars:,} chars; get_agent_run {b['get_agent_run_stdio']['median']:.0f} ms "
            f"(parse {b['in_process']['json_loads']['median'] + b['in_process']['validate']['median']:.0f} ms)",
            shaped <= 100 and chars <= 25_000,
        )
    if "polling" in results:
        h = results["polling"]
        early = [n["noticed_after_ms"] for n in h["notice"] if n["completes_after_s"] <= 2.5]
        row(
            "polling a run that never ends",
            "<= 15 requests/min",
            f"{h['hang']['requests']} in {h['hang']['wait_s']:g} s real; "
            f"{h['planned_requests_per_60s']} per 60 s planned",
            h["planned_requests_per_60s"] <= 15 and h["hang"]["requests"] <= h["hang"]["planned_requests"],
        )
        worst = "; ".join(
            f"{w['worst_delay_s']:g} s if done in ({w['from_s']:g}, {w['to_s']:g}] s"
            for w in h["worst_case_notice"][:3]
        )
        row(
            "noticing a completion",
            "~1 s early on",
            "measured: "
            + ", ".join(f"{n['noticed_after_ms']} ms after a {n['completes_after_s']:g} s run" for n in h["notice"])
            + f"; worst case by policy: {worst}",
            bool(early) and max(early) <= 1100,
        )
    if "http" in results:
        t = results["http"]
        a, b = t[f"{ACP}/bare"], t[f"{THIN}/bare"]
        row(
            f"streamable HTTP, {t['concurrency']} sessions",
            "(info) vs thin",
            f"{a['calls_per_second']} vs {b['calls_per_second']} calls/s ({t['bare_throughput_ratio']}x) with "
            f"bare clients; {t[ACP]['calls_per_second']} vs {t[THIN]['calls_per_second']} "
            f"({t['throughput_ratio']}x) with SDK clients validating outputSchema",
            True,
        )
    if "balancer" in results:
        lb = results["balancer"]
        curve = ", ".join(
            f"{n}: {lb[f'replicas_{n}']['calls_per_second']} calls/s, p99 {lb[f'replicas_{n}']['p99_ms']:.0f} ms"
            for n in (1, 2, 3)
        )
        row(f"HAProxy, {lb['concurrency']} clients, 1/2/3 replicas", "(info)", curve, True)
        d = lb["drain"]
        row(
            "a replica drained mid-load",
            f"exit <= {DRAIN_SECONDS} s, every call answered",
            f"exited {d['exit_seconds']} s after SIGTERM; {d['calls_completed']} of {lb['calls']} calls answered, "
            f"slowest {d['max_latency_ms']:.0f} ms",
            d["exit_seconds"] <= DRAIN_SECONDS and d["calls_completed"] == lb["calls"],
        )
    return rows


def render(results: dict[str, Any]) -> str:
    lines = ["| Measure | Target | Measured (acp-mcp vs thin proxy) | Met |", "|---|---|---|---|"]
    lines += [
        f"| {r['name']} | {r['target']} | {r['measured']} | {'yes' if r['met'] else '**no**'} |"
        for r in results["targets"]
    ]
    load = ", ".join(f"{x:.2f}" for x in results["load_before"])
    lines.append(f"\nPython {results['python']}, {results['cpus']} CPUs, load average before: {load}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="minimal sample counts (a smoke test, not a measurement)")
    parser.add_argument("--samples", type=int, help="per-call samples per side (default 300)")
    parser.add_argument("--cold-samples", type=int, help="cold starts per side (default 30)")
    parser.add_argument("--poll-wait", type=float, help="seconds of real waiting on a hung run (default 20)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json", help="JSON output")
    args = parser.parse_args(argv)
    options = Options.quick() if args.quick else Options()
    if args.samples:
        options.samples = args.samples
    if args.cold_samples:
        options.cold_samples = args.cold_samples
    if args.poll_wait:
        options.poll_wait = args.poll_wait
    options.only = args.only or []
    results = run_suite(options, report=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0
