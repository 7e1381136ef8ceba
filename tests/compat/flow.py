"""The scripted conversation every client is driven through, and what must reach the model.

The stub model asks for one tool call per turn, in `FLOW` order, reading run ids out of the tool
results the client sent it, exactly as a model would. It records every tool result as the client
delivered it to the model (text, or JSON where the client forwards structured content), and
`assert_flow_reached_model` checks those: the run id, status and output of start -> continue ->
get, a wait that expires, a tool error, and the cancel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RUN_ID = re.compile(r"\brun_\d{6}\b")
MISSING_RUN = "run_missing"


def run_id(text: str) -> str:
    """The first run id in a tool result as the model saw it."""
    found = RUN_ID.search(text)
    assert found, f"no run id reached the model in: {text[:500]!r}"
    return found.group(0)


@dataclass(frozen=True)
class Step:
    """One tool call the stub model makes: the tool, and its arguments from the results seen so far."""

    name: str
    tool: str
    arguments: Callable[[list[str]], dict[str, Any]]


FLOW: tuple[Step, ...] = (
    Step("start", "start_agent_run", lambda seen: {"content": "compat hello", "mode": "sync"}),
    Step(
        "continue",
        "continue_agent_run",
        lambda seen: {"resourceRunId": run_id(seen[0]), "content": "compat more", "mode": "sync"},
    ),
    # serverId null: optional parameters must accept null (clients that validate before calling)
    Step("get", "get_agent_run", lambda seen: {"resourceRunId": run_id(seen[0]), "serverId": None, "waitSeconds": 0}),
    Step("expire", "start_agent_run", lambda seen: {"content": "/hang", "waitSeconds": 3}),
    Step("missing", "get_agent_run", lambda seen: {"resourceRunId": MISSING_RUN, "waitSeconds": 0}),
    Step("cancel", "cancel_agent_run", lambda seen: {"resourceRunId": run_id(seen[3])}),
)
TOOLS = frozenset(step.tool for step in FLOW)
FINAL_TEXT = "All six calls are done."


@dataclass(frozen=True)
class ToolCall:
    """The model's answer: call `name` (as the client named the tool) with `arguments`."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Final:
    """The model's answer: plain text, no tool call."""

    text: str


def client_name(tool: str, offered: list[str]) -> str | None:
    """The name under which the client offers our `tool` (clients prefix it with the server's name)."""
    for name in offered:
        if name == tool or (name.endswith(tool) and not name[-len(tool) - 1].isalnum()):
            return name
    return None


def assert_flow_reached_model(seen: list[str]) -> None:
    """Each tool result, as the model received it, carries what the model needs to go on."""
    assert len(seen) == len(FLOW), f"{len(seen)} tool results reached the model: {seen}"
    start, cont, get, expire, missing, cancel = seen
    run = run_id(start)
    assert "completed" in start and "Echo: compat hello" in start, start
    assert run_id(cont) == run and "Echo: compat more" in cont, cont
    assert run_id(get) == run and "completed" in get and "compat more" in get, get
    hung = run_id(expire)
    assert hung != run, expire
    assert re.search(r'"waitExpired":\s*true|Still (queued|running) after waiting', expire), expire
    assert "get_agent_run" in expire, "the model is told the call to make next"
    assert f"No run '{MISSING_RUN}' was found" in missing and "list_agent_runs" in missing, missing
    assert run_id(cancel) == hung and "cancelled" in cancel, cancel
