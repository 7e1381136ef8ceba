"""Streamable HTTP over real loopback sockets: the caller's token and the DNS-rebinding checks on Host and Origin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acp_mcp.sandbox import RunningSandbox

from ._http import CALLER_TOKEN, bearer, post_initialize
from ._tooling import HttpServer, http_server
from .conftest import API_KEY, SERVER_ID, api_requests, runs_path, sandbox_env, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def shared_server(running_sandbox: RunningSandbox) -> Iterator[HttpServer]:
    env = sandbox_env(running_sandbox, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN, ACP_SERVER_ID=SERVER_ID)
    with http_server(**env) as server:
        yield server


async def test_a_caller_with_the_token_continues_a_run_and_receives_progress(
    shared_server: HttpServer, sandbox: RunningSandbox
) -> None:
    sandbox.state.pace = 0.05
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with shared_server.client(CALLER_TOKEN) as client:
        started = await client.call_tool("start_agent_run", {"content": "first", "mode": "sync"})
        run_id = started.structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool(
            "continue_agent_run", {"resourceRunId": run_id, "content": "/steps 4"}, progress_callback=on_progress
        )

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["output"] == "Completed 4 steps"
    post = api_requests(sandbox, method="POST")[0]
    assert post.path == f"{runs_path()}/{run_id}/input"
    assert post.body == {"content": "/steps 4", "mode": "async"}
    assert post.headers["authorization"] == f"Bearer {API_KEY}", "the caller's token never goes upstream"
    assert all(CALLER_TOKEN not in r.headers.get("authorization", "") for r in api_requests(sandbox))
    assert messages and all(message.startswith(f"run {run_id}: ") for message in messages)


@pytest.mark.parametrize("token", [None, "wrong-token", CALLER_TOKEN + "x"])
async def test_requests_without_the_right_token_get_401(shared_server: HttpServer, token: str | None) -> None:
    response = await post_initialize(shared_server.url, bearer(token) if token else {})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="acp-mcp"'
    assert API_KEY not in response.text and CALLER_TOKEN not in response.text


async def test_the_platform_key_sent_by_a_caller_is_not_a_credential(shared_server: HttpServer) -> None:
    response = await post_initialize(shared_server.url, bearer(API_KEY) | {"X-API-Key": API_KEY})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("Host", "evil.example", 421),
        ("Origin", "http://evil.example", 403),
        ("Host", "127.0.0.1.nip.io:80", 421),
        ("Host", "localhost:80@evil.example", 421),
        ("Host", "localhost:8000/evil", 421),
        ("Host", "localhost:", 421),
        ("Host", "", 421),
        ("Origin", "http://localhost:8000.evil.example", 403),
        ("Origin", "http://localhost:3000@evil.example", 403),
        ("Origin", "http://localhost:3000/path", 403),
        ("Origin", "file://localhost", 403),
        ("Origin", "null", 403),
    ],
)
async def test_foreign_host_or_origin_headers_are_refused(
    shared_server: HttpServer, header: str, value: str, status: int
) -> None:
    response = await post_initialize(shared_server.url, bearer(CALLER_TOKEN) | {header: value})

    assert response.status_code == status


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost:3000"},
        {"Origin": "https://LOCALHOST"},
        {"Host": "LOCALHOST:8000"},
        {"Host": "[::1]:8000", "Origin": "http://[::1]:5173"},
    ],
)
async def test_loopback_host_and_origin_are_accepted_in_any_case_on_any_port(
    shared_server: HttpServer, headers: dict[str, str]
) -> None:
    response = await post_initialize(shared_server.url, bearer(CALLER_TOKEN) | headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")


async def test_configured_host_names_and_origins_are_accepted_and_others_still_refused(sandbox: RunningSandbox) -> None:
    allowed = ("--allowed-hosts", "mcp.example.internal", "--allowed-origins", "https://app.example.internal")
    with http_server(*allowed, **sandbox_env(sandbox)) as server:
        named = await post_initialize(server.url, {"Host": "mcp.example.internal"})
        from_app = await post_initialize(server.url, {"Origin": "https://app.example.internal"})
        other_host = await post_initialize(server.url, {"Host": "other.example.internal"})
        other_origin = await post_initialize(server.url, {"Origin": "https://evil.example"})

    statuses = [response.status_code for response in (named, from_app, other_host, other_origin)]
    assert statuses == [200, 200, 421, 403]
