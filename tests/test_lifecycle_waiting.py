"""Waiting for a run: progress notifications while a call waits, and the call's time budget.

The progress and budget tests run on the sandbox's real pace (see each test); the poll answers are real HTTP.
"""

from __future__ import annotations

import time

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox
from acp_mcp.waiting import PollPolicy

from .conftest import (
    SERVER_ID,
    api_calls,
    api_requests,
    connect,
    hanging_run,
    start_run,
    text_of,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_notifications_reach_the_client_with_the_run_id_status_and_latest_event(
    settings: Settings, sandbox: RunningSandbox, mode: str
) -> None:
    sandbox.state.pace = 0.1  # /steps 5: about 0.7 s
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(settings, mode=mode) as client:
        result = await client.call_tool(
            "start_agent_run",
            {"serverId": SERVER_ID, "content": "/steps 5", "waitSeconds": 5},
            progress_callback=on_progress,
        )

    assert result.structured_content["run"]["status"] == "completed", text_of(result)
    run_id = result.structured_content["run"]["id"]
    assert len(seen) >= 4, seen
    progress_values = [p for p, _, _ in seen]
    assert progress_values == sorted(progress_values) and progress_values[0] >= 0 and progress_values[-1] <= 5
    messages = [m or "" for _, _, m in seen]
    starting = [m for m in messages if m == f"starting a run on server {SERVER_ID}"]  # before the API answers
    assert messages[: len(starting)] == starting
    # Then the run as last seen: queued, running and (if a report goes out before the call returns) completed.
    order = ["queued", "running", "completed"]
    statuses = [m.removeprefix(f"run {run_id}: ").split(" ")[0] for m in messages[len(starting) :]]
    assert all(m.startswith(f"run {run_id}: ") for m in messages[len(starting) :]), messages
    assert set(statuses) <= set(order) and statuses == sorted(statuses, key=order.index), messages
    assert "running" in statuses, messages
    assert any(" — latest: [user] /steps 5" in m for m in messages), messages
    # total is the wait the caller asked for, and progress counts against it from the start of the call.
    assert {total for _, total, _ in seen} == {5.0}


async def test_progress_keeps_coming_at_the_progress_interval_while_polls_are_further_apart(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    policy = PollPolicy(first_interval=0.5, factor=1, max_interval=0.5, progress_interval=0.1)
    stamps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        stamps.append(progress)

    # Progress is a keep-alive for clients' real timeouts, so it runs on real time (see acp_mcp/clock.py).
    async with connect(settings, policy=policy) as client:
        result = await client.call_tool(
            "start_agent_run",
            {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 1.0},
            progress_callback=on_progress,
        )

    assert result.structured_content["waitExpired"] is True, text_of(result)
    run_id = result.structured_content["run"]["id"]
    polls = api_calls(api_requests(sandbox)).count(("GET", f"/{run_id}/events"))
    # Polls follow the poll interval (at 0.5 s and, unless that one ran late, as the wait ends), progress
    # its own, closer one.
    assert polls in {1, 2}
    assert len(stamps) > polls + 1 and stamps == sorted(stamps) and stamps[-1] <= 1.0, stamps


# -- the call's time budget ----------------------------------------------------------------------


async def test_a_poll_answer_with_a_field_of_the_wrong_type_keeps_the_run_id_with_a_note(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    broken = {"run": {"id": "run_x", "status": "running", "metadata": "not-an-object"}, "events": []}
    sandbox.state.pace = 0.05
    sandbox.state.inject(Fault(kind="status", status=200, body=broken, method="GET", path_contains="/events"))
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/steps 3", "waitSeconds": 2})

    structured = result.structured_content
    assert structured["run"]["id"].startswith("run_0")  # the run the POST created, not lost
    assert structured["notes"] == ["checking the run's status failed (InvalidResponseError); call get_agent_run later"]
    assert (
        structured["next"]
        == f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{structured["run"]["id"]}"}}'
    )


async def test_slow_answers_cannot_stretch_a_call_past_its_wait_plus_the_grace(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings.with_overrides(request_timeout=0.3)) as client:
        run_id = await hanging_run(client)
        sandbox.state.inject(Fault(kind="slow", delay=5.0, method="GET", times=100))
        began = time.monotonic()
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0.3}
        )
        elapsed = time.monotonic() - began

    assert result.is_error  # every GET timed out; FAST_POLLS' grace is 1 s: the call ends by 0.3 + 1 s
    assert elapsed < 0.3 + 1.0 + 0.5, elapsed
    assert "did not answer in time" in text_of(result)


async def test_a_run_that_ends_just_before_the_wait_does_is_reported_finished(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock
) -> None:
    policy = PollPolicy(first_interval=0.4, factor=1, max_interval=0.4, progress_interval=0.1, grace=1.0)
    sandbox.state.pace = 0.25  # a plain turn of two paces ends at 0.5 s: after the poll at 0.4, before the wait ends
    async with connect(settings, policy=policy, clock=clock) as client:
        result = await start_run(client, {"content": "ends at 0.5", "waitSeconds": 0.7})

    structured = result.structured_content
    run_id = structured["run"]["id"]
    assert (structured["run"]["status"], structured["terminal"], structured["waitExpired"]) == (
        "completed",
        True,
        False,
    )
    assert structured["waitedSeconds"] == 0.7  # the last poll, as the wait ended, saw the end
    assert clock.slept == [0.4, pytest.approx(0.3)]
    assert api_calls(api_requests(sandbox)) == [("POST", ""), *[("GET", f"/{run_id}/events")] * 2]
