"""The MCP tools: their contracts (names, parameters, annotations, descriptions) and nothing more.

Each tool reads its arguments, calls `RunService`, and returns the shaped result. `_boundary` is
the one place where failures become tool errors: `ACPError`s get the message `messages.py`
writes, anything else a generic message and a logged traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, ParamSpec

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator

from .app import AppState
from .config import MAX_WAIT_SECONDS
from .errors import ACPError
from .messages import UNEXPECTED, safe_message
from .results import DEFAULT_MAX_EVENTS, MAX_LIST_RUNS, MAX_MAX_EVENTS, RunListResult, RunResult, tool_result
from .service import MAX_TEXT_CHARS, RunService

logger = logging.getLogger(__name__)

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

ServerId = Annotated[
    OptionalText,
    Field(
        description="Id of the server (resource) whose connected agent runtime runs the agent. "
        "Optional when the MCP server has ACP_SERVER_ID set.",
        max_length=256,
    ),
    Nullable,
]
RunId = Annotated[str, Field(description="Id of the run (run.id in earlier results).", max_length=256)]
Content = Annotated[OptionalText, Field(description="Text for the agent.", max_length=MAX_TEXT_CHARS), Nullable]
Prompt = Annotated[
    OptionalText,
    Field(description="Prompt text; an alternative to content, forwarded as given.", max_length=MAX_TEXT_CHARS),
    Nullable,
]
Title = Annotated[OptionalText, Field(description="Display title for the run.", max_length=1_000), Nullable]
Mode = Annotated[
    Literal["sync", "async"] | None,
    Field(
        description="sync: the API answers when the turn is done. async: the API accepts at once (HTTP 202) and "
        "the run goes on in the background. Omitted: async is sent and this call still waits up to waitSeconds."
    ),
]
Metadata = Annotated[dict[str, Any] | None, Field(description="Free-form metadata object stored with the run.")]
WaitSeconds = Annotated[
    float | None,
    Field(
        description="How long this call waits for the run to finish (0 = return at once). "
        "Default: the server's ACP_MCP_WAIT_SECONDS (45 unless set).",
        ge=0,
        le=MAX_WAIT_SECONDS,
    ),
]
MaxEvents = Annotated[
    int,
    Field(description="How many events to list (the latest, unless eventOffset is given).", ge=0, le=MAX_MAX_EVENTS),
]
EventOffset = Annotated[
    int | None,
    Field(description="Index of the first event to list, to page through older events (0 = the first).", ge=0),
]
Limit = Annotated[
    int | None,
    Field(description="How many runs to list, newest first (API default if omitted).", ge=1, le=MAX_LIST_RUNS),
]

RunToolResult = Annotated[CallToolResult, RunResult]
ListToolResult = Annotated[CallToolResult, RunListResult]

P = ParamSpec("P")


def _state(ctx: Context[Any, Any]) -> AppState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, AppState)
    return state


def _boundary(fn: Callable[P, Awaitable[CallToolResult]]) -> Callable[P, Awaitable[CallToolResult]]:
    """Turn every failure of `fn` into a tool error the model can act on."""

    @functools.wraps(fn)
    async def tool(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
        state = _state(kwargs["ctx"])  # type: ignore[arg-type]
        try:
            return await fn(*args, **kwargs)
        except ACPError as exc:
            logger.info("%s failed: %s", fn.__name__, exc)
            raise ToolError(safe_message(exc, base_url=state.settings.base_url, redact=state.redact)) from None
        except Exception:
            logger.exception("%s failed unexpectedly", fn.__name__)
            raise ToolError(UNEXPECTED) from None

    return tool


def _progress(ctx: Context[Any, Any]) -> Callable[[float, float, str], Awaitable[None]]:
    async def report(progress: float, total: float, message: str) -> None:
        await ctx.report_progress(progress, total, message)

    return report


def _service(ctx: Context[Any, Any]) -> RunService:
    return _state(ctx).service


@_boundary
async def start_agent_run(
    ctx: Context[Any, Any],
    serverId: ServerId = None,
    content: Content = None,
    prompt: Prompt = None,
    title: Title = None,
    mode: Mode = None,
    metadata: Metadata = None,
    waitSeconds: WaitSeconds = None,
    maxEvents: MaxEvents = DEFAULT_MAX_EVENTS,
) -> RunToolResult:
    """Start a new run of the agent on a server's connected agent runtime, then wait for it.

    Give content (the task for the agent). The call waits up to waitSeconds for the run to finish
    and returns its status, output and latest events. If the run is still going when the wait ends,
    the result says so (waitExpired) and `next` holds the get_agent_run call that picks it up: keep
    the run id. To send a follow-up to a finished run use continue_agent_run; to stop it,
    cancel_agent_run. Every call starts a new run, so do not retry a start that may have worked:
    check list_agent_runs first.
    """
    service = _service(ctx)
    body = service.request_body(content=content, prompt=prompt, title=title, mode=mode, metadata=metadata)
    call = service.call(serverId, waitSeconds, max_events=maxEvents, report=_progress(ctx))
    return tool_result(await service.start(call, body))


@_boundary
async def continue_agent_run(
    ctx: Context[Any, Any],
    resourceRunId: RunId,
    serverId: ServerId = None,
    content: Content = None,
    prompt: Prompt = None,
    mode: Mode = None,
    metadata: Metadata = None,
    waitSeconds: WaitSeconds = None,
    maxEvents: MaxEvents = DEFAULT_MAX_EVENTS,
) -> RunToolResult:
    """Send input (a follow-up message) to an existing run, then wait for the agent's answer.

    Use it on a run that has finished its turn (completed, failed or cancelled); a run that is
    still queued or running is busy, so first wait for it with get_agent_run. The API answers
    200 when the turn is done (outcome "continued") or 202 when it accepted the input to work on
    it in the background (outcome "accepted"). The call waits up to waitSeconds and returns the
    run's status, output and latest events; if the run is still going, `next` holds the
    get_agent_run call to check it later.
    """
    service = _service(ctx)
    body = service.request_body(content=content, prompt=prompt, mode=mode, metadata=metadata)
    call = service.call(serverId, waitSeconds, max_events=maxEvents, report=_progress(ctx))
    return tool_result(await service.continue_run(call, resourceRunId, body))


@_boundary
async def get_agent_run(
    ctx: Context[Any, Any],
    resourceRunId: RunId,
    serverId: ServerId = None,
    waitSeconds: WaitSeconds = None,
    maxEvents: MaxEvents = DEFAULT_MAX_EVENTS,
    eventOffset: EventOffset = None,
) -> RunToolResult:
    """Get a run's status, output and events; if it is still going, wait up to waitSeconds first.

    Use it after start_agent_run or continue_agent_run returned before the run finished, or to
    read a run's history. Events are listed oldest first, a window of maxEvents: the latest by
    default, or from eventOffset to page through all eventsTotal events. Long texts are cut with
    a marker; the resource in resourceUri holds the full run.
    """
    service = _service(ctx)
    call = service.call(serverId, waitSeconds, max_events=maxEvents, event_offset=eventOffset, report=_progress(ctx))
    return tool_result(await service.get(call, resourceRunId))


@_boundary
async def list_agent_runs(ctx: Context[Any, Any], serverId: ServerId = None, limit: Limit = None) -> ListToolResult:
    """List a server's recent agent runs, newest first, with their ids, statuses and titles.

    Use it to find a run id, or to check whether a start that timed out created a run before
    starting another. Then use get_agent_run for a run's output and events.
    """
    service = _service(ctx)
    return tool_result(await service.list_runs(service.server_id(serverId), limit))


@_boundary
async def cancel_agent_run(ctx: Context[Any, Any], resourceRunId: RunId, serverId: ServerId = None) -> RunToolResult:
    """Cancel a queued or running run; the agent stops and the run ends with status "cancelled".

    This cannot be undone. Use it only when the user wants the run stopped; to change what the
    agent is doing, let the turn finish and use continue_agent_run.
    """
    service = _service(ctx)
    return tool_result(await service.cancel(service.server_id(serverId), resourceRunId))


@dataclass(frozen=True)
class ToolSpec:
    """A tool's registration: the function, its title and its behaviour hints."""

    fn: Callable[..., Awaitable[CallToolResult]]
    title: str
    annotations: ToolAnnotations

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
