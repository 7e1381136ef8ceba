"""Bounded waiting for a run to finish: frugal polling plus keep-alive progress.

Defaults, and why: the first poll comes 0.5 s after the call (most sandbox and short agent turns
finish within a second or two, so early completion is noticed within about a second); intervals
then grow by 1.5x up to 8 s, so a minute of waiting costs 13 polls instead of the 60 of the
official TypeScript helper's fixed 1 s. Progress goes out at least every 5 s whatever the poll
interval, so clients that reset their timeout on progress keep the call alive. All sleeps are
anyio sleeps: a cancelled tool call stops at once and sends nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import anyio

from .models import Event, RunEnvelope

Poll = Callable[[float], Awaitable[RunEnvelope]]
"""Fetches the run's current state; takes the absolute deadline (monotonic seconds)."""
Report = Callable[[float, float, str], Awaitable[None]]
"""Sends progress: (elapsed seconds, total seconds, message)."""


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll and to report progress while waiting."""

    first_interval: float = 0.5
    factor: float = 1.5
    max_interval: float = 8.0
    progress_interval: float = 5.0

    def intervals(self) -> Iterator[float]:
        """Seconds between successive polls: grows geometrically, then stays at the cap."""
        interval = self.first_interval
        while True:
            yield interval
            interval = min(self.max_interval, interval * self.factor)


def describe_progress(envelope: RunEnvelope, latest: Event | None) -> str:
    """One line for a progress notification: run id, status and the latest event."""
    run = envelope.run
    text = f"run {run.id if run else '?'}: {run.status if run else 'unknown'}"
    if latest is not None and latest.content:
        content = latest.content if len(latest.content) <= 120 else latest.content[:120] + "…"
        text += f" — latest: [{latest.role or '?'}] {content}"
    return text


async def wait_for_run(
    initial: RunEnvelope,
    poll: Poll,
    report: Report,
    *,
    seconds: float,
    policy: PollPolicy,
) -> RunEnvelope:
    """Poll until the run is terminal or `seconds` pass; returns the latest envelope seen."""
    start = time.monotonic()
    deadline = start + seconds
    latest_envelope = initial
    latest_event = initial.events[-1] if initial.events else None

    async def progress() -> None:
        elapsed = time.monotonic() - start
        await report(min(elapsed, seconds), seconds, describe_progress(latest_envelope, latest_event))

    await progress()
    for interval in policy.intervals():
        poll_at = min(time.monotonic() + interval, deadline)
        while (now := time.monotonic()) < poll_at:
            await anyio.sleep(min(poll_at - now, policy.progress_interval))
            if time.monotonic() < poll_at:
                await progress()
        if time.monotonic() >= deadline:
            return latest_envelope
        latest_envelope = await poll(deadline)
        if latest_envelope.events:
            latest_event = latest_envelope.events[-1]
        if latest_envelope.run is not None and latest_envelope.run.is_terminal:
            return latest_envelope
        await progress()
    raise AssertionError("unreachable")  # pragma: no cover
