"""A local model endpoint that speaks the wire formats clients use, scripted by `flow.FLOW`.

One `StubModel` decides (the same for every format: the next tool call of the flow, or a final
text) and records what the client sent; each module in `formats/` turns a provider's request into
``(offered tool names, tool results so far)`` and the decision back into that provider's response,
streamed or not. Served by the standard library on a loopback port, in a thread of the test
process, so a test reads the recording directly.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .flow import FINAL_TEXT, FLOW, TOOLS, Final, ToolCall, client_name


@dataclass
class Reply:
    """An HTTP response: status, content type, and the body as chunks (several for a stream)."""

    chunks: list[bytes]
    content_type: str = "application/json"
    status: int = 200

    @classmethod
    def json(cls, body: Any, status: int = 200) -> Reply:
        return cls([json.dumps(body).encode()], status=status)

    @classmethod
    def sse(cls, events: list[tuple[str | None, Any]]) -> Reply:
        """Server-sent events: (event name or None, JSON data or the raw string "[DONE]")."""
        chunks = []
        for name, data in events:
            line = data if isinstance(data, str) else json.dumps(data)
            chunks.append(((f"event: {name}\n" if name else "") + f"data: {line}\n\n").encode())
        return cls(chunks, content_type="text/event-stream")


@dataclass(frozen=True)
class Request:
    """What a format handler gets: method, path, query and the JSON body (None if there is none)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


class Handler(Protocol):
    def __call__(self, model: StubModel, request: Request) -> Reply: ...


@dataclass
class StubModel:
    """The scripted model: one flow step per turn, and a record of what reached it."""

    requests: list[Request] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    """The tool results of our tools, in order, as the client put them in front of the model."""
    calls: list[ToolCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, offered: list[str], results: list[str]) -> ToolCall | Final:
        """The next step of the flow, given the tools offered and the tool results so far."""
        names = {tool: client_name(tool, offered) for tool in TOOLS}
        if not all(names.values()):
            return Final("ok")  # a side request (title, summary, quota check) without our tools
        with self.lock:
            if len(results) >= len(self.seen):
                self.seen = list(results)
            if len(results) >= len(FLOW):
                return Final(FINAL_TEXT)
            step = FLOW[len(results)]
            call = ToolCall(f"call_{len(results) + 1}", str(names[step.tool]), step.arguments(results))
            self.calls.append(call)
            return call


ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a format handler for requests whose path matches `pattern` in full."""

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, re.compile(pattern), handler))
        return handler

    return register


def _load_formats() -> None:
    from .formats import anthropic, gemini, openai_chat, openai_responses  # noqa: F401  (they register routes)


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    model: StubModel

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Request(
            self.command, url.path, parse_qs(url.query), body, {k.lower(): v for k, v in self.headers.items()}
        )
        self.model.requests.append(request)
        for method, pattern, handler in ROUTES:
            if method == self.command and pattern.fullmatch(url.path):
                reply = handler(self.model, request)
                break
        else:
            reply = Reply.json({"error": {"message": f"stub model: no route for {self.command} {url.path}"}}, 404)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        if reply.content_type == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in reply.chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
            self.close_connection = True
        else:
            data = b"".join(reply.chunks)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class RunningStub:
    model: StubModel
    url: str
    """Base URL, e.g. http://127.0.0.1:PORT (no trailing slash, no /v1)."""


@contextmanager
def serve_stub_model() -> Iterator[RunningStub]:
    """A fresh `StubModel` served on a free loopback port for the duration of the block."""
    _load_formats()
    model = StubModel()
    handler = type("Handler", (_HttpHandler,), {"model": model})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="stub-model", daemon=True)
    thread.start()
    try:
        yield RunningStub(model, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
