"""Canned misbehaviours of the sandbox: the ``Fault`` model, the armed faults, and how each is played.

Sandbox-only conventions (no real-API counterpart): faults only touch /v1
requests and match ``path_contains`` against the raw path; a ``str`` fault body
is sent as text/plain unless the fault's headers say otherwise; a ``slow`` fault
sleeps on the sandbox's clock, then lets the request go on.

A ``lost_answer`` fault lets the request be handled (a start creates its run), then hangs up instead of
answering: an answer lost after the request went out.

The ``close``, ``truncated`` and ``lost_answer`` faults need the connection's transport, which
the sandbox runner puts in the scope under ``TRANSPORT_SCOPE_KEY``. Under
another ASGI server ``close`` raises instead, which makes that server answer
500 (or drop the connection if it already started the response).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, get_args

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import Clock
from .errors import error_body

FaultKind = Literal["status", "html", "empty", "non_json", "truncated", "close", "slow", "redirect", "lost_answer"]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
TRANSPORT_SCOPE_KEY = "acp_mcp.sandbox.transport"
TRUNCATED_BODY = b'{"serverId":"sandbox","agentRuntimeId":"art_sandbox","run":{"id":"run_0'


@dataclass(frozen=True)
class Fault:
    """A canned misbehaviour for the next matching /v1 requests."""

    kind: FaultKind
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | None = None
    delay: float = 0.0
    location: str | None = None

    def __post_init__(self) -> None:
        """Reject impossible faults."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {sorted(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs a location")

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this fault applies to a request."""
        method_ok = self.method is None or self.method.upper() == method.upper()
        return method_ok and (self.path_contains is None or self.path_contains in path)


class ArmedFaults:
    """The faults waiting for their requests, each with the uses it has left; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[tuple[Fault, int]] = []

    def arm(self, fault: Fault) -> None:
        """Arm a fault for its next `times` matching requests."""
        with self._lock:
            self._faults.append((fault, fault.times))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """Return and use up the first armed fault matching a request."""
        with self._lock:
            for index, (fault, left) in enumerate(self._faults):
                if fault.matches(method, path):
                    if left > 1:
                        self._faults[index] = (fault, left - 1)
                    else:
                        del self._faults[index]
                    return fault
        return None


async def play_fault(fault: Fault, clock: Clock, scope: Scope, receive: Receive, send: Send) -> bool:
    """Play a fault; return False when the request should go on normally (``lost_answer``: see `lose_answer`)."""
    if fault.kind == "slow":
        await clock.sleep(fault.delay)
        return False
    if fault.kind == "lost_answer":
        return False
    if fault.kind == "close":
        await _hang_up(scope, receive)
    elif fault.kind == "truncated":
        await _send_truncated(scope, receive, send)
    else:
        await _fault_response(fault)(scope, receive, send)
    return True


async def lose_answer(app: ASGIApp, scope: Scope, receive: Receive) -> None:
    """Let `app` handle the request with its answer thrown away, then hang up."""

    async def thrown_away(message: Message) -> None:
        """Drop the answer."""

    await app(scope, receive, thrown_away)
    await _hang_up(scope, receive)


async def _hang_up(scope: Scope, receive: Receive) -> None:
    """Close the client connection and wait until the server notices."""
    transport = scope.get(TRANSPORT_SCOPE_KEY)
    if transport is None:
        raise RuntimeError("sandbox fault: no transport to close")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_truncated(scope: Scope, receive: Receive, send: Send) -> None:
    """Declare a longer body than the one sent, then hang up."""
    declared = str(len(TRUNCATED_BODY) * 2).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", declared)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": TRUNCATED_BODY, "more_body": True})
    await _hang_up(scope, receive)


def _fault_response(fault: Fault) -> Response:
    """Return the canned response of a status/html/empty/non_json/redirect fault."""
    response: Response
    if fault.kind == "html":
        response = Response(_html_page(fault.status), fault.status, media_type="text/html")
    elif fault.kind == "empty":
        response = Response(b"", fault.status)
    elif fault.kind == "non_json":
        response = Response("ok", 200, media_type="text/plain")
    elif fault.kind == "redirect":
        response = JSONResponse(error_body(307), 307, {"location": fault.location or "/"})
    elif isinstance(fault.body, str):
        response = Response(fault.body, fault.status, media_type="text/plain")
    else:
        body = fault.body if fault.body is not None else error_body(fault.status)
        response = JSONResponse(body, fault.status)
    response.headers.update(fault.headers)
    return response


def _html_page(status: int) -> str:
    """An HTML error page like a proxy in front of the API would send."""
    phrase = HTTPStatus(status).phrase
    page = f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
    return f"{page}<body><h1>{phrase}</h1></body></html>"
