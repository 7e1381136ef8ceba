"""The run lifecycle as the tools offer it: call the API, wait within budget, shape the result.

Knows nothing of MCP wiring (the tools pass in a progress callback) and nothing of HTTP (the
client does that). The rules that are choices, not API facts, live here:

- ``mode`` omitted: ``async`` is sent and the call waits up to ``waitSeconds``, so a slow run
  can never lose its handle to a client timeout. An explicit ``mode`` is forwarded as given.
- ``mode: "sync"``: the HTTP request itself is bounded by the wait; if it outlives it, the run is
  looked up (continue: by id; start: the newest run with the same input) and returned as it is.
- A run that is still going when the wait ends is returned normally, with its id and the exact
  ``get_agent_run`` call to make next.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .client import ACPClient
from .config import MAX_WAIT_SECONDS, Settings
from .errors import ACPError, InvalidArgumentError, NotFoundError, RequestTimeout, UnconfirmedStartError
from .models import Event, Run, RunEnvelope
from .results import (
    DEFAULT_MAX_EVENTS,
    MAX_LIST_RUNS,
    Outcome,
    RunListResult,
    RunResult,
    shape_list,
    shape_run,
)
from .waiting import Poll, PollPolicy, Report, wait_for_run

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 100_000
"""Longest ``content``, ``prompt`` or ``title`` accepted."""
MAX_METADATA_CHARS = 16_384
"""Largest ``metadata`` accepted, measured as compact JSON."""
FINAL_FETCH_SECONDS = 10.0
"""Budget for the one events fetch after a wait, on top of the wait itself."""

EVENTS_POLL_LIMIT = 200
"""Polls read ``/events`` (with the latest event) while a run has at most this many events."""


@dataclass(frozen=True)
class Budget:
    """One tool call's wait: when the call began and how long it may wait in all."""

    began: float
    wait: float

    @property
    def deadline(self) -> float:
        """When the wait ends (monotonic seconds)."""
        return self.began + self.wait


async def no_progress(progress: float, total: float, message: str) -> None:
    """A progress callback that does nothing."""


class RunService:
    """Start, continue, get, list and cancel connected agent-runtime runs."""

    def __init__(self, client: ACPClient, settings: Settings, policy: PollPolicy | None = None) -> None:
        self.client = client
        self.settings = settings
        self.policy = policy or PollPolicy()

    # -- argument rules -------------------------------------------------------------------

    def server_id(self, given: str | None) -> str:
        """The call's serverId, or the configured default; refuses when there is neither."""
        server_id = given if given is not None else self.settings.default_server_id
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

    # -- tools ----------------------------------------------------------------------------

    async def start(
        self, server_id: str, body: dict[str, Any], *, wait: float, max_events: int, report: Report = no_progress
    ) -> RunResult:
        """Start a run, then wait for it within the budget."""

        async def send(http_timeout: float | None) -> tuple[int, RunEnvelope]:
            return await self.client.start_run(server_id, body, http_timeout=http_timeout)

        async def recover() -> RunEnvelope:
            return await self._find_started(server_id, body, wait)

        late = f"the sync start did not answer within {wait:g}s; this is the run it started"
        return await self._post(server_id, body, send, recover, "started", late, wait, max_events, report)

    async def continue_run(
        self,
        server_id: str,
        run_id: str,
        body: dict[str, Any],
        *,
        wait: float,
        max_events: int,
        report: Report = no_progress,
    ) -> RunResult:
        """Send input to a run, then wait for it within the budget."""

        async def send(http_timeout: float | None) -> tuple[int, RunEnvelope]:
            return await self.client.continue_run(server_id, run_id, body, http_timeout=http_timeout)

        async def recover() -> RunEnvelope:
            return await self.client.get_run_events(server_id, run_id, deadline=time.monotonic() + FINAL_FETCH_SECONDS)

        late = f"the sync request did not answer within {wait:g}s; the run goes on on the platform"
        return await self._post(server_id, body, send, recover, "continued", late, wait, max_events, report)

    async def get(
        self,
        server_id: str,
        run_id: str,
        *,
        wait: float,
        max_events: int,
        event_offset: int | None = None,
        report: Report = no_progress,
    ) -> RunResult:
        """The run and a window of its events, after waiting for it within the budget."""
        budget = Budget(time.monotonic(), wait)
        envelope = await self.client.get_run_events(server_id, run_id)
        return await self._settle(
            envelope, server_id, "fetched", None, budget, max_events, report, event_offset=event_offset
        )

    async def list_runs(self, server_id: str, limit: int | None) -> RunListResult:
        """The server's newest runs."""
        listing = await self.client.list_runs(server_id, limit)
        return shape_list(listing, server_id=server_id, limit=limit or MAX_LIST_RUNS)

    async def cancel(self, server_id: str, run_id: str, *, max_events: int = DEFAULT_MAX_EVENTS) -> RunResult:
        """Cancel a run."""
        envelope = await self.client.cancel_run(server_id, run_id)
        return shape_run(envelope, server_id=server_id, outcome="cancelled", http_status=200, max_events=max_events)

    async def full_run(self, server_id: str, run_id: str) -> str:
        """The run with all its events, as the API sent it, as JSON text."""
        envelope = await self.client.get_run_events(server_id, run_id)
        return envelope.model_dump_json(exclude_unset=True)

    # -- shared steps ---------------------------------------------------------------------

    async def _post(
        self,
        server_id: str,
        body: dict[str, Any],
        send: Callable[[float | None], Awaitable[tuple[int, RunEnvelope]]],
        recover: Callable[[], Awaitable[RunEnvelope]],
        done: Outcome,
        late: str,
        wait: float,
        max_events: int,
        report: Report,
    ) -> RunResult:
        """POST a start or an input, then settle. A sync request is bounded by the wait; when it
        outlives it, `recover` finds the run so the caller still gets it, with the note `late`."""
        budget = Budget(time.monotonic(), wait)
        sync = body.get("mode") == "sync"
        try:
            status, envelope = await send(wait if sync and wait else None)
        except RequestTimeout:
            if not sync:
                raise
            return await self._settle(
                await recover(), server_id, "fetched", None, budget, max_events, report, notes=[late], waited=wait
            )
        outcome: Outcome = "accepted" if status == 202 else done
        waited = time.monotonic() - budget.began if sync else 0.0
        return await self._settle(envelope, server_id, outcome, status, budget, max_events, report, waited=waited)

    async def _settle(
        self,
        envelope: RunEnvelope,
        server_id: str,
        outcome: Outcome,
        http_status: int | None,
        budget: Budget,
        max_events: int,
        report: Report,
        *,
        event_offset: int | None = None,
        notes: list[str] | None = None,
        waited: float = 0.0,
    ) -> RunResult:
        """Wait for the run while the budget lasts if it is not terminal, then shape what is known.

        `waited` is time already spent waiting for the run (a sync request); polling adds to it.
        """
        notes = list(notes or [])
        run = envelope.run
        now = time.monotonic()
        remaining = budget.deadline - now
        if run is not None and run.id and not run.is_terminal and remaining > 0:
            offset = now - budget.began

            async def report_whole_wait(progress: float, total: float, message: str) -> None:
                await report(min(offset + progress, budget.wait), budget.wait, message)

            poll = self._poller(server_id, run.id, envelope.events)
            try:
                envelope = await wait_for_run(envelope, poll, report_whole_wait, seconds=remaining, policy=self.policy)
            except ACPError as exc:
                logger.warning("polling run %s stopped: %s", run.id, exc)
                notes.append(f"checking the run's status failed ({type(exc).__name__}); call get_agent_run later")
            waited += time.monotonic() - now
        run = envelope.run
        if envelope.events is None and run is not None and run.id:
            try:
                envelope = await self.client.get_run_events(
                    server_id, run.id, deadline=time.monotonic() + FINAL_FETCH_SECONDS
                )
            except ACPError as exc:
                logger.warning("fetching events of run %s failed: %s", run.id, exc)
                notes.append(f"the run's events could not be fetched ({type(exc).__name__})")
        return shape_run(
            envelope,
            server_id=server_id,
            outcome=outcome,
            http_status=http_status,
            waited=waited,
            wait_expired=budget.wait > 0,
            max_events=max_events,
            event_offset=event_offset,
            notes=notes,
        )

    def _poller(self, server_id: str, run_id: str, events: list[Event] | None) -> Poll:
        """Polls ``/events`` while the run has few events, else the light ``GET .../runs/{id}``.

        ``/events`` is documented and carries the latest event for progress messages, but it
        returns every event, so past `EVENTS_POLL_LIMIT` events the light GET keeps each poll
        small (falling back to ``/events`` if the light GET is missing).
        """
        few_events = events is not None and len(events) <= EVENTS_POLL_LIMIT
        light_exists = True

        async def poll(deadline: float) -> RunEnvelope:
            nonlocal few_events, light_exists
            if not few_events and light_exists:
                try:
                    return await self.client.get_run(server_id, run_id, deadline=deadline)
                except NotFoundError:
                    logger.info("GET run %s gave 404; polling its events instead", run_id)
                    light_exists = False
            envelope = await self.client.get_run_events(server_id, run_id, deadline=deadline)
            few_events = len(envelope.events or []) <= EVENTS_POLL_LIMIT
            return envelope

        return poll

    async def _find_started(self, server_id: str, body: dict[str, Any], wait: float) -> RunEnvelope:
        """After a sync start timed out: the newest run with the same input, else an error."""
        text = body.get("content", body.get("prompt"))
        listing = await self.client.list_runs(server_id, 10, deadline=time.monotonic() + FINAL_FETCH_SECONDS)
        match: Run | None = next((r for r in listing.items if r.input == text and r.id), None)
        if match is None or match.id is None:
            raise UnconfirmedStartError(
                f"The sync start did not answer within {wait:g}s and no run with this input is listed yet",
                server_id=server_id,
            )
        return await self.client.get_run_events(server_id, match.id, deadline=time.monotonic() + FINAL_FETCH_SECONDS)
