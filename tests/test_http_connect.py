"""A signed-in user without a key connects their own on the connect page, over real loopback HTTP: the link
in the tool error (or a URL elicitation), the browser signed in at the issuer first (only the link's own user
gets the form), the key checked with the API, sealed in the store, used on the next call; links work once;
disconnecting forgets the key. The last tests drive the same in headless Chromium."""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    URL_ELICITATION_REQUIRED,
    CallToolResult,
    ElicitRequestParams,
    ElicitRequestURLParams,
    ElicitResult,
)

from acp_mcp.messages import CONNECT_PROMPT
from acp_mcp.sandbox import RunningSandbox

from ._browser import BrowserReport, drive_form
from ._http import MCP_HEADERS
from ._issuer import RunningIssuer, serve_issuer
from ._tooling import HttpServer, free_port, http_server
from .conftest import API_KEY, SERVER_ID, api_requests, error_text, runs_path, sandbox_env, text_of

pytestmark = pytest.mark.anyio

KEK = base64.b64encode(bytes(range(32))).decode()
CONNECT_CLIENT, CONNECT_SECRET = "acp-connect", "connect-secret-0123"
LINK = re.compile(r"open (http://\S+/connect\?link=\S+) and paste")


@pytest.fixture(scope="module")
def issuer() -> Iterator[RunningIssuer]:
    with serve_issuer() as running:
        yield running


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("connect") / "keys.sqlite"


@pytest.fixture(scope="module")
def server(issuer: RunningIssuer, running_sandbox: RunningSandbox, store: Path) -> Iterator[HttpServer]:
    port = free_port()
    env = connect_env(issuer, running_sandbox, port, store)
    with http_server(**env) as running:
        yield running


def connect_settings(issuer: RunningIssuer, origin: str, store: str | Path) -> dict[str, str]:
    """The settings of the connect page served on `origin` (its client registered at `issuer`) and `store`."""
    client = f"{CONNECT_CLIENT}-{origin.rsplit(':', 1)[1]}"
    issuer.register_client(client, CONNECT_SECRET, redirect_uris=[f"{origin}/connect/callback"])
    return {
        "ACP_MCP_OAUTH_ISSUER": issuer.issuer,
        "ACP_MCP_PUBLIC_URL": f"{origin}/mcp",
        "ACP_MCP_KEY_ENCRYPTION_KEY": KEK,
        "ACP_MCP_KEY_STORE": str(store),
        "ACP_MCP_CONNECT_CLIENT_ID": client,
        "ACP_MCP_CONNECT_CLIENT_SECRET": CONNECT_SECRET,
    }


def connect_env(issuer: RunningIssuer, sandbox: RunningSandbox, port: int, store: str | Path) -> dict[str, str]:
    """A server on `port` whose users connect their own keys (none shared), signing in at `issuer`."""
    settings = connect_settings(issuer, f"http://127.0.0.1:{port}", store)
    env = sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID, ACP_MCP_PORT=str(port), **settings)
    del env["COMPUTER_AGENTS_API_KEY"]  # nobody acts with a shared key here
    return env


async def link_for(server: HttpServer, access: str) -> str:
    async with server.client(access) as client:
        result = await client.call_tool("list_agent_runs", {})
    match = LINK.search(error_text(result, "list_agent_runs"))
    assert match is not None, error_text(result, "list_agent_runs")
    return match[1]


async def submit(issuer: RunningIssuer, link: str, key: str, *, user: str, action: str = "connect") -> httpx2.Response:
    """What `user`'s browser does with `link`: open it (signing in at the issuer as `user` on the way), then send
    the form. The answer to the form, or to the opening when it showed no form."""
    issuer.signed_in = user
    token = link.split("link=", 1)[1]
    async with httpx2.AsyncClient(follow_redirects=True, timeout=10) as browser:
        opened = await browser.get(link)
        if opened.status_code != 200:
            return opened
        return await browser.post(link.split("?", 1)[0], data={"link": token, "key": key, "action": action})


async def test_a_user_without_a_key_gets_a_link_connects_their_key_and_the_next_call_uses_it(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    access = issuer.mint(aud=server.url, sub="erin")
    link = await link_for(server, access)
    assert api_requests(sandbox) == []

    issuer.signed_in = "erin"
    async with httpx2.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(link)
    signing_in = [(r.status_code, r.url.path) for r in page.history]
    refused = await submit(issuer, link, "tb_not_a_key_of_any_account", user="erin")
    connected = await submit(issuer, link, API_KEY, user="erin")
    again = await submit(issuer, link, API_KEY, user="erin")
    async with server.client(access) as client:
        listed = await client.call_tool("list_agent_runs", {})

    assert signing_in == [(303, "/connect"), (302, "/authorize"), (303, "/connect/callback")]
    assert page.status_code == 200 and 'type="password"' in page.text and "Connect your Computer Agents" in page.text
    assert f"For <strong>erin</strong>, signed in at {issuer.issuer}" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert refused.status_code == 400 and "refused this key" in refused.text, "a wrong key costs nothing"
    assert connected.status_code == 200 and "Connected" in connected.text
    assert again.status_code == 400 and "already used" in again.text
    assert not listed.is_error
    assert [r.headers["authorization"] for r in api_requests(sandbox, method="GET")][-1] == f"Bearer {API_KEY}"
    assert all(API_KEY not in text for text in (page.text, refused.text, connected.text))


async def test_a_forged_or_altered_link_shows_the_expired_page_and_stores_nothing(
    server: HttpServer, issuer: RunningIssuer
) -> None:
    link = await link_for(server, issuer.mint(aud=server.url, sub="frank"))
    async with httpx2.AsyncClient() as http:
        altered = await http.get(link[:-3] + "xyz")
    posted = await submit(issuer, link[:-3] + "xyz", API_KEY, user="frank")

    assert altered.status_code == 400 and "expired" in altered.text
    assert posted.status_code == 400
    assert LINK.search(error_text(await _call(server, issuer, "frank"), "list_agent_runs"))


async def test_a_link_forwarded_to_another_user_or_opened_signed_out_takes_no_key(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    link = await link_for(server, issuer.mint(aud=server.url, sub="eve"))

    phished = await submit(issuer, link, API_KEY, user="bob")
    issuer.signed_in = None
    async with httpx2.AsyncClient(follow_redirects=True) as browser:
        signed_out = await browser.get(link)
    token = link.split("link=", 1)[1]
    async with httpx2.AsyncClient() as bare:
        posted = await bare.post(link.split("?", 1)[0], data={"link": token, "key": API_KEY, "action": "connect"})

    assert phished.status_code == 403 and "This link is for another account" in phished.text
    assert signed_out.status_code == 401, "the issuer asks the user to sign in; no form without it"
    assert posted.status_code == 403, "a form sent without signing in is refused"
    assert api_requests(sandbox) == [], "the key was never even checked"
    assert LINK.search(error_text(await _call(server, issuer, "eve"), "list_agent_runs")), "eve has no key"


async def _call(server: HttpServer, issuer: RunningIssuer, sub: str) -> CallToolResult:
    async with server.client(issuer.mint(aud=server.url, sub=sub)) as client:
        return await client.call_tool("list_agent_runs", {})


async def test_the_connected_page_can_disconnect_and_the_key_is_forgotten_at_once(
    server: HttpServer, issuer: RunningIssuer
) -> None:
    access = issuer.mint(aud=server.url, sub="grace")
    connected = await submit(issuer, await link_for(server, access), API_KEY, user="grace")
    async with server.client(access) as client:
        assert not (await client.call_tool("list_agent_runs", {})).is_error
    token = re.search(r'name="link" value="([^"]+)"', connected.text)
    assert token is not None, connected.text

    again = f"{server.url.replace('/mcp', '/connect')}?link={token[1]}"
    gone = await submit(issuer, again, "", action="disconnect", user="grace")

    assert gone.status_code == 200 and "Disconnected" in gone.text
    assert LINK.search(error_text(await _call(server, issuer, "grace"), "list_agent_runs"))


async def test_a_2026_client_is_sent_to_the_page_by_url_elicitation_and_its_retry_runs_with_the_connected_key(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    asked: list[ElicitRequestParams] = []

    async def user_connects(context: object, params: ElicitRequestParams) -> ElicitResult:
        """The user opens the page the client shows and pastes their key; then the client retries."""
        asked.append(params)
        assert isinstance(params, ElicitRequestURLParams)
        assert (await submit(issuer, params.url, API_KEY, user="heidi")).status_code == 200
        return ElicitResult(action="accept")

    access = issuer.mint(aud=server.url, sub="heidi")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {access}"}, timeout=30) as http,
        Client(streamable_http_client(server.url, http_client=http), elicitation_callback=user_connects) as client,
    ):
        listed = await client.call_tool("list_agent_runs", {})

    (params,) = asked
    assert isinstance(params, ElicitRequestURLParams) and params.message == CONNECT_PROMPT
    assert params.url.startswith(server.url.replace("/mcp", "/connect?link="))
    assert not listed.is_error, text_of(listed)
    assert [r.path for r in api_requests(sandbox)] == ["/v1/servers", runs_path()], "the key check, then the call"


async def test_a_2025_client_is_sent_to_the_page_by_the_url_elicitation_error(
    server: HttpServer, issuer: RunningIssuer
) -> None:
    async def never_called(context: object, params: ElicitRequestParams) -> ElicitResult:
        raise AssertionError("on 2025-11-25 the server asks by error, not by request")

    access = issuer.mint(aud=server.url, sub="ivy")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {access}"}, timeout=30) as http,
        Client(
            streamable_http_client(server.url, http_client=http), elicitation_callback=never_called, mode="legacy"
        ) as client,
    ):
        with pytest.raises(MCPError) as caught:
            await client.call_tool("list_agent_runs", {})

    assert caught.value.error.code == URL_ELICITATION_REQUIRED
    (elicitation,) = caught.value.error.data["elicitations"]
    assert elicitation["mode"] == "url" and elicitation["message"] == CONNECT_PROMPT
    assert elicitation["url"].startswith(server.url.replace("/mcp", "/connect?link="))


def test_the_store_file_holds_no_key_in_clear(server: HttpServer, store: Path) -> None:
    assert store.stat().st_size > 0
    assert API_KEY.encode() not in store.read_bytes()


@pytest.mark.external
async def test_in_a_real_browser_the_link_opens_the_page_the_key_is_connected_and_nothing_leaves_the_page(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    access = issuer.mint(aud=server.url, sub="judy")
    link = await link_for(server, access)
    issuer.signed_in = "judy"

    report = await anyio.to_thread.run_sync(
        lambda: drive_form(
            link,
            [{"fill": "input[name=key]", "value": API_KEY}, {"click": "button[value=connect]"}],
            allowed_origins=[issuer.issuer],
        )
    )
    async with server.client(access) as client:
        listed = await client.call_tool("list_agent_runs", {})

    text = report["text"] or ""
    assert report["status"] == 200 and text.startswith("Connected")
    origin, issuer_origin = server.url.removesuffix("/mcp"), issuer.issuer
    assert [(n["method"], n["status"], n["url"].split("?")[0]) for n in report["navigations"]] == [
        ("GET", 303, f"{origin}/connect"),  # not signed in: off to the issuer
        ("GET", 302, f"{issuer_origin}/authorize"),
        ("GET", 303, f"{origin}/connect/callback"),  # signed in as judy: back to the link
        ("GET", 200, f"{origin}/connect"),
        ("POST", 200, f"{origin}/connect"),
    ]
    assert report["foreign_requests"] == [] and report["console_errors"] == [] and report["page_errors"] == []
    assert API_KEY not in text
    assert not listed.is_error
    assert [r.headers["authorization"] for r in api_requests(sandbox)][-1] == f"Bearer {API_KEY}"


@pytest.mark.external
async def test_in_a_real_browser_the_elicitation_url_leads_to_a_stored_key_and_the_retry_runs_with_it(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    reports: list[BrowserReport] = []

    async def browser_opens(context: object, params: ElicitRequestParams) -> ElicitResult:
        """What a desktop client does with a URL elicitation: open it in the user's browser."""
        assert isinstance(params, ElicitRequestURLParams)
        steps = [{"fill": "input[name=key]", "value": API_KEY}, {"click": "button[value=connect]"}]
        opened = lambda: drive_form(params.url, steps, allowed_origins=[issuer.issuer])  # noqa: E731
        reports.append(await anyio.to_thread.run_sync(opened))
        return ElicitResult(action="accept")

    access = issuer.mint(aud=server.url, sub="kim")
    issuer.signed_in = "kim"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {access}"}, timeout=60) as http,
        Client(streamable_http_client(server.url, http_client=http), elicitation_callback=browser_opens) as client,
    ):
        started = await client.call_tool("start_agent_run", {"content": "hello", "mode": "sync"})

    (report,) = reports
    assert (report["text"] or "").startswith("Connected") and report["foreign_requests"] == []
    assert started.structured_content["run"]["status"] == "completed", text_of(started)
    assert [r.path for r in api_requests(sandbox)] == ["/v1/servers", runs_path()]


async def test_a_key_store_that_fails_answers_503_not_a_traceback(
    issuer: RunningIssuer, running_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    store = tmp_path / "keys.sqlite"
    env = connect_env(issuer, running_sandbox, free_port(), store)
    with http_server("--stateless", **env) as broken:
        with sqlite3.connect(store) as db:
            db.execute("DROP TABLE acp_mcp_keys")
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(
                broken.url,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers=MCP_HEADERS | {"Authorization": f"Bearer {issuer.mint(aud=broken.url, sub='lee')}"},
            )
        _, log = broken.stop()

    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in log and "the key store failed to read a key: OperationalError" in log


async def test_a_sign_in_that_comes_back_forged_or_without_its_cookie_signs_nobody_in(
    server: HttpServer, issuer: RunningIssuer, sandbox: RunningSandbox
) -> None:
    link = await link_for(server, issuer.mint(aud=server.url, sub="liam"))
    issuer.signed_in = "liam"
    callback = server.url.replace("/mcp", "/connect/callback")
    async with httpx2.AsyncClient() as browser:
        to_issuer = await browser.get(link)
        back = await browser.get(to_issuer.headers["location"])  # the issuer's redirect, with code and state
        state = parse_qs(urlsplit(back.headers["location"]).query)["state"][0]
        forged = await browser.get(callback, params={"code": "made-up", "state": state})
    async with httpx2.AsyncClient() as other_browser:  # the right code and state, but not the browser that began
        stolen = await other_browser.get(back.headers["location"])
    async with httpx2.AsyncClient() as http:
        wrong_method = await http.put(link)

    assert to_issuer.status_code == 303 and to_issuer.headers["location"].startswith(f"{issuer.issuer}/authorize?")
    assert "acp_mcp_pkce=" in to_issuer.headers["set-cookie"] and "HttpOnly" in to_issuer.headers["set-cookie"]
    assert (forged.status_code, stolen.status_code) == (400, 400)
    assert "Signing in did not work" in forged.text and "set-cookie" not in stolen.headers
    assert wrong_method.status_code == 405
    assert api_requests(sandbox) == []


async def test_a_signed_in_user_can_replace_or_disconnect_their_key_at_connect_any_time_without_a_link(
    server: HttpServer, issuer: RunningIssuer
) -> None:
    page = server.url.replace("/mcp", "/connect")
    access = issuer.mint(aud=server.url, sub="maya")
    assert (await submit(issuer, await link_for(server, access), API_KEY, user="maya")).status_code == 200

    issuer.signed_in = "maya"
    async with httpx2.AsyncClient(follow_redirects=True) as browser:
        own = await browser.get(page)
        token = re.search(r'name="link" value="([^"]+)"', own.text)
        assert token is not None, own.text
        gone = await browser.post(page, data={"link": token[1], "action": "disconnect"})

    assert [(r.status_code, r.url.path) for r in own.history] == [
        (303, "/connect"),
        (302, "/authorize"),
        (303, "/connect/callback"),
    ]
    assert own.status_code == 200 and "For <strong>maya</strong>" in own.text
    assert gone.status_code == 200 and "Disconnected" in gone.text
    assert LINK.search(error_text(await _call(server, issuer, "maya"), "list_agent_runs"))
