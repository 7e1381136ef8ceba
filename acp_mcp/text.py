"""Small text helpers shared by results, messages and progress: cutting text and writing a next call."""

from __future__ import annotations

import json
from typing import Any


def clip(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters, with a marker saying how much was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated: {len(text) - limit:,} more characters]"


def preview(text: str | None, limit: int) -> str:
    """A one-line preview: `text` cut to `limit` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "…"


def call_hint(tool: str, **arguments: Any) -> str:
    """An exact tool call, written the way a model would make it."""
    return f"{tool} {json.dumps({k: v for k, v in arguments.items() if v is not None})}"
