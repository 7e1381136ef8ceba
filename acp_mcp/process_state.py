"""The per-process state every tool call shares: settings, one API client, the redactor, the run watcher."""

from __future__ import annotations

from dataclasses import dataclass

from .client import ACPClient
from .clock import Clock, SystemClock
from .config import Settings
from .redaction import Redactor
from .service import RunService
from .waiting import PollPolicy
from .watching import RunWatcher


@dataclass(frozen=True)
class ProcessState:
    """What the server's lifespan yields to the tools."""

    settings: Settings
    client: ACPClient
    service: RunService
    redact: Redactor
    watcher: RunWatcher
    clock: Clock

    @classmethod
    def create(cls, settings: Settings, policy: PollPolicy | None = None, clock: Clock | None = None) -> ProcessState:
        """Build the state for `settings`; the HTTP pool opens on the first request."""
        clock = clock or SystemClock()
        redact = Redactor(settings.secrets())
        client = ACPClient(settings, redact=redact, clock=clock)
        service = RunService(client, settings, policy, clock)
        watcher = RunWatcher(client, service.policy, settings.request_timeout, clock)
        return cls(settings, client, service, redact, watcher, clock)
