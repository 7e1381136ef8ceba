"""A warning that repeats is logged once per cause per window, then with how many were held back; different
causes and anything below WARNING are never held back."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from acp_mcp.log_storms import LogStormFilter

Record = tuple[float, int, str, tuple[object, ...]]


def logged(records: Sequence[Record]) -> list[str]:
    """The lines a handler with the filter writes for `records` (time, level, message, args)."""
    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(LogStormFilter(window=60.0, clock=lambda: now[0]))
    logger = logging.Logger("storm")
    logger.addHandler(handler)
    for at, level, message, args in records:
        now[0] = at
        logger.log(level, message, *args)
    return out.getvalue().splitlines()


def test_a_storm_is_one_line_a_minute_per_cause_with_the_count_held_back() -> None:
    storm: list[Record] = [(n * 0.001, logging.WARNING, "connection %s reset", ("a",)) for n in range(10_000)]
    other: list[Record] = [(1.0, logging.ERROR, "another cause", ())]
    chatter: list[Record] = [(2.0, logging.INFO, "routine", ()), (2.1, logging.INFO, "routine", ())]
    later: list[Record] = [(61.0, logging.WARNING, "connection %s reset", ("b",))]

    assert logged(storm + other + chatter + later) == [
        "WARNING storm: connection a reset",
        "ERROR storm: another cause",
        "INFO storm: routine",
        "INFO storm: routine",
        "WARNING storm: connection b reset [and 9999 more like this in 61s, not logged]",
    ]
