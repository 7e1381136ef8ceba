"""The per-process state every handler shares: settings, clock, one API client, the service, the watcher."""

from __future__ import annotations

from dataclasses import dataclass

from .boundary import Boundary
from .client import ACPClient
from .clock import Clock
from .config import Settings
from .redaction import Redactor
from .service import RunService
from .watching import RunWatcher


@dataclass(frozen=True)
class ProcessState:
    """What the server's lifespan yields to the tools; built by `composition.compose` alone."""

    settings: Settings
    clock: Clock
    redact: Redactor
    boundary: Boundary
    client: ACPClient
    service: RunService
    watcher: RunWatcher
