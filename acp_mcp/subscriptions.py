"""Run subscriptions wired into both protocol eras, and capabilities that claim exactly what works.

2026-07-28: ``subscriptions/listen`` streams, each served by the SDK's `ListenHandler` on a bus of its
own, with the stream's run URIs registered with the `RunWatcher` (as its caller's) while it lasts. 2025-11-25:
``resources/subscribe`` / ``resources/unsubscribe`` per session (not with ``--stateless``, where
no session outlives its request). Both eras advertise ``listChanged: false``: the lists never change.
"""

from __future__ import annotations

import weakref
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    DiscoverResult,
    EmptyResult,
    RequestParams,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .boundary import Boundary
from .callers import Callers
from .limits import MAX_LISTEN_STREAMS
from .watching import Notify, RunWatcher, Subscriber


class RunListenHandler:
    """``subscriptions/listen``: the SDK's stream, fed by a bus of its own, with its run URIs watched while it lasts.

    A bus per stream means a stream hears only of the runs its own caller watches, with its own key:
    another caller watching the same URI (even knowing the ids) is another watch, and never this stream's.
    At most `MAX_LISTEN_STREAMS` are open at once, as the SDK's own handler allows; all end, each with its
    result, when the HTTP server drains.
    """

    def __init__(self, watcher: RunWatcher, callers: Callers, boundary: Boundary) -> None:
        self.watcher = watcher
        self.callers = callers
        self.boundary = boundary
        self._open = 0

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        if self._open >= MAX_LISTEN_STREAMS:
            raise MCPError(INTERNAL_ERROR, "Subscription limit reached")
        bus = InMemorySubscriptionBus()

        async def publish(uri: str) -> None:
            await bus.publish(ResourceUpdated(uri=uri))

        runs = self.callers.current()
        subscriber = Subscriber(publish, runs.caller.identity, runs.client)
        with self.boundary.request("subscriptions/listen"):
            self.watcher.watch(subscriber, list(params.notifications.resource_subscriptions or ()))
        self._open += 1
        handler = ListenHandler(bus, max_subscriptions=1)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_close_when_set, self.callers.stop_waits, handler)
                try:
                    result = await handler(ctx, params)
                finally:
                    group.cancel_scope.cancel()
            return result
        finally:
            self._open -= 1
            self.watcher.unwatch(subscriber)


async def _close_when_set(stop: anyio.Event, handler: ListenHandler) -> None:
    """End `handler`'s stream gracefully (its result as the last frame) once the server drains."""
    await stop.wait()
    handler.close()


class SessionSubscriptions:
    """``resources/subscribe`` / ``resources/unsubscribe``: one subscriber per 2025-11-25 connection."""

    def __init__(self, watcher: RunWatcher, callers: Callers, boundary: Boundary) -> None:
        self.watcher = watcher
        self.callers = callers
        self.boundary = boundary
        self._subscribers: weakref.WeakKeyDictionary[Connection, Subscriber] = weakref.WeakKeyDictionary()

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        connection = _connection(ctx.session)
        subscriber = self._subscribers.get(connection)
        if subscriber is None:
            runs = self.callers.current()
            subscriber = Subscriber(_notifier(connection), runs.caller.identity, runs.client)
            self._subscribers[connection] = subscriber
        with self.boundary.request("resources/subscribe"):
            self.watcher.watch(subscriber, [str(params.uri)])
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        subscriber = self._subscribers.get(_connection(ctx.session))
        if subscriber is not None:
            self.watcher.unwatch(subscriber, [str(params.uri)])
        return EmptyResult()


def _notifier(connection: Connection) -> Notify:
    """Notifies `connection` without keeping it alive: the subscriber entry must not outlive the session."""
    reference = weakref.ref(connection)

    async def notify(uri: str) -> None:
        live = reference()
        if live is None:
            raise ConnectionError("the session has ended")
        await live.send_resource_updated(uri)

    return notify


def _connection(session: ServerSession) -> Connection:
    """The connection behind a request's session: mcp 2.3 makes a new session object for every request,
    and the lowlevel handler context offers no other handle on the connection that outlives it."""
    connection: Connection = session._connection
    return connection


def serve_subscriptions(
    server: Server[Any],
    watcher: RunWatcher,
    callers: Callers,
    boundary: Boundary,
    *,
    sessions: bool,
) -> None:
    """Register the subscription methods on `server` and the honest ``server/discover``."""
    listen = RunListenHandler(watcher, callers, boundary)
    server.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, listen)
    if sessions:
        legacy = SessionSubscriptions(watcher, callers, boundary)
        server.add_request_handler("resources/subscribe", SubscribeRequestParams, legacy.subscribe)
        server.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, legacy.unsubscribe)

    async def discover(ctx: ServerRequestContext[Any, Any], params: RequestParams | None) -> DiscoverResult:
        capabilities = server.get_capabilities(protocol_version=ctx.protocol_version)
        for name in ("tools", "resources", "prompts"):
            capability = getattr(capabilities, name)
            if capability is not None:
                capability.list_changed = False
        return DiscoverResult(
            supported_versions=list(MODERN_PROTOCOL_VERSIONS),
            capabilities=capabilities,
            instructions=server.instructions,
        )

    server.add_request_handler("server/discover", RequestParams, discover)
