"""Hypothesis strategies for the property tests (`test_properties.py`): ids, texts, JSON values of any type,
and whole tool calls with some arguments broken on purpose.

The limits come from `acp_mcp.limits`, so the generated values sit just inside and just past each one.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from acp_mcp.limits import (
    MAX_ID_CHARS,
    MAX_LIST_RUNS,
    MAX_MAX_EVENTS,
    MAX_METADATA_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    MAX_WAIT_SECONDS,
)
from acp_mcp.repeats import START_MARKER_CHARS

from .conftest import SERVER_ID

MAX_ID = MAX_ID_CHARS
MAX_TEXT = MAX_TEXT_CHARS
MAX_TITLE = MAX_TITLE_CHARS
MAX_METADATA_JSON = MAX_METADATA_CHARS - START_MARKER_CHARS  # a start's marker takes the rest
MAX_EVENTS = MAX_MAX_EVENTS
MAX_WAIT = MAX_WAIT_SECONDS
MAX_LIMIT = MAX_LIST_RUNS

TOOLS_WITH_RUN_ID = ("continue_agent_run", "get_agent_run", "cancel_agent_run")
TOOLS = ("start_agent_run", "list_agent_runs", *TOOLS_WITH_RUN_ID)

ID_PIECES = [
    "/", "?", "#", "%", "%2F", "%2f", "%2E", "%25", "%%", ".", "..", "\\", " ", "\t", "\n", "\r", "\x00", "\x1f",
    "\x7f", "\x85", "\u00a0", "\u200b", "\u200e", "\u2028", "\u2029", "\u3000", "\ufeff", "\ud800", "\udfff",
    "\U000e0001", "+", "&", "=", ";", ":", "@", "~", "'", '"', "<", ">", "[", "]", "{", "}", "|", "^", "`", "*",
    "é", "e\u0301", "ß", "東京", "😀", "\U0010fffd", "\ufffd", "run_000001", SERVER_ID, "null", "true", "123",
    "[1]", "{}", '"x"', "http://evil.example/", "../../v1/servers", "?limit=1", "#frag",
]  # fmt: skip
ID_PUNCTUATION = " _-.~+@:=,;!$&'()*[]{}<>|^`\""
SPECIAL_IDS = [
    "", " ", "  \t ", ".", "..", "...", "./x", "../x", "x/..", "%", "%2F", "%00", "a" * MAX_ID, "a" * (MAX_ID + 1),
    "é" * MAX_ID, "😀" * MAX_ID, "😀" * (MAX_ID + 1), "x" * 100_000, "null", "NULL", "None", "[]", "{}", "0", "-1",
]  # fmt: skip

ID_CHARACTERS = st.characters(categories=["L", "M", "N", "S", "Zs"], include_characters=ID_PUNCTUATION)
ids = st.one_of(
    st.text(),
    st.text(ID_CHARACTERS, min_size=1, max_size=40),
    st.lists(st.one_of(st.sampled_from(ID_PIECES), st.text(max_size=4)), max_size=8).map("".join),
    st.sampled_from(SPECIAL_IDS),
    st.integers(1, 400).map(lambda n: "r" * n),
)


def plainly_valid_id(value: str) -> bool:
    """An id any client may pass: 1-256 letters, digits, marks and harmless punctuation, not blank or a dot path.

    The contract leaves out only what cannot be one path segment or is invisible: '/', '\\', '?', '#', '%' and
    control or format characters.
    """
    return (
        0 < len(value) <= MAX_ID
        and bool(value.strip())
        and value not in {".", ".."}
        and all(
            ch in ID_PUNCTUATION or unicodedata.category(ch)[0] in "LNMS" or unicodedata.category(ch) == "Zs"
            for ch in value
        )
    )


def _command_free(text: str) -> bool:
    """The sandbox's echo agent reads a first word starting with '/' as a command (/hang, /events ...)."""
    return not text.lstrip().startswith("/")


JSON_LOOKING_TEXTS = ["null", "true", "false", "0", "1.5", "[]", "[1, 2]", "{}", '{"task": "x"}', '"quoted"', " null "]
LONG_TEXTS = ["y" * MAX_TEXT, "é" * 5_000, "z" * MAX_TITLE, "a\x00b\r\n\t"]


def texts(max_length: int) -> st.SearchStrategy[str]:
    """Text the agent may be given: any unicode, JSON-looking text, long text; never an echo-agent command."""
    return st.one_of(
        st.text(max_size=300).filter(_command_free),
        st.sampled_from(JSON_LOOKING_TEXTS),
        st.sampled_from([t for t in LONG_TEXTS if len(t) <= max_length]),
    )


finite = st.floats(allow_nan=False, allow_infinity=False)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), finite, st.text(max_size=30))
json_values = st.recursive(
    json_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
metadata_objects = st.dictionaries(st.text(max_size=20), json_values, max_size=6).filter(
    lambda m: len(json.dumps(m, separators=(",", ":"))) <= MAX_METADATA_JSON
)

# Values of any JSON type, including what JSON-RPC over stdio also parses (NaN, infinities, huge ints).
any_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["x" * (MAX_TEXT + 1), "1e400", "-0", "NaN", "Infinity"]),
)
any_values = st.recursive(
    any_leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)


def _not_json(value: str) -> bool:
    """A string the SDK passes on as a string (it first tries to parse strings for non-string parameters)."""
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


def _not_a_number(value: str) -> bool:
    """A string no lax number parsing can read: no digit of any script, and not a NaN or infinity spelling."""
    if any(ch.isdigit() or unicodedata.numeric(ch, None) is not None for ch in value):
        return False
    return value.strip().lower().lstrip("+-") not in {"nan", "inf", "infinity"}


non_json_strings = st.text(max_size=40).filter(_not_json)
non_numeric_strings = non_json_strings.filter(_not_a_number)
containers = st.one_of(st.lists(any_values, max_size=3), st.dictionaries(st.text(max_size=8), any_values, max_size=3))
fractions = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
NULLABLE = {
    "serverId", "content", "prompt", "title", "mode", "metadata", "waitSeconds", "maxEvents", "eventOffset", "limit"
}  # fmt: skip


def arrives_as_null(value: Any) -> bool:
    """JSON has no NaN or infinity: the client sends such a number as null."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _text_param(max_length: int, *, required: bool = False) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, invalid) values of a string parameter."""
    invalid = st.one_of(
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        containers,
        st.sampled_from(["x" * (max_length + 1), "é" * (max_length + 1), "\ud800 lone surrogate", "a\udfff"]),
        *([st.none()] if required else []),
    )
    return texts(max_length), invalid


def _number_param(
    low: float, high: float | None, *, integer: bool, optional: bool
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, invalid) values of a number parameter from low to high (None: unbounded)."""
    if integer:
        low_i, high_i = int(low), None if high is None else int(high)
        valid = st.one_of(st.integers(low_i, high_i or 10**6), st.integers(low_i, high_i or 10**6).map(float))
        out_of_range = st.one_of(
            st.integers(max_value=low_i - 1),
            *([] if high_i is None else [st.integers(min_value=high_i + 1)]),
            fractions,
        )
    else:
        valid = st.one_of(st.just(0), st.just(0.0), st.floats(0, 0.05))
        out_of_range = st.one_of(
            st.floats(max_value=low, exclude_max=True, allow_infinity=True, allow_nan=False),
            st.floats(min_value=high or 0, exclude_min=True, allow_infinity=True, allow_nan=False),
            st.integers(min_value=int(high or 0) + 1),
            st.integers(max_value=int(low) - 1),
        )
    invalid = st.one_of(out_of_range, non_finite, containers, non_numeric_strings, *([] if optional else [st.none()]))
    return valid, invalid


PARAMS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "serverId": (st.sampled_from([SERVER_ID, "srv_props", "équipe 東京"]), _text_param(MAX_ID)[1]),
    "resourceRunId": (
        st.sampled_from(["run_000001", "run_000002", "run_missing"]),
        _text_param(MAX_ID, required=True)[1],
    ),
    "content": _text_param(MAX_TEXT),
    "prompt": _text_param(MAX_TEXT),
    "title": _text_param(MAX_TITLE),
    "mode": (
        st.sampled_from(["sync", "async", None]),
        st.one_of(
            st.sampled_from(["SYNC", "Async", "", "fast"]),
            st.integers(),
            st.floats(),
            containers,
            non_json_strings.filter(lambda s: s not in {"sync", "async"}),
        ),
    ),
    "metadata": (
        st.one_of(st.none(), metadata_objects),
        st.one_of(
            st.integers(),
            st.floats(),
            st.booleans(),
            st.lists(any_values, max_size=3),
            non_json_strings,
            st.just({"blob": "b" * MAX_METADATA_JSON}),
        ),
    ),
    "waitSeconds": _number_param(0, MAX_WAIT, integer=False, optional=True),
    "maxEvents": _number_param(0, MAX_EVENTS, integer=True, optional=True),
    "eventOffset": _number_param(0, None, integer=True, optional=True),
    "limit": _number_param(1, MAX_LIMIT, integer=True, optional=True),
}  # fmt: skip
TOOL_PARAMS = {
    "start_agent_run": ("serverId", "content", "prompt", "title", "mode", "metadata", "waitSeconds", "maxEvents"),
    "continue_agent_run": (
        "resourceRunId", "serverId", "content", "prompt", "mode", "metadata", "waitSeconds", "maxEvents",
    ),
    "get_agent_run": ("resourceRunId", "serverId", "waitSeconds", "maxEvents", "eventOffset"),
    "list_agent_runs": ("serverId", "limit"),
    "cancel_agent_run": ("resourceRunId", "serverId"),
}  # fmt: skip


@st.composite
def tool_calls(draw: Callable[..., Any]) -> tuple[str, dict[str, Any], set[str]]:
    """A tool, its arguments and the names of the invalid ones; half the calls have one to three broken."""
    tool = draw(st.sampled_from(TOOLS))
    params = TOOL_PARAMS[tool]
    broken = draw(st.just(set()) | st.sets(st.sampled_from(params), min_size=1, max_size=3))
    args: dict[str, Any] = {}
    invalid: set[str] = set()
    for name in params:
        if name in broken:
            if name == "resourceRunId" and draw(st.booleans()):
                invalid.add(name)  # a required parameter, omitted
                continue
            args[name] = draw(PARAMS[name][1])
            if not (name in NULLABLE and arrives_as_null(args[name])):  # null: as if omitted
                invalid.add(name)
        elif name == "resourceRunId" or draw(st.integers(0, 5) if name in {"serverId", "content"} else st.booleans()):
            args[name] = draw(PARAMS[name][0])  # serverId and content: given 5 times in 6, the others half the time
    if tool in {"start_agent_run", "continue_agent_run"} and all(
        arrives_as_null(args.get(name)) for name in ("content", "prompt")
    ):
        invalid.add("content")  # one of the two is required
    if tool == "get_agent_run" and "waitSeconds" not in args:
        args["waitSeconds"] = 0  # nothing waits for a run (mode sync still waits for its turn: a few ms)
    args.update(draw(st.dictionaries(st.sampled_from(["extra", "serverid", "Content", "_meta2"]), any_values)))
    return tool, args, invalid


turn_texts = texts(MAX_TEXT)


@st.composite
def turns(draw: Callable[..., Any]) -> tuple[bool, dict[str, Any]]:
    """(continuing, fields): content and/or prompt, maybe a title (start only) and metadata; never mode."""
    continuing = draw(st.booleans())
    fields: dict[str, Any] = {}
    content = draw(st.none() | turn_texts)
    prompt = draw(st.none() | turn_texts) if content is None or draw(st.booleans()) else None
    if content is None and prompt is None:
        content = draw(turn_texts)
    for name, value in (("content", content), ("prompt", prompt)):
        if value is not None:
            fields[name] = value
    if not continuing and draw(st.booleans()):
        fields["title"] = draw(texts(MAX_TITLE))
    if draw(st.booleans()):
        fields["metadata"] = draw(metadata_objects)
    return continuing, fields
