"""Streamable HTTP for other agents: caller authentication, DNS-rebinding protection, serving.

Security model: callers authenticate with their own bearer token (``ACP_MCP_HTTP_TOKEN``),
compared in constant time; that token is never passed upstream, and nothing a caller sends
can choose the platform key or the base URL. Listening beyond loopback without a token is
refused. Host and Origin headers are checked against allow-lists (loopback names, the bind
host, and ``ACP_MCP_ALLOWED_HOSTS`` / ``ACP_MCP_ALLOWED_ORIGINS``). Progress notifications need
the SSE response mode, so JSON-only responses are never enabled.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import anyio
import uvicorn
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .composition import Application
from .config import HTTP_TOKEN_VARIABLE, ConfigError, Settings, is_loopback
from .connect import ConnectPage
from .gate import CallerGate
from .host_check import HostCheck
from .limits import (
    EXIT_SECONDS,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_REQUEST_BYTES,
    MAX_STREAM_SECONDS,
    MIN_TOKEN_CHARS,
)
from .shutdown import exit_by, run_until_signalled
from .signin import SignIn
from .slow_clients import connection_cap, deadline_protocol

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_ADDRESS = {"0.0.0.0", "::", ""}


class BearerTokenMiddleware:
    """Answers 401 to any HTTP request without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(Headers(scope=scope).get("authorization", "")):
            body = json.dumps({"error": "unauthorized", "error_description": "missing or invalid bearer token"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="acp-mcp"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self._app(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, presented = header.partition(" ")
        # compare_digest runs in constant time for equal lengths; the token's length is not secret.
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self._token)


class FrontDoor:
    """The outermost ASGI layer: health endpoints, refusal while draining, and every request in flight.

    ``GET /healthz`` answers 200 while the process is up; ``GET /readyz`` 200 while serving, 503 before
    start-up completes and from the moment `leaving` is set (SIGTERM); ``GET /metrics``, with `metrics`
    (``ACP_MCP_METRICS``), the metrics in Prometheus text. All are cheap, never touch the API, and sit before the
    caller token and the Host checks, for load balancers, orchestrators and scrapers. Once `draining` is set,
    every other request gets 503 with ``Retry-After`` and ``Connection: close``, so a balancer sends it elsewhere.

    Each request runs in its own cancel scope; a GET (a stream of server messages) ends after `stream_seconds`
    (its client reconnects), so an open stream cannot hold a session forever. `end_streams` ends the GET
    streams, `cancel_all` every request; a cancelled request is closed properly (a 503 if nothing was sent
    yet, else the end of its stream), so shutdown never leaves tracebacks behind.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Callable[[], bytes] | None = None,
        *,
        leaving: anyio.Event,
        draining: anyio.Event,
        stream_seconds: float = MAX_STREAM_SECONDS,
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._leaving = leaving
        self._draining = draining
        self._stream_seconds = stream_seconds
        self._scopes: dict[anyio.CancelScope, bool] = {}  # each request's scope -> whether it is a GET stream
        self.ready = False
        self.idle = anyio.Event()
        self.idle.set()

    @property
    def in_flight(self) -> int:
        """Requests being served now (health checks excluded)."""
        return len(self._scopes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD") and scope["path"] in HEALTH_PATHS:
            await self._health(scope["path"], send)
            return
        if scope["method"] == "GET" and scope["path"] == METRICS_PATH and self._metrics is not None:
            await _answer(send, 200, self._metrics(), content_type=PROMETHEUS_TEXT)
            return
        if self._draining.is_set():
            await _answer(send, 503, b"draining: send the request again", [(b"retry-after", b"1")], close=True)
            return
        headers = scope["headers"]
        if len(headers) > MAX_HEADERS or sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            limits = b"headers too large: %d lines and %d bytes at most" % (MAX_HEADERS, MAX_HEADER_BYTES)
            await _answer(send, 431, limits, close=True)
            return
        sent = {"start": False, "end": False}

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["start"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                sent["end"] = True
            await send(message)

        stream = scope["method"] == "GET"
        with anyio.CancelScope() as cancel:
            if stream:
                cancel.deadline = anyio.current_time() + self._stream_seconds
            self._scopes[cancel] = stream
            self.idle = anyio.Event()
            try:
                await self._app(scope, receive, tracked)
            finally:
                del self._scopes[cancel]
                if not self._scopes:
                    self.idle.set()
        if not cancel.cancelled_caught or sent["end"]:
            return
        if not sent["start"]:
            await _answer(send, 503, b"server shutting down")
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _health(self, path: str, send: Send) -> None:
        if path == "/healthz":
            await _answer(send, 200, b'{"status": "up"}', json=True)
        elif self.ready and not self._leaving.is_set():
            await _answer(send, 200, b'{"status": "ready"}', json=True)
        else:
            status = b'{"status": "draining"}' if self._leaving.is_set() else b'{"status": "starting"}'
            await _answer(send, 503, status, json=True)

    def end_streams(self) -> None:
        """End every GET stream (its client may reconnect elsewhere)."""
        for scope, stream in list(self._scopes.items()):
            if stream:
                scope.cancel()

    def cancel_all(self) -> None:
        """Cancel every request in flight."""
        for scope in list(self._scopes):
            scope.cancel()


HEALTH_PATHS = ("/healthz", "/readyz")
METRICS_PATH = "/metrics"
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    json: bool = False,
    close: bool = False,
    content_type: bytes | None = None,
) -> None:
    """A complete small response (plain text, unless `json` or `content_type` say otherwise)."""
    kind = content_type or (b"application/json" if json else b"text/plain")
    extra = [(b"connection", b"close")] if close else []
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", kind), *(headers or []), *extra],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def check_exposure(settings: Settings) -> None:
    """Refuse a short caller token, and listening beyond loopback without one."""
    token = settings.http_token.get_secret_value() if settings.http_token else None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{HTTP_TOKEN_VARIABLE} is {len(token)} characters; use at least {MIN_TOKEN_CHARS} random characters "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if settings.http_token is None and not settings.oauth and not is_loopback(settings.host):
        raise ConfigError(
            f"refusing to listen on {settings.host} without caller authentication: set {HTTP_TOKEN_VARIABLE} "
            "to a long random token (callers send it as 'Authorization: Bearer <token>'), or ACP_MCP_OAUTH_ISSUER "
            "and ACP_MCP_PUBLIC_URL, or listen on 127.0.0.1"
        )


def host_check(app: ASGIApp, settings: Settings) -> HostCheck:
    """Exact Host and Origin checks: loopback names and the bind host on any port, the public URL's host and the
    configured extras (``ACP_MCP_ALLOWED_HOSTS``, ``ACP_MCP_ALLOWED_ORIGINS``)."""
    names = list(LOOPBACK_NAMES)
    if settings.host not in ANY_ADDRESS and settings.host not in names:
        names.append(settings.host if ":" not in settings.host else f"[{settings.host}]")
    public = [urlsplit(settings.public_url).netloc] if settings.public_url else []
    return HostCheck(app, any_port=names, hosts=[*settings.allowed_hosts, *public], origins=settings.allowed_origins)


def http_app(application: Application, metrics: Callable[[], bytes] | None = None) -> FrontDoor:
    """The streamable HTTP app at `MCP_PATH`: the caller gate, behind the caller token when one is set; `metrics`
    renders ``GET /metrics``."""
    settings, state = application.state.settings, application.state
    app: ASGIApp = application.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=settings.stateless,
        # Host and Origin are checked exactly by `host_check` below (the SDK's check matches by prefix)
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=settings.host,
        session_idle_timeout=settings.session_idle_seconds,
        max_sessions=settings.max_sessions,
        max_request_body_size=MAX_REQUEST_BYTES,
    )
    app = CallerGate(
        app,
        settings=settings,
        callers=state.callers,
        verifier=application.verifier,
        clock=state.clock,
        mcp_path=MCP_PATH,
        links=application.links,
        page=_connect_page(application),
    )
    app = host_check(app, settings)
    if settings.http_token is not None:
        app = BearerTokenMiddleware(app, settings.http_token.get_secret_value())
    return FrontDoor(
        app,
        metrics,
        leaving=application.leaving,
        draining=application.stop_waits,
        stream_seconds=min(MAX_STREAM_SECONDS, settings.session_idle_seconds),
    )


def _connect_page(application: Application) -> ConnectPage | None:
    """The connect page, when signed-in users may connect their own key."""
    state = application.state
    if application.store is None or application.links is None or application.signer is None:
        return None
    signin = SignIn(state.settings, application.signer, application.links.base_url, state.clock)
    return ConnectPage(
        state.settings,
        application.links,
        application.store,
        clock=state.clock,
        redact=state.redact,
        changed=state.callers.forget,
        signin=signin,
    )


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts, so a taken port or a bad host is one clear error.

    ``proto=IPPROTO_TCP`` lets asyncio set TCP_NODELAY on accepted connections (no 40 ms delayed ACKs).
    """
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
            0
        ]
        sock = socket.socket(family, kind, socket.IPPROTO_TCP)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host!r} (ACP_MCP_HOST / --host): {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another ACP_MCP_PORT / --port)"
        ) from None
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `serve_http` owns the signals and the order of shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _web_server(app: FrontDoor, settings: Settings) -> _Uvicorn:
    """Uvicorn for `app`, its signals left to `serve_http`; says where it serves."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        http=deadline_protocol(
            read_timeout=settings.read_timeout,
            write_timeout=settings.write_timeout,
            max_connections=settings.max_connections or connection_cap(),
        ),
        h11_max_incomplete_event_size=2 * MAX_HEADER_BYTES,  # the raw head, while arriving: `FrontDoor` decides
        log_config=None,
    )
    logger.warning(
        "serving MCP over streamable HTTP at http://%s:%d%s (%s%s)",
        settings.host,
        settings.port,
        MCP_PATH,
        "stateless" if settings.stateless else "stateful",
        ", caller token required"
        if settings.http_token
        else ", OAuth access tokens required"
        if settings.oauth
        else "",
    )
    return _Uvicorn(config)


async def _end_sessions(manager: StreamableHTTPSessionManager) -> None:
    """Close every open session's streams, so each session's task ends on its own.

    Leaving them to the session manager's exit cancels all their tasks at once, which costs anyio time
    quadratic in their number (15 s for 8,000 sessions here, 0.1 s this way). The SDK has no public list of
    sessions; should its private one go, the exit deadline (`exit_by`) still bounds the exit.
    """
    sessions: dict[str, StreamableHTTPServerTransport] = getattr(manager, "_server_instances", {})
    for transport in list(sessions.values()):
        await transport.terminate()


async def serve_http(application: Application, *, metrics: Callable[[], bytes] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then leave and drain. Leave: at once not ready (``/readyz`` 503), serving on
    for ``drain_delay_seconds`` after a SIGTERM so a balancer stops sending requests here first. Drain: refuse
    new requests (503), end the streams and the waits in flight early with their normal result, let the API
    requests in flight finish, and exit when nothing is left or after ``drain_seconds``, cancelling what
    remains. A second signal exits at once."""
    server, settings = application.server, application.state.settings
    check_exposure(settings)
    sock = listen(settings.host, settings.port)
    app = http_app(application, metrics)
    web = _web_server(app, settings)
    async with anyio.create_task_group() as group:
        # The session manager is entered here, not in uvicorn's lifespan, so that on a signal the
        # requests and sessions end first and uvicorn's graceful shutdown has nothing left to wait for.
        async with server.session_manager.run():
            stopped = anyio.Event()

            async def serve_web() -> None:
                try:
                    await web.serve(sockets=[sock])
                finally:
                    stopped.set()

            leaving = anyio.CancelScope()
            deadlines: list[threading.Timer] = []

            def stop() -> None:
                if not stopped.is_set():
                    deadlines.append(exit_by(EXIT_SECONDS))
                leaving.cancel()
                app.cancel_all()
                stopped.set()

            async def drain(delay: float) -> None:
                application.leaving.set()
                with leaving:
                    if delay > 0:
                        logger.warning("not ready: serving on for %gs, then draining", delay)
                        await anyio.sleep(delay)
                    logger.warning(
                        "draining: %d request(s) in flight, at most %gs", app.in_flight, settings.drain_seconds
                    )
                    application.stop_waits.set()
                    app.end_streams()
                    with anyio.move_on_after(settings.drain_seconds):
                        await app.idle.wait()
                stop()

            def start_draining(received: signal.Signals) -> None:
                # an orchestrator's SIGTERM waits for balancers to notice; a person's Ctrl-C does not
                group.start_soon(drain, settings.drain_delay_seconds if received is signal.SIGTERM else 0.0)

            group.start_soon(serve_web)
            app.ready = True
            await run_until_signalled(stopped.wait, on_signal=start_draining, on_second=stop)
            await _end_sessions(server.session_manager)
        web.should_exit = True
    if application.verifier is not None:
        await application.verifier.aclose()
    if application.store is not None:
        await application.store.aclose()
    for deadline in deadlines:  # closed in time: what the caller does next has its own bound
        deadline.cancel()
