"""Wires the tools and the run resource into an `MCPServer`."""

from __future__ import annotations

import base64
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    GetPromptResult,
    Icon,
    InputRequiredResult,
    PromptReference,
    ResourceTemplateReference,
)
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from . import __version__
from .clock import Clock
from .completions import complete_run_argument
from .config import Settings
from .errors import ACPError, InvalidArgumentError, NotFoundError
from .limits import LIST_TTL_MS
from .messages import UNEXPECTED, invalid_arguments, read_only_refusal, safe_message
from .process_state import ProcessState
from .schemas import input_schema, output_schema
from .subscriptions import serve_subscriptions
from .tasks import RunTasks
from .tools import TOOLS
from .waiting import PollPolicy

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
Drives agent runs on the Computer Agents platform (ACP API). Typical flow: start_agent_run with the
task -> if the result says the run is still going, get_agent_run with the ids it gives -> read
run.output -> continue_agent_run to send a follow-up -> cancel_agent_run only to stop a run.
Calls wait a bounded time and never lose the run id; results are trimmed, with the full run
available as the resource in resourceUri."""

RUN_RESOURCE = "acp://servers/{serverId}/runs/{resourceRunId}"
UNCHANGING_LISTS: tuple[CacheableMethod, ...] = (
    "server/discover",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "prompts/list",
)
ICON = Icon(
    src="data:image/svg+xml;base64," + base64.b64encode((Path(__file__).parent / "icon.svg").read_bytes()).decode(),
    mime_type="image/svg+xml",
    sizes=["any"],
)


class ACPServer(MCPServer):
    """`MCPServer` with the tool contract as clients need it.

    Refuses the tools read-only mode leaves out, answers arguments that do not fit a tool's
    parameters with a message naming each field and its limit (not the validator's dump), and lists
    the tools with schemas shaped by `schemas` (computed once: the tools never change).
    """

    state: ProcessState
    refused_tools: frozenset[str] = frozenset()
    _listed: list[MCPTool] | None = None

    @property
    def lowlevel(self) -> Server[Any]:
        """The low-level server, for methods `MCPServer` does not wire (as the SDK's own examples do)."""
        return self._lowlevel_server

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if name in self.refused_tools:
            raise ToolError(read_only_refusal(name))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            errors = exc.__cause__.errors(include_url=False)
            raise ToolError(f"Error executing tool {name}: {invalid_arguments(name, errors)}") from None

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        # mcp 2.3 answers an unknown prompt with -32603 (it wraps its own error in ValueError): a caller's
        # mistake is -32602. Reported upstream-worthy; remove when the SDK maps it itself.
        if name not in {prompt.name for prompt in await self.list_prompts()}:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {name}", data={"name": name})
        return await super().get_prompt(name, arguments, context)

    async def list_tools(self) -> list[MCPTool]:
        if self._listed is None:
            self._listed = [
                tool.model_copy(
                    update={
                        "input_schema": input_schema(tool.input_schema),
                        "output_schema": tool.output_schema and output_schema(tool.output_schema),
                    }
                )
                for tool in await super().list_tools()
            ]
        return self._listed


def tool_description(fn: Any) -> str:
    """A tool's docstring as its description: dedented, each paragraph on one line."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def build_server(settings: Settings, *, policy: PollPolicy | None = None, clock: Clock | None = None) -> ACPServer:
    """An MCP server exposing the run tools and the run resource for `settings`."""
    state = ProcessState.create(settings, policy, clock)
    bus = InMemorySubscriptionBus()

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[ProcessState]:
        async with anyio.create_task_group() as watches:
            state.watcher.start(watches)
            try:
                yield state
            finally:
                watches.cancel_scope.cancel()
                await state.client.aclose()  # the pool reopens if the server runs again

    server = ACPServer(
        "acp-mcp",
        title="Computer Agents runs",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        icons=[ICON],
        cache_hints=dict.fromkeys(UNCHANGING_LISTS, CacheHint(ttl_ms=LIST_TTL_MS, scope="public")),
        subscriptions=bus,
        extensions=[RunTasks(state)],
    )
    server.state = state
    serve_subscriptions(server.lowlevel, bus, state.watcher, sessions=not settings.stateless)
    _add_tools(server, settings)
    _add_run_resource(server, state)
    return server


def _add_tools(server: ACPServer, settings: Settings) -> None:
    """The tools `settings` allow (the read-only ones only, in read-only mode); the rest are refused by name."""
    offered = [spec for spec in TOOLS if spec.read_only or not settings.read_only]
    server.refused_tools = frozenset(spec.fn.__name__ for spec in TOOLS if spec not in offered)
    for spec in offered:
        server.add_tool(
            spec.fn,
            name=spec.fn.__name__,
            title=spec.title,
            description=tool_description(spec.fn),
            annotations=spec.annotations,
        )


def _add_run_resource(server: ACPServer, state: ProcessState) -> None:
    """The run resource template and the completions of its two ids."""
    settings = state.settings

    @server.resource(
        RUN_RESOURCE,
        name="agent-run",
        title="Agent run with all events",
        description="A run and every one of its events, as the ACP API returns them (JSON).",
        mime_type="application/json",
    )
    async def agent_run(serverId: str, resourceRunId: str) -> str:
        try:
            return await state.service.full_run(serverId, resourceRunId)
        except (NotFoundError, InvalidArgumentError) as exc:  # the caller's mistake: -32602, with the URI
            raise ResourceNotFoundError(safe_message(exc, base_url=settings.base_url, redact=state.redact)) from None
        except ACPError as exc:
            raise ResourceError(safe_message(exc, base_url=settings.base_url, redact=state.redact)) from None
        except Exception:
            logger.exception("reading run %s failed unexpectedly", resourceRunId)
            raise ResourceError(UNEXPECTED) from None

    # mcp 2.3 leaves `completion()` untyped
    @server.completion()  # type: ignore[no-untyped-call,untyped-decorator]
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if not (isinstance(ref, ResourceTemplateReference) and ref.uri == RUN_RESOURCE):
            return None
        return await complete_run_argument(state, argument.name, argument.value, context.arguments if context else None)
