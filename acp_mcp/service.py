"""The run lifecycle as the tools offer it: call the API, wait within budget, shape the result.

Knows nothing of MCP wiring (the tools pass in a progress callback) and nothing of HTTP (the
client does that). The rules that are choices, not API facts, live here:

- ``mode`` omitted: ``async`` is sent and the call waits up to ``waitSeconds``, so a slow run
  can never lose its handle to a client timeout. An explicit ``mode`` is forwarded as given.
- ``mode: "sync"``: the HTTP request itself is bounded by the wait; if it outlives it, the run is
  looked up (continue: by id; start: the newest run with the same input created since the call
  began) and returned as it is.
- Every request of a call ends by its deadline: the wait (or one request timeout, if longer) plus
  the poll policy's grace (5 s), so a call with the default 45 s wait is over within 50 s.
- A run that is still going when the wait ends is returned normally, with its id and the exact
  ``get_agent_run`` call to make next.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from .client import ACPClient
from .config import MAX_WAIT_SECONDS, Settings
from .errors import ACPError, InvalidArgumentError, NotFoundError, RequestTimeout, UnconfirmedStartError
from .messages import DRAINING_NOTE, repeated_start_note
from .models import Event, Run, RunEnvelope
from .repeats import AbandonedStart, AbandonedStarts
from .results import (
    DEFAULT_MAX_EVENTS,
    MAX_LIST_RUNS,
    Outcome,
    RunListResult,
    RunResult,
    shape_list,
    shape_run,
)
from .waiting import Poll, PollPolicy, ProgressTicker, Report, progress_ticker, wait_for_run

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 100_000
"""Longest ``content`` or ``prompt`` accepted."""
MAX_TITLE_CHARS = 1_000
"""Longest ``title`` accepted."""
MAX_METADATA_CHARS = 16_384
"""Largest ``metadata`` accepted, measured as compact JSON."""
CLOCK_SKEW_SECONDS = 60.0
"""How far the API's clock may be behind ours when matching a run by its createdAt."""

EVENTS_POLL_LIMIT = 200
"""Polls read ``/events`` (with the latest event) while a run has at most this many events."""


async def no_progress(progress: float, total: float, message: str) -> None:
    """A progress callback that does nothing."""


@dataclass(frozen=True)
class Call:
    """One tool call's frame: its server, its time budget, how to report progress, how much to list.

    The wait ends at `wait_until`; every request of the call, the final fetch included, ends by
    `deadline`: the wait (or one request timeout, if longer) plus `grace`.
    """

    server_id: str
    wait: float
    request_timeout: float
    grace: float
    max_events: int = DEFAULT_MAX_EVENTS
    event_offset: int | None = None
    report: Report = field(default=no_progress)
    began: float = field(default_factory=time.monotonic)
    began_wall: float = field(default_factory=time.time)

    @property
    def wait_until(self) -> float:
        """When the wait ends (monotonic seconds)."""
        return self.began + self.wait

    @property
    def deadline(self) -> float:
        """When every request of the call must be done (monotonic seconds)."""
        return self.began + max(self.wait, self.request_timeout) + self.grace

    def waited(self) -> float:
        """Seconds since the call began."""
        return time.monotonic() - self.began


class RunService:
    """Start, continue, get, list and cancel connected agent-runtime runs."""

    def __init__(self, client: ACPClient, settings: Settings, policy: PollPolicy | None = None) -> None:
        self.client = client
        self.settings = settings
        self.policy = policy or PollPolicy()
        self.abandoned = AbandonedStarts()
        self.stop_waits: anyio.Event | None = None
        """Set when the HTTP server drains: every wait ends at its next poll (made by `serve_http`; None on stdio)."""

    # -- argument rules -------------------------------------------------------------------

    def server_id(self, given: str | None) -> str:
        """The call's serverId, or the configured default; refuses when there is neither."""
        server_id = given or self.settings.default_server_id
        if server_id is None:
            raise InvalidArgumentError(
                "serverId is required: pass serverId (the resource id of the agent runtime's server), "
                "or ask the user to set ACP_SERVER_ID in this MCP server's environment",
                field_name="serverId",
            )
        return server_id

    def wait_seconds(self, given: float | None) -> float:
        """The call's wait, defaulting to ``ACP_MCP_WAIT_SECONDS``, capped at `MAX_WAIT_SECONDS`."""
        value = self.settings.wait_seconds if given is None else given
        return max(0.0, min(float(value), MAX_WAIT_SECONDS))

    @staticmethod
    def request_body(**fields: Any) -> dict[str, Any]:
        """The JSON body from the fields the caller gave; ``mode`` defaults to ``async``."""
        body = {name: value for name, value in fields.items() if value is not None}
        if "content" not in body and "prompt" not in body:
            raise InvalidArgumentError("give content (the text for the agent) or prompt", field_name="content")
        if "metadata" in body:
            try:
                size = len(json.dumps(body["metadata"], separators=(",", ":"), allow_nan=False))
            except ValueError:
                raise InvalidArgumentError(
                    "metadata must be plain JSON: NaN and Infinity are not allowed", field_name="metadata"
                ) from None
            if size > MAX_METADATA_CHARS:
                raise InvalidArgumentError(
                    f"metadata is {size:,} characters of JSON; the limit is {MAX_METADATA_CHARS:,}",
                    field_name="metadata",
                )
        body.setdefault("mode", "async")
        return body

    def call(
        self, server_id: str | None, wait: float | None = None, *, max_events: int | None = None, **options: Any
    ) -> Call:
        """The frame of one tool call, with the server id, wait and number of events resolved."""
        return Call(
            self.server_id(server_id),
            self.wait_seconds(wait),
            self.settings.request_timeout,
            self.policy.grace,
            max_events=DEFAULT_MAX_EVENTS if max_events is None else max_events,
            **options,
        )

    # -- tools ----------------------------------------------------------------------------

    async def start(self, call: Call, body: dict[str, Any]) -> RunResult:
        """Start a run, then wait for it within the call's budget; a repeat of a cancelled start gets its run."""
        key = self.abandoned.key(call.server_id, body)
        earlier = self.abandoned.take(key)
        envelope = None if earlier is None else await self._earlier_start(call, body, earlier)
        if envelope is not None and envelope.run is not None and envelope.run.id:
            note = repeated_start_note(envelope.run.id)
            async with self._ticker(call, f"run {envelope.run.id}: fetching") as ticker:
                return await self._settle(call, envelope, "fetched", None, ticker, notes=[note])
        started: str | None = None

        async def send(sync: bool) -> tuple[int, RunEnvelope]:
            nonlocal started
            deadline = self._post_deadline(call, sync)
            status, envelope = await self.client.start_run(call.server_id, body, deadline=deadline, sync=sync)
            started = envelope.run.id if envelope.run else None
            return status, envelope

        async def recover() -> RunEnvelope:
            return await self._find_started(call, body, call.began_wall)

        late = "the sync start did not answer within {cutoff:g}s; this is the run it started"
        try:
            return await self._post(
                call, body, send, recover, "started", late, f"starting a run on server {call.server_id}"
            )
        except anyio.get_cancelled_exc_class():
            self.abandoned.remember(key, started, call.began_wall)
            raise

    async def _earlier_start(self, call: Call, body: dict[str, Any], earlier: AbandonedStart) -> RunEnvelope | None:
        """The run a cancelled identical start created, if it can be found."""
        try:
            if earlier.run_id is not None:
                return await self.client.get_run_events(call.server_id, earlier.run_id, deadline=call.deadline)
            return await self._find_started(call, body, earlier.began_wall)
        except (NotFoundError, UnconfirmedStartError):
            return None

    async def continue_run(self, call: Call, run_id: str, body: dict[str, Any]) -> RunResult:
        """Send input to a run, then wait for it within the call's budget."""

        async def send(sync: bool) -> tuple[int, RunEnvelope]:
            deadline = self._post_deadline(call, sync)
            return await self.client.continue_run(call.server_id, run_id, body, deadline=deadline, sync=sync)

        async def recover() -> RunEnvelope:
            return await self.client.get_run_events(call.server_id, run_id, deadline=call.deadline)

        late = "the sync request did not answer within {cutoff:g}s; the run goes on on the platform"
        return await self._post(call, body, send, recover, "continued", late, f"run {run_id}: sending input")

    async def get(
        self, call: Call, run_id: str, *, outcome: Outcome = "fetched", http_status: int | None = None
    ) -> RunResult:
        """The run and a window of its events, after waiting for it within the call's budget.

        `outcome` and `http_status` label the result: a task reports its run as the tool that started it would.
        """
        async with self._ticker(call, f"run {run_id}: fetching") as ticker:
            envelope = await self.client.get_run_events(call.server_id, run_id, deadline=call.deadline)
            return await self._settle(call, envelope, outcome, http_status, ticker)

    async def list_runs(self, server_id: str, limit: int | None) -> RunListResult:
        """The server's newest runs."""
        listing = await self.client.list_runs(server_id, limit)
        return shape_list(listing, server_id=server_id, limit=limit or MAX_LIST_RUNS)

    async def cancel(self, server_id: str, run_id: str) -> RunResult:
        """Cancel a run; if the API answers without the run, fetch it."""
        status, envelope = await self.client.cancel_run(server_id, run_id)
        if envelope.run is None:
            envelope = await self.client.get_run_events(server_id, run_id)
        return shape_run(envelope, server_id=server_id, outcome="cancelled", http_status=status)

    async def full_run(self, server_id: str, run_id: str) -> str:
        """The run with all its events, as the API sent it, as JSON text."""
        envelope = await self.client.get_run_events(server_id, run_id)
        return envelope.model_dump_json(exclude_unset=True)

    # -- shared steps ---------------------------------------------------------------------

    @staticmethod
    def _post_deadline(call: Call, sync: bool) -> float:
        """A sync request may take the whole wait (or one request timeout when the wait is 0)."""
        return call.wait_until if sync and call.wait > 0 else call.deadline

    def _ticker(self, call: Call, message: str) -> AbstractAsyncContextManager[ProgressTicker]:
        return progress_ticker(
            call.report, began=call.began, total=call.wait, interval=self.policy.progress_interval, message=message
        )

    async def _post(
        self,
        call: Call,
        body: dict[str, Any],
        send: Callable[[bool], Awaitable[tuple[int, RunEnvelope]]],
        recover: Callable[[], Awaitable[RunEnvelope]],
        done: Outcome,
        late: str,
        first_message: str,
    ) -> RunResult:
        """POST a start or an input, then settle. A sync request is bounded by the wait; when it
        outlives it, `recover` finds the run so the caller still gets it, with the note `late`."""
        sync = body.get("mode") == "sync"
        async with self._ticker(call, first_message) as ticker:
            try:
                status, envelope = await send(sync)
            except RequestTimeout:
                if not sync:
                    raise
                note = late.format(cutoff=call.wait if call.wait > 0 else call.request_timeout)
                return await self._settle(call, await recover(), "fetched", None, ticker, notes=[note])
            outcome: Outcome = "accepted" if status == 202 else done
            return await self._settle(call, envelope, outcome, status, ticker, waited=sync)

    async def _settle(
        self,
        call: Call,
        envelope: RunEnvelope,
        outcome: Outcome,
        http_status: int | None,
        ticker: ProgressTicker,
        *,
        notes: list[str] | None = None,
        waited: bool = False,
    ) -> RunResult:
        """Wait for the run until the call's wait ends if it is not terminal, then shape what is known.

        `waited` says the call has been waiting since it began (a sync request); polling also counts.
        """
        notes = list(notes or [])
        run = envelope.run
        ticker.update(envelope)
        wait_from = time.monotonic()
        if run is not None and run.id and not run.is_terminal and call.wait_until > wait_from:
            waited = True
            poll = self._poller(call, run.id, envelope.events)
            try:
                envelope = await wait_for_run(
                    envelope, poll, until=call.wait_until, policy=self.policy, seen=ticker.update, stop=self.stop_waits
                )
                if self.stop_waits is not None and self.stop_waits.is_set():
                    notes.append(DRAINING_NOTE)
            except ACPError as exc:
                logger.warning("polling run %s stopped: %s", run.id, exc)
                notes.append(f"checking the run's status failed ({type(exc).__name__}); call get_agent_run later")
        elif run is not None and not run.is_terminal and call.wait > 0:
            waited = True  # a sync request or recovery used up the wait
        run = envelope.run
        if envelope.events is None and run is not None and run.id:
            try:
                envelope = await self.client.get_run_events(call.server_id, run.id, deadline=call.deadline)
            except ACPError as exc:
                logger.warning("fetching events of run %s failed: %s", run.id, exc)
                notes.append(f"the run's events could not be fetched ({type(exc).__name__})")
        return shape_run(
            envelope,
            server_id=call.server_id,
            outcome=outcome,
            http_status=http_status,
            waited=call.waited() if waited else 0.0,
            wait_expired=call.wait > 0,
            max_events=call.max_events,
            event_offset=call.event_offset,
            notes=notes,
        )

    def _poller(self, call: Call, run_id: str, events: list[Event] | None) -> Poll:
        """Polls ``/events`` while the run has few events, else the light ``GET .../runs/{id}``.

        ``/events`` is documented and carries the latest event for progress messages, but it
        returns every event, so past `EVENTS_POLL_LIMIT` events the light GET keeps each poll
        small (falling back to ``/events`` if the light GET is missing).
        """
        few_events = events is not None and len(events) <= EVENTS_POLL_LIMIT
        light_exists = True

        async def poll() -> RunEnvelope:
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

    async def _find_started(self, call: Call, body: dict[str, Any], began_wall: float) -> RunEnvelope:
        """The newest run with the same input created since `began_wall` (allowing for clock skew),
        else an error telling how to look for it."""
        text = body.get("content", body.get("prompt"))
        listing = await self.client.list_runs(call.server_id, 10, deadline=call.deadline)
        since = began_wall - CLOCK_SKEW_SECONDS
        match = next((r for r in listing.items if r.id and r.input == text and _created_since(r, since)), None)
        if match is None or match.id is None:
            raise UnconfirmedStartError(
                f"The sync start did not answer within {call.wait:g}s and no run with this input is listed yet",
                server_id=call.server_id,
            )
        return await self.client.get_run_events(call.server_id, match.id, deadline=call.deadline)


def _created_since(run: Run, since: float) -> bool:
    """True when the run's createdAt is at or after `since` (epoch seconds), or unknown."""
    if not run.createdAt:
        return True
    try:
        created = datetime.fromisoformat(run.createdAt)
    except ValueError:
        return True
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.timestamp() >= since
