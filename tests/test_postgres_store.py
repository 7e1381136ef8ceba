"""The key store on a real PostgreSQL (Debian's, started in a temp dir), shared by replicas: a key connected on
one replica's page is used by another, and a connect link used on one is spent on all; and two replicas behind
HAProxy (Debian's, round robin), where a user connects their key through the balancer and is then served by both."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from acp_mcp.keystore import open_key_store
from acp_mcp.sandbox import RunningSandbox
from bench.balancer import haproxy_config

from ._issuer import serve_issuer
from ._postgres import PostgresServer, serve_postgres
from ._tooling import free_port, http_server
from .conftest import API_KEY, SERVER_ID, api_requests, error_text, runs_path, sandbox_env
from .test_http_connect import LINK, connect_settings, submit

pytestmark = [pytest.mark.external, pytest.mark.anyio]

KEK = bytes(range(32))
ALICE, BOB = "oauth https://id.example alice", "oauth https://id.example bob"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with serve_postgres() as server:
        yield server


async def test_two_stores_on_one_database_share_keys_and_spend_each_link_once(postgres: PostgresServer) -> None:
    url = postgres.create_database("shared_keys")
    first, second = open_key_store(url, KEK), open_key_store(url, KEK)

    await first.put(ALICE, "tb_alice_key_0123456789")
    seen = await second.get(ALICE)
    await second.put(ALICE, "tb_alice_new_key_0123456789")
    updated = await first.get(ALICE)
    await first.delete(ALICE)
    gone, unknown = await second.get(ALICE), await second.get(BOB)
    links = [await first.use_link("n1", 100.0, 10.0), await second.use_link("n1", 100.0, 20.0)]
    await first.aclose()
    await second.aclose()

    assert (seen, updated, gone, unknown) == ("tb_alice_key_0123456789", "tb_alice_new_key_0123456789", None, None)
    assert links == [True, False]


async def test_a_key_connected_on_one_replica_is_used_by_another(
    postgres: PostgresServer, running_sandbox: RunningSandbox, sandbox: RunningSandbox
) -> None:
    database = postgres.create_database("replicas")
    with serve_issuer() as issuer:
        ports = [free_port(), free_port()]
        public = f"http://127.0.0.1:{ports[0]}/mcp"  # one canonical URL: both replicas serve the same resource
        common = sandbox_env(
            running_sandbox,
            ACP_SERVER_ID=SERVER_ID,
            ACP_MCP_ALLOWED_HOSTS=f"127.0.0.1:{ports[1]}",
            **connect_settings(issuer, public.removesuffix("/mcp"), database),
        )
        del common["COMPUTER_AGENTS_API_KEY"]
        with (
            http_server("--stateless", ACP_MCP_PORT=str(ports[0]), **common) as one,
            http_server("--stateless", ACP_MCP_PORT=str(ports[1]), **common) as two,
        ):
            access = issuer.mint(aud=public, sub="ivan")
            async with one.client(access) as client:
                refused = await client.call_tool("list_agent_runs", {})
            link = LINK.search(error_text(refused, "list_agent_runs"))
            assert link is not None
            connected = await submit(issuer, link[1], API_KEY, user="ivan")
            async with two.client(access) as client:
                listed = await client.call_tool("list_agent_runs", {})
            spent = await submit(issuer, link[1], API_KEY, user="ivan")

    assert connected.status_code == 200
    assert not listed.is_error
    requests = api_requests(sandbox)
    assert [r.path for r in requests] == ["/v1/servers", runs_path()], (
        "one key check, then the list: a spent link sends nothing"
    )
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {API_KEY}"}
    assert spent.status_code == 400 and "already used" in spent.text


# Two replicas behind HAProxy

REPLICAS = ("r1", "r2")
SERVED_BY = "    http-response set-header X-Served-By %s\n"
"""Appended to `haproxy_config` (its last section is the backend): each answer names the replica that served it."""
HAPROXY_START_SECONDS = 20


@dataclass(frozen=True)
class Served:
    """One request through the balancer: its method and path, the JSON-RPC method of an MCP POST, the status and
    the replica that answered (the ``X-Served-By`` header HAProxy adds; empty if it is missing)."""

    method: str
    path: str
    rpc: str | None
    status: int
    replica: str


@dataclass
class Trace:
    """Every request made through the balancer by the clients that record into it, in order."""

    front: int
    served: list[Served] = field(default_factory=list)

    async def record(self, response: httpx2.Response) -> None:
        request = response.request
        if request.url.port != self.front:
            return  # the issuer's sign-in page
        body = json.loads(request.content) if request.method == "POST" and request.url.path == "/mcp" else {}
        rpc = body.get("method") if isinstance(body, dict) else None
        self.served.append(
            Served(request.method, request.url.path, rpc, response.status_code, response.headers.get("x-served-by", ""))
        )

    def replicas(self, method: str, path: str, rpc: str | None = None) -> list[str]:
        """Which replica served each request of `method` on `path` (of JSON-RPC method `rpc`), in order."""
        return [s.replica for s in self.served if (s.method, s.path, s.rpc) == (method, path, rpc)]


def haproxy_states(stats: Path) -> dict[str, str]:
    """The status (UP, DOWN...) of each replica in HAProxy's `show stat` CSV."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(stats))
        sock.sendall(b"show stat\n")
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {row["svname"]: row["status"] for row in rows if row["svname"] in REPLICAS}


@contextmanager
def balancer(front: int, ports: dict[str, int], folder: Path) -> Iterator[None]:
    """HAProxy on `front`, round robin over `ports` (`haproxy_config` plus `SERVED_BY`), once it sees every replica
    up; stopped at exit."""
    haproxy = shutil.which("haproxy") or pytest.fail("haproxy is missing: install Debian's haproxy (.ci/run does)")
    stats, config = folder / "stats.sock", folder / "haproxy.cfg"
    config.write_text(haproxy_config(front, stats, ports) + SERVED_BY)
    process = subprocess.Popen(
        [haproxy, "-f", str(config), "-db"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + HAPROXY_START_SECONDS
        while not (stats.exists() and haproxy_states(stats) == dict.fromkeys(REPLICAS, "UP")):
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "HAProxy did not see both replicas up"
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@asynccontextmanager
async def traced_client(url: str, access: str, trace: Trace) -> AsyncIterator[Client]:
    """An MCP client on `url` sending `access` as its bearer token, recording each request into `trace`."""
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {access}"}, timeout=30, event_hooks={"response": [trace.record]}
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_behind_haproxy_a_user_connects_their_key_through_the_balancer_and_both_replicas_serve_their_calls(
    postgres: PostgresServer, running_sandbox: RunningSandbox, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    database = postgres.create_database("balanced")
    ports, front = {name: free_port() for name in REPLICAS}, free_port()
    public = f"http://127.0.0.1:{front}/mcp"  # the balancer's URL: the resource both replicas serve
    trace = Trace(front)
    with serve_issuer() as issuer:
        common = sandbox_env(
            running_sandbox,
            ACP_SERVER_ID=SERVER_ID,
            # the Host the balancer passes on (on loopback, and as the public URL's, each replica allows it anyway)
            ACP_MCP_ALLOWED_HOSTS=f"127.0.0.1:{front}",
            **connect_settings(issuer, public.removesuffix("/mcp"), database),
        )
        del common["COMPUTER_AGENTS_API_KEY"]
        with (
            http_server("--stateless", ACP_MCP_PORT=str(ports["r1"]), **common),
            http_server("--stateless", ACP_MCP_PORT=str(ports["r2"]), **common),
            balancer(front, ports, tmp_path),
        ):
            access = issuer.mint(aud=public, sub="judy")
            async with traced_client(public, access, trace) as client:
                refused = await client.call_tool("list_agent_runs", {})
            before_connecting = api_requests(sandbox)
            link = LINK.search(error_text(refused, "list_agent_runs"))
            assert link is not None, error_text(refused, "list_agent_runs")
            page, token = link[1].split("?", 1)[0], link[1].split("link=", 1)[1]
            issuer.signed_in = "judy"  # her browser signs in at the issuer on the way to the form
            hooks = {"response": [trace.record]}
            async with httpx2.AsyncClient(timeout=30, event_hooks=hooks, follow_redirects=True) as http:
                forms = [await http.get(link[1]) for _ in REPLICAS]
                connected = await http.post(page, data={"link": token, "key": API_KEY})
                spent = [await http.post(page, data={"link": token, "key": API_KEY}) for _ in REPLICAS]
            async with traced_client(public, access, trace) as client:
                listed = [await client.call_tool("list_agent_runs", {}) for _ in range(4)]

    assert before_connecting == []
    assert urlsplit(link[1])[:3] == ("http", f"127.0.0.1:{front}", "/connect"), "the link is on the public URL"
    assert [(f.status_code, 'type="password"' in f.text) for f in forms] == [(200, True), (200, True)]
    assert sorted(set(trace.replicas("GET", "/connect"))) == ["r1", "r2"], "either replica reads a link one signed"
    assert connected.status_code == 200 and "Connected" in connected.text
    assert [(s.status_code, "already used" in s.text) for s in spent] == [(400, True), (400, True)]
    assert sorted(trace.replicas("POST", "/connect")[1:]) == ["r1", "r2"], "the link is spent on both"
    assert [result.is_error for result in listed] == [False] * 4
    calls = trace.replicas("POST", "/mcp", "tools/call")
    assert sorted(set(calls[1:])) == ["r1", "r2"], f"both replicas served calls with the connected key: {calls}"
    assert all(s.replica in REPLICAS for s in trace.served), trace.served
    refusals = [s.status for s in trace.served if s.status not in (200, 303)]
    assert refusals == [400, 400], "only the spent link was refused (303s are the sign-in's redirects)"
    requests = api_requests(sandbox)
    assert [r.path for r in requests] == ["/v1/servers"] + [runs_path()] * 4, "one key check (spent links send nothing)"
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {API_KEY}"}
    assert all(access not in json.dumps([r.headers, r.query, r.body]) for r in requests)
