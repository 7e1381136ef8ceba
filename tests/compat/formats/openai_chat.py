"""OpenAI Chat Completions: ``POST /v1/chat/completions`` (streamed or not) and ``GET /v1/models``."""

from __future__ import annotations

import json
import time
from typing import Any

from ..flow import Final
from ..stub_model import Reply, Request, StubModel, route

MODEL = "stub-model"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def tool_text(content: Any) -> str:
    """A tool message's content as the model reads it: the string, or its parts (non-text parts as JSON)."""
    if isinstance(content, str):
        return content
    parts = content or []
    return "\n".join(p["text"] if p.get("type") == "text" else json.dumps(p) for p in parts)


def conversation(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(offered tool names, tool results in order) of a chat request."""
    offered = [tool["function"]["name"] for tool in body.get("tools") or [] if tool.get("type") == "function"]
    results = [tool_text(m.get("content")) for m in body.get("messages", []) if m.get("role") == "tool"]
    return offered, results


@route("POST", r"(/v1)?/chat/completions")
def chat_completions(model: StubModel, request: Request) -> Reply:
    body = request.body or {}
    decision = model.decide(*conversation(body))
    base = {"id": f"chatcmpl-{len(model.requests)}", "created": int(time.time()), "model": body.get("model", MODEL)}
    if isinstance(decision, Final):
        message: dict[str, Any] = {"role": "assistant", "content": decision.text}
        finish = "stop"
    else:
        call = {
            "id": decision.id,
            "type": "function",
            "function": {"name": decision.name, "arguments": json.dumps(decision.arguments)},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    if not body.get("stream"):
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return Reply.json(base | {"object": "chat.completion", "choices": [choice], "usage": USAGE})
    chunk = base | {"object": "chat.completion.chunk"}
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
    if "tool_calls" in message:
        delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
    events: list[tuple[str | None, Any]] = [
        (None, chunk | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
        (None, chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append((None, chunk | {"choices": [], "usage": USAGE}))
    return Reply.sse([*events, (None, "[DONE]")])


@route("GET", r"(/v1)?/models")
def models(model: StubModel, request: Request) -> Reply:
    return Reply.json({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "stub"}]})


def assert_streamed_turns(model: StubModel, name: str, key: str) -> None:
    """Every chat turn the client sent was streamed, for model `name` with bearer `key`, and the last one
    carries one tool message per call the stub made, answering it."""
    turns = [r for r in model.requests if r.path == "/v1/chat/completions"]
    assert all(t.body["stream"] is True and t.body["model"] == name for t in turns)
    assert all(t.headers.get("authorization") == f"Bearer {key}" for t in turns)
    last = max(turns, key=lambda t: len(t.body["messages"])).body["messages"]
    assert [m["tool_call_id"] for m in last if m["role"] == "tool"] == [call.id for call in model.calls]
