"""Wires the tools and the run resource into an `MCPServer`."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, InputRequiredResult

from . import __version__
from .app import AppState
from .config import Settings
from .errors import ACPError
from .messages import safe_message
from .tools import TOOLS
from .waiting import PollPolicy

INSTRUCTIONS = """\
Drives agent runs on the Computer Agents platform (ACP API). Typical flow: start_agent_run with the
task -> if the result says the run is still going, get_agent_run with the ids it gives -> read
run.output -> continue_agent_run to send a follow-up -> cancel_agent_run only to stop a run.
Calls wait a bounded time and never lose the run id; results are trimmed, with the full run
available as the resource in resourceUri."""

RUN_RESOURCE = "acp://servers/{serverId}/runs/{resourceRunId}"


class ACPServer(MCPServer):
    """`MCPServer` that refuses the tools read-only mode leaves out, with a message that says why."""

    refused_tools: frozenset[str] = frozenset()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if name in self.refused_tools:
            raise ToolError(
                f"{name} is disabled: this MCP server runs in read-only mode (ACP_MCP_READ_ONLY). "
                "Only get_agent_run and list_agent_runs are available; ask the user if a run must be changed."
            )
        return await super().call_tool(name, arguments, context)


def tool_description(fn: Any) -> str:
    """A tool's docstring as its description: dedented, each paragraph on one line."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def build_server(settings: Settings, *, policy: PollPolicy | None = None) -> ACPServer:
    """An MCP server exposing the run tools and the run resource for `settings`."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppState]:
        state = AppState.create(settings, policy)
        try:
            yield state
        finally:
            await state.client.aclose()

    server = ACPServer(
        "acp-mcp",
        title="Computer Agents runs",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
    )
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

    @server.resource(
        RUN_RESOURCE,
        name="agent-run",
        title="Agent run with all events",
        description="A run and every one of its events, as the ACP API returns them (JSON).",
        mime_type="application/json",
    )
    async def agent_run(serverId: str, resourceRunId: str, ctx: Context[Any, Any]) -> str:
        state: AppState = ctx.request_context.lifespan_context
        try:
            return await state.service.full_run(serverId, resourceRunId)
        except ACPError as exc:
            raise ResourceError(safe_message(exc, base_url=settings.base_url, redact=state.redact)) from None

    return server
