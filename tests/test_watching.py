"""The run watcher's caps: per subscriber, and per process whoever asks; and what counts as a change."""

from __future__ import annotations

import anyio
import pytest

from acp_mcp.client import ACPClient
from acp_mcp.config import Settings
from acp_mcp.limits import MAX_RUNS_PER_SUBSCRIBER
from acp_mcp.models import Event, events_fingerprint
from acp_mcp.uris import run_uri
from acp_mcp.watching import RunWatcher, Subscriber, TooManySubscriptions

from .conftest import FAST_POLLS, SERVER_ID

pytestmark = pytest.mark.anyio


async def ignore(uri: str) -> None:
    """A subscriber that is told nothing (no poll runs in these tests)."""


async def test_a_process_polls_at_most_its_cap_of_runs_whoever_asks(settings: Settings) -> None:
    watcher = RunWatcher(FAST_POLLS, 5.0, max_runs=2)
    client = ACPClient(settings)
    first, second = run_uri(SERVER_ID, "run_1"), run_uri(SERVER_ID, "run_2")
    alice, bob = Subscriber(ignore, "alice", client), Subscriber(ignore, "bob", client)
    async with anyio.create_task_group() as group:
        watcher.start(group)
        watcher.watch(alice, [first, second])
        with pytest.raises(TooManySubscriptions) as full:
            watcher.watch(bob, [first])  # bob's watch of the same run is a poll of its own, with bob's key
        watcher.watch(alice, [first])  # already polled for alice: nothing new
        watcher.unwatch(alice, [second])
        watcher.watch(bob, [first])
        watched = sorted(watcher._watches)
        group.cancel_scope.cancel()
    await client.aclose()

    assert str(full.value) == (
        "this MCP server is watching as many runs as it can (2); subscribe again in a minute, "
        "or poll the run with get_agent_run"
    )
    assert watched == [("alice", first), ("bob", first)]


async def test_a_subscriber_watches_at_most_its_own_cap(settings: Settings) -> None:
    watcher = RunWatcher(FAST_POLLS, 5.0)
    client = ACPClient(settings)
    alice = Subscriber(ignore, "alice", client)
    uris = [run_uri(SERVER_ID, f"run_{n}") for n in range(MAX_RUNS_PER_SUBSCRIBER + 1)]
    async with anyio.create_task_group() as group:
        watcher.start(group)
        with pytest.raises(TooManySubscriptions):
            watcher.watch(alice, uris)
        group.cancel_scope.cancel()
    await client.aclose()

    assert watcher.watched == frozenset()


def test_a_change_is_a_new_status_or_another_set_of_events_never_their_order_or_missing_ids() -> None:
    said = Event(role="assistant", content="hi", createdAt="2026-12-06T10:00:00.000Z")
    told = Event(role="assistant", content="ho", createdAt="2026-12-06T10:00:00.000Z")
    started = Event(id="evt_1", role="system", content="Agent started")
    seen = events_fingerprint("running", [started, said])

    assert events_fingerprint("running", [said, started]) == seen  # the order alone is no change
    assert events_fingerprint("running", [started, told]) != seen  # same count, another event (no ids)
    assert events_fingerprint("completed", [started, said]) != seen
    assert events_fingerprint("running", None) != events_fingerprint("running", [])
