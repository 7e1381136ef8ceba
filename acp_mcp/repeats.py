"""Starts whose caller gave up: an identical start soon after gets the run the first one started.

A client that times out a tool call cancels it (``notifications/cancelled``) and the model, told the
call failed, often sends the same start again. The platform has the first run already, so the
repeat is answered with that run instead of a second one. Only cancelled starts are remembered,
for `REPEAT_WINDOW_SECONDS`, per process (a ``--stateless`` replica remembers its own).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .limits import MAX_REMEMBERED_STARTS, REPEAT_WINDOW_SECONDS


@dataclass(frozen=True)
class AbandonedStart:
    """A start whose call was cancelled: its run id (None if the API had not answered yet) and when it began."""

    run_id: str | None
    began_wall: float
    at: float


class AbandonedStarts:
    """The cancelled starts of the last `window` seconds, by server id and request body."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._starts: OrderedDict[str, AbandonedStart] = OrderedDict()

    @staticmethod
    def key(server_id: str, body: dict[str, Any]) -> str:
        """What makes two starts the same: the server and the whole body."""
        text = json.dumps([server_id, body], sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def remember(self, key: str, run_id: str | None, began_wall: float) -> None:
        """Note a cancelled start."""
        self._starts.pop(key, None)
        self._starts[key] = AbandonedStart(run_id, began_wall, self.clock())
        while len(self._starts) > MAX_REMEMBERED_STARTS:
            self._starts.popitem(last=False)

    def take(self, key: str) -> AbandonedStart | None:
        """The cancelled start with this key, if recent enough; it is forgotten either way."""
        start = self._starts.pop(key, None)
        return start if start is not None and self.clock() - start.at <= self.window else None
