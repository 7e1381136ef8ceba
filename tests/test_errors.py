"""Every failure reaches the model as a tool error whose message says what happened and what to do.

Failures are real (a wrong key, an unknown run, a busy run, a closed port) where the sandbox
produces them, and injected sandbox faults otherwise. Each test checks the request(s) that reached
the API and the text the client got; none of the texts may hold a traceback, the API key or raw
upstream bodies.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox

from .conftest import API_KEY, SERVER_ID, api_requests, connect, error_text, text_of

pytestmark = pytest.mark.anyio

START_PATH = f"/v1/servers/{SERVER_ID}/runtime/agent/runs"
START_ARGS = {"serverId": SERVER_ID, "content": "hello", "waitSeconds": 0}
TOOL_NAMES = {"start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"}


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_hanging_run(client: Any, server_id: str) -> str:
    """A run that stays running until cancelled."""
    result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "/hang", "waitSeconds": 0})
    assert not result.is_error, text_of(result)
    return str(result.structured_content["run"]["id"])


# -- the API refuses --------------------------------------------------------------------------


async def test_a_wrong_key_asks_for_a_valid_computer_agents_api_key_without_showing_it(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    wrong = "tb_wrong_key_fedcba9876543210"
    async with connect(settings.with_overrides(api_key=SecretStr(wrong))) as client:
        result = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    message = error_text(result, "list_agent_runs")
    assert message == (
        'The ACP API rejected the API key (HTTP 401 — the API said: "Invalid or missing API key"). '
        "Ask the user to set COMPUTER_AGENTS_API_KEY in this MCP server's environment to a valid "
        "Computer Agents API key, then restart the server."
    )
    assert wrong not in text_of(result)
    (request,) = api_requests(sandbox)  # a 401 is never retried
    assert (request.method, request.path) == ("GET", START_PATH)
    assert request.headers["authorization"] == f"Bearer {wrong}"


BUDGET = {"error": "Payment Required", "message": "Monthly budget of $5.00 used up", "code": "INSUFFICIENT_BUDGET"}


def _rejected(phrase: str) -> dict[str, Any]:
    return {
        "error": phrase,
        "message": "mode must be sync or async",
        "code": "VALIDATION_FAILED",
        "details": [{"field": "mode", "message": "must be sync or async"}],
    }


START_CHECK = (
    ' The run may have been started anyway: check with list_agent_runs {"serverId": "srv_test"} '
    "before starting it again."
)
"""What a start whose fate is unknown (5xx, no or broken answer) adds: how to check before starting again."""

STATUS_CASES = [
    pytest.param(
        403,
        None,
        {},
        f"The API key may not access server '{SERVER_ID}' (HTTP 403 — the API said: \"Forbidden\"). Ask the user "
        "for a key (COMPUTER_AGENTS_API_KEY) with access to this server, or use a server id the key owns.",
        id="403-names-the-key-variable",
    ),
    pytest.param(
        402,
        BUDGET,
        {},
        "The account's budget or usage allowance is exhausted (HTTP 402 INSUFFICIENT_BUDGET — the API said: "
        '"Monthly budget of $5.00 used up"). Nothing was run; tell the user to raise the limit or add credit, '
        "then retry.",
        id="402-says-the-budget-is-exhausted",
    ),
    pytest.param(
        404,
        None,
        {},
        f"No server (resource) '{SERVER_ID}' was found (HTTP 404 — the API said: \"Not Found\"). "
        "Check the server id: it is the id of a resource with a connected agent runtime.",
        id="404-on-start-names-the-server",
    ),
    pytest.param(
        400,
        _rejected("Bad Request"),
        {},
        'The ACP API rejected the request (HTTP 400 VALIDATION_FAILED — the API said: "mode must be sync or '
        'async"). Rejected fields: mode: must be sync or async. Fix the arguments and call again.',
        id="400-relays-the-rejected-field",
    ),
    pytest.param(
        422,
        _rejected("Unprocessable Entity"),
        {},
        'The ACP API rejected the request (HTTP 422 VALIDATION_FAILED — the API said: "mode must be sync or '
        'async"). Rejected fields: mode: must be sync or async. Fix the arguments and call again.',
        id="422-relays-the-rejected-field",
    ),
    pytest.param(
        429,
        None,
        {"Retry-After": "7"},
        'The ACP API is rate limiting requests (HTTP 429 — the API said: "Too Many Requests"). Retry in 7 seconds.',
        id="429-says-when-to-retry",
    ),
    pytest.param(
        500,
        None,
        {},
        '{base} failed (HTTP 500 — the API said: "Internal Server Error"). Retry in a few seconds.' + START_CHECK,
        id="500-says-retry-later",
    ),
    pytest.param(
        502,
        None,
        {},
        '{base} failed (HTTP 502 — the API said: "Bad Gateway"). Retry in a few seconds.' + START_CHECK,
        id="502-says-retry-later",
    ),
    pytest.param(
        503,
        None,
        {"Retry-After": "7"},
        '{base} failed (HTTP 503 — the API said: "Service Unavailable"). Retry in 7 seconds.' + START_CHECK,
        id="503-says-when-to-retry",
    ),
]


@pytest.mark.parametrize(("status", "body", "headers", "expected"), STATUS_CASES)
async def test_an_error_status_on_start_becomes_one_actionable_message(
    settings: Settings,
    sandbox: RunningSandbox,
    status: int,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    expected: str,
) -> None:
    # A 2 s request timeout gives a 4 s retry budget, so a 429's Retry-After of 7 is not waited for.
    sandbox.state.inject(Fault(kind="status", status=status, body=body, headers=headers, times=10))
    async with connect(settings.with_overrides(request_timeout=2.0)) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    if expected.startswith("{base}"):
        expected = f"The ACP API at {settings.base_url}" + expected.removeprefix("{base}")
    assert message == expected
    (post,) = api_requests(sandbox)  # errors on a POST are not retried (nor is a 429 whose wait outlasts the budget)
    assert (post.method, post.path, post.body) == ("POST", START_PATH, {"content": "hello", "mode": "async"})


async def test_an_unknown_run_id_names_the_run_and_the_server(settings: Settings, sandbox: RunningSandbox) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": "run_missing", "waitSeconds": 0}
        )

    assert error_text(result, "get_agent_run") == (
        f"No run 'run_missing' was found on server '{SERVER_ID}' (HTTP 404 — the API said: "
        f'"Run run_missing not found"). Check the run id with list_agent_runs {{"serverId": "{SERVER_ID}"}}.'
    )
    (get,) = api_requests(sandbox)
    assert (get.method, get.path) == ("GET", f"{START_PATH}/run_missing/events")


async def test_input_to_a_running_run_says_it_is_busy_and_how_to_wait_or_cancel(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await start_hanging_run(client, SERVER_ID)
        sandbox.state.clear_requests()
        try:
            result = await client.call_tool(
                "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "more"}
            )
        finally:
            await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    message = error_text(result, "continue_agent_run")
    assert re.fullmatch(
        rf"Run '{run_id}' on server '{SERVER_ID}' is busy or in a state that does not allow this "
        rf'\(HTTP 409 RUN_BUSY — the API said: "Run {run_id} is still (queued|running); wait for it to finish '
        r'or cancel it"\)\. '
        rf'Wait for it to finish with get_agent_run \{{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"\}}, '
        r"then retry; or stop it with cancel_agent_run\.",
        message,
    ), message
    post = api_requests(sandbox)[0]  # then the cleanup's cancel
    assert (post.method, post.path) == ("POST", f"{START_PATH}/{run_id}/input")
    assert [r.path.rsplit("/", 1)[-1] for r in api_requests(sandbox)] == ["input", "cancel"]


async def test_the_busy_message_quotes_a_mixed_case_server_id_exactly(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "Team-A"
    async with connect(settings) as client:
        run_id = await start_hanging_run(client, server_id)
        try:
            result = await client.call_tool(
                "continue_agent_run", {"serverId": server_id, "resourceRunId": run_id, "content": "more"}
            )
        finally:
            await client.call_tool("cancel_agent_run", {"serverId": server_id, "resourceRunId": run_id})

    message = error_text(result, "continue_agent_run")
    assert message.startswith(f"Run '{run_id}' on server 'Team-A' is busy"), message


async def test_an_html_error_page_becomes_a_plain_message_without_html(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject(Fault(kind="html", status=502))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    assert message == f"The ACP API at {settings.base_url} failed (HTTP 502). Retry in a few seconds." + START_CHECK
    assert "<" not in message and "html" not in message.lower()
    assert len(api_requests(sandbox, method="POST")) == 1


# -- no usable HTTP answer --------------------------------------------------------------------


async def test_a_closed_port_names_the_base_url_and_says_to_check_the_network(sandbox: RunningSandbox) -> None:
    port = closed_port()
    settings = Settings(api_key=SecretStr(API_KEY), base_url=f"http://127.0.0.1:{port}", request_timeout=0.3)
    began = time.monotonic()
    async with connect(settings) as client:
        result = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    assert error_text(result, "list_agent_runs") == (
        f"Could not connect to the ACP API at http://127.0.0.1:{port}/v1. "
        "Check the network and COMPUTER_AGENTS_BASE_URL, then retry."
    )
    assert time.monotonic() - began < 3.0
    assert api_requests(sandbox) == []


async def test_a_post_that_gets_no_answer_in_time_says_so_and_names_the_base_url(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "srv_slow_start"
    sandbox.state.inject(Fault(kind="slow", delay=2.0, path_contains=server_id))
    began = time.monotonic()
    async with connect(settings.with_overrides(request_timeout=0.3)) as client:
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "hi", "waitSeconds": 0})
    elapsed = time.monotonic() - began

    assert error_text(result, "start_agent_run") == (
        f"The ACP API at {settings.base_url} did not answer in time. Retry later."
        ' The run may have been started anyway: check with list_agent_runs {"serverId": "srv_slow_start"} '
        "before starting it again."
    )
    assert elapsed < 1.5  # the client gave up long before the sandbox answered
    (post,) = api_requests(sandbox)  # a POST that timed out may have worked: it is not sent again
    assert (post.method, post.path) == ("POST", f"/v1/servers/{server_id}/runtime/agent/runs")


async def test_a_redirect_is_reported_with_its_target_and_never_followed(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject(Fault(kind="redirect", location="http://evil.example/x"))
    async with connect(settings) as client:
        result = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    assert error_text(result, "list_agent_runs") == (
        f"The ACP API at {settings.base_url} answered HTTP 307 redirecting to 'http://evil.example/x'; redirects are "
        "not followed so the API key cannot travel elsewhere. Ask the user to check COMPUTER_AGENTS_BASE_URL."
    )
    (request,) = api_requests(sandbox)
    assert (request.method, request.path) == ("GET", START_PATH)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            Fault(kind="non_json"),
            "{base} sent an unusable answer (HTTP 200 answer is not a JSON object). "
            "Retry later; if it persists, tell the user." + START_CHECK,
            id="non-json-200",
        ),
        pytest.param(
            Fault(kind="empty", status=200),
            "{base} sent an unusable answer (HTTP 200 answer is not a JSON object). "
            "Retry later; if it persists, tell the user." + START_CHECK,
            id="empty-200",
        ),
        pytest.param(
            Fault(kind="truncated"),
            "The connection to the ACP API at {url} broke mid-answer. Retry." + START_CHECK,
            id="truncated-body",
        ),
    ],
)
async def test_an_unusable_success_answer_is_a_clear_error(
    settings: Settings, sandbox: RunningSandbox, fault: Fault, expected: str
) -> None:
    sandbox.state.inject(fault)
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    expected = expected.replace("{base}", f"The ACP API at {settings.base_url}").replace("{url}", settings.base_url)
    assert error_text(result, "start_agent_run") == expected
    (post,) = api_requests(sandbox)
    assert (post.method, post.path) == ("POST", START_PATH)


# -- refused before anything is sent ----------------------------------------------------------


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


async def test_plain_http_to_a_remote_host_is_refused_and_asks_for_https(sandbox: RunningSandbox) -> None:
    settings = Settings(api_key=SecretStr(API_KEY), base_url="http://api.example.com")
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    assert error_text(result, "start_agent_run") == (
        "Refusing to send the API key over plain http to http://api.example.com/v1: set COMPUTER_AGENTS_BASE_URL "
        "to an https:// URL (plain http is allowed only to localhost)."
    )
    assert api_requests(sandbox) == []


HOSTILE_IDS = [
    pytest.param("", "is empty", id="empty"),
    pytest.param("   ", "is empty", id="blank"),
    pytest.param(".", "cannot be '.' or '..'", id="dot"),
    pytest.param("..", "cannot be '.' or '..'", id="dotdot"),
    pytest.param("a/b", "cannot contain '/', '\\', '?', '#' or '%'", id="slash"),
    pytest.param("a\\b", "cannot contain '/', '\\', '?', '#' or '%'", id="backslash"),
    pytest.param("a?b", "cannot contain '/', '\\', '?', '#' or '%'", id="question-mark"),
    pytest.param("a#b", "cannot contain '/', '\\', '?', '#' or '%'", id="hash"),
    pytest.param("a%2Fb", "cannot contain '/', '\\', '?', '#' or '%'", id="percent"),
    pytest.param("a\x00b", "cannot contain control characters", id="nul"),
    pytest.param("a\nb", "cannot contain control characters", id="newline"),
    pytest.param("a\u200bb", "cannot contain control characters", id="zero-width-space"),
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
    async with connect(settings) as client:
        result = await client.call_tool(tool, _args(tool, field, value))

    if (field, value) == ("serverId", ""):  # an empty serverId means the default, and none is configured here
        assert error_text(result, tool).startswith("Invalid arguments, nothing was sent: serverId is required")
    else:
        assert error_text(result, tool) == (
            f"Invalid arguments, nothing was sent: {field} {problem}; pass the id exactly as the API returned it."
        )
    assert api_requests(sandbox) == []


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
    async with connect(settings) as client:
        result = await client.call_tool(tool, _args(tool, field, "a" * 300))

    message = error_text(result, tool)
    assert field in message and "at most 256 characters" in message
    assert api_requests(sandbox) == []


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


# -- the key and upstream text ----------------------------------------------------------------

ECHOING = {
    "error": f"Bad key {API_KEY}",
    "message": f"key {API_KEY} is not valid",
    "code": "KEY_" + API_KEY,
    "details": [{"field": API_KEY, "message": f"{API_KEY} was rejected"}],
}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 429, 500])
async def test_an_api_key_echoed_by_the_api_is_redacted_from_the_error(
    settings: Settings, sandbox: RunningSandbox, status: int
) -> None:
    sandbox.state.inject(Fault(kind="status", status=status, body=ECHOING, headers={"Retry-After": "60"}))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")  # checks the key is nowhere in the result
    assert "[REDACTED]" in message
    assert "key [REDACTED] is not valid" in message
    assert len(api_requests(sandbox)) == 1


async def test_a_key_cut_by_the_length_cap_is_not_shown_in_part(settings: Settings, sandbox: RunningSandbox) -> None:
    # The upstream message is capped at 300 characters; here the cap falls inside the key.
    body = {"error": "Unauthorized", "message": "x" * 276 + API_KEY + " is not valid"}
    sandbox.state.inject(Fault(kind="status", status=401, body=body))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    assert API_KEY[:12] not in message, message  # not even most of it


@pytest.mark.parametrize("size", [60_000, 100_000], ids=["read-and-capped", "over-the-read-cap"])
async def test_a_huge_upstream_error_message_gives_a_short_tool_error(
    settings: Settings, sandbox: RunningSandbox, size: int
) -> None:
    body = {"error": "Bad Request", "message": "m" * size, "code": "C" * size}
    sandbox.state.inject(Fault(kind="status", status=400, body=body))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    assert message.startswith("The ACP API rejected the request (HTTP 400")
    assert len(text_of(result)) < 1_500
    assert len(api_requests(sandbox)) == 1


# -- arguments --------------------------------------------------------------------------------

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
        {"content": "x", "metadata": {"blob": "b" * 16_384}},
        ["metadata is 16,395 characters of JSON; the limit is 16,384"],
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
    async with connect(settings) as client:
        result = await client.call_tool(tool, {"serverId": SERVER_ID, **args})

    message = error_text(result, tool)
    for fragment in fragments:
        assert fragment in message, message
    assert api_requests(sandbox) == []


# -- the server survives ----------------------------------------------------------------------


async def test_the_server_keeps_serving_the_same_session_after_every_kind_of_failure(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    state = sandbox.state
    async with connect(settings.with_overrides(request_timeout=0.3)) as client:
        failures = [
            (Fault(kind="status", status=401), "start_agent_run", START_ARGS),
            (Fault(kind="status", status=500), "start_agent_run", START_ARGS),
            (Fault(kind="html", status=502), "start_agent_run", START_ARGS),
            (Fault(kind="non_json"), "start_agent_run", START_ARGS),
            (Fault(kind="truncated"), "start_agent_run", START_ARGS),
            (Fault(kind="close"), "start_agent_run", START_ARGS),
            (Fault(kind="redirect", location="http://evil.example/x"), "start_agent_run", START_ARGS),
            (Fault(kind="slow", delay=1.0, path_contains="srv_slow_session"), "start_agent_run",
             {"serverId": "srv_slow_session", "content": "x", "waitSeconds": 0}),
            (None, "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": "run_missing", "waitSeconds": 0}),
            (None, "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": "a/b"}),
            (None, "start_agent_run", {"serverId": SERVER_ID, "content": "x", "mode": "fast"}),
        ]  # fmt: skip
        for fault, tool, args in failures:
            if fault is not None:
                state.inject(fault)
            failed = await client.call_tool(tool, args)
            error_text(failed, tool)

        state.clear_requests()
        result = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "still here"})

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["status"] == "completed"
    assert result.structured_content["run"]["output"] == "Echo: still here"
    assert api_requests(sandbox)[0].body == {"content": "still here", "mode": "async"}


async def test_a_409_on_start_points_to_the_servers_runs_not_to_a_run_it_does_not_have(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject(Fault(kind="status", status=409, method="POST"))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    assert error_text(result, "start_agent_run") == (
        f"Server '{SERVER_ID}' does not allow this now (HTTP 409 — the API said: \"Conflict\"). "
        f'See its runs with list_agent_runs {{"serverId": "{SERVER_ID}"}}; '
        "wait for a running one to finish, then retry."
    )


async def test_an_uppercase_http_scheme_to_a_remote_host_is_refused_too(sandbox: RunningSandbox) -> None:
    settings = Settings(api_key=SecretStr(API_KEY), base_url="HTTP://api.example.com")
    async with connect(settings) as client:
        result = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    assert error_text(result, "list_agent_runs").startswith("Refusing to send the API key over plain http")
    assert settings.base_url == "http://api.example.com/v1"


async def test_the_key_echoed_in_a_successful_answer_is_masked_in_results_and_the_resource(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "start_agent_run", {"serverId": SERVER_ID, "content": f"my key is {API_KEY}", "mode": "sync"}
        )
        resource = await client.read_resource(str(result.structured_content["resourceUri"]))

    dumped = json.dumps(result.model_dump(mode="json")) + json.dumps(resource.model_dump(mode="json"))
    assert API_KEY not in dumped
    assert result.structured_content["run"]["output"] == "Echo: my key is [REDACTED]"
    assert "[REDACTED]" in resource.contents[0].text  # type: ignore[union-attr]


async def test_a_cancel_answered_with_204_and_no_body_reports_the_cancelled_run(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        started = await client.call_tool(
            "start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 0}
        )
        run_id = started.structured_content["run"]["id"]
        sandbox.state.inject(Fault(kind="empty", status=204, method="POST", path_contains="/cancel"))
        result = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert not result.is_error, text_of(result)
    assert (result.structured_content["httpStatus"], result.structured_content["outcome"]) == (204, "cancelled")
    assert result.structured_content["run"]["id"] == run_id  # fetched after the empty answer
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in api_requests(sandbox)][-2:] == [
        ("POST", "cancel"),
        ("GET", "events"),
    ]


async def test_an_argument_past_its_limit_gets_our_message_naming_the_field_and_the_limit(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    """Clients that strip minimum/maximum from schemas (Codex) let such calls through: the server explains."""
    async with connect(settings) as client:
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": "run_000001", "maxEvents": 100, "waitSeconds": -1}
        )

    assert error_text(result, "get_agent_run") == (
        "Invalid arguments for get_agent_run: waitSeconds must be at least 0 (got -1); maxEvents must be at most 40 "
        "(got 100). Fix them and call get_agent_run again (nothing was sent)."
    )
    assert api_requests(sandbox) == []
