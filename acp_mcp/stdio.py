"""MCP over stdio, with an answer for every line: the SDK's transport, plus replies to lines it cannot parse.

mcp 2.3's stdio reader hands a line it cannot parse to the session as an exception, which logs
it and sends nothing, so the client waits out its whole timeout. Here such a line is answered as
JSON-RPC says: ``-32700`` (parse error) when it is not JSON the server can read, ``-32600``
(invalid request) when it is JSON but not an MCP message or nested deeper than the SDK's parser
goes, with the request's id whenever it can be read.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from .server import ACPServer

logger = logging.getLogger(__name__)


async def serve_stdio(server: ACPServer) -> None:
    """Serve `server` on stdin/stdout until stdin closes."""
    lowlevel = server.lowlevel
    async with stdio_server() as (lines, replies), anyio.create_task_group() as group:
        messages_in, messages = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def screen() -> None:
            async with messages_in:
                async for item in lines:
                    if isinstance(item, Exception):
                        logger.info("answering a line the server cannot parse: %s", type(item).__name__)
                        await replies.send(SessionMessage(unparsable(item)))
                    else:
                        await messages_in.send(item)

        group.start_soon(screen)
        await lowlevel.run(messages, replies, lowlevel.create_initialization_options())
        group.cancel_scope.cancel()


def unparsable(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error answering a line that did not parse as an MCP message."""
    errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
    raw = next((e["input"] for e in errors if e["type"] == "json_invalid" and isinstance(e["input"], str)), None)
    if raw is not None:
        try:
            message: Any = json.loads(raw)
        except (ValueError, RecursionError):
            return _error(None, PARSE_ERROR, "Parse error: the line is not valid JSON.")
        return _error(
            _request_id(message),
            INVALID_REQUEST,
            "Invalid request: the message is nested too deeply to read; send arguments nested less deeply.",
        )
    message = next((e["input"] for e in errors if isinstance(e.get("input"), dict)), None)
    return _error(_request_id(message), INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message MCP knows.")


def _request_id(message: Any) -> int | str | None:
    request_id = message.get("id") if isinstance(message, dict) else None
    return request_id if isinstance(request_id, str) or type(request_id) is int else None


def _error(request_id: int | str | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))
