"""The ``acp://`` run URI: the one place it is written and read.

A run's full JSON is the resource ``acp://servers/{serverId}/runs/{resourceRunId}``: results name it,
the server serves it, subscriptions watch it. Each id is one percent-encoded path segment.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

RUN_TEMPLATE = "acp://servers/{serverId}/runs/{resourceRunId}"
"""The resource template clients list and complete (RFC 6570 level 1)."""

_RUN_URI = re.compile(r"acp://servers/(?P<server>[^/]+)/runs/(?P<run>[^/]+)")


def run_uri(server_id: str, run_id: str) -> str:
    """The resource URI of a run's full JSON."""
    return RUN_TEMPLATE.format(serverId=quote(server_id, safe=""), resourceRunId=quote(run_id, safe=""))


def parse_run_uri(uri: str) -> tuple[str, str] | None:
    """The (server id, run id) a run URI names, or None when `uri` is not one."""
    match = _RUN_URI.fullmatch(uri)
    return (unquote(match["server"]), unquote(match["run"])) if match else None
