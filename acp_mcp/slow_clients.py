"""Deadlines for slow clients: a request must arrive whole within the read timeout, or its connection is closed.

uvicorn closes a keep-alive connection idle between requests, but it has no deadline for a request
that is arriving: a connection that never sends a byte, sends half its headers, or trickles its body
was held forever, and enough of them (no token needed) used up the process's file descriptors.
`deadline_protocol` is uvicorn's h11 protocol with one more timer: from a connection's start, and from
the first byte of each later request, its headers and body must arrive within ``read_timeout``
seconds (as HAProxy's ``timeout http-request``); otherwise the connection is closed. A request that
has arrived whole (a long wait, a stream) is never cut. Closing is logged once a minute, as a count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

_ARRIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL)


class _Closed:
    """How many slow connections were closed since the last log line (one line a minute at most)."""

    count = 0
    logged = 0.0

    @classmethod
    def one(cls) -> None:
        cls.count += 1
        now = time.monotonic()
        if now - cls.logged >= 60:
            logger.warning("closed %d connection(s) whose request did not arrive in time", cls.count)
            cls.count, cls.logged = 0, now


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request to arrive (`read_timeout`)."""

    read_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of a later request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state in _ARRIVED:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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
            _Closed.one()
            self.transport.close()


def deadline_protocol(read_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class for uvicorn's ``http=`` with this read timeout."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout": read_timeout})
