"""What the model sees of a run: a small structured result and a readable text twin.

Size rules (the README repeats them): the run's ``output`` is cut at `OUTPUT_CHARS`; the listed
events share `EVENTS_CHARS` of content (400 each for the default 20, up to all of it for one);
other text fields are cut at `FIELD_CHARS`; ``metadata`` and ``thread`` are dropped when their
JSON passes `OBJECT_CHARS`. Every cut ends with an explicit marker counting what was cut. Only a
window of ``maxEvents`` events is listed (the latest by default), with ``eventsTotal`` and
``eventOffset`` so every other event can be paged to, and the full run stays one resource read
away (`run_uri`). Any result, text and structured together, stays under 25,000 characters.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from .limits import (
    DEFAULT_MAX_EVENTS,
    ERROR_CHARS,
    EVENT_FIELD_CHARS,
    EVENTS_CHARS,
    FIELD_CHARS,
    LIST_FIELD_MIN_CHARS,
    LIST_LINE_CHARS,
    LIST_TEXT_CHARS,
    MIN_EVENT_CHARS,
    OBJECT_CHARS,
    OUTPUT_CHARS,
    TEXT_EVENT_CHARS,
    TEXT_EVENTS,
    TEXT_OUTPUT_CHARS,
    WAITED_DECIMALS,
)
from .models import Event, EventFields, Run, RunEnvelope, RunFields, RunList
from .text import call_hint, clip, preview
from .uris import run_uri

Outcome = Literal["started", "accepted", "continued", "fetched", "cancelled"]


def event_chars(count: int) -> int:
    """How much of each event's content is shown when `count` events are listed."""
    return min(EVENTS_CHARS, max(MIN_EVENT_CHARS, EVENTS_CHARS // max(count, 1)))


class EventView(EventFields):
    """One run event, content cut to its share of the budget."""


class RunView(RunFields):
    """The run, text fields cut at the documented lengths."""


class RunResult(BaseModel):
    """A run as the tools return it; `text` holds its readable twin."""

    _text: str = PrivateAttr(default="")

    @property
    def text(self) -> str:
        """The readable twin, rendered by `shape_run`."""
        return self._text

    serverId: str
    agentRuntimeId: str | None = None
    outcome: Outcome = Field(
        description="started (201), accepted (202: queued for later), continued (200), fetched, or cancelled"
    )
    httpStatus: int | None = Field(default=None, description="HTTP status of the tool's main API request")
    run: RunView | None = None
    thread: dict[str, Any] | None = None
    terminal: bool = Field(description="true once the run is completed, failed or cancelled")
    waitedSeconds: float = Field(description="how long this call waited for the run to finish")
    waitExpired: bool = Field(description="true when the wait ended before the run finished")
    events: list[EventView] = Field(default_factory=list, description="a window of the run's events, oldest first")
    eventOffset: int = Field(default=0, description="index of the first listed event within all events")
    eventsTotal: int | None = Field(default=None, description="number of events the run has; null when not fetched")
    next: str | None = Field(default=None, description="the call to make next, if any")
    notes: list[str] = Field(default_factory=list, description="what was cut or could not be fetched")
    resourceUri: str | None = Field(default=None, description="resource with the full run and every event as JSON")


class RunSummary(BaseModel):
    """One run in a list: its id, status and short previews of its texts."""

    id: str | None = None
    status: str | None = None
    mode: str | None = None
    title: str | None = None
    input: str | None = None
    output: str | None = None
    error: str | None = None
    createdAt: str | None = None
    completedAt: str | None = None


class RunListResult(BaseModel):
    """The newest runs of a server."""

    serverId: str
    agentRuntimeId: str | None = None
    runs: list[RunSummary]
    count: int = Field(description="number of runs listed")
    notes: list[str] = Field(default_factory=list, description="what was cut or left out")


def _clip_object(name: str, value: dict[str, Any] | None, notes: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    size = len(json.dumps(value, default=str))
    if size <= OBJECT_CHARS:
        return value
    notes.append(f"{name} omitted ({size:,} characters of JSON); read the resource for it")
    return None


def run_view(run: Run, notes: list[str]) -> RunView:
    """The run with every text field cut to its limit."""
    output = clip(run.output, OUTPUT_CHARS)
    if output is not run.output:
        notes.append(f"run.output cut to {OUTPUT_CHARS:,} of {len(run.output or ''):,} characters")
    return RunView(
        id=clip(run.id, FIELD_CHARS),
        status=clip(run.status, FIELD_CHARS),
        output=output,
        error=clip(run.error, ERROR_CHARS),
        mode=clip(run.mode, FIELD_CHARS),
        title=clip(run.title, FIELD_CHARS),
        input=clip(run.input, FIELD_CHARS),
        threadId=clip(run.threadId, FIELD_CHARS),
        metadata=_clip_object("run.metadata", run.metadata, notes),
        createdAt=clip(run.createdAt, FIELD_CHARS),
        completedAt=clip(run.completedAt, FIELD_CHARS),
        sessionProtocol=clip(run.sessionProtocol, FIELD_CHARS),
        threadBacked=run.threadBacked,
        threadStatus=clip(run.threadStatus, FIELD_CHARS),
        threadTitle=clip(run.threadTitle, FIELD_CHARS),
    )


def event_view(event: Event, limit: int) -> EventView:
    """The event with its content cut to `limit`."""
    return EventView(
        id=clip(event.id, EVENT_FIELD_CHARS),
        role=clip(event.role, EVENT_FIELD_CHARS),
        content=clip(event.content, limit),
        logType=clip(event.logType, EVENT_FIELD_CHARS),
        logLevel=clip(event.logLevel, EVENT_FIELD_CHARS),
        createdAt=clip(event.createdAt, EVENT_FIELD_CHARS),
    )


def event_window(total: int, max_events: int, offset: int | None) -> tuple[int, int]:
    """The [start, stop) slice to list: from `offset`, or the latest `max_events` by default."""
    start = max(0, total - max_events) if offset is None else min(offset, total)
    return start, min(total, start + max_events)


def shape_run(
    envelope: RunEnvelope,
    *,
    server_id: str,
    outcome: Outcome,
    http_status: int | None,
    waited: float = 0.0,
    wait_expired: bool = False,
    max_events: int = DEFAULT_MAX_EVENTS,
    event_offset: int | None = None,
    notes: list[str] | None = None,
) -> RunResult:
    """Build the model-facing result and its text twin from an API envelope, applying every size rule."""
    notes = list(notes or [])
    run = envelope.run or Run()
    events = envelope.events or []
    start, stop = event_window(len(events), max_events, event_offset)
    window = events[start:stop]
    limit = event_chars(len(window))
    listed = [event_view(e, limit) for e in window]
    if envelope.events is not None and (start > 0 or stop < len(events)):
        shown = f"events {start}-{stop - 1}" if window else "no events"
        notes.append(f"{shown} of {len(events)} listed; page with eventOffset")
    if any(len(e.content or "") > limit for e in window):
        notes.append(f"event contents cut to {limit:,} characters")
    terminal = run.is_terminal
    result = RunResult(
        serverId=server_id,
        agentRuntimeId=clip(envelope.agentRuntimeId, FIELD_CHARS),
        outcome=outcome,
        httpStatus=http_status,
        run=run_view(run, notes) if envelope.run is not None else None,
        thread=_clip_object("thread", envelope.thread, notes),
        terminal=terminal,
        waitedSeconds=round(waited, WAITED_DECIMALS),
        waitExpired=wait_expired and not terminal,
        events=listed,
        eventOffset=start,
        eventsTotal=None if envelope.events is None else len(events),
        next=call_hint("get_agent_run", serverId=server_id, resourceRunId=run.id) if run.id and not terminal else None,
        notes=notes,
        resourceUri=run_uri(server_id, run.id) if run.id else None,
    )
    result._text = render_text(result, run, window)
    return result


def render_text(result: RunResult, run: Run, window: list[Event]) -> str:
    """The same facts as readable text, cut from the originals, for clients that show only text."""
    view = result.run or RunView()
    status = f"HTTP {result.httpStatus}, {result.outcome}" if result.httpStatus else result.outcome
    lines = [f"Run {view.id or '(no id)'} on server {result.serverId}: {view.status or 'unknown status'} ({status})."]
    if result.waitExpired:
        lines.append(f"Still {view.status} after waiting {result.waitedSeconds:g}s; the run goes on on the platform.")
    if run.output is not None:
        lines.append("Output: " + (clip(run.output, TEXT_OUTPUT_CHARS) or ""))
    if run.error:
        lines.append("Error: " + (clip(run.error, TEXT_OUTPUT_CHARS) or ""))
    if window:
        shown = window[-TEXT_EVENTS:]
        first = result.eventOffset + len(window) - len(shown)
        lines.append(f"Events {first + 1}-{first + len(shown)} of {result.eventsTotal}:")
        lines.extend(f"- [{_kind(e)}] {clip(e.content, TEXT_EVENT_CHARS) or ''}" for e in shown)
    lines.extend(f"Note: {note}" for note in result.notes)
    if result.next:
        lines.append(f"Next: {result.next}")
    if result.resourceUri:
        lines.append(f"Full run: {result.resourceUri}")
    return "\n".join(lines)


def shape_list(listing: RunList, *, server_id: str, limit: int) -> RunListResult:
    """At most `limit` runs, their long texts sharing `LIST_TEXT_CHARS`, cut with markers."""
    runs = listing.items[:limit]
    notes = [f"{len(listing.items) - limit} more runs were returned and left out"] if len(listing.items) > limit else []
    each = min(FIELD_CHARS, max(LIST_FIELD_MIN_CHARS, LIST_TEXT_CHARS // (4 * max(len(runs), 1))))
    summaries = [
        RunSummary(
            id=clip(run.id, FIELD_CHARS),
            status=clip(run.status, FIELD_CHARS),
            mode=clip(run.mode, FIELD_CHARS),
            title=clip(run.title, each),
            input=clip(run.input, each),
            output=clip(run.output, each),
            error=clip(run.error, each),
            createdAt=clip(run.createdAt, FIELD_CHARS),
            completedAt=clip(run.completedAt, FIELD_CHARS),
        )
        for run in runs
    ]
    if any(len(text or "") > each for run in runs for text in (run.title, run.input, run.output, run.error)):
        notes.append(f"titles, inputs, outputs and errors cut to {each} characters; get_agent_run shows a run in full")
    return RunListResult(
        serverId=server_id,
        agentRuntimeId=clip(listing.agentRuntimeId, FIELD_CHARS),
        runs=summaries,
        count=len(summaries),
        notes=notes,
    )


def _kind(event: Event) -> str:
    """``role/logType`` of an event, each cut short."""
    role = preview(event.role or "?", EVENT_FIELD_CHARS)
    return f"{role}/{preview(event.logType, EVENT_FIELD_CHARS)}" if event.logType else role


def render_list(result: RunListResult) -> str:
    """A run list as readable text, one line per run."""
    lines = [f"{result.count} run(s) on server {result.serverId}, newest first:"]
    lines.extend(f"- {r.id}: {r.status} — {preview(r.title or r.input, LIST_LINE_CHARS)}" for r in result.runs)
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)
