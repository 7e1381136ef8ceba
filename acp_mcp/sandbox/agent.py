"""The sandbox's echo agent: turn input, the commands that shape a turn, and when each part happens.

Undocumented choices (the sandbox's guesses; see also ``store`` and ``app``):

- ``DEFAULT_MODE``: a start or continue without ``mode`` runs asynchronously.
- ``parse_turn``: the input text is ``content`` when it is a non-empty string,
  else ``prompt``; neither gives 400. ``null`` fields count as absent and
  unknown fields are ignored.

Echo agent: a turn logs the user input at once, turns ``running`` with "Agent
started" one ``pace`` later, logs each ``/steps`` step one ``pace`` apart and
ends one ``pace`` after that. ``/fail MESSAGE``, ``/hang``, ``/steps N``,
``/events N SIZE`` and ``/output SIZE`` shape a turn (see ``plan_turn``); a bad
argument fails the turn with a usage error. ``/events`` emits its N events
instead of the final assistant message; ``/hang`` never ends until cancelled.

Nothing runs in the background: a ``Turn`` is a list of beats, each due a number
of paces after the turn began, and the store plays the beats whose time has come
whenever the run is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import JsonObject, validation_error

Mode = Literal["sync", "async"]
RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
EventSpec = tuple[str, str, str, str]
"""An event before the store stamps it: role, content, logType, logLevel."""

DEFAULT_MODE: Mode = "async"
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
MAX_GENERATED_CHARS = 200_000_000


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
class Beat:
    """What one moment of a turn does to its run: a new status, output or error, and events."""

    status: RunStatus | None = None
    events: Iterable[EventSpec] = ()
    output: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TurnPlan:
    """What the echo agent will do in one turn."""

    output: str
    steps: int = 0
    hang: bool = False
    error: str | None = None
    event_count: int = 0
    event_size: int = 0

    def ending(self) -> Beat:
        """The turn's last beat: failed with its error, or completed with its output."""
        if self.error is not None:
            return Beat("failed", [("system", self.error, "status", "error")], error=self.error)
        if self.event_count:
            count, size = self.event_count, self.event_size
            events = (("assistant", filler(f"event-{i} ", size), "message", "info") for i in range(1, count + 1))
            return Beat("completed", events, output=self.output)
        return Beat("completed", [("assistant", self.output, "message", "info")], output=self.output)


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


@dataclass
class Turn:
    """One turn on the clock: beat k is due (k - anchor_index) paces after `anchor`.

    Beat 0 logs the input (``queued``), beat 1 starts the agent (``running``),
    beats 2..N+1 are the ``/steps`` steps and the last beat ends the turn; a
    ``/hang`` turn has only the first two. A change of pace or clock moves the
    anchor to the next beat (``retime``), so the beats already due keep their times.
    """

    text: str
    plan: TurnPlan
    anchor: float
    anchor_index: int = 0
    next: int = 0

    @property
    def beat_count(self) -> int:
        """How many beats the turn has."""
        return 2 if self.plan.hang else self.plan.steps + 3

    def due(self, pace: float) -> float | None:
        """The clock time of the next beat, or None when none is left."""
        return self._at(self.next, pace) if self.next < self.beat_count else None

    def end(self, pace: float) -> float | None:
        """The clock time of the last beat, or None for a turn that never ends."""
        return None if self.plan.hang else self._at(self.beat_count - 1, pace)

    def retime(self, at: float) -> None:
        """Make the next beat due at `at`; later ones follow a pace apart."""
        self.anchor, self.anchor_index = at, self.next

    def play(self) -> Beat:
        """Return the next beat and move past it."""
        index, self.next = self.next, self.next + 1
        if index == 0:
            return Beat("queued", [("user", self.text, "message", "info")])
        if index == 1:
            return Beat("running", [("system", "Agent started", "status", "info")])
        if index < self.beat_count - 1:
            return Beat(events=[("assistant", f"step {index - 1} of {self.plan.steps}", "progress", "info")])
        return self.plan.ending()

    def _at(self, index: int, pace: float) -> float:
        """The clock time of beat `index` at `pace`."""
        return self.anchor + (index - self.anchor_index) * pace
