"""Local fake of the ACP API's connected agent-runtime run endpoints.

Self-contained: imports only the standard library, starlette, uvicorn, anyio
and pydantic. See ``state`` for the sandbox's guesses about undocumented
behaviour and the echo agent's commands.
"""

from .app import MAX_BODY_BYTES, SandboxApp, create_app
from .runner import RunningSandbox, run_standalone, serve_in_thread
from .state import (
    AGENT_RUNTIME_ID,
    SANDBOX_SERVER_ID,
    Fault,
    FaultKind,
    RecordedRequest,
    SandboxState,
)

__all__ = [
    "AGENT_RUNTIME_ID",
    "MAX_BODY_BYTES",
    "SANDBOX_SERVER_ID",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "RunningSandbox",
    "SandboxApp",
    "SandboxState",
    "create_app",
    "run_standalone",
    "serve_in_thread",
]
