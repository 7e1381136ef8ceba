"""Completions for the run resource template: server ids and run ids a client can offer as the user types.

``serverId`` completes from the configured default, then the servers the key can see that can run
agents (``GET /servers``, plus the bindings of those not of kind ``agent_runtime``: see ``listing``);
``resourceRunId`` from the server's newest runs (the ``serverId`` already chosen, else the default),
sorted newest first whatever the API's order. Prefix match, at most `COMPLETION_VALUES`; a lookup
refused for its ``limit`` is asked again with less (``listing``). A completion's requests are bounded
by one request timeout together; any failure gives an empty completion (and a log line), never an
error the client must handle.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp.types import Completion

from .limits import COMPLETION_LOOKUP, COMPLETION_VALUES
from .listing import newest_runs, servers
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
    deadline = _one_request(state)
    listed = await servers(runs.client, COMPLETION_LOOKUP, deadline=deadline)
    items = listed.listing.items
    offered = await state.agent_servers.offered(runs.client, items, deadline=deadline)
    return default + [server.id for server in offered if server.id], listed.full(len(items))


async def _run_ids(state: ProcessState, server_id: str | None) -> tuple[list[str], bool]:
    """The newest runs' ids on the chosen (or default) server; and whether the API may have more."""
    server_id = server_id or state.settings.default_server_id
    runs = state.callers.current()
    if not server_id or runs.caller.key is None:
        return [], False
    listed = await newest_runs(runs.client, server_id, COMPLETION_LOOKUP, deadline=_one_request(state))
    items = listed.listing.items
    return [run.id for run in items if run.id], listed.full(len(items))


def _one_request(state: ProcessState) -> float:
    return state.clock.now() + state.settings.request_timeout
