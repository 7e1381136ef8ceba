"""Wires the tools and the run resource into an `MCPServer`."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, InputRequiredResult
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from . import __version__
from .app import AppState
from .config import Settings
from .errors import ACPError
from .messages import invalid_arguments, read_only_refusal, safe_message
from .schemas import input_schema, output_schema
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
    """`MCPServer` with the tool contract as clients need it.

    Refuses the tools read-only mode leaves out, answers arguments that do not fit a tool's
    parameters with a message naming each field and its limit (not the validator's dump), and lists
    the tools with schemas shaped by `schemas` (computed once: the tools never change).
    """

    refused_tools: frozenset[str] = frozenset()
    _listed: list[MCPTool] | None = None

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
