"""Where the ACP keys users connect themselves are kept: encrypted, bound to their principal, on disk or shared.

A key is sealed with AES-256-GCM under the key-encryption key (``ACP_MCP_KEY_ENCRYPTION_KEY``, 32
random bytes in base64), with the principal as associated data: a sealed key copied to another row
does not open. Rows are keyed by a hash of the principal, never the principal itself. The store is a
SQLite file (one machine; the default) or PostgreSQL (``postgresql://…``, shared by replicas; needs
``pip install 'acp-mcp[postgres]'``). It also remembers which connect links were used, so each works once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import ConfigError

logger = logging.getLogger(__name__)

KEY_BYTES = 32
_NONCE_BYTES = 12
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS acp_mcp_keys (principal TEXT PRIMARY KEY, sealed BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS acp_mcp_links (nonce TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
)


def read_kek(text: str) -> bytes:
    """The key-encryption key from its base64 text; `ConfigError` unless it is 32 bytes."""
    try:
        kek = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        kek = b""
    if len(kek) != KEY_BYTES:
        raise ConfigError(
            "ACP_MCP_KEY_ENCRYPTION_KEY must be 32 random bytes in base64 "
            "(e.g. python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
        )
    return kek


def row_id(principal: str) -> str:
    """The row a principal's key is kept under: a hash, so the store holds no identity."""
    return hashlib.sha256(b"acp-mcp key row\x00" + principal.encode()).hexdigest()


class Sealer:
    """Seals and opens keys under the key-encryption key, bound to their principal."""

    def __init__(self, kek: bytes) -> None:
        self._aead = AESGCM(kek)

    def seal(self, principal: str, key: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key.encode(), principal.encode())

    def open(self, principal: str, sealed: bytes) -> str | None:
        """The key, or None when `sealed` was not sealed for `principal` under this key."""
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], principal.encode()).decode()
        except (InvalidTag, ValueError):
            return None


class Rows(Protocol):
    """The storage under a `KeyStore`: sealed keys by row id, and used link nonces."""

    async def get(self, row: str) -> bytes | None: ...
    async def put(self, row: str, sealed: bytes) -> None: ...
    async def delete(self, row: str) -> None: ...
    async def use(self, nonce: str, expires_at: float, now: float) -> bool: ...
    async def used(self, nonce: str) -> bool: ...
    async def aclose(self) -> None: ...


class StoreUnavailableError(Exception):
    """The key store could not be read or written (its database is down or broken); nothing was changed."""


class KeyStore:
    """Each principal's connected ACP key, sealed in `rows`. Any failure of the database is one
    `StoreUnavailableError` (logged once, without the statement's values), so callers answer 503, not a trace."""

    def __init__(self, rows: Rows, sealer: Sealer) -> None:
        self._rows = rows
        self._sealer = sealer

    @contextlib.asynccontextmanager
    async def _guarded(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            logger.warning("the key store failed to %s: %s", what, type(exc).__name__)
            raise StoreUnavailableError(what) from None

    async def get(self, principal: str) -> str | None:
        async with self._guarded("read a key"):
            sealed = await self._rows.get(row_id(principal))
        return self._sealer.open(principal, sealed) if sealed is not None else None

    async def put(self, principal: str, key: str) -> None:
        async with self._guarded("save a key"):
            await self._rows.put(row_id(principal), self._sealer.seal(principal, key))

    async def delete(self, principal: str) -> None:
        async with self._guarded("delete a key"):
            await self._rows.delete(row_id(principal))

    async def use_link(self, nonce: str, expires_at: float, now: float) -> bool:
        """True the first time a link's nonce is used (until it expires); False ever after."""
        async with self._guarded("spend a link"):
            return await self._rows.use(nonce, expires_at, now)

    async def link_used(self, nonce: str) -> bool:
        """Whether a link's nonce was used already (a cheap look before the work a use would do)."""
        async with self._guarded("look up a link"):
            return await self._rows.used(nonce)

    async def aclose(self) -> None:
        await self._rows.aclose()


class _SQLRows:
    """The statements both databases share (written with ``%s`` marks); `_run` executes one."""

    async def _run(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def get(self, row: str) -> bytes | None:
        found = await self._run("SELECT sealed FROM acp_mcp_keys WHERE principal = %s", row)
        return bytes(found[0][0]) if found else None

    async def put(self, row: str, sealed: bytes) -> None:
        await self._run(
            "INSERT INTO acp_mcp_keys VALUES (%s, %s) ON CONFLICT (principal) DO UPDATE SET sealed = excluded.sealed",
            row,
            sealed,
        )

    async def delete(self, row: str) -> None:
        await self._run("DELETE FROM acp_mcp_keys WHERE principal = %s", row)

    async def use(self, nonce: str, expires_at: float, now: float) -> bool:
        await self._run("DELETE FROM acp_mcp_links WHERE expires_at < %s", now)
        added = await self._run(
            "INSERT INTO acp_mcp_links VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING nonce", nonce, expires_at
        )
        return bool(added)

    async def used(self, nonce: str) -> bool:
        return bool(await self._run("SELECT 1 FROM acp_mcp_links WHERE nonce = %s", nonce))


class SQLiteRows(_SQLRows):
    """Rows in a SQLite file (one machine), on a worker thread."""

    def __init__(self, path: str) -> None:
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            for statement in _SCHEMA:
                self._db.execute(statement.replace("BYTEA", "BLOB").replace("DOUBLE PRECISION", "REAL"))
        except sqlite3.Error as exc:
            raise ConfigError(f"ACP_MCP_KEY_STORE {path}: {exc}") from None
        self._lock = threading.Lock()

    async def _run(self, sql: str, *args: Any) -> list[Any]:
        def run() -> list[Any]:
            with self._lock:
                return self._db.execute(sql.replace("%s", "?"), args).fetchall()

        return await anyio.to_thread.run_sync(run)

    async def aclose(self) -> None:
        self._db.close()


class PostgresRows(_SQLRows):
    """Rows in PostgreSQL (shared by replicas), over one psycopg connection opened on first use."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                "ACP_MCP_KEY_STORE is a PostgreSQL URL: install the driver with pip install 'acp-mcp[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._url = url
        self._connection: Any = None
        self._lock = anyio.Lock()

    async def _run(self, sql: str, *args: Any) -> list[Any]:
        async with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = await self._psycopg.AsyncConnection.connect(self._url, autocommit=True)
                for statement in _SCHEMA:
                    await self._connection.execute(statement)
            cursor = await self._connection.execute(sql, args)
            return list(await cursor.fetchall()) if cursor.description else []

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def open_key_store(location: str, kek: bytes) -> KeyStore:
    """The store at `location`: a ``postgresql://`` URL, else a SQLite file path."""
    is_postgres = location.startswith(("postgresql://", "postgres://"))
    rows: Rows = PostgresRows(location) if is_postgres else SQLiteRows(location)
    return KeyStore(rows, Sealer(kek))
