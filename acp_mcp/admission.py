"""Admission: how many calls may wait on runs at once in this process; past the limit a call is refused at once.

A wait costs a poll every few seconds for its whole length. Unbounded, thousands of them slowed every poll
until answers came later than the waits promise; bounded, a call over the limit is told "busy, retry in a few
seconds" before anything is sent, and a call that does not wait (``waitSeconds`` 0) is never refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import BusyError
from .limits import BUSY_RETRY_SECONDS


class WaitSlots:
    """Counts the calls waiting on runs now, up to `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    @contextmanager
    def hold(self, wait: float) -> Iterator[None]:
        """A slot for a call that waits `wait` seconds (none for 0); `BusyError` when all are taken."""
        if wait <= 0:
            yield
            return
        if self.open >= self.limit:
            raise BusyError(
                f"{self.limit:,} calls are waiting on runs, its limit; a call with waitSeconds 0 is not limited",
                retry_seconds=BUSY_RETRY_SECONDS,
            )
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1
