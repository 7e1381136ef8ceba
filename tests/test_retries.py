"""Retries are safe and bounded.

GETs are retried on 429, 502, 503, 504 and on transport failures; POSTs only when the request
provably did not run (429, a refused connection), and always with the same Idempotency-Key.
Every retry fits in the call's budget: a Retry-After that would outlast it is reported, not waited.

The server runs on a `VirtualClock`: each test asserts exactly what it waited (`clock.slept`), a
Retry-After to the letter and a jittered backoff within its bounds, without waiting in real time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from mcp import Client

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.retries import RetryPolicy
from acp_mcp.sandbox import Fault, FaultKind, RunningSandbox

from .conftest import API_KEY, SERVER_ID, api_requests, connect, error_text, finished_run, runs_path, text_of, unmarked

pytestmark = pytest.mark.anyio

RUNS = runs_path()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Backoff:
    """The jittered wait before retry number `retry` (0-based): from half the base delay up to its cap."""

    retry: int

    def holds(self, seconds: float) -> bool:
        policy = RetryPolicy()
        return policy.base_delay / 2 <= seconds <= min(policy.max_delay, policy.base_delay * 2.0**self.retry)


Wait = float | Backoff
"""One sleep of the server's clock: a Retry-After, exactly, or a backoff."""


def assert_waited(slept: Sequence[float], expected: Sequence[Wait]) -> None:
    """The server slept exactly the waits expected, in order."""
    assert len(slept) == len(expected), (slept, expected)
    for seconds, wait in zip(slept, expected, strict=True):
        assert wait.holds(seconds) if isinstance(wait, Backoff) else seconds == wait, (slept, expected)


def answer(status: int, *, method: str | None = "GET", times: int = 1, retry_after: str | None = None) -> Fault:
    """An error status (with its standard error envelope) for the next `times` matching requests."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return Fault(kind="status", status=status, method=method, times=times, headers=headers)


def broken(kind: FaultKind, *, method: str = "GET", delay: float = 0.0) -> Fault:
    """A connection that breaks (close, truncated) or an answer that comes too late (slow) for one request."""
    return Fault(kind=kind, method=method, delay=delay)


async def runs_of(client: Client, server_id: str) -> list[dict[str, Any]]:
    listed = await client.call_tool("list_agent_runs", {"serverId": server_id})
    assert not listed.is_error, text_of(listed)
    return list(listed.structured_content["runs"])


# -- GET --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetCase:
    """get_agent_run (no wait) of a finished run, asked while `faults` are armed."""

    faults: tuple[Fault, ...]
    gets: int
    """How many GETs of the run's events reached the API."""
    waits: tuple[Wait, ...]
    """What the server's clock slept, in order."""
    error: str | None = None
    """The exact tool error ({base}: "The ACP API at <base URL>"); None: the run ("Echo: first") came back."""
    request_timeout: float = 5.0


UNAVAILABLE = '{base} failed (HTTP 503 — the API said: "Service Unavailable"). Retry in a few seconds.'
GET_CASES = [
    *(
        pytest.param(GetCase((answer(status, retry_after="0.05"),), 2, (0.05,)), id=f"{status}-retried-as-asked")
        for status in (503, 502, 504)
    ),
    pytest.param(GetCase((answer(503),), 2, (Backoff(0),)), id="503-retried-after-the-backoff"),
    pytest.param(GetCase((answer(429, retry_after="0.3"),), 2, (0.3,)), id="429-retried-no-sooner-than-asked"),
    pytest.param(GetCase((answer(503, retry_after="soon"),), 2, (Backoff(0),)), id="malformed-retry-after-ignored"),
    pytest.param(
        GetCase(
            (answer(500, times=5),),
            1,
            (),
            '{base} failed (HTTP 500 — the API said: "Internal Server Error"). Retry in a few seconds.',
        ),
        id="500-not-retried",
    ),
    pytest.param(GetCase((broken("close"),), 2, (Backoff(0),)), id="connection-closed-retried"),
    pytest.param(GetCase((broken("truncated"),), 2, (Backoff(0),)), id="answer-cut-short-retried"),
    pytest.param(
        GetCase((broken("slow", delay=1.5),), 2, (Backoff(0),), request_timeout=0.5), id="timed-out-once-retried"
    ),
    pytest.param(
        GetCase((answer(503, times=100),), 4, (Backoff(0), Backoff(1), Backoff(2)), UNAVAILABLE),
        id="always-503-stops-after-the-last-attempt",
    ),
]


@pytest.mark.parametrize("case", GET_CASES)
async def test_a_get_is_retried_when_safe_after_the_wait_asked_and_never_past_the_last_attempt(
    settings: Settings, sandbox: RunningSandbox, case: GetCase
) -> None:
    clock = VirtualClock()
    async with connect(settings.with_overrides(request_timeout=case.request_timeout), clock=clock) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        for fault in case.faults:
            sandbox.state.inject(fault)
        before = len(clock.slept)
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    gets = api_requests(sandbox)
    assert [(r.method, r.path) for r in gets] == [("GET", f"{RUNS}/{run_id}/events")] * case.gets
    assert [r.headers["authorization"] for r in gets] == [f"Bearer {API_KEY}"] * case.gets
    assert [r for r in gets if "idempotency-key" in r.headers] == []
    assert_waited(clock.slept[before:], case.waits)
    if case.error is None:
        assert not result.is_error, text_of(result)
        assert result.structured_content["run"]["output"] == "Echo: first"
    else:
        expected = case.error.replace("{base}", f"The ACP API at {settings.base_url}")
        assert error_text(result, "get_agent_run") == expected


@pytest.mark.parametrize(("tool", "status"), [("get_agent_run", 429), ("get_agent_run", 503), ("start_agent_run", 429)])
async def test_a_retry_after_beyond_the_budget_is_reported_instead_of_waited_for(
    settings: Settings, sandbox: RunningSandbox, tool: str, status: int
) -> None:
    sandbox.state.inject(answer(status, method=None, times=5, retry_after="60"))
    args: dict[str, Any] = {"serverId": SERVER_ID, "waitSeconds": 0}
    args.update({"resourceRunId": "run_000001"} if tool == "get_agent_run" else {"content": "x"})
    clock = VirtualClock()
    async with connect(settings, clock=clock) as client:
        result = await client.call_tool(tool, args)

    assert error_text(result, tool).endswith(" Retry in 60 seconds.")
    assert clock.slept == []
    assert len(api_requests(sandbox)) == 1


# -- POST -------------------------------------------------------------------------------------


async def test_a_rate_limited_start_is_retried_once_with_the_same_idempotency_key_and_creates_one_run(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "srv_retry_start"
    sandbox.state.inject(answer(429, method="POST", retry_after="0.05"))
    clock = VirtualClock()
    async with connect(settings, clock=clock) as client:
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "once", "mode": "sync"})
        assert not result.is_error, text_of(result)
        posts = api_requests(sandbox, method="POST")
        runs = await runs_of(client, server_id)

    assert [(p.path, unmarked(p.body)) for p in posts] == [
        (runs_path(server_id), {"content": "once", "mode": "sync"})
    ] * 2
    assert UUID.fullmatch(posts[0].headers["idempotency-key"])
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert clock.slept == [0.05]
    assert [r["id"] for r in runs] == [result.structured_content["run"]["id"]]
    assert result.structured_content["outcome"] == "started"
    assert result.structured_content["httpStatus"] == 201


async def test_a_rate_limited_continue_is_retried_once_with_the_same_idempotency_key_and_sends_one_turn(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    clock = VirtualClock()
    async with connect(settings, clock=clock) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(answer(429, method="POST"))  # no Retry-After: backoff
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "again", "mode": "sync"}
        )

    assert not result.is_error, text_of(result)
    posts = api_requests(sandbox, method="POST")
    assert [(p.path, p.body) for p in posts] == [(f"{RUNS}/{run_id}/input", {"content": "again", "mode": "sync"})] * 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert_waited(clock.slept, [Backoff(0)])
    assert [e["content"] for e in result.structured_content["events"] if e["role"] == "user"] == ["first", "again"]


@pytest.mark.parametrize(
    ("tool", "path_tail"),
    [("start_agent_run", ""), ("continue_agent_run", "/run_000001/input"), ("cancel_agent_run", "/run_000001/cancel")],
)
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_post_answered_with_a_server_error_is_not_retried(
    settings: Settings, sandbox: RunningSandbox, tool: str, path_tail: str, status: int
) -> None:
    sandbox.state.inject(answer(status, method="POST", times=5))
    args: dict[str, Any] = {"serverId": SERVER_ID}
    if tool != "start_agent_run":
        args["resourceRunId"] = "run_000001"
    if tool != "cancel_agent_run":
        args.update(content="x", waitSeconds=0)
    clock = VirtualClock()
    async with connect(settings, clock=clock) as client:
        result = await client.call_tool(tool, args)

    message = error_text(result, tool)
    check = {
        "start_agent_run": f'check with list_agent_runs {{"serverId": "{SERVER_ID}"}} before starting it again.',
        "continue_agent_run": f'check with get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "run_000001"}}'
        " before sending it again.",
        "cancel_agent_run": "",
    }[tool]
    assert " Retry in a few seconds." in message and message.endswith(check), message
    (post,) = api_requests(sandbox)
    assert (post.method, post.path) == ("POST", RUNS + path_tail)
    assert UUID.fullmatch(post.headers["idempotency-key"])
    assert clock.slept == []


async def test_a_malformed_retry_after_on_a_post_still_gives_the_retry_later_message(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject(answer(503, method=None, retry_after="soon"))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "x", "waitSeconds": 0})

    assert error_text(result, "start_agent_run").endswith(
        f'The ACP API at {settings.base_url} failed (HTTP 503 — the API said: "Service Unavailable"). '
        'Retry in a few seconds. The run may have been started anyway: check with list_agent_runs {"serverId": '
        f'"{SERVER_ID}"}} before starting it again.'
    )
    assert len(api_requests(sandbox)) == 1


async def test_separate_calls_use_different_idempotency_keys(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client, content="one")
        await finished_run(client, content="two")
        continued = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "three", "mode": "sync"}
        )
        assert not continued.is_error, text_of(continued)

    keys = [p.headers["idempotency-key"] for p in api_requests(sandbox, method="POST")]
    assert len(keys) == 3
    assert all(UUID.fullmatch(key) for key in keys)
    assert len(set(keys)) == 3


@pytest.mark.parametrize("kind", ["close", "truncated"])
async def test_a_post_whose_connection_breaks_is_not_retried(
    settings: Settings, sandbox: RunningSandbox, kind: FaultKind
) -> None:
    server_id = f"srv_broken_{kind}"
    sandbox.state.inject(broken(kind, method="POST"))
    clock = VirtualClock()
    async with connect(settings, clock=clock) as client:
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "x", "waitSeconds": 0})
        posts = api_requests(sandbox, method="POST")
        runs = await runs_of(client, server_id)

    assert error_text(result, "start_agent_run") == (
        "The start lost its connection before the answer came, and no run carrying its marker "
        "(metadata.acpMcpStart) is listed yet. The run may still have been created: look for it with "
        f'list_agent_runs {{"serverId": "{server_id}"}} before starting it again.'
    )
    assert [(p.method, p.path) for p in posts] == [("POST", runs_path(server_id))]
    assert clock.slept == []
    assert runs == []  # the sandbox hung up before the route ran, and nothing sent it again
