"""Log storms: a warning or error that repeats is logged once a minute per cause, with how many were held back.

A hostile load made asyncio log 248,000 tracebacks (110 MB) in 40 s. A cause is the logger, the level, the
message before its arguments and the exception's type, so "connection reset by peer" a thousand times is one
line, while two different failures are two. Below WARNING nothing is held back.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .limits import LOG_CAUSES, LOG_WINDOW_SECONDS

Cause = tuple[str, int, str, Any]


class LogStormFilter(logging.Filter):
    """Lets the first record of a cause through, then none of that cause for `window` seconds."""

    def __init__(self, window: float = LOG_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        self._causes: OrderedDict[Cause, list[float]] = OrderedDict()  # cause -> [when last logged, how many held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        cause = (record.name, record.levelno, str(record.msg), record.exc_info[0] if record.exc_info else None)
        now = self._clock()
        seen = self._causes.get(cause)
        if seen is not None and now - seen[0] < self._window:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [and {int(seen[1])} more like this in {now - seen[0]:.0f}s, not logged]"
        self._causes[cause] = [now, 0]
        self._causes.move_to_end(cause)
        while len(self._causes) > LOG_CAUSES:
            self._causes.popitem(last=False)
        return True
