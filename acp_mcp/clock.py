"""Time, injected: waits, retries, deadlines and the sandbox's agent read one clock, so tests run on virtual time.

`SystemClock` is the real one. `VirtualClock` moves only when something sleeps on it: a sleep
jumps it forward at once. The server and the sandbox can share one (it is thread-safe), so a
test sees a run take exactly its paced seconds, a wait expire after exactly its seconds, and a
retry wait exactly its Retry-After, all in a few milliseconds of real time.

Progress keep-alives are the exception: they answer real clients' real timeouts, so they sleep
on real time (their reported elapsed seconds still come from the clock).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    """What the server and the sandbox ask of time."""

    def now(self) -> float:
        """Monotonic seconds: deadlines and waits are measured on these."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: matching the API's timestamps."""
        ...

    async def sleep(self, seconds: float, *, until: anyio.Event | None = None) -> None:
        """Sleep `seconds` (none when not positive); return early once `until` is set."""
        ...


class SystemClock:
    """The machine's clocks; sleeps are anyio sleeps, so a cancelled caller stops at once."""

    def now(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    def wall(self) -> float:
        """`time.time()`."""
        return time.time()

    async def sleep(self, seconds: float, *, until: anyio.Event | None = None) -> None:
        """An anyio sleep that `until` cuts short."""
        with anyio.move_on_after(max(0.0, seconds)):
            await (until.wait() if until is not None else anyio.sleep_forever())


class VirtualClock:
    """Time that moves only when something sleeps on it, for tests: each sleep jumps it forward.

    Every sleep is still a checkpoint (other tasks run, cancellation lands). Concurrent sleepers
    each move the clock, so give one waiting call at a time to a virtual clock.
    """

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_800_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._wall_offset = wall_start - start
        self.slept: list[float] = []
        """Every sleep asked for, in order, in seconds (what a test asserts instead of a wall-clock window)."""

    def now(self) -> float:
        """The virtual monotonic time."""
        with self._lock:
            return self._now

    def wall(self) -> float:
        """The virtual epoch time, moving with `now`."""
        with self._lock:
            return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward without sleeping (what a test does to let time pass)."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        with self._lock:
            self._now += seconds

    async def sleep(self, seconds: float, *, until: anyio.Event | None = None) -> None:
        """A checkpoint, then a jump of `seconds` unless `until` is already set."""
        await anyio.lowlevel.checkpoint()
        if until is not None and until.is_set():
            return
        with self._lock:
            self.slept.append(seconds)
            self._now += max(0.0, seconds)
