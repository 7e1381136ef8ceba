"""OpenAI Responses API as Codex uses it: ``POST /v1/responses``, streamed (SSE) or not.

A custom Codex model provider calls nothing else (``GET /v1/models`` is served by ``openai_chat``).
Tool results come back as ``function_call_output`` items whose ``output`` is a string or a list of
``input_text``/``input_image`` parts; the model reads the parts' texts (other parts as JSON).
"""

from __future__ import annotations

import json
from typing import Any

from ..flow import Final, ToolCall
from ..stub_model import Reply, Request, StubModel, route

MODEL = "stub-model"
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 15,
}


def offered_tools(tools: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The function tools offered, by the name the model knows them by, with how a call names them.

    Codex groups an MCP server's tools in a ``namespace`` tool (``mcp__<server>``); the model calls
    one with the plain tool ``name`` and the ``namespace``, and sees it as ``<namespace>__<name>``.
    """
    offered: dict[str, dict[str, str]] = {}
    for tool in tools:
        if tool.get("type") == "function":
            offered[tool["name"]] = {"name": tool["name"]}
        elif tool.get("type") == "namespace":
            for inner in offered_tools(tool.get("tools") or []).values():
                offered[f"{tool['name']}__{inner['name']}"] = {"name": inner["name"], "namespace": tool["name"]}
    return offered


def output_text(output: Any) -> str:
    """A ``function_call_output`` as the model reads it: the string, or its parts (non-text parts as JSON)."""
    if isinstance(output, str):
        return output
    parts = output or []
    return "\n".join(p["text"] if p.get("type") in ("input_text", "output_text") else json.dumps(p) for p in parts)


def tool_results(body: dict[str, Any]) -> list[str]:
    """The ``function_call_output`` items of a Responses request, in order, as the model reads them."""
    items = body.get("input")
    items = items if isinstance(items, list) else []
    return [output_text(item.get("output")) for item in items if item.get("type") == "function_call_output"]


def output_item(decision: ToolCall | Final, offered: dict[str, dict[str, str]], number: int) -> dict[str, Any]:
    """The decision as a Responses output item: an assistant message or a ``function_call``."""
    if isinstance(decision, Final):
        text = {"type": "output_text", "text": decision.text, "annotations": []}
        return {"id": f"msg_{number}", "type": "message", "status": "completed", "role": "assistant", "content": [text]}
    return {
        "id": f"fc_{number}",
        "type": "function_call",
        "status": "completed",
        "call_id": decision.id,
        **offered[decision.name],
        "arguments": json.dumps(decision.arguments),
    }


@route("POST", r"(/v1)?/responses")
def responses(model: StubModel, request: Request) -> Reply:
    body = request.body or {}
    offered = offered_tools(body.get("tools") or [])
    decision = model.decide(list(offered), tool_results(body))
    number = len(model.requests)
    item = output_item(decision, offered, number)
    response = {
        "id": f"resp_{number}",
        "object": "response",
        "created_at": 0,
        "model": body.get("model", MODEL),
        "status": "in_progress",
        "output": [],
        "usage": None,
    }
    done = response | {"status": "completed", "output": [item], "usage": USAGE}
    if not body.get("stream"):
        return Reply.json(done)
    empty: dict[str, Any] = {"content": []} if item["type"] == "message" else {"arguments": ""}
    added = item | {"status": "in_progress"} | empty
    if item["type"] == "message":
        delta = ("response.output_text.delta", {"content_index": 0, "delta": item["content"][0]["text"]})
    else:
        delta = ("response.function_call_arguments.delta", {"delta": item["arguments"]})
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": added}),
        (delta[0], {"item_id": item["id"], "output_index": 0, **delta[1]}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": done}),
    ]
    return Reply.sse([(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events)])
