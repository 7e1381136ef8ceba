"""The composition root: the one place that builds the whole object graph from the settings.

Everything is made here, in dependency order, and handed on finished: the clock, redactor and telemetry, the
keys file, the callers (each caller's API client, run service and task ids, made on first use, all
sharing the drain signal the HTTP server sets), the run watcher, the error boundary, the tasks
extension, the run view, the subscription bus, the tools offered and refused. The transports (`stdio`,
`http_server`) receive the `Application` and assign nothing into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
from mcp.server.subscriptions import InMemorySubscriptionBus

from .admission import WaitSlots
from .boundary import Boundary
from .callers import Callers, KeysFileWatch
from .clock import Clock, SystemClock
from .config import Settings
from .keystore import KeyStore, open_key_store, read_kek
from .links import ConnectLinks, Signer, connect_base
from .listing import AgentServers
from .oauth import JWTVerifier
from .process_state import ProcessState
from .redaction import Redactor
from .run_view import run_view_extension
from .server import ACPServer
from .tasks import RunTasks
from .telemetry import ACTIVE_WAITS, Telemetry
from .tools import TOOLS
from .waiting import PollPolicy
from .watching import RunWatcher


@dataclass(frozen=True)
class Application:
    """A composed acp-mcp: the MCP server, the state it shares, and the signal that ends waits on a drain."""

    server: ACPServer
    state: ProcessState
    stop_waits: anyio.Event
    """Set by the HTTP server when it drains: new requests are refused, every wait in flight ends at its next poll."""
    leaving: anyio.Event
    """Set by the HTTP server at SIGTERM, when it turns not ready (the drain follows its delay)."""
    verifier: JWTVerifier | None = None
    """Checks callers' OAuth access tokens (streamable HTTP with ``ACP_MCP_OAUTH_ISSUER``)."""
    store: KeyStore | None = None
    """The keys users connect, sealed (with ``ACP_MCP_KEY_ENCRYPTION_KEY``)."""
    links: ConnectLinks | None = None
    """The connect page's one-use links (with the store)."""
    signer: Signer | None = None
    """Signs the connect page's links, sign-in state and sessions (with the store)."""


def compose(
    settings: Settings,
    *,
    policy: PollPolicy | None = None,
    clock: Clock | None = None,
    telemetry: Telemetry | None = None,
) -> Application:
    """acp-mcp for `settings` (on `clock`, with `policy` for waits: tests pass virtual time and fast polls;
    recording through `telemetry`, by default the global OpenTelemetry providers')."""
    clock = clock or SystemClock()
    telemetry = telemetry or Telemetry(clock=clock, content=settings.trace_content)
    policy = policy or PollPolicy()
    redact = Redactor(settings.secrets())
    stop_waits = anyio.Event()
    keys_file = KeysFileWatch(Path(settings.keys_file), clock, redact) if settings.keys_file else None
    store = links = signer = None
    if settings.connect and settings.key_encryption_key is not None and settings.public_url is not None:
        kek = read_kek(settings.key_encryption_key.get_secret_value())
        store = open_key_store(settings.key_store, kek)
        signer = Signer(kek, clock)
        links = ConnectLinks(signer, connect_base(settings.public_url))
    watcher = RunWatcher(policy, settings.request_timeout, clock)
    telemetry.gauge("acp_mcp.watched_runs", "{run}", "Runs polled for subscribers now.", lambda: len(watcher.watched))
    leaving, waits = anyio.Event(), WaitSlots(settings.max_waits)
    telemetry.gauge(
        ACTIVE_WAITS, "{wait}", "Tool calls waiting on runs now (ACP_MCP_MAX_WAITS bounds them).", lambda: waits.open
    )
    telemetry.gauge(
        "acp_mcp.draining", "", "1 from SIGTERM until the process exits, else 0.", lambda: int(leaving.is_set())
    )
    state = ProcessState(
        settings=settings,
        clock=clock,
        redact=redact,
        boundary=Boundary(base_url=settings.base_url, redact=redact),
        callers=Callers(
            settings,
            clock=clock,
            redact=redact,
            policy=policy,
            stop_waits=stop_waits,
            keys_file=keys_file,
            store=store,
            telemetry=telemetry,
        ),
        watcher=watcher,
        waits=waits,
        telemetry=telemetry,
        agent_servers=AgentServers(clock),
    )
    verifier = None
    if settings.oauth_issuer and settings.public_url:
        verifier = JWTVerifier(
            settings.oauth_issuer, settings.public_url, clock=clock, timeout=settings.request_timeout
        )
    offered = [spec for spec in TOOLS if spec.read_only or not settings.read_only]
    server = ACPServer(
        state,
        tools=offered,
        refused=[spec for spec in TOOLS if spec not in offered],
        extensions=[RunTasks(state), run_view_extension()],
        bus=InMemorySubscriptionBus(),
        verifier=verifier,
    )
    return Application(server, state, stop_waits, leaving, verifier, store, links, signer)
