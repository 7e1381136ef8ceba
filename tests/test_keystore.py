"""The key store: keys sealed for their principal, rows that hold no identity, one-use link nonces, and the
connect links themselves, on a SQLite file (PostgreSQL: tests/test_postgres_store.py)."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.config import ConfigError
from acp_mcp.keystore import KEY_BYTES, Sealer, StoreUnavailableError, open_key_store, read_kek, row_id
from acp_mcp.limits import CONNECT_LINK_SECONDS
from acp_mcp.links import ConnectLinks, Signer

pytestmark = pytest.mark.anyio

KEK = bytes(range(KEY_BYTES))
ALICE, BOB = "oauth https://id.example alice", "oauth https://id.example bob"
KEY = "tb_alice_key_0123456789"


def test_a_sealed_key_opens_only_for_its_principal_and_only_unaltered() -> None:
    sealer = Sealer(KEK)
    sealed = sealer.seal(ALICE, KEY)

    assert sealer.open(ALICE, sealed) == KEY
    assert sealer.open(BOB, sealed) is None
    assert sealer.open(ALICE, sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert Sealer(bytes(KEY_BYTES)).open(ALICE, sealed) is None
    assert KEY.encode() not in sealed
    assert sealer.seal(ALICE, KEY) != sealed, "a fresh nonce every time"


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_an_encryption_key_that_is_not_32_bytes_of_base64_is_one_config_error(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_kek(text)

    assert str(caught.value).startswith("ACP_MCP_KEY_ENCRYPTION_KEY must be 32 random bytes in base64")


async def test_the_sqlite_store_keeps_keys_across_reopening_and_its_rows_hold_no_identity(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.sqlite")
    store = open_key_store(path, KEK)
    await store.put(ALICE, KEY)
    await store.put(BOB, "tb_bob_key_0123456789")
    await store.delete(BOB)
    await store.aclose()

    reopened = open_key_store(path, KEK)
    found = (await reopened.get(ALICE), await reopened.get(BOB))
    await reopened.aclose()
    rows = sqlite3.connect(path).execute("SELECT principal, sealed FROM acp_mcp_keys").fetchall()

    assert found == (KEY, None)
    assert rows[0][0] == row_id(ALICE) and len(rows) == 1
    assert "alice" not in rows[0][0] and KEY.encode() not in rows[0][1]


async def test_a_sealed_key_moved_to_another_principals_row_does_not_open(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.sqlite")
    store = open_key_store(path, KEK)
    await store.put(ALICE, KEY)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE acp_mcp_keys SET principal = ?", (row_id(BOB),))

    assert await store.get(BOB) is None
    await store.aclose()


async def test_a_link_nonce_is_usable_once_and_expired_ones_are_forgotten(tmp_path: Path) -> None:
    store = open_key_store(str(tmp_path / "keys.sqlite"), KEK)

    unused = await store.link_used("n1")
    first, again = await store.use_link("n1", 100.0, 50.0), await store.use_link("n1", 100.0, 60.0)
    seen = await store.link_used("n1")
    await store.use_link("n2", 200.0, 150.0)
    after_expiry = await store.use_link("n1", 300.0, 150.0)
    await store.aclose()

    assert (unused, first, again, seen, after_expiry) == (False, True, False, True, True)


async def test_a_connect_link_names_its_principal_and_is_refused_forged_or_expired() -> None:
    clock = VirtualClock()
    signer = Signer(KEK, clock)
    links = ConnectLinks(signer, "https://acp.example")
    url = links.url(ALICE)
    token = url.split("link=", 1)[1]

    link = links.read(token)
    forged = ConnectLinks(Signer(bytes(KEY_BYTES), clock), "https://acp.example").read(token)
    other_purpose = signer.read("session", token)
    altered = links.read(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    await clock.sleep(CONNECT_LINK_SECONDS + 1)
    expired = links.read(token)

    assert url.startswith("https://acp.example/connect?link=")
    assert link is not None and link.principal == ALICE
    assert link.expires_at == VirtualClock().wall() + CONNECT_LINK_SECONDS
    assert (forged, altered, expired, links.read("garbage"), links.read("")) == (None, None, None, None, None)
    assert other_purpose is None, "a link is nothing as a sign-in session"
    assert links.url(ALICE) != url, "every link has its own nonce"


async def test_a_broken_database_is_one_store_unavailable_error_and_the_log_names_no_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "keys.sqlite")
    store = open_key_store(path, KEK)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE acp_mcp_keys")

    with pytest.raises(StoreUnavailableError):
        await store.put(ALICE, KEY)
    with pytest.raises(StoreUnavailableError):
        await store.get(ALICE)
    await store.aclose()

    assert [r.getMessage() for r in caplog.records] == [
        "the key store failed to save a key: OperationalError",
        "the key store failed to read a key: OperationalError",
    ]
