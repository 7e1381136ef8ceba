"""Cancelling: cancel_agent_run on a running and a finished run, and a waiting call the client cancels."""

from __future__ import annotations

import anyio
import pytest
from mcp import MCPError
from mcp.client.client import ConnectMode

from acp_mcp.clock import SystemClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.sandbox.variants import FLAT_BODIES, NO_EVENT_IDS

from .conftest import (
    SERVER_ID,
    api_requests,
    connect,
    error_text,
    finished_run,
    hanging_run,
    readings,
    runs_path,
    text_of,
    until,
)

pytestmark = pytest.mark.anyio


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_cancel_agent_run_stops_a_hanging_run_and_cancelling_it_again_is_harmless(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await hanging_run(client)
        sandbox.state.clear_requests()
        cancelled = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
        again = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    for result in (cancelled, again):
        assert not result.is_error, text_of(result)
        structured = result.structured_content
        assert (structured["outcome"], structured["httpStatus"], structured["terminal"]) == ("cancelled", 200, True)
        assert (structured["run"]["status"], structured["next"], structured["waitExpired"]) == (
            "cancelled",
            None,
            False,
        )
        assert structured["events"][-1]["content"] == "Run cancelled"
        assert f"Run {run_id} on server {SERVER_ID}: cancelled (HTTP 200, cancelled)." in text_of(result)
    requests = api_requests(sandbox)
    cancel_path = f"{runs_path()}/{run_id}/cancel"
    assert [(r.method, r.path, r.query, r.body) for r in requests] == [("POST", cancel_path, {}, {})] * 2
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "cancelled"


async def test_cancelling_a_completed_run_is_a_tool_error_naming_the_run_and_the_409(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await finished_run(client, content="x")
        sandbox.state.clear_requests()
        result = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert error_text(result, "cancel_agent_run") == (
        f"Run '{run_id}' on server '{SERVER_ID}' could not be cancelled (HTTP 409 RUN_FINISHED — the API said: "
        f'"Run {run_id} is already completed"); it has most likely finished already. Read its result with '
        f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}.'
    )
    assert [(r.method, r.path, r.body) for r in api_requests(sandbox)] == [
        ("POST", f"{runs_path()}/{run_id}/cancel", {})
    ]
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "completed"


async def test_cancelling_a_finished_run_does_not_advise_cancelling_or_waiting_for_it(settings: Settings) -> None:
    """The 409 of a cancel means the run already ended: waiting for it or cancelling it again cannot help."""
    async with connect(settings) as client:
        run_id = await finished_run(client, content="x")
        result = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    message = error_text(result, "cancel_agent_run")
    assert "cancel_agent_run" not in message, message
    assert "Wait for it to finish" not in message, message
    assert "most likely finished already" in message and "get_agent_run" in message


# -- cancellation of a waiting call --------------------------------------------------------------


class ParkingClock(SystemClock):
    """Real time, except that a wait never ends by itself: a call parks in its wait until it is cancelled."""

    def __init__(self) -> None:
        self.parked = 0
        self.ever_parked = False

    async def sleep(self, seconds: float, *, until: anyio.Event | None = None) -> None:
        self.parked += 1
        self.ever_parked = True
        try:
            await (until.wait() if until is not None else anyio.sleep_forever())
        finally:
            self.parked -= 1


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("how", ["cancel_scope", "read_timeout"])
async def test_a_cancelled_waiting_call_ends_its_wait_sends_nothing_more_and_leaves_the_run_running(
    settings: Settings, sandbox: RunningSandbox, mode: ConnectMode, how: str
) -> None:
    clock = ParkingClock()
    async with connect(settings, mode=mode, clock=clock) as client:
        run_id = await hanging_run(client)
        sandbox.state.clear_requests()
        arguments = {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 30}
        if how == "cancel_scope":
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, "get_agent_run", arguments)
                await until(lambda: clock.parked == 1)  # the call fetched the run and waits for its next poll
                group.cancel_scope.cancel()
        else:
            with pytest.raises(MCPError, match=r"(?i)timed out"):
                await client.call_tool("get_agent_run", arguments, read_timeout_seconds=1.0)
            assert clock.ever_parked

        await until(lambda: clock.parked == 0)  # the server's wait was cancelled with the call
        check = await client.call_tool("get_agent_run", {**arguments, "waitSeconds": 0})

    # The wait never ended by itself, so a poll could only follow a wait the cancel failed to reach.
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [("GET", f"{runs_path()}/{run_id}/events")] * 2
    assert not check.is_error, text_of(check)
    assert check.structured_content["run"]["status"] == "running"
    assert sandbox.state.get_run(SERVER_ID, run_id).status == "running"
