"""The tasks extension (io.modelcontextprotocol/tasks, SEP-2663): which calls become tasks, how a task settles,
tasks/cancel and tasks/update. Driven in-process through the wire client in `_tasks`."""

from __future__ import annotations

import dataclasses

import anyio
import pytest
from mcp import MCPError
from mcp.server.apps import EXTENSION_ID as APPS_EXTENSION_ID
from mcp.types import INVALID_PARAMS

from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.tasks import EXTENSION_ID

from ._tasks import ISO, TASK_FIELDS, runs_posted, structured, tasks_client, text_of_wire
from .conftest import SERVER_ID, api_requests, finished_run

pytestmark = pytest.mark.anyio


# -- task creation ---------------------------------------------------------------------------------


async def test_discover_advertises_the_extension_only_on_the_2026_wire(settings: Settings) -> None:
    async with tasks_client(settings) as modern, tasks_client(settings, declare=False, mode="legacy") as legacy:
        assert modern.client.server_capabilities.extensions == {EXTENSION_ID: {}, APPS_EXTENSION_ID: {}}
        assert legacy.client.server_capabilities.extensions is None


async def test_a_declaring_start_returns_a_task_at_once_whatever_waitSeconds_says(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with tasks_client(settings) as tasks:
        with anyio.fail_after(5):  # waitSeconds 120 would hold a plain call for two minutes
            created = await tasks.call(
                "start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 120}
            )
        assert set(created) == TASK_FIELDS | {"resultType"}
        assert (created["resultType"], created["status"], created["ttlMs"]) == ("task", "working", None)
        assert ISO.match(created["createdAt"]) and ISO.match(created["lastUpdatedAt"])
        assert isinstance(created["pollIntervalMs"], int) and created["pollIntervalMs"] >= 1
        assert "poll tasks/get again" in created["statusMessage"]
        assert [r.path.rsplit("/", 1)[-1] for r in api_requests(sandbox, method="POST")] == ["runs"]
        await tasks.cancel(created["taskId"])


async def test_a_call_that_would_not_wait_stays_an_ordinary_call(settings: Settings) -> None:
    async with tasks_client(settings) as tasks:
        result = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 0})
        invalid = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 999})
        await tasks.call("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": structured(result)["run"]["id"]})
    assert "taskId" not in result and structured(result)["terminal"] is False
    assert structured(result)["next"].startswith("get_agent_run ")
    assert invalid["isError"] is True and "waitSeconds must be at most 600" in text_of_wire(invalid)


async def test_a_steps_task_settles_to_the_result_the_tool_returns(settings: Settings) -> None:
    async with tasks_client(settings) as tasks, tasks_client(settings, declare=False) as plain:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/steps 3"})
        task = await tasks.settle(created["taskId"])
        run_id = structured(task["result"])["run"]["id"]
        fetched = await plain.call("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0})

    assert (task["resultType"], task["status"], task["taskId"]) == ("complete", "completed", created["taskId"])
    assert set(task) == TASK_FIELDS | {"resultType", "result"}
    result = task["result"]
    assert (result["resultType"], result["isError"]) == ("complete", False)
    content = structured(result)
    assert (content["outcome"], content["httpStatus"], content["terminal"]) == ("accepted", 202, True)
    assert (content["run"]["status"], content["run"]["output"]) == ("completed", "Completed 3 steps")
    # exactly what get_agent_run returns for the run, labelled as the start that made it
    assert content == {**structured(fetched), "outcome": "accepted", "httpStatus": 202}
    assert result["content"][0]["text"] == text_of_wire(fetched).replace("(fetched)", "(HTTP 202, accepted)")
    assert task["createdAt"] <= task["lastUpdatedAt"]


async def test_continue_agent_run_becomes_a_task_of_the_same_run(settings: Settings) -> None:
    async with tasks_client(settings) as tasks, tasks_client(settings, declare=False, mode="legacy") as plain:
        run_id = await finished_run(plain.client)
        created = await tasks.call(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "/steps 2"}
        )
        task = await tasks.settle(created["taskId"])
    content = structured(task["result"])
    assert (content["run"]["id"], content["outcome"], content["run"]["output"]) == (
        run_id,
        "accepted",
        "Completed 2 steps",
    )


async def test_a_failed_run_is_a_completed_task_whose_result_holds_the_failure(settings: Settings) -> None:
    # SEP-2663: "failed" is for JSON-RPC errors; the call produced a result, so the task completed
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/fail disk full"})
        task = await tasks.settle(created["taskId"])
    assert task["status"] == "completed"
    assert structured(task["result"])["run"]["status"] == "failed"
    assert "failed: disk full" in task["statusMessage"]


async def test_a_call_that_fails_before_a_run_exists_is_an_ordinary_tool_error(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with tasks_client(settings) as tasks:
        result = await tasks.call("start_agent_run", {"serverId": SERVER_ID})
    assert result["isError"] is True and "taskId" not in result
    assert text_of_wire(result) == (
        "Error executing tool start_agent_run: Invalid arguments, nothing was sent: give content (the text for the "
        "agent) or prompt."
    )
    assert api_requests(sandbox) == []


async def test_other_tools_and_undeclaring_clients_get_plain_results(settings: Settings) -> None:
    async with tasks_client(settings) as tasks, tasks_client(settings, declare=False) as plain:
        listed = await tasks.call("list_agent_runs", {"serverId": SERVER_ID})
        started = await plain.call("start_agent_run", {"serverId": SERVER_ID, "content": "hello", "mode": "sync"})
    assert "taskId" not in listed and listed["resultType"] == "complete"
    assert "taskId" not in started and structured(started)["run"]["output"] == "Echo: hello"


# -- tasks/cancel and tasks/update -------------------------------------------------------------------


async def test_tasks_cancel_cancels_the_run_and_the_task_ends_cancelled(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/hang"})
        assert await tasks.cancel(created["taskId"]) == {"resultType": "complete"}
        task = await tasks.settle(created["taskId"])
    assert set(task) == TASK_FIELDS | {"resultType"} and task["status"] == "cancelled"
    assert [r.path.rsplit("/", 1)[-1] for r in api_requests(sandbox, method="POST")] == ["runs", "cancel"]
    assert [run.status for run in runs_posted(sandbox).values()] == ["cancelled"]


async def test_tasks_cancel_of_a_finished_run_is_acknowledged_and_changes_nothing(settings: Settings) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "done", "mode": "sync"})
        assert created["status"] == "completed"
        assert await tasks.cancel(created["taskId"]) == {"resultType": "complete"}
        assert (await tasks.get(created["taskId"]))["status"] == "completed"


async def test_tasks_update_is_acknowledged_and_ignored(settings: Settings) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/steps 1"})
        assert await tasks.update(created["taskId"], {"never-asked": {"action": "accept"}}) == {
            "resultType": "complete"
        }
        assert (await tasks.settle(created["taskId"]))["status"] == "completed"


# -- arguments the tool accepts loosely, and a read-only server -------------------------------------


@pytest.mark.parametrize("max_events", [5.0, "5"])
async def test_a_task_made_with_max_events_the_tool_accepts_loosely_stays_readable(
    settings: Settings, max_events: float | str
) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call(
            "start_agent_run", {"serverId": SERVER_ID, "content": "/steps 2", "maxEvents": max_events}
        )
        task = await tasks.settle(created["taskId"])

    assert task["status"] == "completed"
    assert len(structured(task["result"])["events"]) == 5


async def test_a_quoted_wait_the_tool_accepts_still_makes_a_task(settings: Settings) -> None:
    async with tasks_client(settings) as tasks:
        with anyio.fail_after(5):
            created = await tasks.call(
                "start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": "30"}
            )
        await tasks.cancel(created["taskId"])

    assert created["resultType"] == "task"


async def test_a_read_only_server_refuses_to_cancel_through_a_task(settings: Settings, sandbox: RunningSandbox) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/hang"})
        async with tasks_client(dataclasses.replace(settings, read_only=True)) as read_only:
            with pytest.raises(MCPError) as refused:
                await read_only.cancel(created["taskId"])
        await tasks.cancel(created["taskId"])

    assert refused.value.error.code == INVALID_PARAMS
    assert "tasks/cancel is disabled: this MCP server runs in read-only mode" in refused.value.error.message
    assert [r.path.rsplit("/", 1)[-1] for r in api_requests(sandbox, method="POST")] == ["runs", "cancel"]
