"""In-memory state of the ACP sandbox: runs, the echo agent, request log and faults.

Undocumented choices (the sandbox's guesses)
--------------------------------------------
The ACP docs are silent on the behaviours below. The sandbox picks one answer
for each; they are guesses, not facts about the real API, and each one is a
named constant or a single function in this module so it is easy to change:

- ``DEFAULT_MODE``: a start or continue without ``mode`` runs asynchronously.
- ``SYNC_START_STATUS`` / ``SYNC_CONTINUE_STATUS`` / ``ASYNC_STATUS``: sync start
  answers 201 and sync continue 200, after the turn has ended; async answers 202
  with the run still ``queued``.
- ``BUSY_STATUS``: input to a queued or running run is refused with 409
  ``RUN_BUSY``; it is not queued behind the current turn.
- ``FINISHED_STATUS``: cancelling a completed or failed run is 409
  ``RUN_FINISHED``; cancelling a cancelled run is a 200 no-op.
- ``parse_turn``: the input text is ``content`` when it is a non-empty string,
  else ``prompt``; neither gives 400. ``null`` fields count as absent and
  unknown fields are ignored.
- ``METADATA_ON_CONTINUE``: metadata sent with a continue replaces
  ``run.metadata`` (``"merge"`` would update it instead).
- A continue resets ``output``, ``error`` and ``completedAt`` to null until the
  new turn ends; ``title``, ``threadId`` and ``createdAt`` stay; ``mode`` and
  ``input`` become the new turn's.
- ``LIGHT_GET_INCLUDES_EVENTS``: ``GET .../runs/{id}`` answers the envelope
  without ``events``; start, continue, cancel and ``/events`` include them.
- The list holds bare run objects (no events), newest first; ``limit`` is
  ``DEFAULT_LIST_LIMIT`` by default and must lie in 1..``MAX_LIST_LIMIT``.
- ``thread_status``: the thread is ``"active"`` while the run is queued or
  running and ``"idle"`` otherwise; ``thread.title`` is the run title.
- ``CANCEL_EVENT``: cancelling adds a system event "Run cancelled" with logType
  ``status`` and logLevel ``warning``.

Sandbox-only conventions (no real-API counterpart): faults only touch /v1
requests and match ``path_contains`` against the raw path; a ``str`` fault body
is sent as text/plain unless the fault's headers say otherwise; a body over
1 MiB is logged as ``None`` and answered 413 (after auth).

Echo agent: a turn logs the user input, waits ``pace``, turns ``running`` with
"Agent started", waits ``pace`` (plus one ``pace`` per ``/steps`` step) and ends.
``/fail MESSAGE``, ``/hang``, ``/steps N``, ``/events N SIZE`` and ``/output SIZE``
shape a turn (see ``plan_turn``); a bad argument fails the turn with a usage
error. ``/events`` emits its N events instead of the final assistant message.

Threading: runs are owned by the event loop that serves the app. The request
log, the faults and ``pace`` are guarded by a lock and safe from any thread.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal, get_args

Mode = Literal["sync", "async"]
RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
FaultKind = Literal["status", "html", "empty", "non_json", "truncated", "close", "slow", "redirect"]
JsonObject = dict[str, Any]

SANDBOX_SERVER_ID = "srv_sandbox"
"""The server id the sandbox always lists (``acp-mcp --sandbox`` uses it by default)."""
AGENT_RUNTIME_ID = "art_sandbox"
SESSION_PROTOCOL = "sandbox"
DEFAULT_MODE: Mode = "async"
SYNC_START_STATUS = 201
SYNC_CONTINUE_STATUS = 200
ASYNC_STATUS = 202
BUSY_STATUS = 409
FINISHED_STATUS = 409
METADATA_ON_CONTINUE: Literal["replace", "merge"] = "replace"
LIGHT_GET_INCLUDES_EVENTS = False
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
TITLE_CHARS = 60
CANCEL_EVENT = ("system", "Run cancelled", "status", "warning")
MAX_GENERATED_CHARS = 200_000_000
STABLE_PHRASES = {413: "Payload Too Large", 422: "Unprocessable Entity"}
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

log = logging.getLogger(__name__)


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with a trailing Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(
    status: int,
    message: str | None = None,
    code: str | None = None,
    details: list[dict[str, str]] | None = None,
) -> JsonObject:
    """Build the ACP error envelope for an HTTP status."""
    phrase = STABLE_PHRASES.get(status) or HTTPStatus(status).phrase
    body: JsonObject = {"error": phrase, "message": message or phrase}
    if code is not None:
        body["code"] = code
    if details is not None:
        body["details"] = details
    return body


class ApiError(Exception):
    """An error answered with the ACP error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message, code, details)


def validation_error(field_name: str, message: str) -> ApiError:
    """Return a 400 VALIDATION_FAILED error about one field."""
    details = [{"field": field_name, "message": message}]
    return ApiError(400, f"{field_name} {message}", "VALIDATION_FAILED", details)


@dataclass(frozen=True)
class RecordedRequest:
    """One /v1 request as the sandbox received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Fault:
    """A canned misbehaviour for the next matching /v1 requests."""

    kind: FaultKind
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | None = None
    delay: float = 0.0
    location: str | None = None

    def __post_init__(self) -> None:
        """Reject impossible faults."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {sorted(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs a location")

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this fault applies to a request."""
        method_ok = self.method is None or self.method.upper() == method.upper()
        return method_ok and (self.path_contains is None or self.path_contains in path)


@dataclass(frozen=True)
class TurnInput:
    """A validated start or continue body."""

    text: str
    mode: Mode
    title: str | None = None
    metadata: JsonObject | None = None


_FIELD_TYPES: dict[str, tuple[type, str]] = {
    "content": (str, "must be a string"),
    "prompt": (str, "must be a string"),
    "title": (str, "must be a string"),
    "mode": (str, "must be sync or async"),
    "metadata": (dict, "must be an object"),
}


def parse_turn(body: Any, allow_title: bool) -> TurnInput:
    """Validate a start (allow_title) or continue body; raise ApiError 400."""
    if not isinstance(body, dict):
        raise validation_error("body", "must be a JSON object")
    names = [n for n in _FIELD_TYPES if allow_title or n != "title"]
    fields = {n: body[n] for n in names if body.get(n) is not None}
    for name, value in fields.items():
        kind, message = _FIELD_TYPES[name]
        if not isinstance(value, kind):
            raise validation_error(name, message)
    mode = fields.get("mode", DEFAULT_MODE)
    if mode not in ("sync", "async"):
        raise validation_error("mode", "must be sync or async")
    text = fields.get("content") or fields.get("prompt")
    if not text:
        raise validation_error("content", "or prompt is required")
    return TurnInput(text, mode, fields.get("title"), fields.get("metadata"))


@dataclass(frozen=True)
class TurnPlan:
    """What the echo agent will do in one turn."""

    output: str
    steps: int = 0
    hang: bool = False
    error: str | None = None
    event_count: int = 0
    event_size: int = 0


def filler(label: str, size: int) -> str:
    """Repeat label and cut it to exactly size characters."""
    return (label * (size // len(label) + 1))[:size]


def _numbers(rest: str, count: int) -> list[int] | None:
    """Parse exactly count non-negative integers, or None."""
    parts = rest.split()
    if len(parts) != count or not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


def _plan_fail(rest: str) -> TurnPlan | None:
    """Plan /fail MESSAGE."""
    return TurnPlan(output="", error=rest.strip() or "Agent failed")


def _plan_hang(rest: str) -> TurnPlan | None:
    """Plan /hang."""
    return TurnPlan(output="", hang=True)


def _plan_steps(rest: str) -> TurnPlan | None:
    """Plan /steps N, or None if N is bad."""
    args = _numbers(rest, 1)
    return None if args is None else TurnPlan(f"Completed {args[0]} steps", args[0])


def _plan_events(rest: str) -> TurnPlan | None:
    """Plan /events N SIZE, or None if the arguments are bad."""
    args = _numbers(rest, 2)
    if args is None or args[0] * args[1] > MAX_GENERATED_CHARS:
        return None
    return TurnPlan(f"Emitted {args[0]} events", event_count=args[0], event_size=args[1])


def _plan_output(rest: str) -> TurnPlan | None:
    """Plan /output SIZE, or None if SIZE is bad."""
    args = _numbers(rest, 1)
    if args is None or args[0] > MAX_GENERATED_CHARS:
        return None
    return TurnPlan(filler("output ", args[0]))


_COMMANDS: dict[str, tuple[Callable[[str], TurnPlan | None], str]] = {
    "/fail": (_plan_fail, "/fail MESSAGE"),
    "/hang": (_plan_hang, "/hang"),
    "/steps": (_plan_steps, "/steps N"),
    "/events": (_plan_events, "/events N SIZE"),
    "/output": (_plan_output, "/output SIZE"),
}


def plan_turn(text: str) -> TurnPlan:
    """Decide the echo agent's turn; a bad command argument fails the turn."""
    parts = text.split(None, 1)
    head, rest = ([*parts, "", ""])[:2]
    if head not in _COMMANDS:
        return TurnPlan(f"Echo: {text}")
    planner, usage = _COMMANDS[head]
    plan = planner(rest)
    return plan or TurnPlan(output="", error=f"Usage: {usage}")


def thread_status(status: str) -> str:
    """Map a run status to the sandbox's thread status."""
    return "idle" if status in TERMINAL else "active"


@dataclass
class Run:
    """One run with its events and its current turn."""

    id: str
    server_id: str
    thread_id: str
    title: str
    input: str
    mode: Mode
    created_at: str
    metadata: JsonObject
    status: RunStatus = "queued"
    output: str | None = None
    error: str | None = None
    completed_at: str | None = None
    events: list[JsonObject] = field(default_factory=list)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_dict(self) -> JsonObject:
        """Return the run object of the API."""
        return {
            "id": self.id,
            "serverId": self.server_id,
            "threadId": self.thread_id,
            "title": self.title,
            "input": self.input,
            "output": self.output,
            "mode": self.mode,
            "status": self.status,
            "error": self.error,
            "metadata": self.metadata,
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
            "sessionProtocol": SESSION_PROTOCOL,
            "threadBacked": True,
            "threadStatus": thread_status(self.status),
            "threadTitle": self.title,
        }

    def thread_dict(self) -> JsonObject:
        """Return the thread object of the API."""
        return {
            "id": self.thread_id,
            "title": self.title,
            "status": thread_status(self.status),
        }


class SandboxState:
    """Everything the sandbox knows: key, pace, runs, request log and faults."""

    def __init__(self, api_key: str, pace: float = 0.5) -> None:
        self.api_key = api_key
        self._pace = pace
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[tuple[Fault, int]] = []
        self._runs: dict[str, Run] = {}
        self._run_ids = itertools.count(1)
        self._event_ids = itertools.count(1)

    @property
    def pace(self) -> float:
        """Seconds each step of a turn waits."""
        return self._pace

    @pace.setter
    def pace(self, value: float) -> None:
        if value < 0:
            raise ValueError("pace must not be negative")
        self._pace = float(value)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the /v1 requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    def record(self, request: RecordedRequest) -> None:
        """Append a request to the log."""
        with self._lock:
            self._requests.append(request)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._requests.clear()

    def inject(self, fault: Fault) -> None:
        """Arm a fault for its next `times` matching requests."""
        with self._lock:
            self._faults.append((fault, fault.times))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return and use up the first armed fault matching a request."""
        with self._lock:
            for index, (fault, left) in enumerate(self._faults):
                if fault.matches(method, path):
                    if left > 1:
                        self._faults[index] = (fault, left - 1)
                    else:
                        del self._faults[index]
                    return fault
        return None

    def key_matches(self, presented: str) -> bool:
        """Compare a presented key with the sandbox key in constant time."""
        return hmac.compare_digest(presented.encode(), self.api_key.encode())

    def start_run(self, server_id: str, turn: TurnInput) -> Run:
        """Create a run and begin its first turn."""
        number = next(self._run_ids)
        run = Run(
            id=f"run_{number:06d}",
            server_id=server_id,
            thread_id=f"thread_{number:06d}",
            title=turn.title or turn.text[:TITLE_CHARS],
            input=turn.text,
            mode=turn.mode,
            created_at=utc_now(),
            metadata=dict(turn.metadata or {}),
        )
        self._runs[run.id] = run
        self._begin_turn(run, turn)
        return run

    def continue_run(self, server_id: str, run_id: str, turn: TurnInput) -> Run:
        """Begin a new turn on a finished run; raise 409 RUN_BUSY otherwise."""
        run = self.get_run(server_id, run_id)
        if run.status not in TERMINAL:
            message = f"Run {run.id} is still {run.status}; wait for it to finish or cancel it"
            raise ApiError(BUSY_STATUS, message, "RUN_BUSY")
        run.input, run.mode = turn.text, turn.mode
        run.output = run.error = run.completed_at = None
        if turn.metadata is not None and METADATA_ON_CONTINUE == "merge":
            run.metadata = {**run.metadata, **turn.metadata}
        elif turn.metadata is not None:
            run.metadata = dict(turn.metadata)
        self._begin_turn(run, turn)
        return run

    def get_run(self, server_id: str, run_id: str) -> Run:
        """Return a run of this server; raise 404 otherwise."""
        run = self._runs.get(run_id)
        if run is None or run.server_id != server_id:
            raise ApiError(404, f"Run {run_id} not found")
        return run

    def list_servers(self, limit: int) -> list[dict[str, Any]]:
        """The servers (resources) that have runs, the one with the newest run first, plus `SANDBOX_SERVER_ID`."""
        ids = dict.fromkeys([*(r.server_id for r in reversed(self._runs.values())), SANDBOX_SERVER_ID])
        return [
            {"id": server_id, "name": server_id, "kind": "agent_runtime", "status": "deployed"}
            for server_id in list(ids)[:limit]
        ]

    def list_runs(self, server_id: str, limit: int) -> list[Run]:
        """Return the newest runs of a server, newest first."""
        mine = [r for r in reversed(self._runs.values()) if r.server_id == server_id]
        return mine[:limit]

    def cancel_run(self, server_id: str, run_id: str) -> Run:
        """Cancel a queued or running run; raise 409 RUN_FINISHED if it ended."""
        run = self.get_run(server_id, run_id)
        if run.status in ("completed", "failed"):
            raise ApiError(FINISHED_STATUS, f"Run {run.id} is already {run.status}", "RUN_FINISHED")
        if run.status != "cancelled":
            self._end(run, "cancelled")
            self._emit(run, *CANCEL_EVENT)
            if run.task is not None:
                run.task.cancel()
        return run

    async def wait_turn(self, run: Run) -> None:
        """Wait until the run's current turn has ended or was cancelled."""
        if run.task is not None and not run.task.done():
            await asyncio.wait({run.task})

    def cancel_turns(self) -> None:
        """Stop every background turn (used when the server shuts down)."""
        for run in self._runs.values():
            if run.task is not None:
                run.task.cancel()

    def envelope(self, run: Run, events: bool) -> JsonObject:
        """Return the response envelope of a run."""
        body: JsonObject = {
            "serverId": run.server_id,
            "agentRuntimeId": AGENT_RUNTIME_ID,
            "run": run.to_dict(),
            "thread": run.thread_dict(),
        }
        if events:
            body["events"] = list(run.events)
        return body

    def _begin_turn(self, run: Run, turn: TurnInput) -> None:
        """Queue a turn: log the user input and start the agent task."""
        run.status = "queued"
        self._emit(run, "user", turn.text, "message", "info")
        run.task = asyncio.get_running_loop().create_task(self._drive(run, plan_turn(turn.text)))
        run.task.add_done_callback(lambda task: self._turn_done(run, task))

    async def _drive(self, run: Run, plan: TurnPlan) -> None:
        """Run one turn: queued, running, optional steps, terminal."""
        await asyncio.sleep(self.pace)
        run.status = "running"
        self._emit(run, "system", "Agent started", "status", "info")
        if plan.hang:
            await asyncio.Event().wait()
        for step in range(1, plan.steps + 1):
            await asyncio.sleep(self.pace)
            self._emit(run, "assistant", f"step {step} of {plan.steps}", "progress", "info")
        await asyncio.sleep(self.pace)
        self._finish(run, plan)

    def _finish(self, run: Run, plan: TurnPlan) -> None:
        """End a turn as the plan says."""
        if plan.error is not None:
            run.error = plan.error
            self._end(run, "failed")
            self._emit(run, "system", plan.error, "status", "error")
        elif plan.event_count:
            run.output = plan.output
            self._emit_many(run, plan.event_count, plan.event_size)
            self._end(run, "completed")
        else:
            run.output = plan.output
            self._emit(run, "assistant", plan.output, "message", "info")
            self._end(run, "completed")

    def _turn_done(self, run: Run, task: asyncio.Task[None]) -> None:
        """Fail the run if its turn crashed."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("sandbox turn of %s crashed", run.id, exc_info=task.exception())
        run.error = f"Sandbox error: {task.exception()}"
        self._end(run, "failed")

    def _end(self, run: Run, status: RunStatus) -> None:
        """Set a terminal status and completedAt."""
        run.status = status
        run.completed_at = utc_now()

    def _event(self, role: str, content: str, log_type: str, level: str, at: str) -> JsonObject:
        """Build one event with the next global event id."""
        return {
            "id": f"evt_{next(self._event_ids):06d}",
            "role": role,
            "content": content,
            "logType": log_type,
            "logLevel": level,
            "createdAt": at,
        }

    def _emit(self, run: Run, role: str, content: str, log_type: str, level: str) -> None:
        """Append one event to a run."""
        run.events.append(self._event(role, content, log_type, level, utc_now()))

    def _emit_many(self, run: Run, count: int, size: int) -> None:
        """Append count assistant events of size characters each."""
        at = utc_now()
        run.events.extend(
            self._event("assistant", filler(f"event-{i} ", size), "message", "info", at) for i in range(1, count + 1)
        )
