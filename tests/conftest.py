"""Shared fixtures: one real sandbox on loopback per session, and MCP clients connected to the server.

Tests talk to the server only through `mcp.Client` (in-process here, over stdio in
`test_stdio.py`), and the server talks to the sandbox over real HTTP. Each test starts with an
empty request log, no pending faults and a fast sandbox pace.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from acp_mcp.config import Settings
from acp_mcp.sandbox import RecordedRequest, RunningSandbox, SandboxState, serve_in_thread
from acp_mcp.server import build_server
from acp_mcp.waiting import PollPolicy

API_KEY = "tb_test_key_0123456789abcdef"
SERVER_ID = "srv_test"
FAST_PACE = 0.01
FAST_POLLS = PollPolicy(first_interval=0.02, factor=1.5, max_interval=0.2, progress_interval=0.1, grace=1.0)

_ENV_PREFIXES = ("COMPUTER_AGENTS_", "TESTBASE_", "ACP_MCP_", "ACP_SERVER_ID", "ACP_SANDBOX_")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own key, base URL or server settings."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxState(api_key=API_KEY, pace=FAST_PACE)) as running:
        yield running


@pytest.fixture
def sandbox(running_sandbox: RunningSandbox) -> RunningSandbox:
    """The session's sandbox, reset for this test."""
    state = running_sandbox.state
    state.clear_requests()
    state.clear_faults()
    state.pace = FAST_PACE
    return running_sandbox


@pytest.fixture
def settings(sandbox: RunningSandbox) -> Settings:
    return Settings(api_key=SecretStr(API_KEY), base_url=sandbox.base_url, request_timeout=5.0)


@asynccontextmanager
async def connect(settings: Settings, *, mode: str = "auto", policy: PollPolicy = FAST_POLLS) -> AsyncIterator[Client]:
    """An MCP client connected in-process to a server built from `settings`."""
    async with Client(build_server(settings, policy=policy), mode=mode) as client:  # type: ignore[arg-type]
        yield client


def api_requests(sandbox: RunningSandbox, *, method: str | None = None) -> list[RecordedRequest]:
    """The /v1 requests the sandbox received, optionally only those of one method."""
    return [r for r in sandbox.state.requests if method is None or r.method == method]


def text_of(result: Any) -> str:
    """All text blocks of a tool result, joined."""
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


def error_text(result: Any, tool: str) -> str:
    """The message of a tool error, after checking it is one and holds no traceback or key."""
    assert result.is_error is True, text_of(result)
    text = text_of(result)
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    assert "Traceback" not in text
    assert API_KEY not in json.dumps(result.model_dump(mode="json"))
    return text[len(prefix) :]


async def start_run(client: Client, arguments: dict[str, Any]) -> Any:
    """`start_agent_run` on `SERVER_ID` (unless the arguments name another), asserting it worked."""
    result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, **arguments})
    assert not result.is_error, text_of(result)
    return result


async def finished_run(client: Client, server_id: str = SERVER_ID, content: str = "first") -> str:
    """The id of a run started in sync mode and completed."""
    result = await start_run(client, {"serverId": server_id, "content": content, "mode": "sync"})
    assert result.structured_content["run"]["status"] == "completed"
    return str(result.structured_content["run"]["id"])
