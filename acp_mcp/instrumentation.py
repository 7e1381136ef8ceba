"""Each MCP message measured: ``mcp.server.operation.duration`` by method, tool and ``error.type``.

A server middleware, inside the SDK's own OpenTelemetry middleware (which opens the message's SERVER
span, ``tools/call start_agent_run``, parented on the ``traceparent`` in ``_meta``), so the spans the tool
opens (`telemetry`) are that span's children. ``error.type`` is the JSON-RPC error code, ``tool_error`` for a
tool result with ``isError``, or the class of an unexpected exception, as the MCP semantic conventions say.
With ``ACP_MCP_TRACE_CONTENT=true`` a tool call's arguments and result, redacted, go on the SERVER span as
``gen_ai.tool.call.arguments`` and ``gen_ai.tool.call.result``; otherwise no content is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from .limits import TRACE_CONTENT_CHARS
from .redaction import Redactor
from .telemetry import Telemetry
from .text import clip

OTHER = "_OTHER"
"""The label of a method or tool name the server does not know (OpenTelemetry's usual word for it)."""
CLIENT_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "subscriptions/listen",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    }
)
"""The methods a client may send a server (both protocol eras): the only method labels."""


class OperationMetrics:
    """Records every inbound MCP message's duration; with `Telemetry.content`, a tool call's content on its span."""

    def __init__(self, telemetry: Telemetry, redact: Redactor, *, tools: Collection[str]) -> None:
        self._telemetry = telemetry
        self._redact = redact
        self._tools = frozenset(tools)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # Labels are what the server knows, never what a caller typed: anything else is "_OTHER", so a key
        # sent as a tool or method name never reaches /metrics, and the series stay few.
        attributes: dict[str, str] = {"mcp.method.name": ctx.method if ctx.method in CLIENT_METHODS else OTHER}
        name = ctx.params.get("name") if ctx.params else None
        tool = (
            (name if name in self._tools else OTHER) if ctx.method == "tools/call" and isinstance(name, str) else None
        )
        if tool is not None:
            attributes["gen_ai.tool.name"] = tool
            if self._telemetry.content:
                self._record("gen_ai.tool.call.arguments", (ctx.params or {}).get("arguments"))
        began = self._telemetry.clock.now()
        try:
            result = await call_next(ctx)
        except Exception as exc:
            attributes["error.type"] = _error_type(exc)
            self._measured(began, attributes)
            raise
        if tool is not None and _is_tool_error(result):
            attributes["error.type"] = "tool_error"
        self._measured(began, attributes)
        if tool is not None and self._telemetry.content:
            self._record("gen_ai.tool.call.result", result)
        return result

    def _measured(self, began: float, attributes: dict[str, str]) -> None:
        self._telemetry.operation_duration.record(self._telemetry.clock.now() - began, attributes)

    def _record(self, attribute: str, value: Any) -> None:
        """`value` as redacted JSON (at most `TRACE_CONTENT_CHARS`) on the message's span."""
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        text = clip(self._redact(json.dumps(value, default=str)), TRACE_CONTENT_CHARS) or ""
        trace.get_current_span().set_attribute(attribute, text)


def _error_type(failure: Exception) -> str:
    """The JSON-RPC code of an error answer (invalid parameters for a validation failure), else the class."""
    if isinstance(failure, MCPError):
        return str(failure.error.code)
    if isinstance(failure, ValidationError):
        return str(INVALID_PARAMS)
    return type(failure).__qualname__


def _is_tool_error(result: HandlerResult) -> bool:
    """Whether a ``tools/call`` result reaches the wire as a tool error (``isError``)."""
    if isinstance(result, CallToolResult):
        return result.is_error is True
    return isinstance(result, dict) and result.get("isError") is True
