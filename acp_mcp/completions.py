"""Completions for the run resource template: server ids and run ids a client can offer as the user types.

``serverId`` completes from the configured default, then the servers the key can see
(``GET /servers``); ``resourceRunId`` from the server's newest runs (the ``serverId`` already
chosen, else the default). Prefix match, newest first, at most `COMPLETION_VALUES`. Each lookup is one
request, bounded by the request timeout; any failure gives an empty completion (and a log line),
never an error the client must handle.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp.types import Completion

from .limits import COMPLETION_LOOKUP, COMPLETION_VALUES
from .process_state import ProcessState


async def complete_run_argument(
    state: ProcessState, name: str, prefix: str, chosen: Mapping[str, str] | None
) -> Completion:
    """The values of the run template's argument `name` that start with `prefix`."""
    found: tuple[list[str], bool] | None = None
    with state.boundary.quietly(f"completing {name}"):  # a completion never fails the client: no values instead
        if name == "serverId":
            found = await _server_ids(state)
        elif name == "resourceRunId":
            found = await _run_ids(state, (chosen or {}).get("serverId"))
    if found is None:
        return Completion(values=[])
    candidates, more = found
    matches = [value for value in dict.fromkeys(candidates) if value.startswith(prefix)]
    return Completion(
        values=matches[:COMPLETION_VALUES],
        total=None if more else len(matches),
        has_more=more or len(matches) > COMPLETION_VALUES,
    )


async def _server_ids(state: ProcessState) -> tuple[list[str], bool]:
    """The default server id, then the servers' ids; and whether the API may have more."""
    default = [state.settings.default_server_id] if state.settings.default_server_id else []
    runs = state.callers.current()
    if runs.caller.key is None:
        return default, False
    listing = await runs.client.list_servers(COMPLETION_LOOKUP, deadline=_one_request(state))
    ids = [server.id for server in listing.items if server.id]
    return default + ids, len(listing.items) >= COMPLETION_LOOKUP


async def _run_ids(state: ProcessState, server_id: str | None) -> tuple[list[str], bool]:
    """The newest runs' ids on the chosen (or default) server; and whether the API may have more."""
    server_id = server_id or state.settings.default_server_id
    runs = state.callers.current()
    if not server_id or runs.caller.key is None:
        return [], False
    listing = await runs.client.list_runs(server_id, COMPLETION_LOOKUP, deadline=_one_request(state))
    return [run.id for run in listing.items if run.id], len(listing.items) >= COMPLETION_LOOKUP


def _one_request(state: ProcessState) -> float:
    return state.clock.now() + state.settings.request_timeout
