"""Property-based tests over the tool arguments, through a real MCP client against the sandbox.

Properties, each checked on every generated call:

1. Whatever the ids, every request that reaches the API has the path
   ``/v1/servers/<segment>/runtime/agent/runs[/<segment>[/input|/events|/cancel]]`` where each segment is
   percent-encoded, non-empty, holds no ``/``, ``?`` or ``#`` and decodes back to exactly the id given;
   the only query parameter ever sent is ``limit``.
2. Every call is answered with a `CallToolResult` within 10 s; an error has a non-empty text with no
   traceback, no internal-error fallback and no API key.
3. Arguments of any JSON type go through validation: an invalid one is refused before any request, naming
   the argument; valid ones (with a serverId) always reach the API. JSON has no NaN or infinity: the
   in-process client sends them as null, so they count as omitted where null is allowed.
4. ``content``, ``prompt``, ``title`` and ``metadata`` reach the API body unchanged, ``mode`` is
   ``async`` when omitted.

One MCP client per test is shared by all its examples: it lives on an event loop in a blocking
portal, and each example calls it through the portal. The sandbox is the session's, its request log
cleared before every call. Generation is derandomized so every run checks the same examples.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult

from acp_mcp.config import Settings
from acp_mcp.messages import UNEXPECTED
from acp_mcp.sandbox import RecordedRequest, RunningSandbox

from ._strategies import (
    MAX_LIMIT,
    TOOLS,
    TOOLS_WITH_RUN_ID,
    arrives_as_null,
    ids,
    plainly_valid_id,
    tool_calls,
    turns,
)
from .conftest import API_KEY, SERVER_ID, api_requests, connect, marked, text_of

CALL_TIMEOUT = 10.0

PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-F]{2})+"
RUN_PATH = re.compile(
    rf"/v1/servers/(?P<server>{PCHAR})/runtime/agent/runs(?:/(?P<run>{PCHAR})(?P<tail>/input|/events|/cancel)?)?"
)
ROUTES: dict[
    str, set[tuple[str, str | None]]
] = {  # (method, tail) the sandbox may see for each tool; None: the runs collection, "": one run
    # start: a sync start cut off by its wait finds its run in the runs collection
    "start_agent_run": {("POST", None), ("GET", None), ("GET", ""), ("GET", "/events")},
    "continue_agent_run": {("POST", "/input"), ("GET", ""), ("GET", "/events")},
    "get_agent_run": {("GET", ""), ("GET", "/events")},
    "list_agent_runs": {("GET", None)},
    "cancel_agent_run": {("POST", "/cancel")},
}


# -- one client per test, called from the examples ------------------------------------------------


@dataclass
class Tools:
    """An MCP client on a portal's event loop, and the sandbox it reaches."""

    portal: BlockingPortal
    client: Client
    sandbox: RunningSandbox

    def call(self, tool: str, args: dict[str, Any]) -> CallToolResult:
        """Call `tool` with the request log cleared first; check the answer (property 2)."""
        self.sandbox.state.clear_requests()

        async def call() -> CallToolResult:
            with anyio.fail_after(CALL_TIMEOUT):
                return await self.client.call_tool(tool, args)

        result = self.portal.call(call)
        assert_answered(result)
        return result

    def requests(self) -> list[RecordedRequest]:
        return api_requests(self.sandbox)


@pytest.fixture
def tools(settings: Settings, sandbox: RunningSandbox) -> Iterator[Tools]:
    """A connected client whose calls never wait for a run unless told to (ACP_MCP_WAIT_SECONDS=0)."""
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(connect(settings.with_overrides(wait_seconds=0))) as client,
    ):
        yield Tools(portal, client, sandbox)


# -- the checks -----------------------------------------------------------------------------------


def assert_answered(result: object) -> None:
    """Property 2: a tool result; an error says something, with no traceback and no key."""
    assert isinstance(result, CallToolResult), type(result)
    dumped = json.dumps(result.model_dump(mode="json"))
    assert API_KEY not in dumped
    if result.is_error:
        text = text_of(result)
        assert text.strip(), result
        assert "Traceback" not in text, text
        assert UNEXPECTED not in text, text  # no input may reach the internal-error fallback


def assert_paths(requests: list[RecordedRequest], tool: str, server_id: str, run_ids: set[str]) -> None:
    """Property 1 for every request: one segment per id, each decoding back to exactly that id."""
    for request in requests:
        match = RUN_PATH.fullmatch(request.path)
        assert match, f"{request.method} {request.path!r} is not a run endpoint path"
        for segment in filter(None, (match["server"], match["run"])):
            assert segment not in {".", ".."} and unquote(segment) not in {".", ".."}, request.path
        assert unquote(match["server"], errors="strict") == server_id, (request.path, server_id)
        if match["run"] is not None:
            assert unquote(match["run"], errors="strict") in run_ids, (request.path, run_ids)
        route = (request.method, None if match["run"] is None else match["tail"] or "")
        assert route in ROUTES[tool], (tool, request.method, request.path)
        assert set(request.query) <= {"limit"}, request.query
        if request.query:
            assert route == ("GET", None), (request.method, request.path, request.query)


def run_id_of(result: CallToolResult) -> str | None:
    run = (result.structured_content or {}).get("run") or {}
    return run.get("id")


def run_ids_for(tool: str, run_id: str | None, result: CallToolResult) -> set[str]:
    """The run ids a tool's requests may name: the one given, or (start) the one the API made."""
    named = run_id if tool in TOOLS_WITH_RUN_ID else run_id_of(result)
    return set() if named is None else {named}


# -- property 1 (and 2): ids become exactly one path segment each --------------------------------


@settings(PROPERTY, max_examples=200)
@given(
    tool=st.sampled_from(TOOLS),
    server_id=ids | st.none(),
    run_id=ids | st.none(),
    limit=st.none() | st.integers(1, MAX_LIMIT),
)
@example(tool="start_agent_run", server_id="null", run_id=None, limit=None)
@example(tool="list_agent_runs", server_id="[1]", run_id=None, limit=None)
@example(tool="get_agent_run", server_id="team a+b@ü", run_id="run 1+2=3", limit=None)
@example(tool="cancel_agent_run", server_id=SERVER_ID, run_id="..", limit=None)
@example(tool="continue_agent_run", server_id="a%2Fb", run_id=None, limit=None)
@example(tool="get_agent_run", server_id="x", run_id="a\ud800", limit=None)
def test_every_request_path_has_each_id_as_exactly_one_segment(
    tools: Tools, tool: str, server_id: str | None, run_id: str | None, limit: int | None
) -> None:
    """run_id None: a real run started under server_id first (when the server id is usable)."""
    base: dict[str, Any] = {} if server_id is None else {"serverId": server_id}
    given_run_id = run_id
    if tool in TOOLS_WITH_RUN_ID and run_id is None:
        seed = tools.call("start_agent_run", {**base, "content": "seed", "mode": "sync", "waitSeconds": 0})
        seeded = run_id_of(seed)
        if server_id is not None:
            assert_paths(tools.requests(), "start_agent_run", server_id, {seeded} if seeded else set())
        run_id = seeded or "run_000001"

    args = dict(base)
    if tool in TOOLS_WITH_RUN_ID:
        args["resourceRunId"] = run_id
    if tool in {"start_agent_run", "continue_agent_run"}:
        args.update(content="hi", waitSeconds=0)
    if tool == "get_agent_run":
        args["waitSeconds"] = 0
    if tool == "list_agent_runs" and limit is not None:
        args["limit"] = limit
    result = tools.call(tool, args)
    requests = tools.requests()

    event(f"{tool}: {'sent' if requests else 'refused'}")
    if server_id is not None:
        assert_paths(requests, tool, server_id, run_ids_for(tool, run_id, result))
    if tool == "list_agent_runs" and requests:
        expected_query = {} if limit is None else {"limit": str(limit)}
        assert [r.query for r in requests] == [expected_query]
    if not requests:  # refused: by the ids, the only arguments that vary here
        assert result.is_error
        assert "serverId" in text_of(result) or "resourceRunId" in text_of(result), text_of(result)
    ids_given = [i for i in (server_id, given_run_id if tool in TOOLS_WITH_RUN_ID else None) if i is not None]
    if server_id is not None and all(plainly_valid_id(i) for i in ids_given):
        assert requests, f"{tool} with ids {ids_given!r} was refused: {text_of(result)}"


# -- property 3 (and 1, 2): arguments of any JSON type -------------------------------------------


@settings(PROPERTY, max_examples=200)
@given(call=tool_calls())
@example(call=("start_agent_run", {"serverId": SERVER_ID, "content": "x", "waitSeconds": math.nan}, set()))
@example(call=("get_agent_run", {"resourceRunId": "run_000001", "maxEvents": 41}, {"maxEvents"}))
@example(call=("list_agent_runs", {"serverId": SERVER_ID, "limit": 2.5}, {"limit"}))
@example(call=("continue_agent_run", {"resourceRunId": None, "content": "x"}, {"resourceRunId"}))
def test_arguments_of_any_json_type_are_answered_and_invalid_ones_send_nothing(
    tools: Tools, call: tuple[str, dict[str, Any], set[str]]
) -> None:
    tool, args, invalid = call
    result = tools.call(tool, args)
    requests = tools.requests()
    event(f"{tool}: {'invalid' if invalid else 'valid'}, {'sent' if requests else 'refused'}")

    if invalid:
        assert result.is_error, f"{tool} accepted invalid {sorted(invalid)}: {args!r}"
        assert requests == [], f"{tool} sent requests despite invalid {sorted(invalid)}"
        assert any(name in text_of(result) for name in invalid), text_of(result)
        return
    if arrives_as_null(args.get("serverId")):  # no ACP_SERVER_ID default here
        assert result.is_error and "serverId is required" in text_of(result), text_of(result)
        assert requests == []
        return
    assert requests, f"{tool} refused valid arguments {args!r}: {text_of(result)}"
    assert_paths(requests, tool, args["serverId"], run_ids_for(tool, args.get("resourceRunId"), result))


# -- property 4 (and 2): what the agent is given reaches the API unchanged -----------------------


@pytest.fixture
def turns_run(tools: Tools) -> str:
    result = tools.call("start_agent_run", {"serverId": "srv_turns", "content": "first", "mode": "sync"})
    assert not result.is_error, text_of(result)
    return str(run_id_of(result))


@settings(PROPERTY, max_examples=100)
@given(turn=turns())
@example(turn=(False, {"content": '{"task": "x"}', "metadata": {"n": [1, 2.5, None]}}))
@example(turn=(True, {"prompt": "[1, 2]"}))
@example(turn=(False, {"content": "null", "title": "{}"}))
def test_content_prompt_title_and_metadata_reach_the_api_unchanged(
    tools: Tools, turns_run: str, turn: tuple[bool, dict[str, Any]]
) -> None:
    """The run may be busy (409) or the text refused by the sandbox: the body sent is what counts."""
    continuing, sent = turn
    if continuing:
        tool, args = "continue_agent_run", {"serverId": "srv_turns", "resourceRunId": turns_run}
    else:
        tool, args = "start_agent_run", {"serverId": "srv_turns"}
    result = tools.call(tool, {**args, **sent, "waitSeconds": 0})

    requests = tools.requests()
    assert requests, f"{tool} sent nothing for {sent!r}: {text_of(result)}"
    post = requests[0]
    assert post.method == "POST"
    expected = {**sent, "mode": "async"}
    assert post.body == (expected if continuing else marked(expected, post.body)), text_of(result)
