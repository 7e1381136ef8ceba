"""Deadlines and a cap for clients: slow senders, slow readers and too many connections are cut off.

uvicorn closes a keep-alive connection idle between requests, but it has no deadline for a request
that is arriving: a connection that never sends a byte, sends half its headers, or trickles its body
was held forever, and enough of them (no token needed) used up the process's file descriptors.
`deadline_protocol` is uvicorn's h11 protocol with three more rules:

- **Read deadline.** From a connection's start, and from the first byte of each later request, its
  headers and body must arrive within ``read_timeout`` seconds (as HAProxy's ``timeout http-request``);
  otherwise the connection is closed. A request that has arrived whole (a long wait, a stream) is never cut.
- **Write deadline.** A response the client does not read (the socket's buffer stays full) for
  ``write_timeout`` seconds is dropped with its connection, so a client that never reads cannot pin a
  large answer in memory.
- **Connection cap.** Past ``max_connections`` open connections a new one is answered 503 and closed at
  once, before the file descriptors run out (with room left for the API's connections).

Each kind of closing is logged once a minute, as a count.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import DEFAULT_MAX_CONNECTIONS, MIN_CONNECTIONS, RESERVED_FILES

logger = logging.getLogger(__name__)

_ARRIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL)


class _Closed:
    """How many connections were closed for one reason since its last log line (one line a minute at most)."""

    def __init__(self, why: str) -> None:
        self.why = why
        self.count = 0
        self.logged = 0.0

    def one(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged >= 60:
            logger.warning("closed %d connection(s) %s", self.count, self.why)
            self.count, self.logged = 0, now


_SLOW_SENDERS = _Closed("whose request did not arrive in time")
_SLOW_READERS = _Closed("that did not read their response in time")
_OVER_CAP = _Closed("over the connection cap")
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with deadlines for each request to arrive and each response to be read, and a cap."""

    read_timeout = 10.0
    write_timeout = 30.0
    max_connections = 1_000
    _deadline: asyncio.TimerHandle | None = None
    _write_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            _OVER_CAP.one()
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.write_timeout, self._not_reading)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of a later request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state in _ARRIVED:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            _SLOW_SENDERS.one()
            self.transport.close()

    def _not_reading(self) -> None:
        self._write_deadline = None
        _SLOW_READERS.one()
        self.transport.abort()  # drops what is buffered: close() would wait to send it


def deadline_protocol(*, read_timeout: float, write_timeout: float, max_connections: int) -> type[DeadlineH11Protocol]:
    """The protocol class for uvicorn's ``http=`` with these deadlines and this cap."""
    rules = {"read_timeout": read_timeout, "write_timeout": write_timeout, "max_connections": max_connections}
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), rules)


def connection_cap(reserve: int = RESERVED_FILES) -> int:
    """The most connections to accept: the process's file limit less `reserve` for everything else."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(DEFAULT_MAX_CONNECTIONS, soft - reserve))
