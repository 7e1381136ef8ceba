"""Gemini API: ``POST /v1beta/models/MODEL:generateContent``, ``:streamGenerateContent?alt=sse``, ``:countTokens``.

Tools arrive as ``tools[].functionDeclarations``; the model calls one with a ``functionCall`` part and
the client answers with a ``functionResponse`` part in the next ``user`` turn, whose ``response`` object
(``{"output": text}`` or ``{"error": text}`` from Gemini CLI) is what the model reads.
"""

from __future__ import annotations

import json
from typing import Any

from ..flow import Final
from ..stub_model import Reply, Request, StubModel, route

MODEL = "gemini-stub"
ACTION = r"(/v1beta|/v1alpha|/v1)?/models/[^/:]+:"
USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}


def response_text(function_response: dict[str, Any]) -> str:
    """A ``functionResponse`` as the model reads it: its one text field, else its response as JSON."""
    response = function_response.get("response")
    values = list(response.values()) if isinstance(response, dict) else []
    text = values[0] if len(values) == 1 and isinstance(values[0], str) else json.dumps(response)
    extra = [json.dumps(part) for part in function_response.get("parts") or []]
    return "\n".join([text, *extra])


def conversation(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(offered function names, function responses in order) of a generateContent request."""
    offered = [
        declaration["name"]
        for tool in body.get("tools") or []
        for declaration in tool.get("functionDeclarations") or []
    ]
    results = [
        response_text(part["functionResponse"])
        for content in body.get("contents") or []
        for part in content.get("parts") or []
        if "functionResponse" in part
    ]
    return offered, results


def candidate(body: dict[str, Any], model: StubModel) -> dict[str, Any]:
    """One GenerateContentResponse carrying the stub model's decision."""
    decision = model.decide(*conversation(body))
    if isinstance(decision, Final):
        wants_json = (body.get("generationConfig") or {}).get("responseMimeType") == "application/json"
        part: dict[str, Any] = {"text": "{}" if wants_json else decision.text}
    else:
        part = {"functionCall": {"id": decision.id, "name": decision.name, "args": decision.arguments}}
    return {
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": USAGE,
        "modelVersion": MODEL,
        "responseId": f"resp-{len(model.requests)}",
    }


@route("POST", ACTION + "generateContent")
def generate_content(model: StubModel, request: Request) -> Reply:
    return Reply.json(candidate(request.body or {}, model))


@route("POST", ACTION + "streamGenerateContent")
def stream_generate_content(model: StubModel, request: Request) -> Reply:
    return Reply.sse([(None, candidate(request.body or {}, model))])


@route("POST", ACTION + "countTokens")
def count_tokens(model: StubModel, request: Request) -> Reply:
    return Reply.json({"totalTokens": 10})


@route("GET", r"(/v1beta|/v1alpha|/v1)?/models")
def list_models(model: StubModel, request: Request) -> Reply:
    return Reply.json({"models": [{"name": f"models/{MODEL}", "supportedGenerationMethods": ["generateContent"]}]})
