"""A client for the tasks extension (io.modelcontextprotocol/tasks, SEP-2663) wire, which has no SDK types:
raw tools/call, tasks/get, tasks/update and tasks/cancel through the Python SDK's session."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.extension import advertise
from mcp.types import (
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
from pydantic import ConfigDict

from acp_mcp.composition import compose
from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.task_ids import TaskIds, TaskRef
from acp_mcp.tasks import EXTENSION_ID

from .conftest import FAST_POLLS, SERVER_ID, api_requests

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

    async def _send(self, request: Request[Any, Any]) -> dict[str, Any]:
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
async def tasks_client(settings: Settings, *, declare: bool = True, mode: ConnectMode = "auto") -> AsyncIterator[Tasks]:
    """A client of a server built from `settings` that declares the extension (unless `declare` is False)."""
    extensions = [advertise(EXTENSION_ID)] if declare else []
    server = compose(settings, policy=FAST_POLLS).server
    async with Client(server, mode=mode, extensions=extensions) as client:
        yield Tasks(client)


def structured(result: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = result["structuredContent"]
    return content


def runs_posted(sandbox: RunningSandbox) -> dict[str, Any]:
    """The sandbox's runs that this test started or cancelled, by id."""
    ids = {found.group(1) for r in api_requests(sandbox) if (found := re.search(r"/runs/([^/]+)", r.path))}
    return {run_id: sandbox.state.get_run(SERVER_ID, run_id) for run_id in sorted(ids)}


def text_of_wire(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


def forged_id() -> str:
    """A well-formed task id signed with another key."""
    return TaskIds("another key entirely").mint(TaskRef(SERVER_ID, "run_000001", "accepted", 202, 20, 0))
