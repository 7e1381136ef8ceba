"""What the streamable HTTP tests send by hand: the caller's token, a bare initialize, plain GETs."""

from __future__ import annotations

import httpx2

CALLER_TOKEN = "caller-token-5f0c9a7e2b"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "curl", "version": "0"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def post_initialize(url: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    """An initialize request as curl would send it: the MCP headers, then `headers`."""
    async with httpx2.AsyncClient() as http:
        return await http.post(url, json=INITIALIZE, headers=MCP_HEADERS | (headers or {}))


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """A plain GET (no token), as a load balancer's health check sends it."""
    with httpx2.Client(timeout=5) as http:
        response = http.get(url)
    return response.status_code, dict(response.headers), response.content
