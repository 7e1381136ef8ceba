"""The MCP surface: the tools, the run resource, its completions and subscriptions, on an `MCPServer`.

`ACPServer` is handed finished parts (the process state, the tools to offer and to refuse, the
extensions, the subscription bus) by `composition.compose` and wires them in its constructor.
"""

from __future__ import annotations

import base64
import inspect
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
from mcp.server.auth.settings import AuthSettings
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.extension import Extension
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    ElicitRequest,
    ElicitRequestURLParams,
    GetPromptResult,
    Icon,
    InputRequiredResult,
    ListResourcesResult,
    ListToolsResult,
    PaginatedRequestParams,
    PromptReference,
    ResourceTemplateReference,
)
from mcp.types import Tool as MCPTool
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import AnyHttpUrl

from . import __version__
from .completions import complete_run_argument
from .instrumentation import OperationMetrics
from .limits import LIST_TTL_MS
from .messages import CONNECT_PROMPT, connect_refusal, read_only_refusal, scope_refusal
from .oauth import JWTVerifier, tool_scope
from .process_state import ProcessState
from .run_view import bind_view, shows_view, without_view
from .schemas import input_schema, output_schema
from .subscriptions import serve_subscriptions
from .tools import ToolSpec
from .uris import RUN_TEMPLATE

INSTRUCTIONS = """\
Drives agent runs on the Computer Agents platform (ACP API). Typical flow: start_agent_run with the
task -> if the result says the run is still going, get_agent_run with the ids it gives -> read
run.output -> continue_agent_run to send a follow-up -> cancel_agent_run only to stop a run.
Calls wait a bounded time and never lose the run id; results are trimmed, with the full run
available as the resource in resourceUri."""

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

    Offers `tools` and refuses `refused` by name (read-only mode), turns every failure of a tool into
    a tool error through the state's `Boundary`, and lists the tools with schemas shaped by `schemas`
    (computed once: the tools never change).
    """

    def __init__(
        self,
        state: ProcessState,
        *,
        tools: Sequence[ToolSpec],
        refused: Sequence[ToolSpec] = (),
        extensions: Sequence[Extension] = (),
        bus: InMemorySubscriptionBus,
        verifier: JWTVerifier | None = None,
    ) -> None:
        settings = state.settings
        auth = None
        if verifier is not None and settings.oauth_issuer and settings.public_url:
            # Scopes are checked per call (`oauth.needed_scope`), not for the whole endpoint: none required here.
            auth = AuthSettings(
                issuer_url=AnyHttpUrl(settings.oauth_issuer),
                resource_server_url=AnyHttpUrl(settings.public_url),
                validate_token_resource=True,
            )
        # with OAuth, tools/list depends on the token's scopes: no sharing of cached lists between tokens
        lists: Literal["public", "private"] = "private" if auth is not None else "public"
        super().__init__(
            "acp-mcp",
            title="Computer Agents runs",
            version=__version__,
            instructions=INSTRUCTIONS,
            lifespan=_lifespan(state),
            log_level=state.settings.log_level,
            icons=[ICON],
            cache_hints=dict.fromkeys(UNCHANGING_LISTS, CacheHint(ttl_ms=LIST_TTL_MS, scope=lists)),
            subscriptions=bus,
            extensions=list(extensions),
            token_verifier=verifier,
            auth=auth,
            middleware=[OperationMetrics(state.telemetry, state.redact, tools=[spec.name for spec in tools])],
        )
        self.state = state
        self.refused_tools = frozenset(spec.name for spec in refused)
        self._listed: list[MCPTool] | None = None
        for spec in tools:
            description = tool_description(spec.fn)
            self.add_tool(
                spec.fn, name=spec.name, title=spec.title, description=description, annotations=spec.annotations
            )
        _add_run_resource(self, state)
        self.lowlevel.add_request_handler("tools/list", PaginatedRequestParams, self._tools_for)
        self.lowlevel.add_request_handler("resources/list", PaginatedRequestParams, self._resources_for)
        serve_subscriptions(
            self.lowlevel, state.watcher, state.callers, state.boundary, sessions=not state.settings.stateless
        )

    @property
    def lowlevel(self) -> Server[Any]:
        """The low-level server, for methods `MCPServer` does not wire (as the SDK's own examples do)."""
        return self._lowlevel_server

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if name in self.refused_tools:
            raise ToolError(read_only_refusal(name))
        if not self._granted(name):
            raise ToolError(scope_refusal(name, tool_scope(name)))
        caller = self.state.callers.caller()
        if caller.key is None and caller.connect_url is not None:
            return _send_to_connect(name, caller.connect_url, context)
        with self.state.boundary.tool_call(name):
            return await super().call_tool(name, arguments, context)

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
        return [tool for tool in self._listed if self._granted(tool.name)]

    async def _tools_for(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        """tools/list: the run view bound to its tools only for a client that renders it."""
        tools = await self.list_tools()
        return ListToolsResult(tools=bind_view(tools) if shows_view(ctx) else tools)

    async def _resources_for(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        """resources/list: the run view listed only for a client that renders it."""
        resources = await self.list_resources()
        return ListResourcesResult(resources=resources if shows_view(ctx) else without_view(resources))

    def _granted(self, name: str) -> bool:
        """Whether the request's caller may call tool `name` (always, unless OAuth scopes say otherwise)."""
        scopes = self.state.callers.caller().scopes
        return scopes is None or tool_scope(name) in scopes


def _send_to_connect(name: str, url: str, context: Context[Any, Any] | None) -> InputRequiredResult:
    """A caller without a key goes to the connect page, by URL-mode elicitation where the client takes it:
    on 2026-07-28 an input-required result (the client opens the page, then retries the call), on 2025-11-25
    the -32042 error. Otherwise, or when a retry still has no key, a tool error gives the link."""
    request = context.request_context if context is not None else None
    capabilities = request.session.client_capabilities if request is not None else None
    elicitation = capabilities.elicitation if capabilities is not None else None
    if request is not None and elicitation is not None and elicitation.url is not None:
        if request.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            params = ElicitRequestURLParams(message=CONNECT_PROMPT, url=url, elicitation_id=secrets.token_urlsafe(12))
            raise UrlElicitationRequiredError([params], message=CONNECT_PROMPT)
        if context is not None and not context.input_responses:
            ask = ElicitRequest(params=ElicitRequestURLParams(message=CONNECT_PROMPT, url=url))
            return InputRequiredResult(input_requests={"connect": ask})
    raise ToolError(f"Error executing tool {name}: {connect_refusal(url)}")


def tool_description(fn: Any) -> str:
    """A tool's docstring as its description: dedented, each paragraph on one line."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _lifespan(state: ProcessState) -> Any:
    """Watches run while the server runs; the callers' pools close after (they reopen if the server runs again)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[ProcessState]:
        async with anyio.create_task_group() as background:
            state.watcher.start(background)
            state.callers.start(background)
            try:
                yield state
            finally:
                background.cancel_scope.cancel()
                await state.callers.aclose()

    return lifespan


def _add_run_resource(server: ACPServer, state: ProcessState) -> None:
    """The run resource template and the completions of its two ids."""

    @server.resource(
        RUN_TEMPLATE,
        name="agent-run",
        title="Agent run with all events",
        description="A run and every one of its events, as the ACP API returns them (JSON).",
        mime_type="application/json",
    )
    async def agent_run(serverId: str, resourceRunId: str) -> str:
        with state.boundary.resource_read(f"run {resourceRunId}"):
            return await state.callers.current().service.full_run(serverId, resourceRunId)

    # mcp 2.3 leaves `completion()` untyped
    @server.completion()  # type: ignore[no-untyped-call,untyped-decorator]
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if not (isinstance(ref, ResourceTemplateReference) and ref.uri == RUN_TEMPLATE):
            return None
        return await complete_run_argument(state, argument.name, argument.value, context.arguments if context else None)
