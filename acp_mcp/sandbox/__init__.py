"""Local fake of the ACP API's connected agent-runtime run endpoints.

Self-contained: imports only the standard library, starlette, uvicorn, anyio,
``acp_mcp.clock`` and ``acp_mcp.limits``. Modules: ``store`` (accounts, runs, request log, pace
and clock), ``runs`` (a run and its JSON), ``agent`` (the echo agent's commands and
their timing), ``faults`` (the fault model and how faults are played),
``errors`` (the error envelope), ``wakeups`` (held sync answers), ``variants``
(other readings of the API it can play), ``app`` (the routes) and ``runner``
(uvicorn). The sandbox's guesses about undocumented behaviour are listed in the
docstrings of ``agent``, ``store``, ``runs`` and ``app`` (and the readings it can
play instead in ``variants``); its own conventions in ``faults`` and ``app``.
"""

from .app import MAX_BODY_BYTES, SandboxApp, create_app
from .faults import Fault, FaultKind
from .runner import RunningSandbox, run_standalone, serve_in_thread
from .runs import AGENT_RUNTIME_ID
from .store import SANDBOX_SERVER_ID, RecordedRequest, SandboxState
from .variants import VARIANTS, VARIANTS_ENV, parse_variants

__all__ = [
    "AGENT_RUNTIME_ID",
    "MAX_BODY_BYTES",
    "SANDBOX_SERVER_ID",
    "VARIANTS",
    "VARIANTS_ENV",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "RunningSandbox",
    "SandboxApp",
    "SandboxState",
    "create_app",
    "parse_variants",
    "run_standalone",
    "serve_in_thread",
]
