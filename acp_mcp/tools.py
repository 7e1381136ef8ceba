"""The MCP tools: their contracts (names, parameters, annotations, descriptions) and nothing more.

Each tool reads its arguments, calls `RunService`, and returns the shaped result; what it raises
becomes a tool error in `boundary` (wired by `ACPServer.call_tool`). A start or continue that the
tasks extension takes as a task (`TaskCallContext`) returns once its run exists and leaves its
budget and `RunResult` on that context, for the extension to turn into a task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator

from . import arguments
from .limits import (
    DEFAULT_MAX_EVENTS,
    DEFAULT_WAIT_SECONDS,
    MAX_ID_CHARS,
    MAX_LIST_RUNS,
    MAX_MAX_EVENTS,
    MAX_METADATA_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    MAX_WAIT_SECONDS,
)
from .process_state import ProcessState
from .repeats import START_MARKER_CHARS
from .results import (
    RunListResult,
    RunResult,
    render_list,
)
from .schemas import nullable
from .service import CallBudget, RunService

if TYPE_CHECKING:
    OptionalText = str | None
else:
    # Pydantic sees plain `str`: the SDK JSON-parses string arguments of any other declared type
    # (a Claude Desktop workaround), which would turn the text "null" into None and '{"a": 1}' into
    # a dict. `_null_passes` still accepts an explicit null, so the parameters stay optional.
    OptionalText = str


def _null_passes(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return None if value is None else handler(value)


Nullable = WrapValidator(_null_passes)


def _text(description: str, max_length: int) -> Any:
    """The field of an optional text parameter: advertised as string-or-null (see `OptionalText`)."""
    return Field(description=description, max_length=max_length, json_schema_extra=nullable)


ServerId = Annotated[
    OptionalText,
    _text(
        f"Server (resource) id of the agent runtime, at most {MAX_ID_CHARS} characters; omit it "
        '(or null, "") for the MCP server\'s ACP_SERVER_ID.',
        MAX_ID_CHARS,
    ),
    Nullable,
]
RunId = Annotated[
    str,
    Field(
        description=f"Id of the run (run.id in earlier results), at most {MAX_ID_CHARS} characters.",
        max_length=MAX_ID_CHARS,
    ),
]
Content = Annotated[
    OptionalText,
    _text(f"Text for the agent, at most {MAX_TEXT_CHARS:,} characters. Give content or prompt.", MAX_TEXT_CHARS),
    Nullable,
]
Prompt = Annotated[
    OptionalText,
    _text(
        f"Prompt text, an alternative to content, forwarded as given; at most {MAX_TEXT_CHARS:,} characters.",
        MAX_TEXT_CHARS,
    ),
    Nullable,
]
Title = Annotated[
    OptionalText,
    _text(f"Display title for the run, at most {MAX_TITLE_CHARS:,} characters.", MAX_TITLE_CHARS),
    Nullable,
]
Mode = Annotated[
    Literal["sync", "async"] | None,
    Field(
        description="sync: the API answers when the turn is done. async: it accepts at once (HTTP 202) and the "
        "run goes on. Omitted: async is sent and this call still waits up to waitSeconds."
    ),
]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(description=f"Free-form JSON object stored with the run, at most {MAX_METADATA_CHARS // 1024} KiB as JSON."),
]
WaitSeconds = Annotated[
    float | None,
    Field(
        description=f"How long this call waits for the run to finish, 0 to {MAX_WAIT_SECONDS:g} seconds (0 = return "
        f"at once). Default: the server's ACP_MCP_WAIT_SECONDS ({DEFAULT_WAIT_SECONDS:g} unless set).",
        ge=0,
        le=MAX_WAIT_SECONDS,
    ),
]
MaxEvents = Annotated[
    int | None,
    Field(
        description=f"How many events to list, 0 to {MAX_MAX_EVENTS} (default {DEFAULT_MAX_EVENTS}): the latest, "
        "unless eventOffset is given.",
        ge=0,
        le=MAX_MAX_EVENTS,
    ),
]
EventOffset = Annotated[
    int | None,
    Field(description="Index of the first event to list, 0 or more, to page through older events.", ge=0),
]
Limit = Annotated[
    int | None,
    Field(
        description=f"How many runs to list, newest first, 1 to {MAX_LIST_RUNS} (default: the API's).",
        ge=1,
        le=MAX_LIST_RUNS,
    ),
]

RunToolResult = Annotated[CallToolResult, RunResult]
ListToolResult = Annotated[CallToolResult, RunListResult]


def _state(ctx: Context[Any, Any]) -> ProcessState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, ProcessState)
    return state


def _progress(ctx: Context[Any, Any]) -> Callable[[float, float, str], Awaitable[None]]:
    async def report(progress: float, total: float, message: str) -> None:
        await ctx.report_progress(progress, total, message)

    return report


def _service(ctx: Context[Any, Any]) -> RunService:
    return _state(ctx).callers.current().service


def tool_result(structured: RunResult | RunListResult, *, links: bool = False) -> CallToolResult:
    """The tool's answer: the text twin, then (with `links`) a link to the full run, then structured content.

    The text names the run's resource URI, so the full run stays reachable for every client; the
    ``resource_link`` block is opt-in (``ACP_MCP_RESOURCE_LINKS``) because several clients cannot
    carry one (LangChain with OpenAI models, fast-agent) or then ignore the structured content (pydantic-ai).
    """
    if isinstance(structured, RunListResult):
        content: list[Any] = [TextContent(type="text", text=render_list(structured))]
    else:
        content = [TextContent(type="text", text=structured.text)]
        if links and structured.resourceUri and structured.run and structured.run.id:
            content.append(
                ResourceLink(
                    type="resource_link",
                    uri=structured.resourceUri,
                    name=f"run-{structured.run.id}",
                    title=f"Run {structured.run.id} with all events",
                    mime_type="application/json",
                )
            )
    return CallToolResult(content=content, structured_content=structured.model_dump(mode="json"))


def _answer(ctx: Context[Any, Any], structured: RunResult | RunListResult) -> CallToolResult:
    return tool_result(structured, links=_state(ctx).settings.resource_links)


@dataclass(kw_only=True)
class TaskCallContext(ServerRequestContext[Any, Any]):
    """The request context of a ``tools/call`` the tasks extension takes as a task, if it would wait.

    The tool then returns as soon as its run exists and sets `started` to its budget and result.
    """

    started: tuple[CallBudget, RunResult] | None = None

    @classmethod
    def of(cls, ctx: ServerRequestContext[Any, Any]) -> TaskCallContext:
        """`ctx`, marked as a task call."""
        return cls(**{f.name: getattr(ctx, f.name) for f in fields(ServerRequestContext)})


async def _run_call(
    ctx: Context[Any, Any], call: CallBudget, enter: Callable[[CallBudget], Awaitable[RunResult]]
) -> CallToolResult:
    """`enter` the run within `call`; as a task, a call that would wait returns once the run exists."""
    request = ctx.request_context
    if isinstance(request, TaskCallContext) and call.wait > 0:
        call = call.at_once()
        result = await enter(call)
        request.started = (call, result)
    else:
        with _state(ctx).waits.hold(call.wait):
            result = await enter(call)
    return _answer(ctx, result)


async def start_agent_run(
    ctx: Context[Any, Any],
    serverId: ServerId = None,
    content: Content = None,
    prompt: Prompt = None,
    title: Title = None,
    mode: Mode = None,
    metadata: Metadata = None,
    waitSeconds: WaitSeconds = None,
    maxEvents: MaxEvents = None,
) -> RunToolResult:
    """Start a new run of the agent on a server's connected agent runtime, then wait for it.

    Give content (the task for the agent). The call waits up to waitSeconds and returns the run's
    status, output and latest events. If the run is still going, waitExpired is true and `next`
    holds the get_agent_run call that picks it up. Follow up on a finished run with
    continue_agent_run; stop one with cancel_agent_run. Each call starts a new run, except that
    repeating a start whose call was cancelled or timed out returns the run that call started.
    """
    service = _service(ctx)
    body = arguments.run_body(
        content=content, prompt=prompt, title=title, mode=mode, metadata=metadata, reserved=START_MARKER_CHARS
    )
    call = service.budget(serverId, waitSeconds, max_events=maxEvents, report=_progress(ctx))
    return await _run_call(ctx, call, lambda budget: service.start(budget, body))


async def continue_agent_run(
    ctx: Context[Any, Any],
    resourceRunId: RunId,
    serverId: ServerId = None,
    content: Content = None,
    prompt: Prompt = None,
    mode: Mode = None,
    metadata: Metadata = None,
    waitSeconds: WaitSeconds = None,
    maxEvents: MaxEvents = None,
) -> RunToolResult:
    """Send input (a follow-up message) to an existing run, then wait for the agent's answer.

    Use it on a run that has finished its turn (completed, failed or cancelled); a queued or
    running run is busy, so first wait for it with get_agent_run. Outcome "continued" (HTTP 200)
    means the turn is done, "accepted" (202) that it goes on in the background. The call waits up
    to waitSeconds; if the run is still going, `next` holds the get_agent_run call to check it later.
    """
    service = _service(ctx)
    body = arguments.run_body(content=content, prompt=prompt, mode=mode, metadata=metadata)
    call = service.budget(serverId, waitSeconds, max_events=maxEvents, report=_progress(ctx))
    return await _run_call(ctx, call, lambda budget: service.continue_run(budget, resourceRunId, body))


async def get_agent_run(
    ctx: Context[Any, Any],
    resourceRunId: RunId,
    serverId: ServerId = None,
    waitSeconds: WaitSeconds = None,
    maxEvents: MaxEvents = None,
    eventOffset: EventOffset = None,
) -> RunToolResult:
    """Get a run's status, output and events; if it is still going, wait up to waitSeconds first.

    Use it after start_agent_run or continue_agent_run returned before the run finished, or to
    read a run's history. Events are listed oldest first, a window of maxEvents: the latest by
    default, or from eventOffset to page through all eventsTotal events. Long texts are cut with
    a marker; the resource in resourceUri holds the full run.
    """
    service = _service(ctx)
    call = service.budget(serverId, waitSeconds, max_events=maxEvents, event_offset=eventOffset, report=_progress(ctx))
    return await _run_call(ctx, call, lambda budget: service.get(budget, resourceRunId))


async def list_agent_runs(ctx: Context[Any, Any], serverId: ServerId = None, limit: Limit = None) -> ListToolResult:
    """List a server's recent agent runs, newest first, with their ids, statuses and titles.

    Use it to find a run id, or to check whether a start that timed out created a run before
    starting another. Then use get_agent_run for a run's output and events.
    """
    service = _service(ctx)
    return _answer(ctx, await service.list_runs(service.server_id(serverId), limit))


async def cancel_agent_run(ctx: Context[Any, Any], resourceRunId: RunId, serverId: ServerId = None) -> RunToolResult:
    """Cancel a queued or running run; the agent stops and the run ends with status "cancelled".

    This cannot be undone. Use it only when the user wants the run stopped; to change what the
    agent is doing, let the turn finish and use continue_agent_run.
    """
    service = _service(ctx)
    return _answer(ctx, await service.cancel(service.server_id(serverId), resourceRunId))


@dataclass(frozen=True)
class ToolSpec:
    """A tool's registration: the function, its title and its behaviour hints."""

    fn: Callable[..., Awaitable[CallToolResult]]
    title: str
    annotations: ToolAnnotations

    @property
    def name(self) -> str:
        """The tool's name: its function's."""
        return self.fn.__name__

    @property
    def read_only(self) -> bool:
        """True when the tool only reads."""
        return bool(self.annotations.read_only_hint)


def _hints(*, read_only: bool, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=True
    )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(start_agent_run, "Start agent run", _hints(read_only=False)),
    ToolSpec(continue_agent_run, "Continue agent run", _hints(read_only=False)),
    ToolSpec(get_agent_run, "Get agent run", _hints(read_only=True, idempotent=True)),
    ToolSpec(list_agent_runs, "List agent runs", _hints(read_only=True, idempotent=True)),
    ToolSpec(cancel_agent_run, "Cancel agent run", _hints(read_only=False, destructive=True, idempotent=True)),
)
