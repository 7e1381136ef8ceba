"""The run lifecycle as the tools offer it: call the API, wait within budget, shape the result.

Knows nothing of MCP wiring (the tools pass in a progress callback) and nothing of HTTP (the
client does that). The rules that are choices, not API facts, live here:

- ``mode`` omitted: ``async`` is sent and the call waits up to ``waitSeconds``, so a slow run
  can never lose its handle to a client timeout. An explicit ``mode`` is forwarded as given.
- ``mode: "sync"``: the HTTP request itself is bounded by the wait; if it outlives it, the run is
  looked up (continue: by id; start: by the marker in its metadata, see ``repeats``) and returned
  as it is. A start of either mode whose connection breaks after the request went out is looked
  up the same way before anything suggests starting again.
- Every request of a call ends by its deadline: the wait (or one request timeout, if longer) plus
  the poll policy's grace (5 s), so a call with the default 45 s wait is over within 50 s.
- A run that is still going when the wait ends is returned normally, with its id and the exact
  ``get_agent_run`` call to make next.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from . import arguments
from .client import ACPClient
from .clock import Clock, SystemClock
from .config import Settings
from .errors import ACPError, NotFoundError, ProtocolError, RequestTimeout, TransportError, UnconfirmedStartError
from .limits import (
    DEFAULT_MAX_EVENTS,
    EVENTS_POLL_LIMIT,
    LOST_START_SEARCH_RUNS,
    MAX_LIST_RUNS,
)
from .listing import newest_runs
from .messages import (
    DRAINING_NOTE,
    events_failed_note,
    late_sync_note,
    lost_start_note,
    polling_failed_note,
    repeated_start_note,
)
from .models import Event, RunEnvelope
from .repeats import AbandonedStart, AbandonedStarts, mark_start, started_by
from .results import Outcome, RunListResult, RunResult, shape_list, shape_run
from .telemetry import Telemetry, default_telemetry
from .waiting import Poll, PollPolicy, ProgressTicker, Report, progress_ticker, wait_for_run

logger = logging.getLogger(__name__)


async def no_progress(progress: float, total: float, message: str) -> None:
    """A progress callback that does nothing."""


@dataclass(frozen=True)
class CallBudget:
    """One tool call's budget: its server, its time (on the service's clock), its progress callback, its events.

    The wait ends at `wait_until`; every request of the call, the final fetch included, ends by
    `deadline`: the wait (or one request timeout, if longer) plus `grace`.
    """

    server_id: str
    wait: float
    request_timeout: float
    grace: float
    began: float
    began_wall: float
    max_events: int = DEFAULT_MAX_EVENTS
    event_offset: int | None = None
    report: Report = field(default=no_progress)

    @property
    def wait_until(self) -> float:
        """When the wait ends (monotonic seconds)."""
        return self.began + self.wait

    @property
    def deadline(self) -> float:
        """When every request of the call must be done (monotonic seconds)."""
        return self.began + max(self.wait, self.request_timeout) + self.grace

    def post_deadline(self, sync: bool) -> float:
        """A sync request may take the whole wait (or one request timeout when the wait is 0)."""
        return self.wait_until if sync and self.wait > 0 else self.deadline

    @property
    def sync_cutoff(self) -> float:
        """How long a sync request was given, in seconds."""
        return self.wait if self.wait > 0 else self.request_timeout

    def at_once(self) -> CallBudget:
        """This budget without its wait: the call returns as soon as its run exists."""
        return replace(self, wait=0.0)


class RunService:
    """Start, continue, get, list and cancel connected agent-runtime runs."""

    def __init__(
        self,
        client: ACPClient,
        settings: Settings,
        policy: PollPolicy | None = None,
        clock: Clock | None = None,
        *,
        stop_waits: anyio.Event | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.client = client
        self.telemetry = telemetry or default_telemetry()
        self.settings = settings
        self.policy = policy or PollPolicy()
        self.clock = clock or SystemClock()
        self.abandoned = AbandonedStarts(clock=self.clock.now)
        self.stop_waits = stop_waits
        """Set when the HTTP server drains: every wait ends at its next poll (never set on stdio)."""

    def server_id(self, given: str | None) -> str:
        """The call's serverId, or the configured default (`arguments.server_id`)."""
        return arguments.server_id(given, self.settings.default_server_id)

    def budget(
        self,
        server_id: str | None,
        wait: float | None = None,
        *,
        max_events: int | None = None,
        event_offset: int | None = None,
        report: Report = no_progress,
    ) -> CallBudget:
        """The budget of one tool call, starting now, with the server id, wait and number of events resolved."""
        return CallBudget(
            self.server_id(server_id),
            arguments.wait_seconds(wait, self.settings.wait_seconds),
            self.settings.request_timeout,
            self.policy.grace,
            began=self.clock.now(),
            began_wall=self.clock.wall(),
            max_events=DEFAULT_MAX_EVENTS if max_events is None else max_events,
            event_offset=event_offset,
            report=report,
        )

    # -- tools ----------------------------------------------------------------------------

    async def start(self, call: CallBudget, body: dict[str, Any]) -> RunResult:
        """Start a run, then wait for it within the call's budget; a start whose answer is lost is looked up by its
        marker, and a repeat of a cancelled start gets its run."""
        key = self.abandoned.key(call.server_id, body)
        earlier = self.abandoned.take(key)
        if earlier is not None:
            found = await self._earlier_start(call, earlier)
            if found is not None and found.run is not None and found.run.id:
                async with self._ticker(call, f"run {found.run.id}: fetching") as ticker:
                    return await self._settle(call, found, ticker, notes=[repeated_start_note(found.run.id)])
        sync = body.get("mode") == "sync"
        sent, marker = mark_start(body)
        started: str | None = None
        try:
            async with self._ticker(call, f"starting a run on server {call.server_id}") as ticker:
                try:
                    status, envelope = await self.client.start_run(
                        call.server_id, sent, deadline=call.post_deadline(sync), sync=sync
                    )
                except (RequestTimeout, ProtocolError) as exc:
                    found = await self._lost_start(call, marker, exc, sync)
                    late = sync and isinstance(exc, RequestTimeout)
                    note = late_sync_note("start", call.sync_cutoff) if late else lost_start_note(exc)
                    return await self._settle(call, found, ticker, notes=[note], held=sync)
                started = envelope.run.id if envelope.run else None
                outcome: Outcome = "accepted" if status == 202 else "started"
                return await self._settle(call, envelope, ticker, outcome=outcome, http_status=status, held=sync)
        except anyio.get_cancelled_exc_class():
            self.abandoned.remember(key, started, marker)
            raise

    async def continue_run(self, call: CallBudget, run_id: str, body: dict[str, Any]) -> RunResult:
        """Send input to a run, then wait for it within the call's budget."""
        sync = body.get("mode") == "sync"
        async with self._ticker(call, f"run {run_id}: sending input") as ticker:
            try:
                status, envelope = await self.client.continue_run(
                    call.server_id, run_id, body, deadline=call.post_deadline(sync), sync=sync
                )
            except RequestTimeout:
                if not sync:
                    raise
                found = await self.client.get_run_events(call.server_id, run_id, deadline=call.deadline)
                note = late_sync_note("input", call.sync_cutoff)
                return await self._settle(call, found, ticker, notes=[note], held=True)
            outcome: Outcome = "accepted" if status == 202 else "continued"
            return await self._settle(call, envelope, ticker, outcome=outcome, http_status=status, held=sync)

    async def get(
        self, call: CallBudget, run_id: str, *, outcome: Outcome = "fetched", http_status: int | None = None
    ) -> RunResult:
        """The run and a window of its events, after waiting for it within the call's budget.

        `outcome` and `http_status` label the result: a task reports its run as the tool that started it would.
        """
        async with self._ticker(call, f"run {run_id}: fetching") as ticker:
            envelope = await self.client.get_run_events(call.server_id, run_id, deadline=call.deadline)
            return await self._settle(call, envelope, ticker, outcome=outcome, http_status=http_status)

    async def list_runs(self, server_id: str, limit: int | None) -> RunListResult:
        """The server's newest runs, newest first."""
        listed = await newest_runs(self.client, server_id, limit)
        return shape_list(listed.listing, server_id=server_id, limit=limit or MAX_LIST_RUNS)

    async def cancel(self, server_id: str, run_id: str) -> RunResult:
        """Cancel a run; if the API answers without the run, fetch it."""
        status, envelope = await self.client.cancel_run(server_id, run_id)
        if envelope.run is None:
            envelope = await self.client.get_run_events(server_id, run_id)
        return shape_run(envelope, server_id=server_id, outcome="cancelled", http_status=status)

    async def full_run(self, server_id: str, run_id: str) -> str:
        """The run with all its events as JSON text: every field the API sent, as the envelope (a flat run too)."""
        envelope = await self.client.get_run_events(server_id, run_id)
        return envelope.model_dump_json(exclude_unset=True)

    # -- shared steps ---------------------------------------------------------------------

    def _ticker(self, call: CallBudget, message: str) -> AbstractAsyncContextManager[ProgressTicker]:
        return progress_ticker(
            call.report,
            clock=self.clock,
            began=call.began,
            total=call.wait,
            interval=self.policy.progress_interval,
            message=message,
        )

    async def _settle(
        self,
        call: CallBudget,
        envelope: RunEnvelope,
        ticker: ProgressTicker,
        *,
        outcome: Outcome = "fetched",
        http_status: int | None = None,
        notes: list[str] | None = None,
        held: bool = False,
    ) -> RunResult:
        """Wait for the run until the call's wait ends if it is not terminal, then shape what is known.

        `held` says a sync request kept the call waiting since it began; a run still going with a
        wait to spend is waited for too, so both report the seconds the call took.
        """
        notes = list(notes or [])
        run = envelope.run
        ticker.update(envelope)
        waited = held or (run is not None and not run.is_terminal and call.wait > 0)
        if run is not None and run.id and not run.is_terminal and call.wait_until > self.clock.now():
            envelope = await self._wait(call, envelope, run.id, ticker, notes)
        envelope = await self._with_events(call, envelope, notes)
        return shape_run(
            envelope,
            server_id=call.server_id,
            outcome=outcome,
            http_status=http_status,
            waited=self.clock.now() - call.began if waited else 0.0,
            wait_expired=call.wait > 0,
            max_events=call.max_events,
            event_offset=call.event_offset,
            notes=notes,
        )

    async def _wait(
        self, call: CallBudget, envelope: RunEnvelope, run_id: str, ticker: ProgressTicker, notes: list[str]
    ) -> RunEnvelope:
        """Poll the run until it ends, the wait ends or the server drains; a failed poll ends the wait."""
        poll = self._poller(call, run_id, envelope.events)
        stop = self.stop_waits
        try:
            with self.telemetry.waiting(call.server_id, run_id):
                envelope = await wait_for_run(
                    envelope,
                    poll,
                    until=call.wait_until,
                    policy=self.policy,
                    clock=self.clock,
                    seen=ticker.update,
                    stop=stop,
                )
        except ACPError as exc:
            logger.warning("polling run %s stopped: %s", run_id, exc)
            notes.append(polling_failed_note(exc))
            return envelope
        if stop is not None and stop.is_set():
            notes.append(DRAINING_NOTE)
        return envelope

    async def _with_events(self, call: CallBudget, envelope: RunEnvelope, notes: list[str]) -> RunEnvelope:
        """`envelope` with the run's events, fetched if the last answer had none (the light GET)."""
        run = envelope.run
        if envelope.events is not None or run is None or not run.id:
            return envelope
        try:
            return await self.client.get_run_events(call.server_id, run.id, deadline=call.deadline)
        except ACPError as exc:
            logger.warning("fetching events of run %s failed: %s", run.id, exc)
            notes.append(events_failed_note(exc))
            return envelope

    def _poller(self, call: CallBudget, run_id: str, events: list[Event] | None) -> Poll:
        """Polls ``/events`` while the run has few events, else the light ``GET .../runs/{id}``.

        ``/events`` is documented and carries the latest event for progress messages, but it
        returns every event, so past `EVENTS_POLL_LIMIT` events the light GET keeps each poll
        small (falling back to ``/events`` if the light GET is missing).
        """
        few_events = events is not None and len(events) <= EVENTS_POLL_LIMIT
        light_exists = True

        async def poll() -> RunEnvelope:
            with self.telemetry.poll(call.server_id, run_id):
                return await fetch()

        async def fetch() -> RunEnvelope:
            nonlocal few_events, light_exists
            if not few_events and light_exists:
                try:
                    return await self.client.get_run(call.server_id, run_id, deadline=call.deadline)
                except NotFoundError:
                    logger.info("GET run %s gave 404; polling its events instead", run_id)
                    light_exists = False
            envelope = await self.client.get_run_events(call.server_id, run_id, deadline=call.deadline)
            few_events = len(envelope.events or []) <= EVENTS_POLL_LIMIT
            return envelope

        return poll

    async def _earlier_start(self, call: CallBudget, earlier: AbandonedStart) -> RunEnvelope | None:
        """The run a cancelled identical start created, if it can be found."""
        try:
            if earlier.run_id is not None:
                return await self.client.get_run_events(call.server_id, earlier.run_id, deadline=call.deadline)
            return await self._find_started(call, earlier.marker)
        except (NotFoundError, UnconfirmedStartError):
            return None

    async def _lost_start(self, call: CallBudget, marker: str, lost: TransportError, lost_sync: bool) -> RunEnvelope:
        """The run of a start whose answer was `lost`, else an error telling how to look for it (never to retry)."""
        try:
            return await self._find_started(call, marker)
        except ACPError as exc:
            logger.info("looking up a start whose answer was lost (%s) found nothing: %s", type(lost).__name__, exc)
            if isinstance(lost, RequestTimeout):
                cause = f"got no answer within {call.sync_cutoff if lost_sync else call.request_timeout:g}s"
            else:
                cause = "lost its connection before the answer came"
            raise UnconfirmedStartError(server_id=call.server_id, cause=cause) from None

    async def _find_started(self, call: CallBudget, marker: str) -> RunEnvelope:
        """The run among the server's newest whose metadata carries `marker`, with its events; raise
        `UnconfirmedStartError` when none does."""
        listed = await newest_runs(self.client, call.server_id, LOST_START_SEARCH_RUNS, deadline=call.deadline)
        match = next((run for run in listed.listing.items if started_by(run, marker)), None)
        if match is None or match.id is None:
            raise UnconfirmedStartError(server_id=call.server_id, cause="was not answered")
        return await self.client.get_run_events(call.server_id, match.id, deadline=call.deadline)
