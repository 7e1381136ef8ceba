"""The suite's statistics: percentiles, summaries, ratios and the interleaved sampling order."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """Median, p99, min and count, scaled (seconds -> ms by default)."""
    return {
        "n": len(values),
        "median": round(statistics.median(values) * scale, 3),
        "p99": round(pct(values, 99) * scale, 3),
        "min": round(min(values) * scale, 3),
    }


def ratio(a: float, b: float) -> float:
    """`a / b` to three decimals."""
    return round(a / b, 3)


def interleaved(sides: Sequence[T], i: int) -> list[T]:
    """`sides` in order on even `i`, reversed on odd (A, B, B, A, ...), so drift hits every side alike."""
    return list(sides) if i % 2 == 0 else list(reversed(sides))
