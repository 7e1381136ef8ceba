"""The clients the sections drive the servers with: the SDK's `Client`, two bare JSON-RPC clients over stdio,
and bare JSON-RPC POSTs to a stateless streamable HTTP server (`post_message`).

The bare clients (`RawStdio`, asynchronous, and `SyncStdio`, blocking, for start-up timing) isolate what
the server costs: the SDK `Client` also validates every structured result against the tool's outputSchema
with `jsonschema`, in the client process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from anyio.abc import ByteSendStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from bench.harness import ROOT, server_args
from bench.processes import Children

INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CLIENT_MODE = "legacy"
"""The 2025-11-25 initialize handshake that Claude Desktop, Cursor and the Inspector use today."""
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
"""What a POST to the MCP endpoint carries (the answer may be JSON or one SSE stream)."""
Message = dict[str, Any]


def request(request_id: int, method: str, params: Message | None = None) -> Message:
    """A JSON-RPC request (without ``params`` when `params` is None)."""
    message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    return message if params is None else message | {"params": params}


def line(message: Message) -> bytes:
    """`message` as one line of the stdio transport."""
    return json.dumps(message).encode() + b"\n"


@dataclass
class _Waiter:
    done: anyio.Event = field(default_factory=anyio.Event)
    answers: list[tuple[Message, int]] = field(default_factory=list)


class RawStdio:
    """A bare JSON-RPC client over stdio: one line per message, answers matched by id, no result validation.

    Requests may be concurrent; `read_forever` (a task) hands each answer to its waiter.
    """

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.stdin: ByteSendStream = process.stdin
        self.reader = BufferedByteReceiveStream(process.stdout)
        self.last_id = 0
        self.waiting: dict[int, _Waiter] = {}

    async def read_forever(self) -> None:
        """Route every answer to its waiter until the server closes stdout."""
        while True:
            try:
                received = await self.reader.receive_until(b"\n", 256 * 1024 * 1024)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                return
            message: Message = json.loads(received)
            waiter = self.waiting.pop(message.get("id", -1), None)
            if waiter is not None:
                waiter.answers.append((message, len(received)))
                waiter.done.set()

    async def send(self, message: Message) -> None:
        """Write one message."""
        await self.stdin.send(line(message))

    async def request(self, method: str, params: Message | None = None) -> tuple[Message, int]:
        """The result of one request, and the answer's size in bytes on the wire."""
        self.last_id += 1
        waiter = self.waiting[self.last_id] = _Waiter()
        await self.send(request(self.last_id, method, params or {}))
        await waiter.done.wait()
        message, size = waiter.answers[0]
        if "error" in message:
            raise RuntimeError(f"{method} failed: {message['error']}")
        return message["result"], size

    async def call_tool(self, name: str, arguments: Message) -> tuple[Message, int]:
        """One tools/call that must not fail: its result and size on the wire."""
        result, size = await self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"tool call failed: {result['content']}")
        return result, size


async def post_message(http: httpx2.AsyncClient, url: str, message: Message, token: str) -> Message:
    """POST one JSON-RPC request with ``Authorization: Bearer <token>`` to a stateless streamable HTTP server
    (no initialize needed) and return its answer: `RuntimeError` for another HTTP status or no answer."""
    response = await http.post(url, json=message, headers=MCP_HEADERS | {"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise RuntimeError(f"{message['method']}: HTTP {response.status_code}")
    if response.headers.get("content-type", "").startswith("application/json"):
        answer: Message = response.json()
        return answer
    for data in response.text.splitlines():
        if data.startswith("data:") and data[5:].strip():
            answer = json.loads(data[5:])
            if answer.get("id") == message["id"]:
                return answer
    raise RuntimeError(f"{message['method']}: no answer in the event stream")


class SyncStdio:
    """A bare blocking JSON-RPC client on a `subprocess.Popen`'s pipes (times a server's start-up)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.stdin, self.stdout = process.stdin, process.stdout

    def send(self, message: Message) -> None:
        """Write one message and flush it."""
        self.stdin.write(line(message))
        self.stdin.flush()

    def answer(self, request_id: int) -> Message:
        """The next message answering `request_id` (others are skipped)."""
        while True:
            received = self.stdout.readline()
            if not received:
                raise RuntimeError("server closed stdout during start-up")
            message: Message = json.loads(received)
            if message.get("id") == request_id:
                return message


@contextlib.asynccontextmanager
async def stdio_session(side: str, env: dict[str, str], children: Children) -> AsyncIterator[tuple[Client, int]]:
    """An SDK `Client` session over stdio to a freshly spawned `side`, and the server's pid."""
    params = StdioServerParameters(command=sys.executable, args=server_args(side), env=env, cwd=ROOT)
    errlog = open(os.devnull, "w")  # noqa: ASYNC230, SIM115 - /dev/null never blocks
    try:
        async with Client(stdio_client(params, errlog=errlog), mode=CLIENT_MODE, read_timeout_seconds=300) as client:
            yield client, children.find(server_args(side))
    finally:
        errlog.close()


@contextlib.asynccontextmanager
async def raw_session(side: str, env: dict[str, str], children: Children) -> AsyncIterator[tuple[RawStdio, int]]:
    """A `RawStdio` session to a freshly spawned `side` (after initialize and tools/list), and its pid."""
    command = [sys.executable, *server_args(side)]
    async with (
        await anyio.open_process(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL) as process,
        anyio.create_task_group() as group,
    ):
        children.claim(process.pid)  # before a concurrent `stdio_session` looks for its own server
        raw = RawStdio(process)
        group.start_soon(raw.read_forever)
        try:
            await raw.request("initialize", INITIALIZE)
            await raw.send(INITIALIZED)
            await raw.request("tools/list")
            yield raw, process.pid
        finally:
            await raw.stdin.aclose()
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


def continue_args(run_id: str) -> dict[str, Any]:
    """The arguments of the ``continue_agent_run`` call every side is timed on."""
    return {"resourceRunId": run_id, "content": "ping", "mode": "sync", "maxEvents": 20}


def check(result: CallToolResult) -> CallToolResult:
    """`result`, unless it is a tool error."""
    if result.is_error:
        raise RuntimeError(f"tool call failed: {result.content}")
    return result


def result_chars(result: CallToolResult) -> dict[str, int]:
    """What a tool result costs the model: text blocks, structured content, and the whole JSON result."""
    text = sum(len(getattr(b, "text", "")) for b in result.content)
    structured = len(json.dumps(result.structured_content)) if result.structured_content is not None else 0
    whole = len(result.model_dump_json(by_alias=True, exclude_none=True))
    return {"text": text, "structured": structured, "total": whole}
