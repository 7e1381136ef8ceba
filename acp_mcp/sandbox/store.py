"""What the sandbox keeps: its accounts (one per key), pace and clock, the runs, the request log and the armed faults.

Undocumented choices (the sandbox's guesses; see also ``agent``, ``runs`` and ``app``):

- ``BUSY_STATUS``: input to a queued or running run is refused with 409
  ``RUN_BUSY``; it is not queued behind the current turn (the variant
  ``busy-input-queues`` queues it: see ``variants``).
- ``FINISHED_STATUS``: cancelling a completed or failed run is 409
  ``RUN_FINISHED``; cancelling a cancelled run is a 200 no-op.
- ``METADATA_ON_CONTINUE``: metadata sent with a continue replaces
  ``run.metadata`` (``"merge"`` would update it instead).
- A continue resets ``output``, ``error`` and ``completedAt`` to null until the
  new turn ends; ``title``, ``threadId`` and ``createdAt`` stay; ``mode`` and
  ``input`` become the new turn's.
- ``CANCEL_EVENT``: cancelling adds a system event "Run cancelled" with logType
  ``status`` and logLevel ``warning``; a cancel stops the turn at once.
- Servers: every server with runs, and ``SANDBOX_SERVER_ID``, is of kind
  ``agent_runtime`` with no bindings; resources added with ``add_resource``
  (a web app, function, auth or secrets resource, with or without an
  ``agent_runtime`` binding) are listed before them, to every account.
- Accounts: each key is one account, and a run belongs to the account whose key
  started it. To every other account it is an unknown run (the same 404), the
  run list holds only the caller's runs and the server list only the servers of
  its runs (plus ``SANDBOX_SERVER_ID``). Run and event ids are unique across
  accounts.

Variants (``variants``) flip some of these guesses; ``variants`` can change between requests.

Sandbox convention: each run's ``createdAt`` is at least a millisecond after the one before, so runs
started within one millisecond (or on a paused virtual clock) still sort by creation time.

Python callers: a method given no ``account`` sees the runs of every account, and
``start_run`` without one starts as the first account.

Time: runs change only when read. Every read first plays the beats of every
turn whose time has come on ``clock.now()`` (see ``agent.Turn``), stamped with
the ``clock.wall()`` time they were due, so a ``VirtualClock`` makes runs
deterministic. A sync answer sleeps on the clock until its turn ends.

Threading: one lock guards the runs, the request log, ``pace`` and ``clock``,
so every method is safe from any thread; ``wait_turn`` runs on an event loop.
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..clock import Clock, SystemClock
from ..limits import DEFAULT_SANDBOX_PACE
from .agent import TERMINAL, Beat, EventSpec, Turn, TurnInput, plan_turn
from .errors import ApiError, JsonObject
from .faults import ArmedFaults, Fault
from .runs import AGENT_RUNTIME_ID, StoredRun, iso_utc
from .variants import BUSY_INPUT_QUEUES, FLAT_BODIES, NO_EVENT_IDS, OLDEST_FIRST
from .wakeups import Waiters

SANDBOX_SERVER_ID = "srv_sandbox"
"""The server id the sandbox always lists (``acp-mcp --sandbox`` uses it by default)."""
BUSY_STATUS = 409
FINISHED_STATUS = 409
METADATA_ON_CONTINUE: Literal["replace", "merge"] = "replace"
TITLE_CHARS = 60
AGENT_RUNTIME_KIND = "agent_runtime"
CREATED_STEP_SECONDS = 0.001
CANCEL_EVENT: EventSpec = ("system", "Run cancelled", "status", "warning")


@dataclass(frozen=True)
class RecordedRequest:
    """One /v1 request as the sandbox received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class SandboxState:
    """Everything the sandbox knows: accounts, pace, clock, runs, request log and faults.

    The accounts are `api_key` (if given) followed by `api_keys`, one per key, named ``acct_1``, ``acct_2``...
    in that order; raise ValueError unless there is at least one key and they are non-empty and distinct.
    """

    def __init__(
        self,
        api_key: str | None = None,
        pace: float = DEFAULT_SANDBOX_PACE,
        clock: Clock | None = None,
        *,
        api_keys: Sequence[str] = (),
        variants: frozenset[str] = frozenset(),
    ) -> None:
        if isinstance(api_keys, str):
            raise TypeError("api_keys must be a sequence of keys, not one key")
        keys = ([] if api_key is None else [api_key]) + list(api_keys)
        if not keys or "" in keys or len(set(keys)) != len(keys):
            raise ValueError("the sandbox needs at least one API key, each non-empty and distinct")
        self.api_keys: tuple[str, ...] = tuple(keys)
        self.api_key = keys[0]
        self.accounts: tuple[str, ...] = tuple(f"acct_{n}" for n in range(1, len(keys) + 1))
        self._pace = float(pace)
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults = ArmedFaults()
        self._waiters = Waiters()
        self._runs: dict[str, StoredRun] = {}
        self._ticking: dict[str, StoredRun] = {}
        self._run_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._last_created = -math.inf
        self._resources: dict[str, tuple[str, bool]] = {}
        self.variants = variants
        """The readings the sandbox plays (`variants.parse_variants`), none by default."""

    @property
    def pace(self) -> float:
        """Seconds between the beats of a turn."""
        return self._pace

    @pace.setter
    def pace(self, value: float) -> None:
        """Set the pace; a beat already on its way keeps its time, the ones after it follow the new pace."""
        if value < 0:
            raise ValueError("pace must not be negative")
        self._retime(self._clock, float(value))

    @property
    def clock(self) -> Clock:
        """The clock turns and ``slow`` faults run on."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        """Move to another clock; each running turn's next beat stays as far off as it was."""
        self._retime(clock, self._pace)
        with self._lock:
            self._last_created = -math.inf  # another clock's times: runs from now on follow it

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
        self._faults.arm(fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return and use up the first armed fault matching a request."""
        return self._faults.take(method, path)

    def account_of(self, presented: str) -> str | None:
        """Return the account whose key was presented, or None; compares with every key in constant time."""
        found = None
        for account, key in zip(self.accounts, self.api_keys, strict=True):
            if hmac.compare_digest(presented.encode(), key.encode()):
                found = account
        return found

    def start_run(self, server_id: str, turn: TurnInput, *, account: str | None = None) -> StoredRun:
        """Create a run of `account` (default the first) and begin its first turn."""
        with self._lock:
            number = next(self._run_ids)
            self._last_created = max(self._clock.wall(), self._last_created + CREATED_STEP_SECONDS)
            run = StoredRun(
                id=f"run_{number:06d}",
                account=account or self.accounts[0],
                server_id=server_id,
                thread_id=f"thread_{number:06d}",
                title=turn.title or turn.text[:TITLE_CHARS],
                input=turn.text,
                mode=turn.mode,
                created_at=iso_utc(self._last_created),
                metadata=dict(turn.metadata or {}),
            )
            self._runs[run.id] = run
            self._begin_turn(run, turn.text)
            return run

    def continue_run(self, server_id: str, run_id: str, turn: TurnInput, *, account: str | None = None) -> StoredRun:
        """Begin a new turn on a finished run; raise 409 RUN_BUSY otherwise (``busy-input-queues``: queue it)."""
        with self._lock:
            run = self.get_run(server_id, run_id, account=account)
            if run.status not in TERMINAL and BUSY_INPUT_QUEUES in self.variants:
                run.queued.append(turn)
                return run
            if run.status not in TERMINAL:
                message = f"Run {run.id} is still {run.status}; wait for it to finish or cancel it"
                raise ApiError(BUSY_STATUS, message, "RUN_BUSY")
            self._next_turn(run, turn, self._clock.now())
            return run

    def _next_turn(self, run: StoredRun, turn: TurnInput, anchor: float) -> None:
        """Begin the turn of a continue on a run whose turn has ended, as of clock time `anchor`."""
        run.input, run.mode = turn.text, turn.mode
        run.output = run.error = run.completed_at = None
        if turn.metadata is not None and METADATA_ON_CONTINUE == "merge":
            run.metadata = {**run.metadata, **turn.metadata}
        elif turn.metadata is not None:
            run.metadata = dict(turn.metadata)
        self._begin_turn(run, turn.text, anchor)

    def get_run(self, server_id: str, run_id: str, *, account: str | None = None) -> StoredRun:
        """Return a run of this server (and of `account`, if given), brought up to now; raise 404 otherwise."""
        with self._lock:
            self._catch_up()
            run = self._runs.get(run_id)
            if run is None or run.server_id != server_id or not _seen_by(run, account):
                raise ApiError(404, f"Run {run_id} not found")
            return run

    def list_servers(self, limit: int, *, account: str | None = None) -> list[dict[str, Any]]:
        """The added resources, then the servers with runs (of `account`, if given), newest run first, then
        `SANDBOX_SERVER_ID` (``oldest-first``: the same servers in the opposite order)."""
        with self._lock:
            servers = (r.server_id for r in reversed(self._runs.values()) if _seen_by(r, account))
            kinds = {server_id: kind for server_id, (kind, _) in self._resources.items()}
            kinds.update({sid: AGENT_RUNTIME_KIND for sid in [*servers, SANDBOX_SERVER_ID] if sid not in kinds})
            ids = list(kinds)[:limit]
            ordered = ids[::-1] if OLDEST_FIRST in self.variants else ids
        return [{"id": sid, "name": sid, "kind": kinds[sid], "status": "deployed"} for sid in ordered]

    def add_resource(self, server_id: str, kind: str, *, agent_runtime_bound: bool = False) -> None:
        """List a resource of another `kind` (``web_app``, ``function``, ``auth``, ``secrets``), bound to the
        sandbox's agent runtime or not."""
        with self._lock:
            self._resources[server_id] = (kind, agent_runtime_bound)

    def clear_resources(self) -> None:
        """Forget the added resources."""
        with self._lock:
            self._resources.clear()

    def bindings(self, server_id: str, *, account: str | None = None) -> list[dict[str, Any]]:
        """The bindings of a server `account` sees: an ``agent_runtime`` binding for a bound resource, else none;
        raise 404 for a server it does not see."""
        with self._lock:
            seen = server_id == SANDBOX_SERVER_ID or server_id in self._resources
            if not seen and not any(r.server_id == server_id and _seen_by(r, account) for r in self._runs.values()):
                raise ApiError(404, f"Server {server_id} not found")
            if not self._resources.get(server_id, ("", False))[1]:
                return []
        return [
            {
                "id": f"bind_{server_id}",
                "targetType": AGENT_RUNTIME_KIND,
                "targetId": AGENT_RUNTIME_ID,
                "alias": None,
                "accessMode": "read_write",
                "metadata": {},
            }
        ]

    def list_runs(self, server_id: str, limit: int, *, account: str | None = None) -> list[StoredRun]:
        """Return the newest runs of a server (of `account`, if given), newest first (``oldest-first``: the same
        runs oldest first), brought up to now."""
        with self._lock:
            self._catch_up()
            mine = [r for r in reversed(self._runs.values()) if r.server_id == server_id and _seen_by(r, account)]
            return mine[:limit][::-1] if OLDEST_FIRST in self.variants else mine[:limit]

    def cancel_run(self, server_id: str, run_id: str, *, account: str | None = None) -> StoredRun:
        """Cancel a queued or running run at once; raise 409 RUN_FINISHED if it ended."""
        with self._lock:
            run = self.get_run(server_id, run_id, account=account)
            if run.status in ("completed", "failed"):
                raise ApiError(FINISHED_STATUS, f"Run {run.id} is already {run.status}", "RUN_FINISHED")
            if run.status != "cancelled":
                self._ticking.pop(run.id, None)
                run.queued.clear()
                run.apply(Beat("cancelled", [CANCEL_EVENT]), iso_utc(self._clock.wall()), self._event_ids)
        self._waiters.wake_all()
        return run

    def envelope(self, run: StoredRun, events: bool) -> JsonObject:
        """Return the response envelope of a run (``flat-bodies``: the flat run; ``no-event-ids``: no event ids)."""
        with self._lock:
            return run.envelope(events, flat=FLAT_BODIES in self.variants, event_ids=NO_EVENT_IDS not in self.variants)

    async def wait_turn(self, run: StoredRun) -> None:
        """Sleep on the clock until the run's turn has ended, looking again whenever something changed."""
        with self._waiters.holding() as waiter:
            while not waiter.released:
                waiter.rearm()
                with self._lock:
                    left, clock = self._time_left(run), self._clock
                if left is None:
                    return
                if math.isinf(left):
                    await waiter.event.wait()
                else:
                    await clock.sleep(left, until=waiter.event)

    def release_waiters(self) -> None:
        """Make every held sync answer answer now (used when the server shuts down)."""
        self._waiters.wake_all(release=True)

    def _time_left(self, run: StoredRun) -> float | None:
        """Seconds until the run's turn ends (inf if never), or None once it has ended."""
        now = self._catch_up()
        if run.turn is None:
            return None
        end = run.turn.end(self._pace)
        return math.inf if end is None else max(0.0, end - now)

    def _retime(self, clock: Clock, pace: float) -> None:
        """Switch clock and pace after bringing every run up to now; the next beats keep their distance."""
        with self._lock:
            now = self._catch_up()
            shift = clock.now() - now
            for run in self._ticking.values():
                due = self._due(run)
                if run.turn is not None and due is not None:
                    run.turn.retime(due + shift)
            self._clock, self._pace = clock, pace
        self._waiters.wake_all()

    def _begin_turn(self, run: StoredRun, text: str, anchor: float | None = None) -> None:
        """Begin a turn at clock time `anchor` (default now) and play its first beat (the user input)."""
        now = self._clock.now()
        anchor = now if anchor is None else anchor
        run.turn = Turn(text, plan_turn(text), anchor=anchor)
        self._ticking[run.id] = run
        self._play(run, self._clock.wall() - (now - anchor))

    def _catch_up(self) -> float:
        """Play every beat due by now, in time order across runs; return now."""
        now, wall = self._clock.now(), self._clock.wall()
        due = [(at, run.id) for run in self._ticking.values() if (at := self._due(run)) is not None and at <= now]
        heapq.heapify(due)
        while due:
            at, run_id = heapq.heappop(due)
            run = self._ticking[run_id]
            self._play(run, wall - (now - at))
            if run.turn is None and run.queued:
                self._next_turn(run, run.queued.pop(0), at)
            following = self._due(run)
            if following is not None and following <= now:
                heapq.heappush(due, (following, run_id))
        return now

    def _due(self, run: StoredRun) -> float | None:
        """The clock time of the run's next beat, or None when it has none."""
        return run.turn.due(self._pace) if run.turn is not None else None

    def _play(self, run: StoredRun, wall: float) -> None:
        """Play the run's next beat at epoch time `wall`; a turn with no beats left stops ticking."""
        assert run.turn is not None
        run.apply(run.turn.play(), iso_utc(wall), self._event_ids)
        if self._due(run) is None:
            self._ticking.pop(run.id, None)


def _seen_by(run: StoredRun, account: str | None) -> bool:
    """Whether `account` sees the run (no account sees every run)."""
    return account is None or run.account == account
