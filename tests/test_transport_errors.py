"""No usable HTTP answer: a closed port, no answer in time, a redirect, a broken or empty answer; and the server
serves on after every kind of failure. Each test checks the request(s) that reached the API and the exact text."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from acp_mcp.clock import VirtualClock
from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox

from ._errors import START_ARGS, START_CHECK
from ._tooling import free_port
from .conftest import API_KEY, SERVER_ID, api_requests, connect, error_text, hanging_run, runs_path, text_of, unmarked

pytestmark = pytest.mark.anyio

START_PATH = runs_path()


async def test_a_closed_port_names_the_base_url_and_says_to_check_the_network(
    sandbox: RunningSandbox, clock: VirtualClock
) -> None:
    port = free_port()  # nothing listens on it once it is given back
    settings = Settings(api_key=SecretStr(API_KEY), base_url=f"http://127.0.0.1:{port}", request_timeout=0.3)
    async with connect(settings, clock=clock) as client:
        result = await client.call_tool("list_agent_runs", {"serverId": SERVER_ID})

    assert error_text(result, "list_agent_runs") == (
        f"Could not connect to the ACP API at http://127.0.0.1:{port}/v1. "
        "Check the network and COMPUTER_AGENTS_BASE_URL, then retry."
    )
    # A connection never made is retried with jittered backoff, within the request's budget (2 timeouts).
    assert clock.slept and sum(clock.slept) < 2 * 0.3
    assert all(0.125 <= delay <= 0.25 * 2**n for n, delay in enumerate(clock.slept)), clock.slept
    assert api_requests(sandbox) == []


async def test_a_post_that_gets_no_answer_in_time_says_so_and_names_the_base_url(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "srv_slow_start"
    sandbox.state.inject(Fault(kind="slow", delay=2.0, path_contains=server_id))
    async with connect(settings.with_overrides(request_timeout=0.3)) as client:
        result = await client.call_tool("start_agent_run", {"serverId": server_id, "content": "hi", "waitSeconds": 0})

    # The client gave up first (the sandbox would have answered 201 at 2 s), looked for the run by its marker
    # at once, and, not finding it, says how to look again rather than to retry.
    assert error_text(result, "start_agent_run") == (
        "The start got no answer within 0.3s, and no run carrying its marker (metadata.acpMcpStart) is listed yet. "
        'The run may still have been created: look for it with list_agent_runs {"serverId": "srv_slow_start"} '
        "before starting it again."
    )
    post, lookup = api_requests(sandbox)  # a POST that timed out may have worked: it is not sent again
    assert (post.method, post.path) == ("POST", f"/v1/servers/{server_id}/runtime/agent/runs")
    assert (lookup.method, lookup.path, lookup.query) == ("GET", post.path, {"limit": "10"})


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


UNUSABLE = (
    "{base} sent an unusable answer (HTTP 200 answer is not a JSON object). Retry later; if it persists, tell the user."
)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(Fault(kind="non_json"), UNUSABLE + START_CHECK, id="non-json-200"),
        pytest.param(Fault(kind="empty", status=200), UNUSABLE + START_CHECK, id="empty-200"),
        pytest.param(
            Fault(kind="truncated"),
            "The start lost its connection before the answer came, and no run carrying its marker "
            "(metadata.acpMcpStart) is listed yet. The run may still have been created: look for it with "
            'list_agent_runs {"serverId": "srv_test"} before starting it again.',
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
    lookup = [("GET", START_PATH, {"limit": "10"})] if fault.kind == "truncated" else []  # a broken connection
    assert [(r.method, r.path, r.query) for r in api_requests(sandbox)] == [("POST", START_PATH, {}), *lookup]


async def test_a_cancel_answered_with_204_and_no_body_reports_the_cancelled_run(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        run_id = await hanging_run(client)
        sandbox.state.inject(Fault(kind="empty", status=204, method="POST", path_contains="/cancel"))
        result = await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})

    assert not result.is_error, text_of(result)
    assert (result.structured_content["httpStatus"], result.structured_content["outcome"]) == (204, "cancelled")
    assert result.structured_content["run"]["id"] == run_id  # fetched after the empty answer
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in api_requests(sandbox)][-2:] == [
        ("POST", "cancel"),
        ("GET", "events"),
    ]


# -- the server survives ----------------------------------------------------------------------


async def test_the_server_keeps_serving_the_same_session_after_every_kind_of_failure(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    state = sandbox.state
    async with connect(settings.with_overrides(request_timeout=0.3)) as client:
        failures: list[tuple[Fault | None, str, dict[str, Any]]] = [
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
    assert unmarked(api_requests(sandbox)[0].body) == {"content": "still here", "mode": "async"}
