"""Retries are safe and bounded.

GETs are retried on 429, 502, 503, 504 and on transport failures; POSTs only when the request
provably did not run (429, a refused connection), and always with the same Idempotency-Key.
Every retry fits in the call's budget: a Retry-After that would outlast it is reported, not waited.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox

from .conftest import SERVER_ID, api_requests, connect, error_text, finished_run, text_of

pytestmark = pytest.mark.anyio

RUNS = f"/v1/servers/{SERVER_ID}/runtime/agent/runs"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def runs_of(client: Any, server_id: str) -> list[dict[str, Any]]:
    listed = await client.call_tool("list_agent_runs", {"serverId": server_id})
    assert not listed.is_error, text_of(listed)
    return list(listed.structured_content["runs"])


# -- GET --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 502, 504])
async def test_a_get_answered_with_a_passing_gateway_error_is_retried_and_succeeds(
    settings: Settings, sandbox: RunningSandbox, status: int
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=status, method="GET", headers={"Retry-After": "0.05"}))
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["output"] == "Echo: first"
    first, second = api_requests(sandbox)
    assert (first.method, first.path) == (second.method, second.path) == ("GET", f"{RUNS}/{run_id}/events")
    assert first.headers["authorization"] == second.headers["authorization"]
    assert "idempotency-key" not in first.headers and "idempotency-key" not in second.headers


async def test_a_get_that_gets_503_once_is_retried_after_the_backoff(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=503, method="GET"))  # no Retry-After: jittered backoff
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    assert not result.is_error, text_of(result)
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{RUNS}/{run_id}/events")] * 2


async def test_a_get_rate_limited_with_retry_after_is_retried_no_sooner_than_asked(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=429, method="GET", headers={"Retry-After": "0.3"}))
        began = time.monotonic()
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )
        elapsed = time.monotonic() - began

    assert not result.is_error, text_of(result)
    assert elapsed >= 0.25
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{RUNS}/{run_id}/events")] * 2


async def test_a_get_answered_500_is_not_retried(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=500, method="GET", times=5))
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    text = error_text(result, "get_agent_run")
    assert 'failed (HTTP 500 — the API said: "Internal Server Error"). Retry in a few seconds.' in text
    (get,) = api_requests(sandbox)
    assert (get.method, get.path) == ("GET", f"{RUNS}/{run_id}/events")


@pytest.mark.parametrize("kind", ["close", "truncated"])
async def test_a_get_whose_connection_breaks_is_retried(settings: Settings, sandbox: RunningSandbox, kind: str) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind=kind, method="GET"))  # type: ignore[arg-type]
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    assert not result.is_error, text_of(result)
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{RUNS}/{run_id}/events")] * 2


async def test_a_get_that_times_out_once_is_retried(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
    sandbox.state.clear_requests()
    sandbox.state.inject(Fault(kind="slow", delay=1.5, method="GET"))
    async with connect(settings.with_overrides(request_timeout=0.5)) as client:
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["output"] == "Echo: first"
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{RUNS}/{run_id}/events")] * 2


async def test_a_malformed_retry_after_is_ignored_and_the_get_is_still_retried(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=503, method="GET", headers={"Retry-After": "soon"}))
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    assert not result.is_error, text_of(result)
    assert len(api_requests(sandbox, method="GET")) == 2


async def test_a_malformed_retry_after_on_a_post_still_gives_the_retry_later_message(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject(Fault(kind="status", status=503, headers={"Retry-After": "soon"}))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "x", "waitSeconds": 0})

    assert error_text(result, "start_agent_run").endswith(
        f'The ACP API at {settings.base_url} failed (HTTP 503 — the API said: "Service Unavailable"). '
        'Retry in a few seconds. The run may have been started anyway: check with list_agent_runs {"serverId": '
        f'"{SERVER_ID}"}} before starting it again.'
    )
    assert len(api_requests(sandbox)) == 1


async def test_a_get_that_always_fails_stops_within_the_budget(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=503, method="GET", times=100))
        began = time.monotonic()
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )
        elapsed = time.monotonic() - began

    assert "failed (HTTP 503" in error_text(result, "get_agent_run")
    assert elapsed < 5.0
    gets = api_requests(sandbox)
    assert 2 <= len(gets) <= 4
    assert {(r.method, r.path) for r in gets} == {("GET", f"{RUNS}/{run_id}/events")}


@pytest.mark.parametrize(("tool", "status"), [("get_agent_run", 429), ("get_agent_run", 503), ("start_agent_run", 429)])
async def test_a_retry_after_beyond_the_budget_is_reported_instead_of_waited_for(
    settings: Settings, sandbox: RunningSandbox, tool: str, status: int
) -> None:
    sandbox.state.inject(Fault(kind="status", status=status, headers={"Retry-After": "60"}, times=5))
    args: dict[str, Any] = {"serverId": SERVER_ID, "waitSeconds": 0}
    args.update({"resourceRunId": "run_000001"} if tool == "get_agent_run" else {"content": "x"})
    began = time.monotonic()
    async with connect(settings) as client:
        result = await client.call_tool(tool, args)
    elapsed = time.monotonic() - began

    assert error_text(result, tool).endswith(" Retry in 60 seconds.")
    assert elapsed < 2.0
    assert len(api_requests(sandbox)) == 1


# -- POST -------------------------------------------------------------------------------------


async def test_a_rate_limited_start_is_retried_once_with_the_same_idempotency_key_and_creates_one_run(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "srv_retry_start"
    sandbox.state.inject(Fault(kind="status", status=429, method="POST", headers={"Retry-After": "0.05"}))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "once", "mode": "sync"})
        assert not result.is_error, text_of(result)
        posts = api_requests(sandbox, method="POST")
        runs = await runs_of(client, server_id)

    assert [(p.path, p.body) for p in posts] == [
        (f"/v1/servers/{server_id}/runtime/agent/runs", {"content": "once", "mode": "sync"})
    ] * 2
    assert UUID.fullmatch(posts[0].headers["idempotency-key"])
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert [r["id"] for r in runs] == [result.structured_content["run"]["id"]]
    assert result.structured_content["outcome"] == "started"
    assert result.structured_content["httpStatus"] == 201


async def test_a_rate_limited_continue_is_retried_once_with_the_same_idempotency_key_and_sends_one_turn(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client)
        sandbox.state.clear_requests()
        sandbox.state.inject(Fault(kind="status", status=429, method="POST"))  # no Retry-After: backoff
        result = await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "again", "mode": "sync"}
        )

    assert not result.is_error, text_of(result)
    posts = api_requests(sandbox, method="POST")
    assert [(p.path, p.body) for p in posts] == [(f"{RUNS}/{run_id}/input", {"content": "again", "mode": "sync"})] * 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert [e["content"] for e in result.structured_content["events"] if e["role"] == "user"] == ["first", "again"]


@pytest.mark.parametrize(
    ("tool", "path_tail"),
    [("start_agent_run", ""), ("continue_agent_run", "/run_000001/input"), ("cancel_agent_run", "/run_000001/cancel")],
)
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_post_answered_with_a_server_error_is_not_retried(
    settings: Settings, sandbox: RunningSandbox, tool: str, path_tail: str, status: int
) -> None:
    sandbox.state.inject(Fault(kind="status", status=status, method="POST", times=5))
    args: dict[str, Any] = {"serverId": SERVER_ID}
    if tool != "start_agent_run":
        args["resourceRunId"] = "run_000001"
    if tool != "cancel_agent_run":
        args.update(content="x", waitSeconds=0)
    async with connect(settings) as client:
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
    settings: Settings, sandbox: RunningSandbox, kind: str
) -> None:
    server_id = f"srv_broken_{kind}"
    sandbox.state.inject(Fault(kind=kind, method="POST"))  # type: ignore[arg-type]
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "x", "waitSeconds": 0})
        posts = api_requests(sandbox, method="POST")
        runs = await runs_of(client, server_id)

    assert error_text(result, "start_agent_run").endswith(
        f"The connection to the ACP API at {settings.base_url} broke mid-answer. Retry. The run may have been "
        f'started anyway: check with list_agent_runs {{"serverId": "{server_id}"}} before starting it again.'
    )
    assert [(p.method, p.path) for p in posts] == [("POST", f"/v1/servers/{server_id}/runtime/agent/runs")]
    assert runs == []  # the sandbox hung up before the route ran, and nothing sent it again
