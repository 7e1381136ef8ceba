"""Shared fixtures: one real sandbox on loopback per session, and MCP clients connected to the server.

Tests talk to the server only through `mcp.Client` (in-process here, over stdio in
`test_stdio.py`), and the server talks to the sandbox over real HTTP. Each test starts with an
empty request log, no pending faults and a fast sandbox pace.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.extension import ClientExtension
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from acp_mcp.clock import Clock, SystemClock, VirtualClock
from acp_mcp.composition import compose
from acp_mcp.config import Settings
from acp_mcp.sandbox import VARIANTS, RecordedRequest, RunningSandbox, SandboxState, parse_variants, serve_in_thread
from acp_mcp.waiting import PollPolicy

from ._tooling import RUNNING

API_KEY = "tb_test_key_0123456789abcdef"
SERVER_ID = "srv_test"
FAST_PACE = 0.01
FAST_POLLS = PollPolicy(first_interval=0.02, factor=1.5, max_interval=0.2, progress_interval=0.1, grace=1.0)

_ENV_PREFIXES = ("COMPUTER_AGENTS_", "TESTBASE_", "ACP_MCP_", "ACP_SERVER_ID", "ACP_SANDBOX_", "OTEL_")


COMPAT_SUITE = "tests/compat/"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of the client compatibility suite is in the ``compat`` lane."""
    for item in items:
        if item.nodeid.startswith(COMPAT_SUITE):
            item.add_marker(pytest.mark.compat)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remember the test being set up, so a fast-lane test that reaches for a heavy tool fails (`heavy_lane`)."""
    RUNNING["test"] = item


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own key, base URL, server settings or OpenTelemetry exporters."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxState(api_key=API_KEY, pace=FAST_PACE)) as running:
        yield running


DEFAULT_READING = "documented"
"""The sandbox's own reading (no variant), as a `variant` parameter."""
EVERY_READING = [DEFAULT_READING, *VARIANTS]
"""The sandbox's own reading, then each variant alone: parametrize `variant` with these (`readings`)."""


def readings(*variants: str) -> pytest.MarkDecorator:
    """Run the test under the sandbox's own reading and each of `variants` (default every variant)."""
    chosen = [DEFAULT_READING, *variants] if variants else EVERY_READING
    return pytest.mark.parametrize("variant", chosen, indirect=True)


@pytest.fixture
def variant(request: pytest.FixtureRequest) -> str:
    """The reading of the API the sandbox plays for this test: `DEFAULT_READING` unless parametrized (`readings`)."""
    return str(getattr(request, "param", DEFAULT_READING))


@pytest.fixture
def sandbox(running_sandbox: RunningSandbox, variant: str) -> Iterator[RunningSandbox]:
    """The session's sandbox, reset for this test and playing its `variant` (and its clock back to real time and
    its own reading after it)."""
    state = running_sandbox.state
    state.clear_requests()
    state.clear_faults()
    state.clear_resources()
    state.pace = FAST_PACE
    state.variants = frozenset() if variant == DEFAULT_READING else parse_variants(variant)
    yield running_sandbox
    state.clock = SystemClock()
    state.variants = frozenset()


@pytest.fixture
def clock(sandbox: RunningSandbox) -> VirtualClock:
    """Virtual time shared by the sandbox and (passed to `connect`) the server: runs take exactly their
    paced seconds and waits exactly theirs, in milliseconds of real time."""
    virtual = VirtualClock()
    sandbox.state.clock = virtual
    return virtual


@pytest.fixture
def settings(sandbox: RunningSandbox) -> Settings:
    return Settings(api_key=SecretStr(API_KEY), base_url=sandbox.base_url, request_timeout=5.0)


def sandbox_env(sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    """The variables that point a server process at the sandbox with the test key, plus `extra`."""
    return {"COMPUTER_AGENTS_API_KEY": API_KEY, "COMPUTER_AGENTS_BASE_URL": sandbox.base_url, **extra}


@asynccontextmanager
async def connect(
    settings: Settings,
    *,
    mode: ConnectMode = "auto",
    policy: PollPolicy = FAST_POLLS,
    clock: Clock | None = None,
    extensions: Sequence[ClientExtension] = (),
) -> AsyncIterator[Client]:
    """An MCP client connected in-process to a server built from `settings` (on `clock`, if given: its
    retries, Retry-After waits, wait loop and deadlines then run on it), declaring `extensions`."""
    server = compose(settings, policy=policy, clock=clock).server
    async with Client(server, mode=mode, extensions=list(extensions)) as client:
        yield client


def runs_path(server_id: str = SERVER_ID) -> str:
    """The API path of a server's runs collection (the start and list endpoint)."""
    return f"/v1/servers/{server_id}/runtime/agent/runs"


def fresh_server_id() -> str:
    """A server id no other test uses, so a listing holds only this test's runs."""
    return f"srv_{uuid.uuid4().hex[:10]}"


def api_calls(requests: list[RecordedRequest], server_id: str = SERVER_ID) -> list[tuple[str, str]]:
    """(method, path below the server's runs collection) of each request, e.g. ("GET", "/run_1/events")."""
    prefix = runs_path(server_id)
    assert all(r.path.startswith(prefix) for r in requests), [r.path for r in requests]
    return [(r.method, r.path[len(prefix) :]) for r in requests]


START_MARKER = re.compile(r"[0-9a-f]{32}")


def unmarked(body: Any) -> Any:
    """A start's body as the caller gave it: its marker (``metadata.acpMcpStart``, 32 hex digits) checked and
    taken out, and ``metadata`` with it when the marker was all it held."""
    assert isinstance(body, dict), body
    metadata = dict(body["metadata"])
    assert START_MARKER.fullmatch(metadata.pop("acpMcpStart")), body
    rest = {name: value for name, value in body.items() if name != "metadata"}
    return {**rest, "metadata": metadata} if metadata else rest


def marked(body: dict[str, Any], sent: Any) -> dict[str, Any]:
    """`body` as a start sends it: with the marker the request `sent` carried (checked) added to its metadata."""
    marker = sent["metadata"]["acpMcpStart"]
    assert START_MARKER.fullmatch(marker), sent
    return {**body, "metadata": {**(body.get("metadata") or {}), "acpMcpStart": marker}}


def api_requests(sandbox: RunningSandbox, *, method: str | None = None) -> list[RecordedRequest]:
    """The /v1 requests the sandbox received, optionally only those of one method."""
    return [r for r in sandbox.state.requests if method is None or r.method == method]


def text_of(result: CallToolResult) -> str:
    """All text blocks of a tool result, joined."""
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def error_text(result: CallToolResult, tool: str) -> str:
    """The message of a tool error, after checking it is one and holds no traceback or key."""
    assert result.is_error is True, text_of(result)
    text = text_of(result)
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    assert "Traceback" not in text
    assert API_KEY not in json.dumps(result.model_dump(mode="json"))
    return text[len(prefix) :]


async def refusal(settings: Settings, sandbox: RunningSandbox, tool: str, arguments: dict[str, Any]) -> str:
    """The message of a call refused before any request (on a fresh connection), once checked that nothing
    reached the API."""
    async with connect(settings) as client:
        result = await client.call_tool(tool, arguments)
    assert api_requests(sandbox) == []
    return error_text(result, tool)


async def start_run(client: Client, arguments: dict[str, Any]) -> CallToolResult:
    """`start_agent_run` on `SERVER_ID` (unless the arguments name another), asserting it worked."""
    result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, **arguments})
    assert not result.is_error, text_of(result)
    return result


async def finished_run(client: Client, server_id: str = SERVER_ID, content: str = "first") -> str:
    """The id of a run started in sync mode and completed."""
    result = await start_run(client, {"serverId": server_id, "content": content, "mode": "sync"})
    assert result.structured_content["run"]["status"] == "completed"
    return str(result.structured_content["run"]["id"])


async def hanging_run(client: Client, server_id: str = SERVER_ID) -> str:
    """The id of a run started with ``/hang`` and no wait: it stays queued, then running, until cancelled."""
    result = await start_run(client, {"serverId": server_id, "content": "/hang", "waitSeconds": 0})
    return str(result.structured_content["run"]["id"])


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait, at most `seconds`, for what another task, the sandbox's thread or another process does (there is
    no event to wait on): a bound, not a pause."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110  (nothing to wait on but the condition)
            await anyio.sleep(0.01)
