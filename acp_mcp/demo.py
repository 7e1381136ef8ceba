"""``acp-mcp demo``: what a client sees, with no account: start the server over stdio against the
sandbox, start a run, continue it, and print the structured result of ``continue_agent_run``."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from .limits import DEMO_PACE


def _show(title: str, payload: Any) -> None:
    sys.stdout.write(f"\n== {title}\n{payload if isinstance(payload, str) else json.dumps(payload, indent=2)}\n")
    sys.stdout.flush()


async def _demo(pace: float) -> int:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "acp_mcp", "--sandbox", "--sandbox-pace", str(pace)]
    )
    async with Client(params) as client:
        tools = await client.list_tools()
        _show("tools", ", ".join(tool.name for tool in tools.tools))
        started = await client.call_tool("start_agent_run", {"content": "Hello from the acp-mcp demo"})
        run_id = (started.structured_content or {}).get("run", {}).get("id")
        _show("start_agent_run -> run id", str(run_id))
        if started.is_error or not run_id:
            _show("error", started.content[0].text if started.content else "no content")  # type: ignore[union-attr]
            return 1
        result = await client.call_tool(
            "continue_agent_run", {"resourceRunId": run_id, "content": "Summarise what you just did."}
        )
        _show("continue_agent_run -> text content", result.content[0].text)  # type: ignore[union-attr]
        _show("continue_agent_run -> structured content", result.structured_content)
        return 1 if result.is_error else 0


def run_demo(pace: float = DEMO_PACE) -> int:
    """Run the demo; exit status 0 when every call succeeded."""
    return anyio.run(_demo, pace)
