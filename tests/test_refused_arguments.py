"""Refused before anything is sent: no key, plain http to a remote host, ids that cannot be one path segment,
and arguments outside their schema. None of these reaches the API; each error names what to fix."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox

from ._errors import SERVER_ID_REQUIRED, START_ARGS
from .conftest import API_KEY, SERVER_ID, api_requests, connect, error_text, refusal, text_of

pytestmark = pytest.mark.anyio

TOOL_NAMES = {"start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"}


async def test_without_a_key_the_tools_are_listed_and_a_call_asks_for_the_key_variable(
    sandbox: RunningSandbox,
) -> None:
    async with connect(Settings(api_key=None, base_url=sandbox.base_url)) as client:
        listed = await client.list_tools()
        result = await client.call_tool("start_agent_run", START_ARGS)

    assert {tool.name for tool in listed.tools} == TOOL_NAMES
    assert error_text(result, "start_agent_run") == (
        "No Computer Agents API key is configured. Ask the user to set COMPUTER_AGENTS_API_KEY in this MCP server's "
        "environment (their client's MCP server config), then restart the server. "
        "To try the tools without an account, start the server with `acp-mcp --sandbox`."
    )
    assert api_requests(sandbox) == []


@pytest.mark.parametrize("given", ["http://api.example.com", "HTTP://api.example.com"], ids=["lowercase", "uppercase"])
async def test_plain_http_to_a_remote_host_is_refused_and_asks_for_https(sandbox: RunningSandbox, given: str) -> None:
    settings = Settings(api_key=SecretStr(API_KEY), base_url=given)

    assert settings.base_url == "http://api.example.com/v1"
    assert await refusal(settings, sandbox, "start_agent_run", START_ARGS) == (
        "Refusing to send the API key over plain http to http://api.example.com/v1: set COMPUTER_AGENTS_BASE_URL "
        "to an https:// URL (plain http is allowed only to localhost)."
    )


EMPTY = "is empty"
DOTS = "cannot be '.' or '..'"
RESERVED = "cannot contain '/', '\\', '?', '#' or '%'"
CONTROL = "cannot contain control characters"
HOSTILE_IDS = [
    pytest.param("", EMPTY, id="empty"),
    pytest.param("   ", EMPTY, id="blank"),
    pytest.param(".", DOTS, id="dot"),
    pytest.param("..", DOTS, id="dotdot"),
    pytest.param("a/b", RESERVED, id="slash"),
    pytest.param("a\\b", RESERVED, id="backslash"),
    pytest.param("a?b", RESERVED, id="question-mark"),
    pytest.param("a#b", RESERVED, id="hash"),
    pytest.param("a%2Fb", RESERVED, id="percent"),
    pytest.param("a\x00b", CONTROL, id="nul"),
    pytest.param("a\nb", CONTROL, id="newline"),
    pytest.param("a\u200bb", CONTROL, id="zero-width-space"),
]
ID_FIELDS = [
    pytest.param("get_agent_run", "serverId", id="get-serverId"),
    pytest.param("get_agent_run", "resourceRunId", id="get-resourceRunId"),
    pytest.param("cancel_agent_run", "resourceRunId", id="cancel-resourceRunId"),
    pytest.param("start_agent_run", "serverId", id="start-serverId"),
    pytest.param("list_agent_runs", "serverId", id="list-serverId"),
]


def _args(tool: str, field: str, value: str) -> dict[str, Any]:
    args: dict[str, Any] = {"serverId": SERVER_ID}
    if tool in {"get_agent_run", "cancel_agent_run"}:
        args["resourceRunId"] = "run_000001"
    if tool == "get_agent_run":
        args["waitSeconds"] = 0
    if tool == "start_agent_run":
        args.update(content="hi", waitSeconds=0)
    args[field] = value
    return args


@pytest.mark.parametrize(("tool", "field"), ID_FIELDS)
@pytest.mark.parametrize(("value", "problem"), HOSTILE_IDS)
async def test_an_id_that_is_not_one_path_segment_is_refused_before_any_request(
    settings: Settings, sandbox: RunningSandbox, tool: str, field: str, value: str, problem: str
) -> None:
    message = await refusal(settings, sandbox, tool, _args(tool, field, value))

    if (field, value) == ("serverId", ""):  # an empty serverId means the default, and none is configured here
        assert message == SERVER_ID_REQUIRED
    else:
        assert message == (
            f"Invalid arguments, nothing was sent: {field} {problem}; pass the id exactly as the API returned it."
        )


@pytest.mark.parametrize("server_id", [None, ""])
async def test_a_null_or_empty_server_id_means_the_configured_default(
    settings: Settings, sandbox: RunningSandbox, server_id: str | None
) -> None:
    async with connect(replace(settings, default_server_id="srv_default")) as client:
        result = await client.call_tool("list_agent_runs", {"serverId": server_id})

    assert not result.is_error, text_of(result)
    assert [r.path for r in api_requests(sandbox)] == ["/v1/servers/srv_default/runtime/agent/runs"]


@pytest.mark.parametrize(("tool", "field"), ID_FIELDS)
async def test_an_id_longer_than_256_characters_is_refused_before_any_request(
    settings: Settings, sandbox: RunningSandbox, tool: str, field: str
) -> None:
    assert await refusal(settings, sandbox, tool, _args(tool, field, "a" * 300)) == (
        f"Invalid arguments for {tool}: {field} must be at most 256 characters. "
        f"Fix them and call {tool} again (nothing was sent)."
    )


async def test_an_id_with_spaces_and_unicode_is_percent_encoded_and_works(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "équipe 東京 1"
    async with connect(settings) as client:
        started = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "hi", "mode": "sync"})
        assert not started.is_error, text_of(started)
        run_id = started.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool("get_agent_run", {"serverId": server_id, "resourceRunId": run_id})

    assert not result.is_error, text_of(result)
    assert result.structured_content["serverId"] == server_id
    assert result.structured_content["run"]["output"] == "Echo: hi"
    (get,) = api_requests(sandbox)
    assert get.path == f"/v1/servers/%C3%A9quipe%20%E6%9D%B1%E4%BA%AC%201/runtime/agent/runs/{run_id}/events"


VALIDATION_CASES = [
    pytest.param("start_agent_run", {"content": "x", "mode": "fast"}, ["mode", "'sync' or 'async'"], id="mode"),
    pytest.param(
        "start_agent_run", {"content": "x", "metadata": "x"}, ["metadata must be a JSON object"], id="metadata"
    ),
    pytest.param("start_agent_run", {"content": 5}, ["content", "string"], id="content-type"),
    pytest.param("start_agent_run", {"content": "x", "waitSeconds": -1}, ["waitSeconds", "0"], id="negative-wait"),
    pytest.param("start_agent_run", {"content": "x", "waitSeconds": 601}, ["waitSeconds", "600"], id="long-wait"),
    pytest.param("start_agent_run", {"content": "x", "maxEvents": 1000}, ["maxEvents"], id="max-events"),
    pytest.param(
        "start_agent_run", {"content": "x" * 100_001}, ["content", "at most 100,000 characters"], id="long-content"
    ),
    pytest.param(
        "continue_agent_run",
        {"resourceRunId": "run_000001", "prompt": "x" * 100_001},
        ["prompt", "at most 100,000 characters"],
        id="long-prompt",
    ),
    pytest.param(
        "start_agent_run",
        {"content": "x", "metadata": {"blob": "b" * 16_340}},
        ["metadata is 16,351 characters of JSON; the limit is 16,335"],  # 49 kept free for the start's marker
        id="large-metadata",
    ),
    pytest.param(
        "continue_agent_run",
        {"resourceRunId": "run_000001", "content": "x", "metadata": {"blob": "b" * 16_384}},
        ["metadata is 16,395 characters of JSON; the limit is 16,384"],
        id="large-metadata-on-continue",
    ),
    pytest.param("get_agent_run", {"resourceRunId": "run_000001", "eventOffset": -1}, ["eventOffset"], id="offset"),
    pytest.param("get_agent_run", {}, ["resourceRunId"], id="missing-run-id"),
    pytest.param("list_agent_runs", {"limit": 0}, ["limit"], id="limit-zero"),
    pytest.param("list_agent_runs", {"limit": 101}, ["limit"], id="limit-too-big"),
]


@pytest.mark.parametrize(("tool", "args", "fragments"), VALIDATION_CASES)
async def test_invalid_arguments_are_refused_before_any_request(
    settings: Settings, sandbox: RunningSandbox, tool: str, args: dict[str, Any], fragments: list[str]
) -> None:
    message = await refusal(settings, sandbox, tool, {"serverId": SERVER_ID, **args})

    for fragment in fragments:
        assert fragment in message, message


async def test_an_argument_past_its_limit_gets_our_message_naming_the_field_and_the_limit(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    """Clients that strip minimum/maximum from schemas (Codex) let such calls through: the server explains."""
    arguments = {"serverId": SERVER_ID, "resourceRunId": "run_000001", "maxEvents": 100, "waitSeconds": -1}

    assert await refusal(settings, sandbox, "get_agent_run", arguments) == (
        "Invalid arguments for get_agent_run: waitSeconds must be at least 0 (got -1); maxEvents must be at most 40 "
        "(got 100). Fix them and call get_agent_run again (nothing was sent)."
    )
