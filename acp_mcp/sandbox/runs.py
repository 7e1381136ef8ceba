"""A stored run and its JSON: the run object, the thread object and the response envelope.

``thread_status`` uses the documented thread statuses (``active``, ``running``, ``completed``,
``failed``, ``cancelled``): a queued run's thread is ``active``, any other's has the run's status.
Undocumented choice (the sandbox's guess): that mapping itself, and ``thread.title`` is the run title.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .agent import TERMINAL, Beat, EventSpec, Mode, RunStatus, Turn, TurnInput
from .errors import JsonObject

AGENT_RUNTIME_ID = "art_sandbox"
SESSION_PROTOCOL = "sandbox"


def iso_utc(seconds: float) -> str:
    """Format epoch seconds as ISO 8601 UTC with milliseconds and a trailing Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def thread_status(status: str) -> str:
    """Map a run status to a documented thread status."""
    return "active" if status == "queued" else status


@dataclass
class StoredRun:
    """One run with its events and its current turn (None once the turn has ended).

    The fields are as of the sandbox's last read: ``SandboxState.get_run`` brings them up to now.
    ``account`` is the account that started it; it is not part of the JSON.
    """

    id: str
    account: str
    server_id: str
    thread_id: str
    title: str
    input: str
    mode: Mode
    created_at: str
    metadata: JsonObject
    status: RunStatus = "queued"
    output: str | None = None
    error: str | None = None
    completed_at: str | None = None
    events: list[JsonObject] = field(default_factory=list)
    turn: Turn | None = field(default=None, repr=False)
    queued: list[TurnInput] = field(default_factory=list, repr=False)
    """Inputs waiting for the current turn to end (only with the ``busy-input-queues`` variant)."""

    def to_dict(self) -> JsonObject:
        """Return the run object of the API."""
        return {
            "id": self.id,
            "serverId": self.server_id,
            "threadId": self.thread_id,
            "title": self.title,
            "input": self.input,
            "output": self.output,
            "mode": self.mode,
            "status": self.status,
            "error": self.error,
            "metadata": self.metadata,
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
            "sessionProtocol": SESSION_PROTOCOL,
            "threadBacked": True,
            "threadStatus": thread_status(self.status),
            "threadTitle": self.title,
        }

    def thread_dict(self) -> JsonObject:
        """Return the thread object of the API."""
        return {"id": self.thread_id, "title": self.title, "status": thread_status(self.status)}

    def envelope(self, events: bool, *, flat: bool = False, event_ids: bool = True) -> JsonObject:
        """Return the response envelope of the run, with its events or without; `flat`: the run's fields at the
        top with ``agentRuntimeId``, ``thread`` and ``events`` beside them; no `event_ids`: events without ``id``."""
        head: JsonObject = {"serverId": self.server_id, "agentRuntimeId": AGENT_RUNTIME_ID}
        body: JsonObject = {**head, **self.to_dict()} if flat else {**head, "run": self.to_dict()}
        body["thread"] = self.thread_dict()
        if events:
            body["events"] = [e if event_ids else {k: v for k, v in e.items() if k != "id"} for e in self.events]
        return body

    def apply(self, beat: Beat, at: str, event_ids: Iterator[int]) -> None:
        """Apply a beat at time `at`; a terminal status ends the turn and sets completedAt."""
        if beat.status is not None:
            self.status = beat.status
        if beat.status in TERMINAL:
            self.turn, self.completed_at = None, at
        if beat.output is not None:
            self.output = beat.output
        if beat.error is not None:
            self.error = beat.error
        self.events.extend(_event(spec, at, next(event_ids)) for spec in beat.events)


def _event(spec: EventSpec, at: str, number: int) -> JsonObject:
    """Build one event of the API."""
    role, content, log_type, level = spec
    return {
        "id": f"evt_{number:06d}",
        "role": role,
        "content": content,
        "logType": log_type,
        "logLevel": level,
        "createdAt": at,
    }
