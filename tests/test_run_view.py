"""The run view (MCP Apps): bound to start, continue and get for a client that renders it, self-contained, and
invisible to every other client, which gets the same tools, resources and results as before.

The view in a real browser: tests/test_run_view_browser.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import ClientExtension, advertise
from mcp.client.streamable_http import streamable_http_client
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import TextResourceContents

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.repeats import START_MARKER
from acp_mcp.run_view import RUN_VIEW_URI, VIEW_TOOLS, run_view_html
from acp_mcp.sandbox import RunningSandbox

from ._tooling import ROOT, http_server, node_env, node_package, system_node
from .conftest import SERVER_ID, connect, finished_run, hanging_run, sandbox_env

pytestmark = pytest.mark.anyio

RENDERS_APPS: Sequence[ClientExtension] = (advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]}),)
SOURCE = ROOT / "web" / "run-view"
BINDING = {"ui": {"resourceUri": RUN_VIEW_URI}}


async def _tools(client: Client) -> list[dict[str, Any]]:
    tools = (await client.list_tools()).tools
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


@pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["2025-11-25", "2026-07-28"])
async def test_a_client_that_renders_apps_sees_the_view_bound_to_start_continue_and_get(
    settings: Settings, mode: str
) -> None:
    async with connect(settings, mode=mode, extensions=RENDERS_APPS) as client:
        tools = await _tools(client)
        resources = (await client.list_resources()).resources
        advertised = client.server_capabilities.extensions or {}

    # only the 2026-07-28 server capabilities have a place for extensions
    assert (EXTENSION_ID in advertised) == (mode == "auto")

    assert {tool["name"]: tool.get("_meta") for tool in tools} == {
        "start_agent_run": BINDING,
        "continue_agent_run": BINDING,
        "get_agent_run": BINDING,
        "list_agent_runs": None,
        "cancel_agent_run": None,
    }
    assert [(str(r.uri), r.mime_type) for r in resources] == [(RUN_VIEW_URI, APP_MIME_TYPE)]
    assert set(VIEW_TOOLS) == {"start_agent_run", "continue_agent_run", "get_agent_run"}


async def test_the_binding_adds_only_its_own_characters_to_the_tool_list(settings: Settings) -> None:
    """A client that renders apps gets the same list plus the three bindings (3 x 55 characters), and both stay
    within the 15,000-character budget (tests/test_contract.py)."""
    async with connect(settings, extensions=RENDERS_APPS) as apps_client, connect(settings) as client:
        bound, plain = await _tools(apps_client), await _tools(client)
    binding = len(',"_meta":' + json.dumps(BINDING, separators=(",", ":")))

    assert len(json.dumps(bound, separators=(",", ":"))) == len(json.dumps(plain, separators=(",", ":"))) + 3 * binding
    assert len(json.dumps(bound, separators=(",", ":"))) <= 15_000


@pytest.mark.parametrize(
    "extensions",
    [(), (advertise(EXTENSION_ID, {"mimeTypes": ["text/html"]}),), (advertise("io.example/other"),)],
    ids=["no-extensions", "ui-without-the-app-mime-type", "another-extension"],
)
async def test_a_client_that_does_not_render_apps_lists_what_it_did_before_the_view(
    settings: Settings, extensions: Sequence[ClientExtension]
) -> None:
    async with (
        connect(settings, extensions=RENDERS_APPS) as apps_client,
        connect(settings, extensions=extensions) as client,
    ):
        bound, plain = await _tools(apps_client), await _tools(client)
        resources = (await client.list_resources()).resources

    assert [tool for tool in plain if "_meta" in tool] == []
    assert plain == [{k: v for k, v in tool.items() if k != "_meta"} for tool in bound]
    assert resources == []


async def test_the_view_is_served_as_an_mcp_app_exactly_as_shipped(settings: Settings) -> None:
    async with connect(settings, extensions=RENDERS_APPS) as client:
        (content,) = (await client.read_resource(RUN_VIEW_URI)).contents

    assert isinstance(content, TextResourceContents)
    assert content.mime_type == APP_MIME_TYPE
    assert content.text == run_view_html()
    assert content.meta == {"ui": {"prefersBorder": True}}  # no CSP domains: the view loads nothing


def test_the_shipped_view_is_one_self_contained_file_well_under_the_clients_event_limit() -> None:
    html = run_view_html()

    assert html.startswith("<!doctype html>")
    assert len(html.encode()) < 700 * 1024  # the Python client refuses one event over 1 MiB
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", html, flags=re.I)
    (style,) = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    assert not re.search(r"@import|url\(", style)


def test_the_view_writes_what_the_api_sends_as_text_never_as_html() -> None:
    for source in SOURCE.glob("*.js"):
        code = source.read_text(encoding="utf-8")
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser", code), source.name


def _normalized(result: dict[str, Any]) -> str:
    """A result with the ids, times and start markers that differ between two runs of the same script replaced."""
    text = json.dumps(result, sort_keys=True)
    text = re.sub(r"(run|thread|evt)_\d{6}", r"\1_N", text)
    text = re.sub(rf'"{START_MARKER}": "[^"]+"', f'"{START_MARKER}": "MARKER"', text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", "TIME", text)


async def _script(client: Client) -> list[str]:
    """Start, get, continue, list and cancel, as a model would: every result, normalized."""
    run_id = await finished_run(client, content="hello")
    calls = [
        ("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id}),
        ("continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "more", "mode": "sync"}),
        ("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": await hanging_run(client)}),
    ]
    results = [await client.call_tool(name, arguments) for name, arguments in calls]
    return [_normalized(result.model_dump(mode="json", by_alias=True, exclude_none=True)) for result in results]


async def test_results_and_their_text_are_the_same_with_and_without_the_view(
    settings: Settings, clock: VirtualClock
) -> None:
    async with connect(settings, clock=clock) as client:
        plain = await _script(client)
    async with connect(settings, clock=clock, extensions=RENDERS_APPS) as client:
        with_view = await _script(client)

    assert with_view == plain
    assert not any('"isError": true' in result for result in plain)


@pytest.mark.external
def test_the_shipped_view_equals_a_fresh_build_from_its_sources(tmp_path: Path) -> None:
    node_package("esbuild")
    node_package("@modelcontextprotocol/ext-apps")
    built = tmp_path / "run_view.html"
    done = subprocess.run(
        [system_node(), str(ROOT / "scripts" / "build_run_view.mjs"), str(built)],
        cwd=ROOT,
        env=node_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert built.read_text(encoding="utf-8") == run_view_html(), (
        "acp_mcp/run_view.html is stale: run `node scripts/build_run_view.mjs` and commit the result"
    )


@pytest.mark.parametrize(
    ("mode", "stateless", "bound"),
    [("auto", False, VIEW_TOOLS), ("auto", True, VIEW_TOOLS), ("legacy", False, VIEW_TOOLS), ("legacy", True, set())],
    ids=["2026-07-28", "2026-07-28-stateless", "2025-11-25", "2025-11-25-stateless-has-no-session-to-remember-it"],
)
async def test_the_binding_reaches_a_client_over_streamable_http(
    sandbox: RunningSandbox, mode: str, stateless: bool, bound: set[str]
) -> None:
    args = ["--stateless"] if stateless else []
    with http_server(*args, **sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID)) as server:
        async with Client(streamable_http_client(server.url), mode=mode, extensions=list(RENDERS_APPS)) as client:
            tools = await _tools(client)
            (content,) = (await client.read_resource(RUN_VIEW_URI)).contents

    assert {tool["name"] for tool in tools if tool.get("_meta") == BINDING} == bound
    assert isinstance(content, TextResourceContents) and content.text == run_view_html()
