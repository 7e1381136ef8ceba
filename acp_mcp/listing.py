"""The API's lists read without assuming what its docs leave open: their order and the ``limit`` they accept.

The run list's order is undocumented, so its runs are sorted newest ``createdAt`` first here, whatever
order the API sent. ``limit`` has no documented bounds: a list refused for its ``limit`` (400 or 422) is
asked again with `FALLBACK_LIST_LIMIT` (when the limit was larger), then with no ``limit`` at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .client import ACPClient
from .errors import InvalidRequestError
from .limits import FALLBACK_LIST_LIMIT
from .models import RunList, ServerList

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
