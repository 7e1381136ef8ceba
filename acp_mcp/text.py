"""Small text helpers shared by results, messages and progress: cutting text and writing a next call."""

from __future__ import annotations

import base64
import json
from typing import Any


def b64url(data: bytes) -> str:
    """`data` in unpadded base64url (for ids and links)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """The bytes of unpadded base64url `text`; `ValueError` for anything else, including other spellings of the
    same bytes (padding, ``+/``, stray characters, unused low bits): an id or a link has exactly one spelling."""
    data = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
    if b64url(data) != text:
        raise ValueError("not the one base64url spelling of its bytes")
    return data


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
