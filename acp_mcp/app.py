"""The per-process state every tool call shares: settings, one API client, the redactor."""

from __future__ import annotations

from dataclasses import dataclass

from .client import ACPClient
from .config import Settings
from .redaction import Redactor
from .service import RunService
from .waiting import PollPolicy


@dataclass(frozen=True)
class AppState:
    """What the server's lifespan yields to the tools."""

    settings: Settings
    client: ACPClient
    service: RunService
    redact: Redactor

    @classmethod
    def create(cls, settings: Settings, policy: PollPolicy | None = None) -> AppState:
        """Build the state for `settings`; the HTTP pool opens on the first request."""
        redact = Redactor(settings.secrets())
        client = ACPClient(settings, redact=redact)
        return cls(settings, client, RunService(client, settings, policy), redact)
