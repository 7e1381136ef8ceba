"""The per-process state every tool call shares: settings, one API client, the redactor, the run watcher."""

from __future__ import annotations

from dataclasses import dataclass

from .client import ACPClient
from .config import Settings
from .redaction import Redactor
from .service import RunService
from .waiting import PollPolicy
from .watching import RunWatcher


@dataclass(frozen=True)
class AppState:
    """What the server's lifespan yields to the tools."""

    settings: Settings
    client: ACPClient
    service: RunService
    redact: Redactor
    watcher: RunWatcher

    @classmethod
    def create(cls, settings: Settings, policy: PollPolicy | None = None) -> AppState:
        """Build the state for `settings`; the HTTP pool opens on the first request."""
        redact = Redactor(settings.secrets())
        client = ACPClient(settings, redact=redact)
        service = RunService(client, settings, policy)
        return cls(settings, client, service, redact, RunWatcher(client, service.policy, settings.request_timeout))
