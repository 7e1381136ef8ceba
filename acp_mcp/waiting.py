"""Bounded waiting for a run to finish: frugal polling, plus keep-alive progress for the whole call.

Defaults, and why: the first poll comes 0.5 s after the call (most sandbox and short agent turns
finish within a second or two, so early completion is noticed within about a second); intervals
then grow by 1.5x up to 8 s, so a minute of waiting costs 13 polls instead of the 60 of the
official TypeScript helper's fixed 1 s. A last poll is made when the wait ends, so a run that
finished just before is reported finished. Progress goes out at least every 5 s for as long as a
call that waits lasts (a sync request, polls, the final fetch), so clients that reset their timeout
on progress keep the call alive. Polls sleep on the injected clock, progress on real time (see
`clock`); either way a cancelled tool call stops at once and sends nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from .clock import Clock
from .limits import (
    FIELD_CHARS,
    FIRST_POLL_SECONDS,
    GRACE_SECONDS,
    MAX_POLL_SECONDS,
    POLL_GROWTH,
    PROGRESS_SECONDS,
    PROGRESS_TEXT_CHARS,
    PROGRESS_WORD_CHARS,
)
from .models import RunEnvelope
from .text import preview

Poll = Callable[[], Awaitable[RunEnvelope]]
"""Fetches the run's current state."""
Report = Callable[[float, float, str], Awaitable[None]]
"""Sends progress: (elapsed seconds, total seconds, message)."""


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll and to report progress while waiting."""

    first_interval: float = FIRST_POLL_SECONDS
    factor: float = POLL_GROWTH
    max_interval: float = MAX_POLL_SECONDS
    progress_interval: float = PROGRESS_SECONDS
    grace: float = GRACE_SECONDS
    """Time a call may take past its wait (or one request timeout): the last poll and the events fetch."""

    def intervals(self) -> Iterator[float]:
        """Seconds between successive polls: grows geometrically, then stays at the cap."""
        interval = self.first_interval
        while True:
            yield interval
            interval = min(self.max_interval, interval * self.factor)


class ProgressTicker:
    """Reports the latest known state of a call every `interval` seconds until stopped."""

    def __init__(
        self, report: Report, *, clock: Clock, began: float, total: float, interval: float, message: str
    ) -> None:
        self._report = report
        self._clock = clock
        self._began = began
        self._total = total
        self._interval = interval
        self.message = message

    def update(self, envelope: RunEnvelope) -> None:
        """Describe `envelope` in the next reports: run id, status and its latest event."""
        run = envelope.run
        run_id = preview(run.id if run else "?", FIELD_CHARS)
        text = f"run {run_id}: {preview(run.status if run else None, PROGRESS_WORD_CHARS)}"
        latest = envelope.events[-1] if envelope.events else None
        if latest is not None and latest.content:
            role = preview(latest.role or "?", PROGRESS_WORD_CHARS)
            text += f" — latest: [{role}] {preview(latest.content, PROGRESS_TEXT_CHARS)}"
        self.message = text

    async def run(self) -> None:
        """Report now, then every interval of real time (client timeouts are real), until cancelled."""
        while True:
            elapsed = min(self._clock.now() - self._began, self._total)
            await self._report(elapsed, self._total, self.message)
            await anyio.sleep(self._interval)


@asynccontextmanager
async def progress_ticker(
    report: Report, *, clock: Clock, began: float, total: float, interval: float, message: str
) -> AsyncIterator[ProgressTicker]:
    """A `ProgressTicker` running in the background for the body of the block (none when `total` is 0)."""
    ticker = ProgressTicker(report, clock=clock, began=began, total=total, interval=interval, message=message)
    if total <= 0:
        yield ticker
        return
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(ticker.run)
        try:
            yield ticker
        except Exception as exc:  # re-raised below as itself, not wrapped in the group's ExceptionGroup
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def wait_for_run(
    initial: RunEnvelope,
    poll: Poll,
    *,
    until: float,
    policy: PollPolicy,
    clock: Clock,
    seen: Callable[[RunEnvelope], None],
    stop: anyio.Event | None = None,
) -> RunEnvelope:
    """Poll until the run is terminal, the `clock` reaches `until` or `stop` is set (a draining server),
    polling once more then.

    Each envelope polled is passed to `seen`; the latest is returned.
    """
    latest = initial
    for interval in policy.intervals():
        await clock.sleep(min(interval, until - clock.now()), until=stop)
        latest = await poll()
        seen(latest)
        ended = clock.now() >= until or (stop is not None and stop.is_set())
        if (latest.run is not None and latest.run.is_terminal) or ended:
            return latest
    raise AssertionError("unreachable")  # pragma: no cover
