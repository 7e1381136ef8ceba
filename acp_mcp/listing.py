"""The API's lists read without assuming what its docs leave open: their order and the ``limit`` they accept.

The run list's order is undocumented, so its runs are sorted newest ``createdAt`` first here, whatever
order the API sent. ``limit`` has no documented bounds: a list refused for its ``limit`` (400 or 422) is
asked again with `FALLBACK_LIST_LIMIT` (when the limit was larger), then with no ``limit`` at all.

Of the servers (resources) a key sees, only those that can run agents are offered (`AgentServers`): kind
``agent_runtime``, or a web app, function or resource of unknown kind with an ``agent_runtime`` binding
(``GET /servers/{id}/bindings``, remembered for `BINDINGS_TTL_SECONDS`); never ``auth`` or ``secrets``
resources.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from .client import ACPClient
from .clock import Clock
from .errors import ACPError, InvalidRequestError
from .limits import BINDINGS_AT_ONCE, BINDINGS_TTL_SECONDS, FALLBACK_LIST_LIMIT
from .models import RunList, Server, ServerList

logger = logging.getLogger(__name__)

Listing = TypeVar("Listing", RunList, ServerList)


@dataclass(frozen=True)
class Listed(Generic[Listing]):
    """A list as the API gave it (runs sorted newest first), and the ``limit`` it answered (None: none sent)."""

    listing: Listing
    asked: int | None

    def full(self, count: int) -> bool:
        """Whether the API may hold more than the `count` items it sent: it sent as many as it was asked for."""
        return self.asked is not None and count >= self.asked


async def _any_limit(fetch: Callable[[int | None], Awaitable[Listing]], limit: int | None) -> Listed[Listing]:
    """`fetch` with `limit`, or, while the API refuses the limit, a smaller one, then none."""
    tries: list[int | None] = [limit]
    if limit is not None:
        tries += [FALLBACK_LIST_LIMIT] if limit > FALLBACK_LIST_LIMIT else []
        tries.append(None)
    for asked in tries[:-1]:
        try:
            return Listed(await fetch(asked), asked)
        except InvalidRequestError as exc:
            logger.info("the API refused a list with limit=%s (%s); asking with less", asked, exc.status)
    return Listed(await fetch(tries[-1]), tries[-1])


async def newest_runs(
    client: ACPClient, server_id: str, limit: int | None, *, deadline: float | None = None
) -> Listed[RunList]:
    """The server's runs, up to `limit` asked of the API, sorted newest first."""

    async def fetch(asked: int | None) -> RunList:
        listing = await client.list_runs(server_id, asked, deadline=deadline)
        return listing.model_copy(update={"data": listing.newest_first(), "runs": None})

    return await _any_limit(fetch, limit)


async def servers(client: ACPClient, limit: int, *, deadline: float | None = None) -> Listed[ServerList]:
    """The servers (resources) the key can see, up to `limit` asked of the API, in its order."""
    return await _any_limit(lambda asked: client.list_servers(asked, deadline=deadline), limit)


AGENT_RUNTIME_KIND = "agent_runtime"
UNBOUNDABLE_KINDS = frozenset({"auth", "secrets"})
"""Resource kinds that never host an agent runtime: their bindings are not asked for."""


class AgentServers:
    """Which servers can run agents, their bindings remembered for `ttl` seconds per API client (per key)."""

    def __init__(self, clock: Clock, ttl: float = BINDINGS_TTL_SECONDS) -> None:
        self._clock = clock
        self._ttl = ttl
        self._bound: weakref.WeakKeyDictionary[ACPClient, dict[str, tuple[float, bool]]] = weakref.WeakKeyDictionary()

    async def offered(self, client: ACPClient, servers: list[Server], *, deadline: float) -> list[Server]:
        """`servers` that can run agents, in their order; one whose bindings cannot be read is left out."""
        known = self._bound.setdefault(client, {})
        now = self._clock.now()
        for server_id in [sid for sid, (until, _) in known.items() if until <= now]:
            del known[server_id]
        asked = {
            server.id
            for server in servers
            if server.id and server.kind != AGENT_RUNTIME_KIND and server.kind not in UNBOUNDABLE_KINDS
        } - known.keys()

        limiter = anyio.CapacityLimiter(BINDINGS_AT_ONCE)

        async def look_up(server_id: str) -> None:
            try:
                async with limiter:
                    bindings = await client.list_bindings(server_id, deadline=deadline)
            except ACPError as exc:
                logger.info("the bindings of server %s could not be read: %s", server_id, type(exc).__name__)
                return
            known[server_id] = (self._clock.now() + self._ttl, bindings.runs_agents)

        async with anyio.create_task_group() as group:
            for server_id in sorted(asked):
                group.start_soon(look_up, server_id)
        return [
            server
            for server in servers
            if server.kind == AGENT_RUNTIME_KIND or (server.id in known and known[server.id][1])
        ]
