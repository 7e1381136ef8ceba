"""Anthropic Messages API: ``POST /v1/messages`` (streamed or not) and ``POST /v1/messages/count_tokens``.

Tools arrive as ``tools[]`` with a ``name`` and an ``input_schema``; the model calls one with a
``tool_use`` content block and the client answers with a ``tool_result`` block in the next ``user``
message, whose ``content`` (a string, or a list of blocks) is what the model reads.
"""

from __future__ import annotations

import json
from typing import Any

from ..flow import Final
from ..stub_model import Reply, Request, StubModel, route

MODEL = "claude-stub"
USAGE = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def result_text(content: Any) -> str:
    """A ``tool_result``'s content as the model reads it: the string, or its blocks (non-text blocks as JSON)."""
    if isinstance(content, str):
        return content
    blocks = content or []
    return "\n".join(b["text"] if b.get("type") == "text" else json.dumps(b) for b in blocks)


def conversation(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(offered tool names, tool results in order) of a Messages request."""
    offered = [tool["name"] for tool in body.get("tools") or [] if "name" in tool]
    results = [
        result_text(block.get("content"))
        for message in body.get("messages") or []
        if message.get("role") == "user" and isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    return offered, results


def content_blocks(model: StubModel, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The assistant's content blocks and stop reason for the stub model's decision."""
    decision = model.decide(*conversation(body))
    if isinstance(decision, Final):
        return [{"type": "text", "text": decision.text}], "end_turn"
    call = {"type": "tool_use", "id": f"toolu_{decision.id}", "name": decision.name, "input": decision.arguments}
    return [call], "tool_use"


def stream_events(message: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """A message as the SSE events of a streamed response (one delta per content block)."""
    start = message | {"content": [], "stop_reason": None, "stop_sequence": None, "usage": USAGE | {"output_tokens": 1}}
    events: list[tuple[str | None, Any]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            opening = block | {"input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        events += [
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}),
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    return [
        *events,
        ("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": USAGE["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]


@route("POST", r"(/v1)?/messages")
def messages(model: StubModel, request: Request) -> Reply:
    body = request.body or {}
    content, stop_reason = content_blocks(model, body)
    message = {
        "id": f"msg_stub_{len(model.requests)}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", MODEL),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": USAGE,
    }
    return Reply.sse(stream_events(message)) if body.get("stream") else Reply.json(message)


@route("POST", r"(/v1)?/messages/count_tokens")
def count_tokens(model: StubModel, request: Request) -> Reply:
    return Reply.json({"input_tokens": 10})
