"""The per-process state every handler shares: settings, clock, redactor, boundary, callers, watcher, wait slots,
telemetry, and which servers can run agents."""

from __future__ import annotations

from dataclasses import dataclass

from .admission import WaitSlots
from .boundary import Boundary
from .callers import Callers
from .clock import Clock
from .config import Settings
from .listing import AgentServers
from .redaction import Redactor
from .telemetry import Telemetry
from .watching import RunWatcher


@dataclass(frozen=True)
class ProcessState:
    """What the server's lifespan yields to the tools; built by `composition.compose` alone.

    Each request acts through `callers.current()`: its caller's API client, run service and task ids.
    """

    settings: Settings
    clock: Clock
    redact: Redactor
    boundary: Boundary
    callers: Callers
    watcher: RunWatcher
    waits: WaitSlots
    telemetry: Telemetry
    agent_servers: AgentServers
    """Which servers the key sees can run agents (completions offer only those)."""
