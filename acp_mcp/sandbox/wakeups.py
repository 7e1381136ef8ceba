"""Wake-ups for sync answers held until their turn ends, safe to send from any thread.

A held answer sleeps on the clock until its turn is due to end; a cancel, a new
pace or clock, or the server's shutdown can end or move that time, so whoever
makes such a change wakes every held answer, and each looks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import anyio


class Waiter:
    """One held answer: an event its event loop waits on, which any thread can set."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.event = anyio.Event()
        self.released = False
        """Set at shutdown: answer now, whatever the run's state."""

    def rearm(self) -> None:
        """Replace a set event by a fresh one (call before looking at the run again)."""
        if self.event.is_set():
            self.event = anyio.Event()

    def wake(self, release: bool) -> None:
        """Set the current event, from the waiter's own thread or any other."""
        self.released = self.released or release
        event = self.event
        if threading.get_ident() == self._thread:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                self._loop.call_soon_threadsafe(event.set)


class Waiters:
    """The answers held right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()

    @contextlib.contextmanager
    def holding(self) -> Iterator[Waiter]:
        """Register a waiter for the current event loop while the block runs."""
        waiter = Waiter()
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def wake_all(self, *, release: bool = False) -> None:
        """Wake every held answer to look at its run again; `release` makes each answer at once."""
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake(release)
