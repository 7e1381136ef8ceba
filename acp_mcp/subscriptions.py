"""Run subscriptions wired into both protocol eras, and capabilities that claim exactly what works.

2026-07-28: ``subscriptions/listen`` streams, served by the SDK's `ListenHandler` on our bus, with
each stream's run URIs registered with the `RunWatcher` while the stream lasts. 2025-11-25:
``resources/subscribe`` / ``resources/unsubscribe`` per session (not with ``--stateless``, where
no session outlives its request). Both eras advertise ``listChanged: false``: the lists never change.
"""

from __future__ import annotations

import weakref
from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated
from mcp.types import (
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
from .watching import Notify, RunWatcher, Subscriber


class RunListenHandler(ListenHandler):
    """``subscriptions/listen``: the SDK's stream, with its run URIs watched while it lasts."""

    def __init__(self, bus: InMemorySubscriptionBus, watcher: RunWatcher, callers: Callers, boundary: Boundary) -> None:
        super().__init__(bus)
        self.bus = bus
        self.watcher = watcher
        self.callers = callers
        self.boundary = boundary

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        runs = self.callers.current()
        subscriber = Subscriber(self.publish, runs.caller.identity, runs.client)
        with self.boundary.request("subscriptions/listen"):
            self.watcher.watch(subscriber, list(params.notifications.resource_subscriptions or ()))
        try:
            return await super().__call__(ctx, params)
        finally:
            self.watcher.unwatch(subscriber)

    async def publish(self, uri: str) -> None:
        """One event on the bus reaches every listen stream that asked for `uri`."""
        await self.bus.publish(ResourceUpdated(uri=uri))


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
    bus: InMemorySubscriptionBus,
    watcher: RunWatcher,
    callers: Callers,
    boundary: Boundary,
    *,
    sessions: bool,
) -> None:
    """Register the subscription methods on `server` and the honest ``server/discover``."""
    listen = RunListenHandler(bus, watcher, callers, boundary)
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
