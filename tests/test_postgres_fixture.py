"""The PostgreSQL server the store's tests run against (`tests/_postgres.py`): a real one, reached with psycopg."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ._postgres import PostgresServer, serve_postgres

pytestmark = [pytest.mark.external, pytest.mark.anyio]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with serve_postgres() as server:
        yield server


async def test_a_table_created_over_the_url_gives_back_the_rows_inserted_into_it(postgres: PostgresServer) -> None:
    async with await psycopg.AsyncConnection.connect(postgres.url) as connection:
        await connection.execute("CREATE TABLE runs (id text PRIMARY KEY, state text NOT NULL)")
        await connection.execute("INSERT INTO runs VALUES (%s, %s), (%s, %s)", ("r1", "running", "r2", "done"))
        rows = await (await connection.execute("SELECT id, state FROM runs ORDER BY id")).fetchall()
        settings = await (await connection.execute("SELECT current_setting('fsync'), current_database()")).fetchone()

    assert rows == [("r1", "running"), ("r2", "done")]
    assert settings == ("off", "acp_mcp")


async def test_a_write_one_connection_commits_is_seen_by_another_and_not_before(postgres: PostgresServer) -> None:
    url = postgres.create_database("two_connections")
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as writer,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as reader,
    ):
        await writer.execute("CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL)")
        async with writer.transaction():
            await writer.execute("INSERT INTO leases VALUES ('sweeper', 'replica-a')")
            before = await (await reader.execute("SELECT holder FROM leases")).fetchall()
        after = await (await reader.execute("SELECT holder FROM leases")).fetchall()

    assert before == []
    assert after == [("replica-a",)]
