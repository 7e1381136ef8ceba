"""What the ACP API sends back, parsed leniently.

Every field is documented as optional, so every field here is optional too; unknown fields are
kept (``extra="allow"``) so the full-run resource can pass them on, and a status outside the
documented set is carried as text rather than rejected. A run answer may be the documented
envelope ``{run: {...}, events: [...]}`` or a flat run ``{id, status, ..., events?}`` (the
official TypeScript SDK reads both); both parse to the same `RunEnvelope`. Events may lack an
``id``: `Event.key` then identifies one by ``createdAt``, ``role`` and ``content``, as that SDK does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


class EventFields(BaseModel):
    """The documented fields of a run event."""

    id: str | None = None
    role: str | None = None
    content: str | None = None
    logType: str | None = None
    logLevel: str | None = None
    createdAt: str | None = None


class RunFields(BaseModel):
    """The documented fields of a run."""

    id: str | None = None
    status: str | None = Field(default=None, description="queued | running | completed | failed | cancelled")
    output: str | None = None
    error: str | None = None
    mode: str | None = None
    title: str | None = None
    input: str | None = None
    threadId: str | None = None
    metadata: dict[str, Any] | None = None
    createdAt: str | None = None
    completedAt: str | None = None
    sessionProtocol: str | None = None
    threadBacked: bool | None = None
    threadStatus: str | None = None
    threadTitle: str | None = None


class _Upstream(BaseModel):
    model_config = ConfigDict(extra="allow")


class Event(EventFields, _Upstream):
    """One entry of a run's ``events[]``, unknown fields kept."""

    @property
    def key(self) -> str:
        """What identifies the event: its id, else its createdAt, role and content (the TypeScript SDK's rule)."""
        if self.id:
            return "id:" + self.id
        return json.dumps([self.createdAt, self.role, self.content])


def events_fingerprint(status: str | None, events: Sequence[Event] | None) -> str:
    """A digest of a run's status and the set of its events: it changes when either does, whatever the
    events' order or ids."""
    keys = sorted(event.key for event in events or ())
    return hashlib.sha256(json.dumps([status, events is None, keys]).encode()).hexdigest()


class Run(RunFields, _Upstream):
    """The ``run`` object, unknown fields kept."""

    serverId: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the run is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES


class RunEnvelope(_Upstream):
    """The response of start, input, get, events and cancel."""

    serverId: str | None = None
    agentRuntimeId: str | None = None
    run: Run | None = None
    thread: dict[str, Any] | None = None
    events: list[Event] | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_run(cls, data: Any) -> Any:
        """A flat run (``id`` or ``status`` at the top, no ``run``) becomes the envelope of that run."""
        if not isinstance(data, dict) or data.get("run") is not None or not ({"id", "status"} & data.keys()):
            return data
        outer = {name: data[name] for name in ("agentRuntimeId", "thread", "events") if name in data}
        run = {name: value for name, value in data.items() if name not in outer}
        return {**({"serverId": data["serverId"]} if "serverId" in data else {}), **outer, "run": run}


class RunList(_Upstream):
    """The response of the list endpoint; ``data`` and ``runs`` hold the same items."""

    serverId: str | None = None
    agentRuntimeId: str | None = None
    data: list[Run] | None = None
    runs: list[Run] | None = None

    @property
    def items(self) -> list[Run]:
        """The runs, from whichever of ``data`` / ``runs`` is present."""
        return self.data if self.data is not None else (self.runs or [])

    def newest_first(self) -> list[Run]:
        """The runs, newest `createdAt` first whatever order the API listed them in (those without one last,
        in the API's order)."""
        return sorted(self.items, key=lambda run: -created_epoch(run.createdAt, default=-float("inf")))


def created_epoch(stamp: str | None, *, default: float) -> float:
    """An ISO 8601 time as epoch seconds (UTC when it names no zone); `default` when missing or unreadable."""
    if not stamp:
        return default
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return default
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Server(_Upstream):
    """A server (resource): the documented fields a completion or a hint needs."""

    id: str | None = None
    name: str | None = None
    kind: str | None = None
    status: str | None = None


class Binding(_Upstream):
    """One binding of a server: ``targetType`` is ``database``, ``auth`` or ``agent_runtime``."""

    id: str | None = None
    targetType: str | None = None
    targetId: str | None = None


class BindingList(_Upstream):
    """The response of ``GET /servers/{serverId}/bindings``."""

    serverId: str | None = None
    bindings: list[Binding] | None = None

    @property
    def runs_agents(self) -> bool:
        """Whether an agent runtime is bound to the server."""
        return any(binding.targetType == "agent_runtime" for binding in self.bindings or [])


class ServerList(_Upstream):
    """The response of ``GET /servers``; ``data`` and ``servers`` hold the same items."""

    data: list[Server] | None = None
    servers: list[Server] | None = None

    @property
    def items(self) -> list[Server]:
        """The servers, from whichever of ``data`` / ``servers`` is present."""
        return self.data if self.data is not None else (self.servers or [])
