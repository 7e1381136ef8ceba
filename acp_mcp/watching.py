"""Run subscriptions: a client subscribed to a run's URI hears when its status or events change.

One poll per watched run per process, however many subscribers and in both protocol eras: the
run is read once at once (the baseline), then at the wait policy's cadence (``first_interval``,
growing by ``factor`` to ``max_interval``). Each change of status or of the set of events (by id,
or by time, role and content when events have no id; never by their order) notifies every
subscriber once, the last when the run ends; then the poll stops. A run nobody watches is never
polled. A subscriber is a 2025-11-25 session (``resources/subscribe``) or a 2026-07-28 listen
stream (``subscriptions/listen``); each may watch at most `MAX_RUNS_PER_SUBSCRIBER` runs, and the process
polls at most `MAX_WATCHED_RUNS` at once, all callers together. One that
cannot be notified any more (a client gone) is dropped, and with the last subscriber the poll ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from .client import ACPClient
from .clock import Clock, SystemClock
from .errors import ACPError, NotFoundError
from .limits import MAX_RUNS_PER_SUBSCRIBER, MAX_WATCHED_RUNS
from .models import events_fingerprint
from .uris import parse_run_uri
from .waiting import PollPolicy

logger = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]
"""Tells one subscriber (or, on 2026-07-28, every listen stream) that the resource at a URI changed."""


class TooManySubscriptions(Exception):
    """A subscriber asked to watch more than `MAX_RUNS_PER_SUBSCRIBER` runs."""


@dataclass(eq=False)
class Subscriber:
    """One session or listen stream: how to notify it, whose it is, the client it reads runs with, its run URIs.

    Runs are watched per owner: two callers watching the same URI are two watches, each with its own key.
    """

    notify: Notify
    owner: str
    client: ACPClient
    uris: set[str] = field(default_factory=set)


@dataclass(eq=False)
class _Watch:
    client: ACPClient
    subscribers: set[Subscriber] = field(default_factory=set)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class RunWatcher:
    """The runs watched in this process, each polled by one task in the watcher's task group."""

    def __init__(
        self,
        policy: PollPolicy,
        request_timeout: float,
        clock: Clock | None = None,
        *,
        max_runs: int = MAX_WATCHED_RUNS,
    ) -> None:
        self.max_runs = max_runs
        """Runs polled at once in the process, whoever watches them: each costs a request every few seconds."""
        self.clock = clock or SystemClock()
        self.policy = policy
        self.request_timeout = request_timeout
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._group: TaskGroup | None = None

    @property
    def watched(self) -> frozenset[str]:
        """The URIs being polled now."""
        return frozenset(uri for _, uri in self._watches)

    def start(self, group: TaskGroup) -> None:
        """Run the polls in `group` (the server's lifespan)."""
        self._group = group

    def watch(self, subscriber: Subscriber, uris: list[str]) -> None:
        """Add `uris` to what `subscriber` watches; URIs that are not runs are accepted and never change."""
        runs = [uri for uri in dict.fromkeys(uris) if parse_run_uri(uri) and uri not in subscriber.uris]
        if len(subscriber.uris) + len(runs) > MAX_RUNS_PER_SUBSCRIBER:
            raise TooManySubscriptions(
                f"at most {MAX_RUNS_PER_SUBSCRIBER} runs can be watched at once per session; unsubscribe from a "
                f"finished run first (watching {len(subscriber.uris)}, asked for {len(runs)} more)"
            )
        new = sum((subscriber.owner, uri) not in self._watches for uri in runs)
        if len(self._watches) + new > self.max_runs:
            raise TooManySubscriptions(
                f"this MCP server is watching as many runs as it can ({self.max_runs}); subscribe again in a minute, "
                "or poll the run with get_agent_run"
            )
        for uri in runs:
            subscriber.uris.add(uri)
            watch = self._watches.get((subscriber.owner, uri))
            if watch is None:
                watch = self._watches[subscriber.owner, uri] = _Watch(subscriber.client)
                self._spawn(subscriber.owner, uri, watch)
            watch.subscribers.add(subscriber)

    def unwatch(self, subscriber: Subscriber, uris: list[str] | None = None) -> None:
        """Stop `subscriber` watching `uris` (all of its URIs by default); a run left unwatched stops polling."""
        for uri in list(subscriber.uris) if uris is None else uris:
            subscriber.uris.discard(uri)
            watch = self._watches.get((subscriber.owner, uri))
            if watch is not None:
                watch.subscribers.discard(subscriber)
                if not watch.subscribers:
                    self._end(subscriber.owner, uri, watch)

    def _spawn(self, owner: str, uri: str, watch: _Watch) -> None:
        if self._group is None:
            raise RuntimeError("RunWatcher.start() was not called")
        self._group.start_soon(self._poll, owner, uri, watch, name=f"watch {uri}")

    def _end(self, owner: str, uri: str, watch: _Watch) -> None:
        watch.scope.cancel()
        if self._watches.get((owner, uri)) is watch:
            del self._watches[owner, uri]

    async def _poll(self, owner: str, uri: str, watch: _Watch) -> None:
        ids = parse_run_uri(uri)
        assert ids is not None
        server_id, run_id = ids
        with watch.scope:
            last: str | None = None
            intervals = self.policy.intervals()
            while True:
                try:
                    envelope = await watch.client.get_run_events(
                        server_id, run_id, deadline=self.clock.now() + self.request_timeout
                    )
                except NotFoundError:
                    logger.info("watched run %s is gone; its watch ends", uri)
                    break
                except ACPError as exc:
                    logger.info("polling watched run %s failed: %s", uri, type(exc).__name__)
                else:
                    run = envelope.run
                    seen = events_fingerprint(run.status if run else None, envelope.events)
                    if last is not None and seen != last:
                        await self._notify(uri, watch)
                    last = seen
                    if run is not None and run.is_terminal:
                        break
                await self.clock.sleep(next(intervals))
        for subscriber in watch.subscribers:  # the run ended: its URI no longer counts, and may be watched anew
            subscriber.uris.discard(uri)
        self._end(owner, uri, watch)

    async def _notify(self, uri: str, watch: _Watch) -> None:
        """Notify each subscriber once (listen streams share one notify: the bus reaches them all)."""
        by_notify: dict[Notify, list[Subscriber]] = {}
        for subscriber in list(watch.subscribers):
            by_notify.setdefault(subscriber.notify, []).append(subscriber)
        for notify, subscribers in by_notify.items():
            try:
                await notify(uri)
            except Exception as exc:  # the subscriber's connection is gone
                logger.info("dropping a subscriber of %s that cannot be notified: %s", uri, type(exc).__name__)
                for subscriber in subscribers:
                    self.unwatch(subscriber)
