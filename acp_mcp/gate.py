"""Who each streamable HTTP request comes from, what it may do, and how often: the caller gate.

In front of the MCP endpoint, for every request:

1. **The caller.** With OAuth (``ACP_MCP_OAUTH_ISSUER``), the access token's issuer and subject,
   checked by the `JWTVerifier` (a request without a valid token goes on to the SDK, which answers
   401; this gate adds the ``scope`` its challenge lacks). With ``ACP_MCP_CALLER_KEYS``, a key sent in
   the caller-key header is a caller of its own (or, with OAuth, the token's caller's key). Otherwise
   the process's own caller. `callers.current_caller` carries it to the handlers.
2. **The scopes.** A message needing a scope the token lacks gets HTTP 403 ``insufficient_scope``
   with the scopes to ask for (the spec's step-up challenge); the body is read (at most
   `MAX_REQUEST_BYTES`) to learn what it asks, then handed on unchanged.
3. **The rate.** Each identified caller gets a token bucket (``ACP_MCP_CALLER_RATE`` per second,
   ``ACP_MCP_CALLER_BURST`` at once); beyond it, 429 with ``Retry-After``.

It also serves the RFC 9728 protected-resource metadata, naming the issuer and both scopes.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .callers import Caller, Callers, current_caller, fingerprint, oauth_principal
from .clock import Clock
from .config import CALLER_KEY_HEADER, Settings
from .keystore import StoreUnavailableError
from .limits import MAX_RATE_BUCKETS, MAX_REQUEST_BYTES, SESSION_OWNERS_PER_SESSION
from .links import CONNECT_PATH, ConnectLinks
from .oauth import SCOPES, JWTVerifier, needed_scope, well_known
from .signin import CALLBACK_PATH

METADATA_SUFFIX = "oauth-protected-resource"
SESSION_NOT_FOUND = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "Session not found"}}
STORE_DOWN = "the key store cannot be reached right now: retry in a few seconds"


class RateLimited(Exception):
    """A caller's bucket is empty: it may make its next request in `wait` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.2f}s")
        self.wait = wait


class RateBuckets:
    """One token bucket per caller identity: `rate` per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # identity -> (tokens, when)

    def take(self, identity: str) -> float:
        """Take one token for `identity`: 0 when it may go on, else the seconds until a token is back."""
        if self.rate <= 0:
            return 0.0
        now = self._clock.now()
        tokens, then = self._buckets.pop(identity, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[identity] = (tokens - 1 if wait == 0 else tokens, now)
        while len(self._buckets) > MAX_RATE_BUCKETS:
            self._buckets.popitem(last=False)
        return wait


class CallerGate:
    """The ASGI layer that decides each MCP request's caller, checks its scopes and its rate."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        callers: Callers,
        verifier: JWTVerifier | None,
        clock: Clock,
        mcp_path: str,
        links: ConnectLinks | None = None,
        page: ASGIApp | None = None,
    ) -> None:
        self._app = app
        self._settings = settings
        self._callers = callers
        self._verifier = verifier
        self._mcp_path = mcp_path
        self._buckets = RateBuckets(settings.caller_rate, settings.caller_burst, clock)
        self._links = links
        self._page = page
        self._sessions: OrderedDict[str, str] = OrderedDict()  # session id -> the identity of who opened it
        public = settings.public_url
        self._metadata_path = urlsplit(well_known(public, METADATA_SUFFIX)).path if public else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["path"] == self._metadata_path and scope["method"] in ("GET", "HEAD"):
            await _json(send, 200, self._metadata())
            return
        if scope["path"] in (CONNECT_PATH, CALLBACK_PATH) and self._page is not None:
            await self._page(scope, receive, send)
            return
        if scope["path"] != self._mcp_path:
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            caller = await self._caller(headers)
        except StoreUnavailableError:
            await _json(send, 503, _error("temporarily_unavailable", STORE_DOWN), retry_after="5")
            return
        except RateLimited as limited:
            retry = str(max(1, math.ceil(limited.wait)))
            await _json(send, 429, _error("rate_limited", f"too many requests: retry in {retry}s"), retry_after=retry)
            return
        if caller is None:  # OAuth without a valid token: the SDK answers 401, with the scopes added here
            await self._app(scope, receive, self._with_scopes(send, token_sent="authorization" in headers))
            return
        if not self._session_owner(headers.get("mcp-session-id"), caller):
            await _json(send, 404, SESSION_NOT_FOUND)
            return
        if not self._settings.stateless:  # a stateless server opens no session
            send = self._recording_sessions(send, caller)
        if caller.scopes is not None and scope["method"] == "POST":
            body = await _body(receive)
            if body is None:
                await _json(send, 413, _error("invalid_request", "request body too large"))
                return
            missing = _needed(body) - caller.scopes
            if missing:
                await self._insufficient(send, caller.scopes | missing)
                return
            receive = _replay(body, receive)
        token = current_caller.set(caller)
        try:
            await self._app(scope, receive, send)
        finally:
            current_caller.reset(token)

    def _session_owner(self, session: str | None, caller: Caller) -> bool:
        """Whether `caller` may use MCP session `session`: the one who opened it (the SDK binds OAuth sessions
        itself; a key sent in a header is a caller too, so its sessions are bound here)."""
        owner = self._sessions.get(session) if session is not None else None
        return owner is None or owner == caller.identity

    def _recording_sessions(self, send: Send, caller: Caller) -> Send:
        """`send`, noting the caller who opens each new session (its id is in the response's header)."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"mcp-session-id":
                        self._sessions.setdefault(value.decode("latin-1"), caller.identity)
                        while len(self._sessions) > SESSION_OWNERS_PER_SESSION * self._settings.max_sessions:
                            self._sessions.popitem(last=False)
            await send(message)

        return sending

    async def _caller(self, headers: Headers) -> Caller | None:
        """The request's caller; None for an OAuth request without a valid token."""
        sent = (headers.get(CALLER_KEY_HEADER) or "").strip() or None if self._settings.caller_keys else None
        if self._verifier is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            access = await self._verifier.verify_token(token.strip()) if scheme.lower() == "bearer" else None
            if access is None:
                return None
            claims = access.claims or {}
            principal = oauth_principal(self._verifier.issuer, access.subject)
            self._take(principal)  # before any lookup of its key
            key = await self._callers.key_for(principal, access.subject, claims, sent)
            link = self._links.url(principal) if key is None and self._links is not None else None
            return Caller(principal, key, frozenset(access.scopes), link)
        if sent is not None:
            principal = f"key {fingerprint(sent)}"
            self._take(principal)
            return Caller(principal, await self._callers.key_for(principal, None, {}, sent))
        return self._callers.default

    def _take(self, principal: str) -> None:
        """One request from `principal`'s bucket; `RateLimited` when it is empty."""
        wait = self._buckets.take(fingerprint(principal))
        if wait > 0:
            raise RateLimited(wait)

    def _metadata(self) -> dict[str, Any]:
        """RFC 9728 protected-resource metadata."""
        return {
            "resource": self._settings.public_url,
            "authorization_servers": [self._settings.oauth_issuer],
            "scopes_supported": list(SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": "acp-mcp (Computer Agents runs)",
        }

    def _challenge(self, error: str | None, scopes: set[str] | frozenset[str]) -> str:
        parts = [f'error="{error}"'] if error else []
        parts.append(f'scope="{" ".join(sorted(scopes))}"')
        parts.append(f'resource_metadata="{well_known(self._settings.public_url or "", METADATA_SUFFIX)}"')
        return "Bearer " + ", ".join(parts)

    def _with_scopes(self, send: Send, *, token_sent: bool) -> Send:
        """`send`, with the scopes to ask for added to a 401 challenge (the SDK's has none); without a token the
        challenge names no error (RFC 6750, section 3.1)."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"www-authenticate"]
                challenge = self._challenge("invalid_token" if token_sent else None, frozenset(SCOPES))
                message = {**message, "headers": [*headers, (b"www-authenticate", challenge.encode())]}
            await send(message)

        return sending

    async def _insufficient(self, send: Send, scopes: frozenset[str]) -> None:
        needed = " ".join(sorted(scopes))
        body = _error("insufficient_scope", f"this request needs the scopes {needed}: sign in again granting them")
        await _json(send, 403, body, challenge=self._challenge("insufficient_scope", scopes))


def _needed(body: bytes) -> frozenset[str]:
    """The scopes the JSON-RPC message (or batch) in `body` needs; a body that is not JSON needs none here."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # the SDK answers what it cannot parse
        return frozenset()
    messages = data if isinstance(data, list) else [data]
    needed = set()
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("method"), str):
            params = message.get("params")
            scope = needed_scope(message["method"], params if isinstance(params, dict) else None)
            if scope is not None:
                needed.add(scope)
    return frozenset(needed)


async def _body(receive: Receive) -> bytes | None:
    """The whole request body, or None past `MAX_REQUEST_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then what the connection says next (its end)."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


def _error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


async def _json(
    send: Send, status: int, body: dict[str, Any], *, challenge: str | None = None, retry_after: str | None = None
) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode()))
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
