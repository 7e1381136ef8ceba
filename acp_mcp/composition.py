"""The composition root: the one place that builds the whole object graph from the settings.

Everything is made here, in dependency order, and handed on finished: the clock and redactor, the
API client, the run service (with the drain signal the HTTP server sets), the run watcher, the
error boundary, the tasks extension, the subscription bus, the tools offered and refused. The
transports (`stdio`, `http_server`) receive the `Application` and assign nothing into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from mcp.server.subscriptions import InMemorySubscriptionBus

from .boundary import Boundary
from .client import ACPClient
from .clock import Clock, SystemClock
from .config import Settings
from .process_state import ProcessState
from .redaction import Redactor
from .server import ACPServer
from .service import RunService
from .tasks import RunTasks, TaskIds
from .tools import TOOLS
from .waiting import PollPolicy
from .watching import RunWatcher


@dataclass(frozen=True)
class Application:
    """A composed acp-mcp: the MCP server, the state it shares, and the signal that ends waits on a drain."""

    server: ACPServer
    state: ProcessState
    stop_waits: anyio.Event
    """Set by the HTTP server when it drains: every wait in flight ends at its next poll."""


def compose(settings: Settings, *, policy: PollPolicy | None = None, clock: Clock | None = None) -> Application:
    """acp-mcp for `settings` (on `clock`, with `policy` for waits: tests pass virtual time and fast polls)."""
    clock = clock or SystemClock()
    redact = Redactor(settings.secrets())
    stop_waits = anyio.Event()
    client = ACPClient(settings, redact=redact, clock=clock)
    service = RunService(client, settings, policy, clock, stop_waits=stop_waits)
    state = ProcessState(
        settings=settings,
        clock=clock,
        redact=redact,
        boundary=Boundary(base_url=settings.base_url, redact=redact),
        client=client,
        service=service,
        watcher=RunWatcher(client, service.policy, settings.request_timeout, clock),
    )
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    offered = [spec for spec in TOOLS if spec.read_only or not settings.read_only]
    server = ACPServer(
        state,
        tools=offered,
        refused=[spec for spec in TOOLS if spec not in offered],
        extensions=[RunTasks(state, TaskIds(key))],
        bus=InMemorySubscriptionBus(),
    )
    return Application(server, state, stop_waits)
