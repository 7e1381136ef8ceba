"""The tasks extension (io.modelcontextprotocol/tasks, SEP-2663): run-starting calls as tasks, and tasks/*.

In-process tests speak the wire through the Python SDK's session (the tasks shapes are not SDK types);
`test_the_official_tasks_client_*` drive the server with @modelcontextprotocol/ext-tasks (Node, pinned in
package.json) over streamable HTTP (two --stateless replicas) and stdio (two server processes).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp import Client, MCPError
from mcp.client.extension import advertise
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequest,
    CallToolRequestParams,
    CancelTaskRequest,
    CancelTaskRequestParams,
    GetTaskRequest,
    GetTaskRequestParams,
    Request,
    RequestParams,
    Result,
)
from pydantic import ConfigDict, SecretStr

from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.server import build_server
from acp_mcp.tasks import EXTENSION_ID, TaskIds, TaskRef

from ._tooling import ROOT, http_server, modern_node, node_env, node_package, python_env, run_json
from .conftest import API_KEY, FAST_POLLS, SERVER_ID, api_requests, finished_run

pytestmark = pytest.mark.anyio

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TASK_FIELDS = {"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"}


class Wire(Result):
    """Any result, every field kept as sent."""

    model_config = ConfigDict(extra="allow")


class UpdateTaskParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any]


class UpdateTaskRequest(Request[UpdateTaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"


class Tasks:
    """A client speaking the tasks wire: raw tools/call, tasks/get, tasks/update, tasks/cancel."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def _send(self, request: Any) -> dict[str, Any]:
        result = await self.client.session.send_request(request, Wire)
        wire = result.model_dump(mode="json", by_alias=True, exclude_unset=True)
        wire.pop("_meta", None)
        return wire

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self._send(CallToolRequest(params=CallToolRequestParams(name=tool, arguments=arguments)))

    async def get(self, task_id: str) -> dict[str, Any]:
        return await self._send(GetTaskRequest(params=GetTaskRequestParams(task_id=task_id)))

    async def update(self, task_id: str, responses: dict[str, Any]) -> dict[str, Any]:
        return await self._send(UpdateTaskRequest(params=UpdateTaskParams(task_id=task_id, input_responses=responses)))

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return await self._send(CancelTaskRequest(params=CancelTaskRequestParams(task_id=task_id)))

    async def settle(self, task_id: str) -> dict[str, Any]:
        """tasks/get until the task is terminal, at the pace it suggests."""
        with anyio.fail_after(10):
            while (task := await self.get(task_id))["status"] == "working":  # noqa: ASYNC110 - tasks are polled
                await anyio.sleep(task["pollIntervalMs"] / 1000)
        return task


@asynccontextmanager
async def tasks_client(settings: Settings, *, declare: bool = True, mode: str = "auto") -> AsyncIterator[Tasks]:
    extensions = [advertise(EXTENSION_ID)] if declare else []
    server = build_server(settings, policy=FAST_POLLS)
    async with Client(server, mode=mode, extensions=extensions) as client:  # type: ignore[arg-type]
        yield Tasks(client)


def structured(result: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = result["structuredContent"]
    return content


def runs_posted(sandbox: RunningSandbox) -> dict[str, Any]:
    """The sandbox's runs that this test started or cancelled, by id."""
    ids = {found.group(1) for r in api_requests(sandbox) if (found := re.search(r"/runs/([^/]+)", r.path))}
    return {run_id: sandbox.state.get_run(SERVER_ID, run_id) for run_id in sorted(ids)}


# -- task creation ---------------------------------------------------------------------------------


async def test_discover_advertises_the_extension_only_on_the_2026_wire(settings: Settings) -> None:
    async with tasks_client(settings) as modern, tasks_client(settings, declare=False, mode="legacy") as legacy:
        assert modern.client.server_capabilities.extensions == {EXTENSION_ID: {}}
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


def text_of_wire(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


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
    assert "give content" in text_of_wire(result)
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


# -- task ids ----------------------------------------------------------------------------------------


def forged_id() -> str:
    return TaskIds("another key entirely").mint(TaskRef(SERVER_ID, "run_000001", "accepted", 202, 20, 0))


@pytest.mark.parametrize(
    "task_id",
    ["not-a-task", "", "a.b", "a.b.c", "W10.AAAA", "x" * 5000, "forged", "tampered"],
)
async def test_unknown_malformed_forged_or_tampered_ids_are_task_not_found(settings: Settings, task_id: str) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/steps 1"})
        payload, mac = created["taskId"].split(".")
        changed = "A" if payload[-2] != "A" else "B"
        tampered = f"{payload[:-2]}{changed}{payload[-1]}.{mac}"  # one character of the signed payload changed
        task_id = {"forged": forged_id(), "tampered": tampered}.get(task_id, task_id)
        for send in (tasks.get, tasks.cancel, lambda task: tasks.update(task, {})):
            with pytest.raises(MCPError) as caught:
                await send(task_id)
            assert caught.value.error.code == -32602
            assert caught.value.error.message.startswith("Failed to retrieve task: Task not found.")


async def test_any_server_sharing_the_key_answers_a_task_and_no_other_does(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    other_key = dataclasses.replace(settings, api_key=SecretStr("tb_other_key_9876543210"))
    async with tasks_client(settings) as first:
        created = await first.call("start_agent_run", {"serverId": SERVER_ID, "content": "/steps 1"})
    async with tasks_client(settings) as replica, tasks_client(other_key) as stranger:
        assert (await replica.settle(created["taskId"]))["status"] == "completed"
        with pytest.raises(MCPError) as caught:
            await stranger.get(created["taskId"])
    assert caught.value.error.code == -32602


async def test_a_run_gone_from_the_platform_is_task_not_found(settings: Settings) -> None:
    missing = TaskIds(API_KEY).mint(TaskRef(SERVER_ID, "run_gone", "accepted", 202, 20, 0))
    async with tasks_client(settings) as tasks:
        with pytest.raises(MCPError) as caught:
            await tasks.get(missing)
    assert caught.value.error.code == -32602


def test_a_task_id_round_trips_what_the_starting_call_knew() -> None:
    ids = TaskIds(API_KEY)
    ref = TaskRef("srv/ü", "run:1", "started", None, 0, 1_700_000_000_123)
    task_id = ids.mint(ref)
    assert ids.read(task_id) == ref and re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", task_id)
    assert TaskIds(API_KEY).read(task_id) == ref  # a restart (or a replica) derives the same key
    assert API_KEY not in task_id


# -- clients that did not declare the extension ----------------------------------------------------


async def test_tasks_methods_need_the_declared_extension_on_the_2026_wire(settings: Settings) -> None:
    async with tasks_client(settings, declare=False) as tasks:
        with pytest.raises(MCPError) as caught:
            await tasks.get(forged_id())
    assert caught.value.error.code == -32021
    assert caught.value.error.data == {"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}}


async def test_tasks_methods_do_not_exist_on_the_2025_wire(settings: Settings) -> None:
    async with tasks_client(settings, declare=False, mode="legacy") as tasks:
        with pytest.raises(MCPError) as caught:
            await tasks.get(forged_id())
    assert caught.value.error.code == -32601


# -- the official client ----------------------------------------------------------------------------


def drive(targets: list[dict[str, Any]], home: Path) -> dict[str, Any]:
    """Run tests/tasks_client.mjs (ext-tasks) against `targets` and return its report."""
    node_package("@modelcontextprotocol/ext-tasks")
    node_package("@modelcontextprotocol/client")
    command = [modern_node(22), str(ROOT / "tests" / "tasks_client.mjs"), json.dumps({"targets": targets})]
    code, report, err = run_json(command, env=node_env(home), timeout=120)
    assert code == 0, err
    assert isinstance(report, dict), report
    return report


def assert_report(report: dict[str, Any], sandbox: RunningSandbox) -> None:
    assert (report["era"], report["extensions"]) == ("modern", {EXTENSION_ID: {}})
    assert (report["stepsKind"], report["hangKind"], report["hangOutcome"]) == ("task", "task", "cancelled")
    assert report["unknownTaskError"]["code"] == -32602
    plain = report["plain"]  # a call without the extension: the ordinary result at once
    assert (plain["taskId"], plain["isError"]) == (None, False)
    assert plain["structuredContent"]["run"]["output"] == "Echo: plain"
    assert report["resumedOutcome"] == "completed"
    content = report["resumedResult"]["structuredContent"]
    assert (content["outcome"], content["run"]["status"], content["run"]["output"]) == (
        "accepted",
        "completed",
        "Completed 3 steps",
    )
    runs = {run.input: run.status for run in runs_posted(sandbox).values() if run.input != "plain"}
    assert runs == {"/steps 3": "completed", "/hang": "cancelled"}  # the hanging run was cancelled on the platform


def test_the_official_tasks_client_over_http_starts_on_one_replica_and_collects_on_another(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = {"COMPUTER_AGENTS_API_KEY": API_KEY, "COMPUTER_AGENTS_BASE_URL": sandbox.base_url, "ACP_SERVER_ID": SERVER_ID}
    with http_server("--stateless", **env) as first, http_server("--stateless", **env) as second:
        report = drive([{"url": first.url}, {"url": second.url}], tmp_path)
    assert_report(report, sandbox)


def test_the_official_tasks_client_over_stdio_collects_a_task_after_a_server_restart(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = python_env(
        COMPUTER_AGENTS_API_KEY=API_KEY, COMPUTER_AGENTS_BASE_URL=sandbox.base_url, ACP_SERVER_ID=SERVER_ID
    )
    server = {"command": sys.executable, "args": ["-m", "acp_mcp"], "env": env}
    report = drive([server, server], tmp_path)  # the second connection starts a new server process
    assert_report(report, sandbox)


@pytest.mark.parametrize("max_events", [5.0, "5"])
async def test_a_task_made_with_max_events_the_tool_accepts_loosely_stays_readable(
    settings: Settings, max_events: Any
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
