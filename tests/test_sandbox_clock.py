"""The sandbox on a virtual clock: its echo agent is a function of time, so every beat lands at an exact moment.

These tests drive `SandboxState` directly, or its app in-process over the ASGI transport; nothing
sleeps in real time and every time asserted is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.sandbox import Fault, SandboxState, create_app
from acp_mcp.sandbox.agent import TurnInput
from acp_mcp.sandbox.errors import ApiError
from acp_mcp.sandbox.runs import StoredRun

KEY = "sandbox-clock-test-key"
SERVER = "srv_clock"
RUNS = f"/v1/servers/{SERVER}/runtime/agent/runs"
AUTH = {"authorization": f"Bearer {KEY}"}


def beats(run: StoredRun) -> list[tuple[str, str, str]]:
    """The run's events as (role, content, createdAt)."""
    return [(e["role"], e["content"], e["createdAt"]) for e in run.events]


def virtual_state(pace: float) -> tuple[SandboxState, VirtualClock]:
    """A fresh sandbox on a fresh virtual clock."""
    clock = VirtualClock()
    return SandboxState(KEY, pace=pace, clock=clock), clock


@pytest.fixture
async def http() -> AsyncIterator[tuple[httpx2.AsyncClient, SandboxState, VirtualClock]]:
    """The sandbox app, served in-process on a virtual clock at half a second per beat."""
    state, clock = virtual_state(0.5)
    transport = httpx2.ASGITransport(app=create_app(state))
    async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox", headers=AUTH) as client:
        yield client, state, clock


def test_a_steps_run_plays_each_beat_at_its_exact_virtual_time() -> None:
    state, clock = virtual_state(0.5)
    run = state.start_run(SERVER, TurnInput("/steps 3", "async"))
    assert (run.status, beats(run)) == ("queued", [("user", "/steps 3", "2027-01-15T08:00:00.000Z")])

    clock.advance(0.25)
    assert state.get_run(SERVER, run.id).status == "queued" and len(run.events) == 1
    clock.advance(0.25)
    assert state.get_run(SERVER, run.id).status == "running"
    assert beats(run)[1:] == [("system", "Agent started", "2027-01-15T08:00:00.500Z")]

    clock.advance(1.75)  # 2.25 s: three steps are due, the end is not
    assert state.get_run(SERVER, run.id).status == "running"
    assert beats(run)[2:] == [
        ("assistant", "step 1 of 3", "2027-01-15T08:00:01.000Z"),
        ("assistant", "step 2 of 3", "2027-01-15T08:00:01.500Z"),
        ("assistant", "step 3 of 3", "2027-01-15T08:00:02.000Z"),
    ]
    clock.advance(0.25)
    finished = state.get_run(SERVER, run.id)
    assert (finished.status, finished.output, finished.error) == ("completed", "Completed 3 steps", None)
    assert finished.completed_at == "2027-01-15T08:00:02.500Z"
    assert beats(finished)[-1] == ("assistant", "Completed 3 steps", "2027-01-15T08:00:02.500Z")
    assert [e["id"] for e in finished.events] == [f"evt_{n:06d}" for n in range(1, 7)]
    assert [e["logType"] for e in finished.events] == [
        "message",
        "status",
        "progress",
        "progress",
        "progress",
        "message",
    ]
    assert clock.slept == []


def test_a_new_pace_keeps_the_beat_on_its_way_and_spaces_the_later_ones() -> None:
    state, clock = virtual_state(0.5)
    run = state.start_run(SERVER, TurnInput("/steps 2", "async"))
    clock.advance(0.75)  # running since 0.5 s; step 1 is on its way, due at 1.0 s
    state.pace = 0.125
    clock.advance(0.5)
    assert state.get_run(SERVER, run.id).status == "completed"
    assert [at for _, _, at in beats(run)] == [
        "2027-01-15T08:00:00.000Z",
        "2027-01-15T08:00:00.500Z",
        "2027-01-15T08:00:01.000Z",
        "2027-01-15T08:00:01.125Z",
        "2027-01-15T08:00:01.250Z",
    ]


def test_another_clock_keeps_the_next_beat_as_far_off_as_it_was() -> None:
    state, first = virtual_state(0.5)
    run = state.start_run(SERVER, TurnInput("hello", "async"))
    first.advance(0.25)
    second = VirtualClock(start=5.0, wall_start=1_900_000_000.0)
    state.clock = second
    second.advance(0.125)
    assert state.get_run(SERVER, run.id).status == "queued"
    second.advance(0.125)
    assert state.get_run(SERVER, run.id).status == "running"
    assert beats(run)[1] == ("system", "Agent started", "2030-03-17T17:46:40.250Z")


def test_cancel_ends_a_hanging_run_at_once_and_for_good() -> None:
    state, clock = virtual_state(0.5)
    run = state.start_run(SERVER, TurnInput("/hang", "async"))
    clock.advance(3600.0)
    assert state.get_run(SERVER, run.id).status == "running" and len(run.events) == 2
    with pytest.raises(ApiError) as busy:
        state.continue_run(SERVER, run.id, TurnInput("more", "async"))
    assert (busy.value.status, busy.value.body["code"]) == (409, "RUN_BUSY")

    cancelled = state.cancel_run(SERVER, run.id)
    assert (cancelled.status, cancelled.completed_at) == ("cancelled", "2027-01-15T09:00:00.000Z")
    assert cancelled.events[-1] | {"id": "-"} == {
        "id": "-",
        "role": "system",
        "content": "Run cancelled",
        "logType": "status",
        "logLevel": "warning",
        "createdAt": "2027-01-15T09:00:00.000Z",
    }
    clock.advance(3600.0)
    again = state.cancel_run(SERVER, run.id)  # a no-op
    assert (state.get_run(SERVER, run.id).status, len(again.events)) == ("cancelled", 3)


@pytest.mark.anyio
async def test_a_sync_start_on_a_virtual_clock_answers_the_finished_run_after_exactly_its_time(
    http: tuple[httpx2.AsyncClient, SandboxState, VirtualClock],
) -> None:
    client, _, clock = http
    answer = await client.post(RUNS, json={"content": "/steps 2", "mode": "sync"})
    assert answer.status_code == 201
    body = answer.json()
    assert (body["run"]["status"], body["run"]["output"]) == ("completed", "Completed 2 steps")
    assert body["run"]["completedAt"] == "2027-01-15T08:00:02.000Z"
    assert [e["content"] for e in body["events"]] == [
        "/steps 2",
        "Agent started",
        "step 1 of 2",
        "step 2 of 2",
        "Completed 2 steps",
    ]
    assert (clock.slept, clock.now()) == ([2.0], 1002.0)


@pytest.mark.anyio
async def test_a_sync_start_of_a_hanging_run_is_answered_by_its_cancel(
    http: tuple[httpx2.AsyncClient, SandboxState, VirtualClock],
) -> None:
    client, state, clock = http
    answers: list[httpx2.Response] = []

    async def start() -> None:
        answers.append(await client.post(RUNS, json={"content": "/hang", "mode": "sync"}))

    async with anyio.create_task_group() as group:
        group.start_soon(start)
        while not state.list_runs(SERVER, 1):
            await anyio.lowlevel.checkpoint()
        (run,) = state.list_runs(SERVER, 1)
        cancelled = await client.post(f"{RUNS}/{run.id}/cancel")
    assert cancelled.status_code == 200
    (answer,) = answers
    assert (answer.status_code, answer.json()["run"]["status"]) == (201, "cancelled")
    assert [e["content"] for e in answer.json()["events"]] == ["/hang", "Run cancelled"]
    assert clock.slept == []  # a turn that never ends is waited on, not slept through


@pytest.mark.anyio
async def test_a_slow_fault_sleeps_on_the_sandbox_clock(
    http: tuple[httpx2.AsyncClient, SandboxState, VirtualClock],
) -> None:
    client, state, clock = http
    state.inject(Fault(kind="slow", delay=3.0))
    answer = await client.get("/v1/servers")
    assert (answer.status_code, clock.slept) == (200, [3.0])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("POST", "/_sandbox/faults")],
)
@pytest.mark.anyio
async def test_the_removed_routes_answer_404(
    http: tuple[httpx2.AsyncClient, SandboxState, VirtualClock], method: str, path: str
) -> None:
    client, _, _ = http
    answer = await client.request(method, path, json={"kind": "status"})
    expected: dict[str, Any] = {"error": "Not Found", "message": f"No route for {method} {path}"}
    assert (answer.status_code, answer.json()) == (404, expected)


@pytest.mark.anyio
async def test_the_control_routes_the_bench_uses_still_answer(
    http: tuple[httpx2.AsyncClient, SandboxState, VirtualClock],
) -> None:
    client, state, _ = http
    await client.get("/v1/servers", params={"limit": "1"})
    paced = await client.put("/_sandbox/pace", json={"pace": 0.25})
    logged = await client.get("/_sandbox/requests")
    cleared = await client.delete("/_sandbox/requests")
    assert (paced.status_code, paced.json(), state.pace) == (200, {"pace": 0.25}, 0.25)
    assert [(r["method"], r["path"], r["query"]) for r in logged.json()["requests"]] == [
        ("GET", "/v1/servers", {"limit": "1"})
    ]
    assert (cleared.json(), state.requests) == ({"requests": []}, [])
