"""Every rule a tool argument must meet beyond its schema, checked before anything is sent.

Types, ranges and lengths are in the tools' schemas (built from `limits`) and the SDK enforces
them; what a schema cannot say is checked here. The client applies `path_id` to every id it puts
in a URL, so resource reads, completions and tasks meet the same rule. Refusals carry data (the
field, the problem, the numbers); `messages` writes the sentence.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from .errors import InvalidArgumentError, InvalidIdError
from .limits import MAX_ID_CHARS, MAX_METADATA_CHARS, MAX_WAIT_SECONDS

RESERVED_ID_CHARACTERS = "/\\?#%"
"""Characters that would change a URL's path or query if an id held them."""
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Unicode categories of invisible or line-breaking characters, never part of an id."""


def server_id(given: str | None, default: str | None) -> str:
    """The call's serverId, or the configured default; refused when there is neither."""
    chosen = given or default
    if chosen is None:
        raise InvalidArgumentError("serverId", "server_id_missing")
    return chosen


def wait_seconds(given: float | None, default: float) -> float:
    """The call's wait, defaulting to `default`, kept within 0 and `MAX_WAIT_SECONDS`."""
    value = default if given is None else given
    return max(0.0, min(float(value), MAX_WAIT_SECONDS))


def run_body(*, reserved: int = 0, **fields: Any) -> dict[str, Any]:
    """The JSON body of a start or an input from the fields given; ``mode`` defaults to ``async``. `reserved`
    characters of the ``metadata`` limit are kept for what the server adds (a start's marker)."""
    body = {name: value for name, value in fields.items() if value is not None}
    if "content" not in body and "prompt" not in body:
        raise InvalidArgumentError("content", "text_missing")
    if "metadata" in body:
        try:
            size = len(json.dumps(body["metadata"], separators=(",", ":"), allow_nan=False))
        except ValueError:
            raise InvalidArgumentError("metadata", "metadata_not_json") from None
        if size > MAX_METADATA_CHARS - reserved:
            limit = MAX_METADATA_CHARS - reserved
            raise InvalidArgumentError("metadata", "metadata_too_large", size=size, limit=limit)
    body.setdefault("mode", "async")
    return body


def path_id(field_name: str, value: str) -> str:
    """`value`, if it can stand as one URL path segment."""
    problem: str | None = None
    if not value or not value.strip():
        problem = "id_empty"
    elif value in {".", ".."}:
        problem = "id_dots"
    elif len(value) > MAX_ID_CHARS:
        problem = "id_too_long"
    elif any(ch in RESERVED_ID_CHARACTERS for ch in value):
        problem = "id_reserved_characters"
    elif any(unicodedata.category(ch) in CONTROL_CATEGORIES for ch in value):
        problem = "id_control_characters"
    if problem is not None:
        raise InvalidIdError(field_name, problem, limit=MAX_ID_CHARS)
    return value
