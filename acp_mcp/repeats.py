"""Starts whose answer was lost or whose caller gave up, found again by the marker each start carries.

Every start sends ``metadata.acpMcpStart``, a fresh random marker (`mark_start`), beside the caller's own
metadata, and the API returns ``metadata`` with the run. A start whose answer is lost (no answer in time,
or a connection that broke after the request went out) is looked up among the server's newest runs by
that marker, so the run is found without relying on the API echoing the text in ``run.input``.

A client that times out a tool call cancels it (``notifications/cancelled``) and the model, told the
call failed, often sends the same start again. The platform has the first run already, so the
repeat is answered with that run instead of a second one. Only cancelled starts are remembered,
for `REPEAT_WINDOW_SECONDS`, per process (a ``--stateless`` replica remembers its own).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .limits import MAX_REMEMBERED_STARTS, REPEAT_WINDOW_SECONDS
from .models import Run

START_MARKER = "acpMcpStart"
"""The ``metadata`` field every start carries: a random marker that finds its run again."""
START_MARKER_CHARS = len(f',"{START_MARKER}":""') + 32
"""What the marker adds to a start's metadata as compact JSON (kept free under the metadata limit)."""


def mark_start(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """`body` with a fresh marker added to its ``metadata`` (the caller's fields kept), and the marker."""
    marker = uuid.uuid4().hex
    return {**body, "metadata": {**(body.get("metadata") or {}), START_MARKER: marker}}, marker


def started_by(run: Run, marker: str) -> bool:
    """Whether `run` is the one the start that carried `marker` created."""
    return bool(run.id) and (run.metadata or {}).get(START_MARKER) == marker


@dataclass(frozen=True)
class AbandonedStart:
    """A start whose call was cancelled: its run id (None if the API had not answered yet) and its marker."""

    run_id: str | None
    marker: str
    at: float


class AbandonedStarts:
    """The cancelled starts of the last `window` seconds, by server id and request body."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._starts: OrderedDict[str, AbandonedStart] = OrderedDict()

    @staticmethod
    def key(server_id: str, body: dict[str, Any]) -> str:
        """What makes two starts the same: the server and the whole body (as the caller gave it, unmarked)."""
        text = json.dumps([server_id, body], sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def remember(self, key: str, run_id: str | None, marker: str) -> None:
        """Note a cancelled start."""
        self._starts.pop(key, None)
        self._starts[key] = AbandonedStart(run_id, marker, self.clock())
        while len(self._starts) > MAX_REMEMBERED_STARTS:
            self._starts.popitem(last=False)

    def take(self, key: str) -> AbandonedStart | None:
        """The cancelled start with this key, if recent enough; it is forgotten either way."""
        start = self._starts.pop(key, None)
        return start if start is not None and self.clock() - start.at <= self.window else None
