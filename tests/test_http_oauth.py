"""A hosted acp-mcp as an OAuth 2.1 resource server, over real loopback HTTP: a real issuer, the server process,
the sandbox, and the SDK's own clients (a bearer header, and the OAuth client that discovers everything)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourceUpdated

from acp_mcp.sandbox import RunningSandbox, SandboxState, serve_in_thread

from ._http import INITIALIZE, MCP_HEADERS, bearer
from ._issuer import MemoryStorage, RunningIssuer, serve_issuer
from ._tooling import HttpServer, free_port, http_server
from .conftest import API_KEY, FAST_PACE, SERVER_ID, api_requests, error_text, runs_path, sandbox_env, text_of, until

pytestmark = pytest.mark.anyio

READ_ONLY = "runs:read"
BOTH = "runs:read runs:write"


@pytest.fixture(scope="module")
def issuer() -> Iterator[RunningIssuer]:
    with serve_issuer() as running:
        running.register_client("alice-cli", "alice-secret", sub="alice")
        yield running


@pytest.fixture(scope="module")
def server(
    issuer: RunningIssuer, running_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    keys = tmp_path_factory.mktemp("oauth") / "keys.json"
    keys.write_text(json.dumps({"subjects": {"alice": API_KEY}, "claims": {"groups": {"research": API_KEY}}}))
    env = sandbox_env(running_sandbox, ACP_SERVER_ID=SERVER_ID, **oauth_env(issuer, free_port(), keys))
    with http_server("--stateless", **env) as running:
        yield running


def oauth_env(issuer: RunningIssuer, port: int, keys: Path) -> dict[str, str]:
    """The settings of an OAuth resource server on `port`: tokens from `issuer` for its URL, keys from `keys`."""
    return {
        "ACP_MCP_PORT": str(port),
        "ACP_MCP_OAUTH_ISSUER": issuer.issuer,
        "ACP_MCP_PUBLIC_URL": f"http://127.0.0.1:{port}/mcp",
        "ACP_MCP_KEYS_FILE": str(keys),
    }


def metadata_url(server: HttpServer) -> str:
    return server.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")


def token(issuer: RunningIssuer, server: HttpServer, sub: str = "alice", scope: str = BOTH, **claims: object) -> str:
    return issuer.mint(aud=server.url, sub=sub, scope=scope, claims=claims)


async def post(server: HttpServer, message: dict[str, object], access: str | None) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(server.url, json=message, headers=MCP_HEADERS | (bearer(access) if access else {}))


def call(name: str, arguments: dict[str, object]) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


async def test_the_protected_resource_metadata_names_the_issuer_and_both_scopes(
    server: HttpServer, issuer: RunningIssuer
) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.get(metadata_url(server))

    assert response.status_code == 200
    assert response.json() == {
        "resource": server.url,
        "authorization_servers": [issuer.issuer],
        "scopes_supported": ["runs:read", "runs:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "acp-mcp (Computer Agents runs)",
    }


@pytest.mark.parametrize("kind", ["none", "expired", "other-audience", "garbage"])
async def test_a_request_without_a_valid_token_gets_401_pointing_at_the_metadata_with_the_scopes(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox, kind: str
) -> None:
    access = {
        "none": None,
        "expired": issuer.mint(aud=server.url, sub="alice", expires_in=-120),
        "other-audience": issuer.mint(aud="http://127.0.0.1:1/mcp", sub="alice"),
        "garbage": "not-a-token",
    }[kind]

    response = await post(server, call("list_agent_runs", {}), access)

    assert response.status_code == 401
    error = 'error="invalid_token", ' if kind != "none" else ""  # no token: the challenge names no error
    assert response.headers["www-authenticate"] == (
        f'Bearer {error}scope="{BOTH}", resource_metadata="{metadata_url(server)}"'
    )
    assert api_requests(sandbox) == []


@asynccontextmanager
async def client(server: HttpServer, access: str) -> AsyncIterator[Client]:
    async with server.client(access) as connected:
        yield connected


async def test_a_caller_acts_with_the_key_its_subject_maps_to_and_its_token_never_goes_upstream(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    access = token(issuer, server)
    async with client(server, access) as connected:
        started = await connected.call_tool("start_agent_run", {"content": "/hang", "waitSeconds": 0})
        run_id = started.structured_content["run"]["id"]
        fetched = await connected.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 0})
        cancelled = await connected.call_tool("cancel_agent_run", {"resourceRunId": run_id})

    assert (fetched.structured_content["run"]["id"], cancelled.structured_content["run"]["status"]) == (
        run_id,
        "cancelled",
    )
    requests = api_requests(sandbox)
    assert [(r.method, r.path) for r in requests][:1] == [("POST", runs_path())]
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {API_KEY}"}
    assert all(access not in json.dumps(r.headers) for r in requests)


async def test_a_group_claim_maps_a_caller_without_an_entry_of_its_own(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    async with client(server, token(issuer, server, sub="carol", groups=["ops", "research"])) as connected:
        listed = await connected.call_tool("list_agent_runs", {})

    assert not listed.is_error
    assert [r.headers["authorization"] for r in api_requests(sandbox)] == [f"Bearer {API_KEY}"]


async def test_a_read_only_token_lists_the_read_tools_and_a_write_gets_403_asking_for_both_scopes(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    access = token(issuer, server, scope=READ_ONLY)
    async with client(server, access) as connected:
        tools = [tool.name for tool in (await connected.list_tools()).tools]

    refused = await post(server, call("start_agent_run", {"content": "hi"}), access)

    assert tools == ["get_agent_run", "list_agent_runs"]
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{BOTH}", resource_metadata="{metadata_url(server)}"'
    )
    assert refused.json()["error"] == "insufficient_scope"
    assert api_requests(sandbox, method="POST") == []


async def test_a_caller_without_a_key_here_gets_a_tool_error_saying_how_to_get_one(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    async with client(server, token(issuer, server, sub="bob")) as connected:
        result = await connected.call_tool("list_agent_runs", {})

    assert error_text(result, "list_agent_runs") == (
        "This MCP server has no Computer Agents API key for you. Ask its operator to map your account to a key "
        "(ACP_MCP_KEYS_FILE); then call again."
    )
    assert api_requests(sandbox) == []


async def test_the_sdks_oauth_client_discovers_everything_from_the_401_and_runs_start_get_and_cancel(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    issuer.clear_requests()
    provider = ClientCredentialsOAuthProvider(
        server_url=server.url,
        storage=MemoryStorage(),
        client_id="alice-cli",
        client_secret="alice-secret",
        issuer=issuer.issuer,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(server.url, http_client=http)) as connected,
    ):
        started = await connected.call_tool("start_agent_run", {"content": "/hang", "waitSeconds": 0})
        run_id = started.structured_content["run"]["id"]
        await connected.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 0})
        cancelled = await connected.call_tool("cancel_agent_run", {"resourceRunId": run_id})

    assert cancelled.structured_content["run"]["status"] == "cancelled"
    (grant,) = [r for r in issuer.requests if r.method == "POST"]
    assert grant.form["resource"] == [server.url] and grant.form["scope"] == [BOTH]
    assert {r.headers["authorization"] for r in api_requests(sandbox)} == {f"Bearer {API_KEY}"}


async def test_a_caller_past_its_burst_gets_429_with_retry_after(
    issuer: RunningIssuer, running_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[subjects]\nalice = "{API_KEY}"\n')
    limits = {"ACP_MCP_CALLER_RATE": "0.01", "ACP_MCP_CALLER_BURST": "2"}
    env = sandbox_env(running_sandbox, **oauth_env(issuer, free_port(), keys), **limits)
    with http_server("--stateless", **env) as limited:
        alice, dave = (issuer.mint(aud=limited.url, sub=sub) for sub in ("alice", "dave"))
        answers = [await post(limited, call("list_agent_runs", {"serverId": SERVER_ID}), alice) for _ in range(3)]
        other = await post(limited, call("list_agent_runs", {"serverId": SERVER_ID}), dave)

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "100"
    assert other.status_code == 200, "another caller has a bucket of its own"


OTHER_KEY = "tb_other_account_key_0123456789"
BOTH_KEYS = {f"Bearer {API_KEY}", f"Bearer {OTHER_KEY}"}
CALLER = "X-Computer-Agents-Key"


@pytest.fixture(scope="module")
def two_accounts() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxState(api_key=API_KEY, api_keys=[OTHER_KEY], pace=FAST_PACE)) as running:
        yield running


@pytest.fixture(scope="module")
def header_server(two_accounts: RunningSandbox) -> Iterator[HttpServer]:
    env = {
        "COMPUTER_AGENTS_BASE_URL": two_accounts.base_url,
        "ACP_SERVER_ID": SERVER_ID,
        "ACP_MCP_CALLER_KEYS": "true",
    }
    with http_server("--stateless", **env) as running:
        yield running


@asynccontextmanager
async def keyed(server: HttpServer, key: str | None) -> AsyncIterator[Client]:
    headers = {"X-Computer-Agents-Key": key} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(server.url, http_client=http)) as connected,
    ):
        yield connected


async def test_each_caller_acts_with_the_key_it_sends_and_another_callers_run_is_not_found(
    header_server: HttpServer, two_accounts: RunningSandbox
) -> None:
    two_accounts.state.clear_requests()
    async with keyed(header_server, API_KEY) as alice:
        started = await alice.call_tool("start_agent_run", {"content": "/hang", "waitSeconds": 0})
        run_id = started.structured_content["run"]["id"]
    async with keyed(header_server, OTHER_KEY) as bob:
        fetched = await bob.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 0})
        listed = await bob.call_tool("list_agent_runs", {})
        cancelled = await bob.call_tool("cancel_agent_run", {"resourceRunId": run_id})
    async with keyed(header_server, API_KEY) as alice:
        still = await alice.call_tool("cancel_agent_run", {"resourceRunId": run_id})

    assert error_text(fetched, "get_agent_run").startswith(f"No run '{run_id}' was found on server '{SERVER_ID}'")
    assert error_text(cancelled, "cancel_agent_run").startswith(f"No run '{run_id}' was found")
    assert listed.structured_content["runs"] == []
    assert still.structured_content["run"]["status"] == "cancelled", "bob could not stop alice's run"
    keys = [r.headers["authorization"] for r in two_accounts.state.requests]
    assert keys == [f"Bearer {API_KEY}", *[f"Bearer {OTHER_KEY}"] * 3, f"Bearer {API_KEY}"]


async def test_without_its_header_a_caller_is_told_to_send_one_and_nothing_is_sent(
    header_server: HttpServer, two_accounts: RunningSandbox
) -> None:
    two_accounts.state.clear_requests()
    async with keyed(header_server, None) as anonymous:
        result = await anonymous.call_tool("list_agent_runs", {})

    assert error_text(result, "list_agent_runs") == (
        "This MCP server has no Computer Agents API key for you. Ask its operator to map your account to a key "
        "(ACP_MCP_KEYS_FILE), or send your own key in the X-Computer-Agents-Key header of your MCP client's config; "
        "then call again."
    )
    assert two_accounts.state.requests == []


async def test_a_listen_stream_hears_only_its_own_callers_runs_even_on_the_same_uri(
    header_server: HttpServer, two_accounts: RunningSandbox
) -> None:
    async with keyed(header_server, API_KEY) as alice, keyed(header_server, OTHER_KEY) as bob:
        started = await alice.call_tool("start_agent_run", {"content": "/hang", "waitSeconds": 0})
        run_id, uri = started.structured_content["run"]["id"], started.structured_content["resourceUri"]
        two_accounts.state.clear_requests()
        async with (
            alice.listen(resource_subscriptions=[uri]) as heard_by_alice,
            bob.listen(resource_subscriptions=[uri]) as heard_by_bob,
        ):
            await until(lambda: {r.headers["authorization"] for r in two_accounts.state.requests} >= BOTH_KEYS)
            await alice.call_tool("cancel_agent_run", {"resourceRunId": run_id})
            with anyio.fail_after(10):
                event = await anext(aiter(heard_by_alice))
            with anyio.move_on_after(0.3) as nothing:
                await anext(aiter(heard_by_bob))

    assert isinstance(event, ResourceUpdated) and event.uri == uri
    assert nothing.cancelled_caught, "bob's stream heard of alice's run"
    bobs = [r for r in two_accounts.state.requests if r.headers["authorization"] == f"Bearer {OTHER_KEY}"]
    assert bobs and all(r.path.endswith(f"/{run_id}/events") for r in bobs), "bob's watch reads with bob's key"


async def test_no_key_token_or_header_value_reaches_the_log_even_at_debug(
    issuer: RunningIssuer, two_accounts: RunningSandbox, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"subjects": {"alice": API_KEY}}))
    env = {
        "COMPUTER_AGENTS_BASE_URL": two_accounts.base_url,
        "ACP_SERVER_ID": SERVER_ID,
        **oauth_env(issuer, free_port(), keys),
        "ACP_MCP_CALLER_KEYS": "true",
        "ACP_MCP_LOG_LEVEL": "DEBUG",
    }
    refused_key = "tb_refused_by_the_api_0123456789"
    with http_server("--stateless", **env) as server:
        alice, bob = (issuer.mint(aud=server.url, sub=sub) for sub in ("alice", "bob"))
        async with server.client(alice) as client:
            await client.call_tool("list_agent_runs", {})
        for key in (OTHER_KEY, refused_key):
            async with (
                httpx2.AsyncClient(headers={"X-Computer-Agents-Key": key} | bearer(bob), timeout=30) as http,
                Client(streamable_http_client(server.url, http_client=http)) as client,
            ):
                await client.call_tool("list_agent_runs", {})
        await post(server, call("list_agent_runs", {}), alice + "x")
        code, log = server.stop()

    assert code == 0
    assert "/runtime/agent/runs" in log and "/jwks" in log, "the debug log names every request to the API and issuer"
    for secret in (API_KEY, OTHER_KEY, refused_key, alice, bob):
        assert secret not in log


async def test_a_key_one_caller_sends_never_masks_anything_in_another_callers_answers(
    header_server: HttpServer, two_accounts: RunningSandbox
) -> None:
    async with keyed(header_server, '"status"') as mallory:
        refused = await mallory.call_tool("list_agent_runs", {})
    async with keyed(header_server, API_KEY) as alice:
        listed = await alice.call_tool("list_agent_runs", {})

    assert refused.is_error
    assert not listed.is_error, text_of(listed)


async def test_a_body_nested_beyond_any_parser_gets_an_answer_not_a_server_error(
    server: HttpServer, issuer: RunningIssuer
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            server.url, content=b"[" * 100_000, headers=MCP_HEADERS | bearer(token(issuer, server))
        )

    assert 400 <= response.status_code < 500, response.text


async def test_a_session_opened_with_one_key_is_not_found_for_another(two_accounts: RunningSandbox) -> None:
    env = {"COMPUTER_AGENTS_BASE_URL": two_accounts.base_url, "ACP_MCP_CALLER_KEYS": "true"}
    with http_server(**env) as stateful:
        async with httpx2.AsyncClient(timeout=10) as http:
            opened = await http.post(stateful.url, json=INITIALIZE, headers=MCP_HEADERS | {CALLER: API_KEY})
            session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            borrowed = await http.post(stateful.url, json=ping, headers=MCP_HEADERS | session | {CALLER: OTHER_KEY})
            deleted = await http.delete(stateful.url, headers=session | {CALLER: OTHER_KEY})
            own = await http.post(stateful.url, json=ping, headers=MCP_HEADERS | session | {CALLER: API_KEY})

    assert opened.status_code == 200
    assert (borrowed.status_code, deleted.status_code) == (404, 404)
    assert borrowed.json()["error"]["message"] == "Session not found"
    assert own.status_code == 200, "the session lives on for the caller who opened it"
