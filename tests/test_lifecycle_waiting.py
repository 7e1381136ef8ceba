"""Waiting for a run: progress notifications while a call waits, and the call's time budget.

The progress and budget tests run on the sandbox's real pace (see each test); the poll answers are real HTTP.
"""

from __future__ import annotations

import time

import anyio
import httpx2
import pytest

from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox
from acp_mcp.waiting import PollPolicy

from .conftest import (
    API_KEY,
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
    assert all(m.startswith((f"run {run_id}: queued", f"run {run_id}: running")) for m in messages[len(starting) :])
    assert any(m.startswith(f"run {run_id}: running") for m in messages), messages
    assert any(" — latest: [user] /steps 5" in m for m in messages), messages
    # total is the wait the caller asked for, and progress counts against it from the start of the call.
    assert {total for _, total, _ in seen} == {5.0}


async def test_progress_keeps_coming_at_the_progress_interval_while_polls_are_further_apart(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    policy = PollPolicy(first_interval=0.5, factor=1, max_interval=0.5, progress_interval=0.1)
    stamps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        stamps.append(time.monotonic())

    async with connect(settings, policy=policy) as client:
        began = time.monotonic()
        result = await client.call_tool(
            "start_agent_run",
            {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 1.0},
            progress_callback=on_progress,
        )
        ended = time.monotonic()

    assert result.structured_content["waitExpired"] is True, text_of(result)
    run_id = result.structured_content["run"]["id"]
    gaps = [b - a for a, b in zip([began, *stamps], [*stamps, ended], strict=True)]
    assert len(stamps) >= 6 and max(gaps) < 0.3, gaps
    # Polls follow the poll interval, not the progress interval: at 0.5 s (and perhaps as the wait ends).
    assert 1 <= api_calls(api_requests(sandbox)).count(("GET", f"/{run_id}/events")) <= 2


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
    settings: Settings, sandbox: RunningSandbox
) -> None:
    policy = PollPolicy(first_interval=0.4, factor=1, max_interval=0.4, progress_interval=0.1, grace=1.0)
    async with connect(settings, policy=policy) as client:
        run_id = await hanging_run(client)

        async def cancel_soon() -> None:
            await anyio.sleep(0.5)  # after the poll at 0.4 s, before the wait ends at 0.7 s
            async with httpx2.AsyncClient() as http:
                response = await http.post(
                    f"{sandbox.base_url}/servers/{SERVER_ID}/runtime/agent/runs/{run_id}/cancel",
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                assert response.status_code == 200

        async with anyio.create_task_group() as group:
            group.start_soon(cancel_soon)
            result = await client.call_tool(
                "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0.7}
            )

    structured = result.structured_content
    assert (structured["run"]["status"], structured["terminal"], structured["waitExpired"]) == (
        "cancelled",
        True,
        False,
    )
