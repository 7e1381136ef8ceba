"""The floor: the thinnest MCP proxy anyone could write for ``continue_agent_run`` on the same SDK.

One `MCPServer` tool that POSTs the input with one pooled `httpx2.AsyncClient` and returns the API's
JSON as a dict: no validation, no waiting, no shaping, no error mapping. The benchmark suite runs it
beside acp-mcp against the same sandbox, so every difference is what acp-mcp adds.

    COMPUTER_AGENTS_BASE_URL=... COMPUTER_AGENTS_API_KEY=... python -m bench.thin_proxy \
        [--transport stdio|streamable-http] [--port 8000]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx2
from mcp.server.mcpserver import MCPServer

BASE_URL = os.environ.get("COMPUTER_AGENTS_BASE_URL", "http://127.0.0.1:8765/v1").rstrip("/")
API_KEY = os.environ.get("COMPUTER_AGENTS_API_KEY", "")
SERVER_ID = os.environ.get("ACP_SERVER_ID", "srv_sandbox")

mcp = MCPServer("thin-proxy", log_level="WARNING")  # like acp-mcp: no INFO line per request
_http: httpx2.AsyncClient | None = None


def _client() -> httpx2.AsyncClient:
    global _http
    if _http is None:
        _http = httpx2.AsyncClient(
            base_url=BASE_URL + "/", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60.0
        )
    return _http


@mcp.tool()
async def continue_agent_run(
    resourceRunId: str,
    content: str,
    mode: str = "sync",
    serverId: str | None = None,
    maxEvents: int = 20,
) -> dict[str, Any]:
    """Send input to a run and return the API's answer as is."""
    path = f"servers/{serverId or SERVER_ID}/runtime/agent/runs/{resourceRunId}/input"
    response = await _client().post(path, json={"content": content, "mode": mode})
    result: dict[str, Any] = response.json()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.transport == "stdio":
        mcp.run()
    else:
        mcp.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
