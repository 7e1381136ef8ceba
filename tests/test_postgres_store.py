"""The key store on a real PostgreSQL (Debian's, started in a temp dir), shared by replicas: a key connected on
one replica's page is used by another, and a connect link used on one is spent on all."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx2
import pytest

from acp_mcp.keystore import open_key_store
from acp_mcp.sandbox import RunningSandbox

from ._issuer import serve_issuer
from ._postgres import PostgresServer, serve_postgres
from ._tooling import free_port, http_server
from .conftest import API_KEY, SERVER_ID, api_requests, error_text, runs_path, sandbox_env
from .test_http_connect import LINK, submit

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
            ACP_MCP_OAUTH_ISSUER=issuer.issuer,
            ACP_MCP_PUBLIC_URL=public,
            ACP_MCP_ALLOWED_HOSTS=f"127.0.0.1:{ports[1]}",
            ACP_MCP_KEY_ENCRYPTION_KEY=base64.b64encode(KEK).decode(),
            ACP_MCP_KEY_STORE=database,
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
            connected = await submit(link[1], API_KEY)
            async with two.client(access) as client:
                listed = await client.call_tool("list_agent_runs", {})
            async with httpx2.AsyncClient() as http:
                spent = await http.post(
                    two.url.replace("/mcp", "/connect"), data={"link": link[1].split("link=")[1], "key": API_KEY}
                )

    assert connected.status_code == 200
    assert not listed.is_error
    requests = api_requests(sandbox)
    assert [r.path for r in requests] == ["/v1/servers", runs_path(), "/v1/servers"], "check, list, check again"
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {API_KEY}"}
    assert spent.status_code == 400 and "already used" in spent.text
