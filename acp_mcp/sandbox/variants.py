"""Readings of the ACP API where its docs are silent: each variant makes the sandbox play another plausible one.

By default the sandbox answers as ``app``, ``store`` and ``runs`` describe (the documented shapes, and our
guesses where the docs say nothing). Each variant flips one guess to another reading the public material
allows, so a client can be proved against every reading, not one:

- ``flat-bodies``: start, continue, get, events and cancel answer the flat run (``{id, status, ...}``,
  with ``events`` and ``thread`` beside its fields) instead of the envelope ``{run: {...}, events}``.
- ``oldest-first``: the run and server lists hold the same items, oldest first.
- ``no-event-ids``: events carry no ``id``.
- ``limit-max-50``: a list's ``limit`` above 50 is refused with 400 (by default, above 100).
- ``busy-input-queues``: input to a queued or running run is accepted (202) and its turn begins when the
  current one ends, instead of 409 ``RUN_BUSY``.

Variants combine: ``flat-bodies,no-event-ids`` plays both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

FLAT_BODIES: Final = "flat-bodies"
OLDEST_FIRST: Final = "oldest-first"
NO_EVENT_IDS: Final = "no-event-ids"
LIMIT_MAX_50: Final = "limit-max-50"
BUSY_INPUT_QUEUES: Final = "busy-input-queues"
VARIANTS: Final = (FLAT_BODIES, OLDEST_FIRST, NO_EVENT_IDS, LIMIT_MAX_50, BUSY_INPUT_QUEUES)
"""Every variant, in the order the docs list them."""
VARIANTS_ENV: Final = "ACP_SANDBOX_VARIANTS"
"""The environment's equivalent of ``acp-mcp sandbox --variant``."""


def parse_variants(text: str | Iterable[str]) -> frozenset[str]:
    """The variants named in `text` (comma-separated) or in an iterable; raise ValueError naming an unknown one."""
    names = text.split(",") if isinstance(text, str) else list(text)
    chosen = frozenset(name.strip() for name in names if name.strip())
    unknown = sorted(chosen - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown sandbox variant {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    return chosen
