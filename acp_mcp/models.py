"""What the ACP API sends back, parsed leniently.

Every field is documented as optional, so every field here is optional too; unknown fields are
kept (``extra="allow"``) so the full-run resource can pass them on, and a status outside the
documented set is carried as text rather than rejected.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class Server(_Upstream):
    """A server (resource): the documented fields a completion or a hint needs."""

    id: str | None = None
    name: str | None = None
    kind: str | None = None
    status: str | None = None


class ServerList(_Upstream):
    """The response of ``GET /servers``; ``data`` and ``servers`` hold the same items."""

    data: list[Server] | None = None
    servers: list[Server] | None = None

    @property
    def items(self) -> list[Server]:
        """The servers, from whichever of ``data`` / ``servers`` is present."""
        return self.data if self.data is not None else (self.servers or [])
