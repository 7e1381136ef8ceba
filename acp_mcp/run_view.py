"""The run view: an MCP App (``io.modelcontextprotocol/ui``) that shows a run live inside the client.

The view is one self-contained HTML file (`RUN_VIEW_FILE`), built from ``web/run-view`` by
``scripts/build_run_view.mjs`` and shipped in the package, served as `RUN_VIEW_URI`. The tools that
return a run (`VIEW_TOOLS`) point at it with ``_meta.ui.resourceUri``; the view then follows the run,
continues and cancels it through ordinary ``tools/call`` requests the host relays.

Only a client that declares the extension (`shows_view`) sees the binding and the view among the
resources: every other client gets the tools, resources and results it got before the view existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from mcp.server.apps import Apps, client_supports_apps
from mcp.server.context import ServerRequestContext
from mcp.types import Resource, Tool

RUN_VIEW_URI = "ui://acp-mcp/run.html"
RUN_VIEW_FILE = "run_view.html"
"""The built view inside the package (``web/run-view`` is its source)."""
VIEW_TOOLS = frozenset({"start_agent_run", "continue_agent_run", "get_agent_run"})
"""The tools whose result the view shows."""


def run_view_html() -> str:
    """The built view, as shipped in the package."""
    return (files(__package__) / RUN_VIEW_FILE).read_text(encoding="utf-8")


def run_view_extension() -> Apps:
    """The MCP Apps extension serving the view (no CSP domains: the view loads nothing from the network)."""
    apps = Apps()
    apps.add_html_resource(
        RUN_VIEW_URI,
        run_view_html(),
        name="run-view",
        title="Agent run",
        description="Shows an agent run live: status, output and events, with continue and cancel.",
        prefers_border=True,
    )
    return apps


def shows_view(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether the requesting client renders MCP Apps (declared the extension with the app MIME type)."""
    return client_supports_apps(ctx)


def bind_view(tools: Sequence[Tool]) -> list[Tool]:
    """`tools` with the view bound (``_meta.ui.resourceUri``) to each tool in `VIEW_TOOLS`."""
    return [
        tool.model_copy(update={"meta": {**(tool.meta or {}), "ui": {"resourceUri": RUN_VIEW_URI}}})
        if tool.name in VIEW_TOOLS
        else tool
        for tool in tools
    ]


def without_view(resources: Sequence[Resource]) -> list[Resource]:
    """`resources` without the view (for a client that does not render it)."""
    return [resource for resource in resources if str(resource.uri) != RUN_VIEW_URI]
