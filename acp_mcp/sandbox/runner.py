"""Run the ACP sandbox under uvicorn: in a background thread, or standalone.

Uvicorn logs only to stderr, at level warning, without access log, so the
sandbox can share a process with a stdio MCP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any, Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import create_app
from .faults import TRANSPORT_SCOPE_KEY
from .store import SandboxState

START_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0
DRAIN_INTERVAL = 0.05
KEY_ENV = "ACP_SANDBOX_KEY"
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        name: {"handlers": ["stderr"], "level": "WARNING", "propagate": False} for name in ("uvicorn", "uvicorn.access")
    },
}


class _TransportProtocol(H11Protocol):
    """h11 protocol that puts its transport in each request scope."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            """Add the transport to the scope, then call the app."""
            scope[TRANSPORT_SCOPE_KEY] = self.transport
            await inner(scope, receive, send)

        self.app = app


def _bind(host: str, port: int) -> socket.socket:
    """Bind a listening socket (port 0 picks a free one).

    ``proto=IPPROTO_TCP`` matters: asyncio sets TCP_NODELAY on accepted connections only when the
    listening socket says TCP, and without it every response waits out a 40 ms delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _client_host(host: str) -> str:
    """Return the host a local client should use for a bind address."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class _ServerThread(threading.Thread):
    """Daemon thread running one uvicorn server on its own event loop."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket) -> None:
        super().__init__(name="acp-sandbox", daemon=True)
        self.server, self.sock = server, sock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        """Serve until the server is told to exit."""
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self.error = exc

    async def _serve(self) -> None:
        """Remember the loop, then serve on the bound socket."""
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def wait_started(self) -> None:
        """Block until the server listens; raise if it dies or times out."""
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.is_alive():
                raise RuntimeError(f"sandbox server failed to start: {self.error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start within 10 s")
            time.sleep(0.01)


class RunningSandbox:
    """A sandbox served in a background thread; close() stops it."""

    def __init__(self, state: SandboxState, thread: _ServerThread, host: str, port: int) -> None:
        self.state = state
        self.port = port
        self.base_url = f"http://{_client_host(host)}:{port}/v1"
        self._thread = thread
        self._closed = False
        self._drainer: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Release held sync answers, stop the server and join its thread."""
        if self._closed:
            return
        self._closed = True
        loop = self._thread.loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop)
        self._thread.join(CLOSE_TIMEOUT)
        self._thread.sock.close()

    def _stop(self) -> None:
        """Tell uvicorn to exit and start releasing held answers (runs on the loop)."""
        self._thread.server.should_exit = True
        self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Keep releasing held sync answers, even ones started during shutdown."""
        while True:
            self.state.release_waiters()
            await asyncio.sleep(DRAIN_INTERVAL)

    def __enter__(self) -> Self:
        """Return self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the sandbox."""
        self.close()


def serve_in_thread(state: SandboxState, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve state over HTTP in a daemon thread; return once it listens."""
    sock = _bind(host, port)
    config = uvicorn.Config(
        create_app(state),
        http=_TransportProtocol,
        ws="none",
        lifespan="off",
        log_level="warning",
        log_config=LOG_CONFIG,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    thread = _ServerThread(uvicorn.Server(config), sock)
    running = RunningSandbox(state, thread, host, sock.getsockname()[1])
    thread.start()
    try:
        thread.wait_started()
    except BaseException:
        running.close()
        raise
    return running


def run_standalone(
    host: str, port: int, pace: float, api_keys: Sequence[str] = (), variants: frozenset[str] = frozenset()
) -> None:
    """Serve the sandbox, playing `variants` (see ``variants``), until SIGINT/SIGTERM, announcing its URL and
    each key on stdout.

    Each key is one account; without keys, one account keyed by ``$ACP_SANDBOX_KEY`` or a generated key.
    Raise ValueError (before serving) if a key is empty or given twice.
    """
    keys = list(api_keys) or [os.environ.get(KEY_ENV) or f"sandbox-{secrets.token_urlsafe(18)}"]
    state = SandboxState(pace=pace, api_keys=keys, variants=variants)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        """Ask the main loop to stop."""
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with serve_in_thread(state, host, port) as running:
            print(f"COMPUTER_AGENTS_BASE_URL={running.base_url}")
            print("\n".join(f"COMPUTER_AGENTS_API_KEY={key}" for key in keys), flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
