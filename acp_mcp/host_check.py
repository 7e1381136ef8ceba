"""DNS-rebinding protection with exact matching: a request's ``Host`` and ``Origin`` name this server exactly.

A ``Host`` is one host name or address and an optional port, nothing else; it passes when the name
(compared case-insensitively) is a loopback name, the bind host or an allowed host: on any port,
unless the allowed entry names one. An ``Origin`` (absent for same-origin and non-browser callers)
is ``http`` or ``https``, a host and an optional port, no path, user or query; it passes when it is
an allowed origin, or when its host passes as a ``Host`` would. A bad ``Host`` is answered 421, a
bad ``Origin`` 403. (The SDK's own check matches by prefix, so ``localhost:80@evil.example`` passed.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

_HOST = re.compile(r"(?P<name>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")


def _split(host: str) -> tuple[str, int | None] | None:
    """(name lowercased, port) of a ``name[:port]`` text, or None when it is anything more."""
    match = _HOST.fullmatch(host)
    if match is None:
        return None
    return match["name"].lower(), int(match["port"]) if match["port"] else None


class HostCheck:
    """The ASGI layer that refuses a request whose ``Host`` or ``Origin`` does not name this server."""

    def __init__(self, app: ASGIApp, *, any_port: Iterable[str], hosts: Iterable[str], origins: Iterable[str]) -> None:
        self._app = app
        self._names: set[tuple[str, int | None]] = {(name.lower(), None) for name in any_port}
        for host in hosts:
            split = _split(host)
            if split is not None:
                self._names.add(split)
        self._origins = {origin.lower().rstrip("/") for origin in origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if not self._host_passes(headers.get("host", "")):
                await _refuse(send, 421, b"Invalid Host header")
                return
            origin = headers.get("origin")
            if origin is not None and not self._origin_passes(origin):
                await _refuse(send, 403, b"Invalid Origin header")
                return
        await self._app(scope, receive, send)

    def _host_passes(self, host: str) -> bool:
        split = _split(host)
        if split is None:
            return False
        name, port = split
        return (name, None) in self._names or (port is not None and (name, port) in self._names)

    def _origin_passes(self, origin: str) -> bool:
        if origin.lower().rstrip("/") in self._origins:
            return True
        parts = urlsplit(origin)
        exact = parts.scheme in ("http", "https") and not (parts.path or parts.query or parts.fragment)
        return exact and self._host_passes(parts.netloc)


async def _refuse(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
