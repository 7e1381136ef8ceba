"""Both protocol eras, as the server claims them: capabilities, run subscriptions, completions, exact errors,
cache hints and the icon. Driven by `mcp.Client` in-process, in legacy (2025-11-25) and auto (2026-07-28) mode."""

from __future__ import annotations

import base64
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import INVALID_PARAMS, ResourceTemplateReference, ResourceUpdatedNotification

from acp_mcp.clock import VirtualClock
from acp_mcp.composition import Application, compose
from acp_mcp.config import Settings
from acp_mcp.limits import BINDINGS_TTL_SECONDS, MAX_RUNS_PER_SUBSCRIBER
from acp_mcp.sandbox import SANDBOX_SERVER_ID, Fault, RunningSandbox
from acp_mcp.sandbox.variants import FLAT_BODIES, LIMIT_MAX_50, NO_EVENT_IDS, OLDEST_FIRST

from .conftest import (
    FAST_POLLS,
    SERVER_ID,
    api_requests,
    connect,
    hanging_run,
    readings,
    runs_path,
    start_run,
    until,
)

pytestmark = pytest.mark.anyio

ERAS = ["legacy", "auto"]
TEMPLATE = ResourceTemplateReference(type="ref/resource", uri="acp://servers/{serverId}/runs/{resourceRunId}")


@asynccontextmanager
async def served(settings: Settings, mode: ConnectMode, **client: Any) -> AsyncIterator[tuple[Application, Client]]:
    application = compose(settings, policy=FAST_POLLS)
    async with Client(application.server, mode=mode, **client) as connected:
        yield application, connected


@asynccontextmanager
async def old_era_session(settings: Settings) -> AsyncIterator[tuple[Application, Client, list[str]]]:
    """A 2025-11-25 session that records the URIs of the resource updates it hears (its deprecated
    subscribe methods allowed: this era is tested on purpose)."""
    updates: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(message.params.uri)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        async with served(settings, "legacy", message_handler=on_message) as (application, client):
            yield application, client, updates


async def watchable_run(client: Client) -> tuple[str, str]:
    """A run that never ends by itself: its id and resource URI."""
    run_id = await hanging_run(client)
    return run_id, f"acp://servers/{SERVER_ID}/runs/{run_id}"


# -- capabilities ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_capabilities_claim_subscriptions_and_no_list_changes(settings: Settings, mode: str) -> None:
    async with served(settings, mode) as (_, client):
        capabilities = client.server_capabilities

    assert capabilities.resources is not None and capabilities.resources.subscribe is True
    assert capabilities.resources.list_changed is False
    assert capabilities.tools is not None and capabilities.tools.list_changed is False
    assert capabilities.prompts is not None and capabilities.prompts.list_changed is False
    assert capabilities.completions is not None


async def test_without_sessions_the_old_era_claims_no_subscriptions(settings: Settings) -> None:
    async with served(replace(settings, stateless=True), "legacy") as (_, client):
        resources = client.server_capabilities.resources

    assert resources is not None and resources.subscribe is False


# -- subscriptions ---------------------------------------------------------------------------------


@readings(FLAT_BODIES, NO_EVENT_IDS)
async def test_a_listen_stream_hears_a_watched_run_change_and_the_watch_ends_with_the_run(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with served(settings, "auto") as (application, client):
        run_id, uri = await watchable_run(client)
        async with client.listen(resource_subscriptions=[uri]) as stream:
            await until(lambda: any(r.path.endswith(f"{run_id}/events") for r in api_requests(sandbox)[1:]))
            assert application.state.watcher.watched == {uri}
            await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
            with anyio.fail_after(5):
                event = await anext(aiter(stream))
            assert isinstance(event, ResourceUpdated) and event.uri == uri
            await until(lambda: not application.state.watcher.watched)


async def test_two_streams_on_one_run_share_one_poll_and_leaving_stops_it(settings: Settings) -> None:
    async with served(settings, "auto") as (application, client):
        _, uri = await watchable_run(client)
        async with client.listen(resource_subscriptions=[uri]), client.listen(resource_subscriptions=[uri]):
            assert application.state.watcher.watched == {uri}
            (watch,) = application.state.watcher._watches.values()
            assert len(watch.subscribers) == 2
        await until(lambda: not application.state.watcher.watched)


async def test_an_old_era_session_is_notified_until_the_run_ends_and_can_unsubscribe(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with old_era_session(settings) as (application, client, updates):
        run_id, uri = await watchable_run(client)
        other_id, other = await watchable_run(client)
        sandbox.state.clear_requests()
        await client.subscribe_resource(uri)
        await client.subscribe_resource(other)
        await client.unsubscribe_resource(other)
        assert application.state.watcher.watched == {uri}
        # The watch's first poll is its baseline: a change before it is the state the subscriber starts from.
        await until(lambda: any(r.path.endswith(f"{run_id}/events") for r in api_requests(sandbox)))
        await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
        await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": other_id})
        await until(lambda: not application.state.watcher.watched)

    assert updates == [uri]


async def test_nobody_subscribed_means_no_run_is_watched(settings: Settings) -> None:
    async with served(settings, "auto") as (application, client):
        await hanging_run(client)
        assert application.state.watcher.watched == frozenset()


async def test_a_stream_may_watch_a_bounded_number_of_runs(settings: Settings) -> None:
    uris = [f"acp://servers/{SERVER_ID}/runs/run_{n:06d}" for n in range(MAX_RUNS_PER_SUBSCRIBER + 1)]
    async with served(settings, "auto") as (application, client):
        with pytest.raises(MCPError) as raised:
            async with client.listen(resource_subscriptions=uris):
                pass
        assert application.state.watcher.watched == frozenset()

    assert raised.value.error.code == INVALID_PARAMS
    assert f"at most {MAX_RUNS_PER_SUBSCRIBER} runs can be watched at once" in raised.value.error.message


# -- completions -----------------------------------------------------------------------------------


def lookups(path: str, variant: str) -> list[tuple[str, str, dict[str, str]]]:
    """The requests of one completion lookup: 100 asked, and, where 100 is refused, 50."""
    refused = [("GET", path, {"limit": "100"})] if variant == LIMIT_MAX_50 else []
    return [*refused, ("GET", path, {"limit": "50" if refused else "100"})]


@readings(OLDEST_FIRST, LIMIT_MAX_50)
@pytest.mark.parametrize("mode", ERAS)
async def test_run_ids_complete_from_the_servers_newest_runs_by_prefix(
    settings: Settings, sandbox: RunningSandbox, variant: str, mode: str
) -> None:
    async with served(replace(settings, default_server_id="srv_complete"), mode) as (_, client):
        ids = [(await start_run(client, {"serverId": "srv_complete", "content": "x"})).structured_content for _ in "ab"]
        sandbox.state.clear_requests()
        completion = (await client.complete(TEMPLATE, {"name": "resourceRunId", "value": "run_"})).completion
        none = (await client.complete(TEMPLATE, {"name": "resourceRunId", "value": "nope"})).completion

    assert completion.values[:2] == [ids[1]["run"]["id"], ids[0]["run"]["id"]]  # newest first, whatever the order
    assert none.values == [] and none.has_more is False
    lookup = lookups(runs_path("srv_complete"), variant)
    assert [(r.method, r.path, r.query) for r in api_requests(sandbox)] == lookup * 2


async def test_run_ids_complete_for_the_server_id_already_chosen(settings: Settings) -> None:
    async with served(settings, "auto") as (_, client):
        run = (await start_run(client, {"serverId": "srv_chosen", "content": "x"})).structured_content["run"]["id"]
        completion = (
            await client.complete(
                TEMPLATE, {"name": "resourceRunId", "value": ""}, context_arguments={"serverId": "srv_chosen"}
            )
        ).completion

    assert run in completion.values


@readings(OLDEST_FIRST, LIMIT_MAX_50)
async def test_server_ids_complete_from_the_default_then_the_servers_the_key_sees(
    settings: Settings, sandbox: RunningSandbox, variant: str
) -> None:
    async with served(replace(settings, default_server_id="srv_default"), "auto") as (_, client):
        await start_run(client, {"serverId": "srv_listed", "content": "x"})
        sandbox.state.clear_requests()
        completion = (await client.complete(TEMPLATE, {"name": "serverId", "value": "srv_"})).completion

    assert completion.values[0] == "srv_default" and "srv_listed" in completion.values[1:]
    assert SANDBOX_SERVER_ID in completion.values or completion.has_more  # unless the page was full
    assert [(r.method, r.path, r.query) for r in api_requests(sandbox)] == lookups("/v1/servers", variant)


@readings(OLDEST_FIRST, LIMIT_MAX_50)
async def test_server_ids_complete_only_with_servers_that_can_run_agents_their_bindings_remembered_a_while(
    settings: Settings, sandbox: RunningSandbox, clock: VirtualClock, variant: str
) -> None:
    state = sandbox.state
    for server_id, kind, bound in [
        ("srv_web_bound", "web_app", True),
        ("srv_web_plain", "web_app", False),
        ("srv_fn_bound", "function", True),
        ("srv_login", "auth", True),
        ("srv_vault", "secrets", False),
    ]:
        state.add_resource(server_id, kind, agent_runtime_bound=bound)
    async with connect(settings, clock=clock) as client:
        first = (await client.complete(TEMPLATE, {"name": "serverId", "value": "srv_"})).completion
        cached = (await client.complete(TEMPLATE, {"name": "serverId", "value": "srv_"})).completion
        requests = api_requests(sandbox)
        state.clear_requests()
        clock.advance(BINDINGS_TTL_SECONDS)
        later = (await client.complete(TEMPLATE, {"name": "serverId", "value": "srv_"})).completion

    assert {"srv_web_bound", "srv_fn_bound"} <= set(first.values)  # bound to an agent runtime
    assert not {"srv_web_plain", "srv_login", "srv_vault"} & set(first.values)  # no binding, or auth or secrets
    assert cached.values == first.values == later.values
    lookup = lookups("/v1/servers", variant)
    asked = ("srv_fn_bound", "srv_web_bound", "srv_web_plain")  # never an auth or secrets resource's
    bindings: list[tuple[str, str, dict[str, str]]] = [("GET", f"/v1/servers/{sid}/bindings", {}) for sid in asked]
    seen = [(r.method, r.path, r.query) for r in requests]
    assert seen[: len(lookup)] == lookup and sorted(seen[len(lookup) : -len(lookup)]) == bindings
    assert seen[-len(lookup) :] == lookup  # the second completion: the bindings are remembered
    later_seen = [(r.method, r.path, r.query) for r in api_requests(sandbox)]
    assert later_seen[: len(lookup)] == lookup and sorted(later_seen[len(lookup) :]) == bindings  # asked again


async def test_a_server_whose_bindings_cannot_be_read_is_left_out_and_asked_about_again(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.add_resource("srv_web_bound", "web_app", agent_runtime_bound=True)
    sandbox.state.inject(Fault(kind="status", status=500, method="GET", path_contains="/bindings"))
    async with served(settings, "auto") as (_, client):
        failed = (await client.complete(TEMPLATE, {"name": "serverId", "value": "srv_web"})).completion
        again = (await client.complete(TEMPLATE, {"name": "serverId", "value": "srv_web"})).completion

    assert (failed.values, again.values) == ([], ["srv_web_bound"])
    asked = [r.path for r in api_requests(sandbox) if r.path.endswith("/bindings")]
    assert asked == ["/v1/servers/srv_web_bound/bindings"] * 2  # a failure is not remembered


async def test_a_failing_lookup_completes_nothing_instead_of_failing(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject(Fault(kind="status", status=500, method="GET", times=10))
    async with served(replace(settings, default_server_id=SERVER_ID), "auto") as (_, client):
        completion = (await client.complete(TEMPLATE, {"name": "resourceRunId", "value": ""})).completion

    assert completion.values == []


@readings(OLDEST_FIRST, LIMIT_MAX_50)
async def test_more_runs_than_a_completion_holds_say_so(
    settings: Settings, sandbox: RunningSandbox, variant: str
) -> None:
    async with served(replace(settings, default_server_id="srv_many"), "auto") as (_, client):
        started = [
            (
                await client.call_tool(
                    "start_agent_run", {"serverId": "srv_many", "content": "/hang", "waitSeconds": 0}
                )
            ).structured_content["run"]["id"]
            for _ in range(101)
        ]
        completion = (await client.complete(TEMPLATE, {"name": "resourceRunId", "value": ""})).completion

    listed = 50 if variant == LIMIT_MAX_50 else 100  # the page the API accepted
    assert completion.values == started[::-1][:listed]
    assert completion.has_more is True and completion.total is None


# -- errors, cache hints, icon ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_reading_a_run_that_does_not_exist_is_invalid_params_with_the_uri(settings: Settings, mode: str) -> None:
    uri = f"acp://servers/{SERVER_ID}/runs/run_999999"
    async with served(settings, mode) as (_, client):
        with pytest.raises(MCPError) as raised:
            await client.read_resource(uri)

    assert (raised.value.error.code, raised.value.error.data) == (INVALID_PARAMS, {"uri": uri})
    assert "No run 'run_999999' was found" in raised.value.error.message


@pytest.mark.parametrize("mode", ERAS)
async def test_an_unknown_prompt_is_invalid_params(settings: Settings, mode: str) -> None:
    async with served(settings, mode) as (_, client):
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("summarize")

    assert (raised.value.error.code, raised.value.error.message) == (INVALID_PARAMS, "Unknown prompt: summarize")


async def test_lists_that_never_change_may_be_cached_for_an_hour(settings: Settings) -> None:
    async with served(settings, "auto") as (_, client):
        tools = await client.list_tools()
        templates = await client.list_resource_templates()

    assert (tools.ttl_ms, tools.cache_scope) == (3_600_000, "public")
    assert (templates.ttl_ms, templates.cache_scope) == (3_600_000, "public")


async def test_the_server_carries_its_icon(settings: Settings) -> None:
    async with served(settings, "auto") as (_, client):
        info = client.server_info

    assert info is not None and info.icons
    (icon,) = info.icons
    assert icon.mime_type == "image/svg+xml"
    assert base64.b64decode(icon.src.removeprefix("data:image/svg+xml;base64,")).startswith(b"<svg ")


async def test_a_run_that_ended_frees_its_place_and_can_be_watched_again_on_its_next_turn(settings: Settings) -> None:
    async with old_era_session(settings) as (application, client, updates):
        run_id, uri = await watchable_run(client)
        await client.subscribe_resource(uri)
        await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
        await until(lambda: updates == [uri] and not application.state.watcher.watched)
        await client.call_tool(
            "continue_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "content": "/hang", "waitSeconds": 0}
        )
        await client.subscribe_resource(uri)
        assert application.state.watcher.watched == {uri}, "watched again: the ended run no longer counted as watched"
        await client.call_tool("cancel_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id})
        await until(lambda: updates == [uri, uri] and not application.state.watcher.watched)
