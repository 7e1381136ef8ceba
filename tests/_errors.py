"""What the error tests share: the start they make, and what a start whose fate is unknown adds to its error."""

from __future__ import annotations

from .conftest import SERVER_ID

START_ARGS = {"serverId": SERVER_ID, "content": "hello", "waitSeconds": 0}
START_CHECK = (
    f' The run may have been started anyway: check with list_agent_runs {{"serverId": "{SERVER_ID}"}} '
    "before starting it again."
)
"""What a start whose fate is unknown (5xx, no or broken answer) adds: how to check before starting again."""
SERVER_ID_REQUIRED = (
    "Invalid arguments, nothing was sent: serverId is required: pass serverId (the resource id of the agent "
    "runtime's server), or ask the user to set ACP_SERVER_ID in this MCP server's environment."
)
"""The refusal of a call without a serverId on a server without a default."""
