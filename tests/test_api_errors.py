"""The API refuses: each error status reaches the model as one tool error that says what happened and what to do.

Failures are real (a wrong key, an unknown run, a busy run) where the sandbox produces them, and
injected sandbox faults otherwise. Each test checks the request(s) that reached the API and the exact
text the client got (`error_text` also checks it holds no traceback and no API key).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import SecretStr

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox

from ._errors import START_ARGS, START_CHECK
from .conftest import SERVER_ID, api_requests, connect, error_text, hanging_run, runs_path, text_of, unmarked

pytestmark = pytest.mark.anyio

START_PATH = runs_path()


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
        402,
        {
            **BUDGET,
            "budgetStatus": {
                "balance": 0,
                "dailyLimit": 2,
                "dailySpent": 1.25,
                "monthlyLimit": 5,
                "monthlySpent": 5.0,
            },
        },
        {},
        "The account's budget or usage allowance is exhausted (HTTP 402 INSUFFICIENT_BUDGET — the API said: "
        '"Monthly budget of $5.00 used up"). The account: 1.25 spent of the daily limit of 2; 5.0 spent of the '
        "monthly limit of 5; balance 0. Nothing was run; tell the user to raise the limit or add credit, then retry.",
        id="402-gives-the-budget-status-in-words",
    ),
    pytest.param(
        402,
        {
            "error": "Payment Required",
            "message": "Usage allowance exhausted",
            "code": "USAGE_EXHAUSTED",
            "usage": {"tier": "free", "allowance": 100, "used": 100, "periodEnd": "2027-01-01T00:00:00Z"},
        },
        {},
        "The account's budget or usage allowance is exhausted (HTTP 402 USAGE_EXHAUSTED — the API said: "
        '"Usage allowance exhausted"). The account: 100 used of an allowance of 100 on the free tier; the allowance '
        "resets at 2027-01-01T00:00:00Z. Nothing was run; tell the user to raise the limit or add credit, then retry.",
        id="402-gives-the-usage-and-when-it-resets",
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
        422,
        {**_rejected("Unprocessable Entity"), "details": {"mode": "must be sync or async", "limit": {"max": 50}}},
        {},
        'The ACP API rejected the request (HTTP 422 VALIDATION_FAILED — the API said: "mode must be sync or '
        'async"). Rejected fields: mode: must be sync or async; limit: {"max": 50}. Fix the arguments and call again.',
        id="422-reads-details-given-as-an-object",
    ),
    pytest.param(
        400,
        {**_rejected("Bad Request"), "details": {"field": "mode", "message": "must be sync or async"}},
        {},
        'The ACP API rejected the request (HTTP 400 VALIDATION_FAILED — the API said: "mode must be sync or '
        'async"). Rejected fields: mode: must be sync or async. Fix the arguments and call again.',
        id="400-reads-one-rejected-field-given-as-an-object",
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
    # A 2 s request timeout (plus FAST_POLLS' 1 s grace) is the call's budget, so a Retry-After of 7 is not waited for.
    sandbox.state.inject(Fault(kind="status", status=status, body=body, headers=headers, times=10))
    clock = VirtualClock()
    async with connect(settings.with_overrides(request_timeout=2.0), clock=clock) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    assert message == expected.replace("{base}", f"The ACP API at {settings.base_url}")
    (post,) = api_requests(sandbox)  # errors on a POST are not retried (nor is a 429 whose wait outlasts the budget)
    assert (post.method, post.path, unmarked(post.body)) == ("POST", START_PATH, {"content": "hello", "mode": "async"})
    assert clock.slept == []


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


async def busy_input(settings: Settings, sandbox: RunningSandbox, server_id: str) -> tuple[str, str]:
    """Input to a run that is still going (cancelled afterwards): the run's id and the tool error's message."""
    async with connect(settings) as client:
        run_id = await hanging_run(client, server_id)
        sandbox.state.clear_requests()
        try:
            result = await client.call_tool(
                "continue_agent_run", {"serverId": server_id, "resourceRunId": run_id, "content": "more"}
            )
        finally:
            await client.call_tool("cancel_agent_run", {"serverId": server_id, "resourceRunId": run_id})
    return run_id, error_text(result, "continue_agent_run")


async def test_input_to_a_running_run_says_it_is_busy_and_how_to_wait_or_cancel(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    run_id, message = await busy_input(settings, sandbox, SERVER_ID)

    assert re.fullmatch(
        rf"Run '{run_id}' on server '{SERVER_ID}' is busy or in a state that does not allow this "
        rf'\(HTTP 409 RUN_BUSY — the API said: "Run {run_id} is still (queued|running); wait for it to finish '
        r'or cancel it"\)\. '
        rf'Wait for it to finish with get_agent_run \{{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"\}}, '
        r"then retry; or stop it with cancel_agent_run\.",
        message,
    ), message
    assert [(r.method, r.path) for r in api_requests(sandbox)] == [
        ("POST", f"{START_PATH}/{run_id}/input"),
        ("POST", f"{START_PATH}/{run_id}/cancel"),  # the cleanup's cancel
    ]


async def test_the_busy_message_quotes_a_mixed_case_server_id_exactly(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    run_id, message = await busy_input(settings, sandbox, "Team-A")

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
