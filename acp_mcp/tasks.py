"""The MCP tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663) for the tools that start work.

When a request declares the extension (2026-07-28 wire, per-request client capabilities), a
``start_agent_run`` or ``continue_agent_run`` call that would wait for its run (``waitSeconds``
omitted or above 0) returns a task as soon as the run exists on the platform, instead of waiting:
the tool runs as usual on a `TaskCallContext`, returns once the run exists and leaves its
`RunResult` there, which becomes a ``CreateTaskResult``. A call with ``waitSeconds: 0`` returns at
once anyway and stays ordinary, as does a call that fails before a run exists. Every other call, and
every client that does not declare the extension, is untouched.

A task is its run: nothing is stored here. The task id (`task_ids`) carries the server id, the run
id and what the starting call knew, signed for the caller and their ACP key, so every replica
answers every task, a restart loses nothing, and a forged, altered or another caller's id is "not
found" (``-32602``).

Status mapping (``tasks/get``): a queued or running run is ``working``; a run that has finished
its turn is ``completed`` with exactly the result the tool returns for it (a failed run too: the
call produced a result, and SEP-2663 keeps ``failed`` for JSON-RPC errors); a cancelled run is
``cancelled``. ``tasks/cancel`` cancels the run; ``tasks/update`` has nothing to take (no task ever
asks for input) and acknowledges. ``notifications/tasks`` are not sent (polling is the default).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolRequestParams, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from .errors import ConflictError
from .limits import FIELD_CHARS
from .messages import TASK_NOT_FOUND, read_only_refusal, task_status
from .process_state import ProcessState
from .results import RunResult
from .task_ids import TaskIds, TaskRef
from .text import clip
from .tools import TaskCallContext, tool_result

logger = logging.getLogger(__name__)

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"start_agent_run", "continue_agent_run"})
"""The tools whose calls become tasks: the ones that set a run going."""
_MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)


class TaskIdParams(RequestParams):
    """``tasks/get`` and ``tasks/cancel`` params."""

    task_id: str


class UpdateTaskParams(RequestParams):
    """``tasks/update`` params: the answers to a task's input requests."""

    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)


class RunTasks(Extension):
    """The tasks extension: ``tools/call`` of the run-starting tools as tasks, and ``tasks/*`` over the runs."""

    identifier = EXTENSION_ID

    def __init__(self, state: ProcessState) -> None:
        self.state = state

    def methods(self) -> Sequence[MethodBinding]:
        # the extension exists on the 2026-07-28 wire only: a 2025-11-25 client gets "Method not found"
        return [
            MethodBinding("tasks/get", TaskIdParams, self.get, protocol_versions=_MODERN),
            MethodBinding("tasks/update", UpdateTaskParams, self.update, protocol_versions=_MODERN),
            MethodBinding("tasks/cancel", TaskIdParams, self.cancel, protocol_versions=_MODERN),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not declares_tasks(ctx):
            return await call_next(ctx)
        call = TaskCallContext.of(ctx)
        answer = await call_next(call)
        if call.started is None:  # it did not wait (waitSeconds 0) or failed: an ordinary result
            return answer
        budget, result = call.started
        if result.run is None or not result.run.id:
            return answer
        ref = TaskRef(
            result.serverId,
            result.run.id,
            result.outcome,
            result.httpStatus,
            budget.max_events,
            int(budget.began_wall * 1000),
        )
        logger.info("%s on run %s became a task", params.name, ref.run_id)
        return {"resultType": "task", **self._task(ref, result)}

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        """``tasks/get``: the task as its run stands now, with the tool's result once the run is done."""
        require_client_extension(ctx, EXTENSION_ID)
        ref = self._ref(params.task_id)
        service = self.state.callers.current().service
        call = service.budget(ref.server_id, 0, max_events=ref.max_events)
        with self.state.boundary.request("tasks/get", not_found=TASK_NOT_FOUND):
            result = await service.get(call, ref.run_id, outcome=ref.outcome, http_status=ref.http_status)
        task = {"resultType": "complete", **self._task(ref, result)}
        if task["status"] == "completed":
            answer = tool_result(result, links=self.state.settings.resource_links)
            task["result"] = {
                "resultType": "complete",
                **answer.model_dump(mode="json", by_alias=True, exclude_none=True),
            }
        return task

    async def update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> HandlerResult:
        """``tasks/update``: acknowledged; no task asks for input, so every response is for a key not outstanding."""
        require_client_extension(ctx, EXTENSION_ID)
        self._ref(params.task_id)
        return {"resultType": "complete"}

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        """``tasks/cancel``: cancels the run; a run that already finished keeps its status (cancel is cooperative)."""
        require_client_extension(ctx, EXTENSION_ID)
        ref = self._ref(params.task_id)
        if self.state.settings.read_only:
            raise MCPError(INVALID_PARAMS, read_only_refusal("tasks/cancel"))
        with self.state.boundary.request("tasks/cancel", not_found=TASK_NOT_FOUND):
            try:
                await self.state.callers.current().service.cancel(ref.server_id, ref.run_id)
            except ConflictError:
                logger.info("tasks/cancel: run %s had already finished", ref.run_id)
        return {"resultType": "complete"}

    @property
    def _ids(self) -> TaskIds:
        """The task ids of the request's caller."""
        return self.state.callers.current().task_ids

    def _ref(self, task_id: str) -> TaskRef:
        ref = self._ids.read(task_id)
        if ref is None:
            raise MCPError(INVALID_PARAMS, TASK_NOT_FOUND)
        return ref

    def _task(self, ref: TaskRef, result: RunResult) -> dict[str, Any]:
        """The ``Task`` fields for `ref` with its run as `result` shows it."""
        run = result.run
        status = run.status if run is not None else None
        created = datetime.fromtimestamp(ref.created_ms / 1000, UTC)
        if status in ("completed", "failed"):
            state = "completed"
        elif status == "cancelled":
            state = "cancelled"
        else:
            state = "working"
        latest = [result.events[-1].createdAt] if result.events else []
        updated = _latest(created, [run.completedAt, *latest] if run is not None else latest)
        error = clip(run.error, FIELD_CHARS) if run is not None else None
        message = self.state.redact(task_status(status, ref.run_id, ref.server_id, error))
        return {
            "taskId": self._ids.mint(ref),
            "status": state,
            "statusMessage": message,
            "createdAt": _iso(created),
            "lastUpdatedAt": _iso(updated),
            "ttlMs": None,  # the run is kept by the platform, not by this server
            "pollIntervalMs": self._poll_interval_ms(self.state.clock.wall() - ref.created_ms / 1000),
        }

    def _poll_interval_ms(self, age: float) -> int:
        """The interval `get_agent_run` would wait next after waiting `age` seconds: the same backoff."""
        elapsed = 0.0
        for interval in self.state.callers.policy.intervals():
            elapsed += interval
            if elapsed > age or interval >= self.state.callers.policy.max_interval:
                return max(1, round(interval * 1000))
        raise AssertionError("unreachable: intervals() never ends")  # pragma: no cover


def declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """True when this request (2026-07-28 wire) declares the extension in its client capabilities."""
    if ctx.protocol_version not in _MODERN:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION_ID in capabilities.extensions)


def _latest(floor: datetime, stamps: Sequence[str | None]) -> datetime:
    """The latest of `floor` and the parseable ISO 8601 `stamps`."""
    latest = floor
    for stamp in stamps:
        try:
            moment = datetime.fromisoformat(stamp) if stamp else None
        except ValueError:
            moment = None
        if moment is not None:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            latest = max(latest, moment)
    return latest


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
