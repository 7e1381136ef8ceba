"""The argument rules beyond the schemas (`acp_mcp.arguments`), and the retry rules (`acp_mcp.retries`), as tables."""

from __future__ import annotations

import email.utils
import math
from typing import Any

import pytest

from acp_mcp import arguments
from acp_mcp.errors import (
    ACPError,
    ConflictError,
    ConnectError,
    Envelope,
    InvalidArgumentError,
    InvalidIdError,
    ProtocolError,
    RateLimitError,
    RequestTimeout,
    ServerError,
)
from acp_mcp.limits import MAX_ID_CHARS, MAX_METADATA_CHARS, MAX_WAIT_SECONDS, RETRY_ATTEMPTS
from acp_mcp.messages import describe
from acp_mcp.repeats import START_MARKER_CHARS
from acp_mcp.retries import RetryPolicy, retry_after

BASE = "https://api.example"


def refusal(exc: InvalidArgumentError) -> str:
    """The sentence the model reads for `exc`."""
    return describe(exc, base_url=BASE)


@pytest.mark.parametrize(
    ("value", "problem", "sentence"),
    [
        ("", "id_empty", "resourceRunId is empty"),
        ("   ", "id_empty", "resourceRunId is empty"),
        (".", "id_dots", "resourceRunId cannot be '.' or '..'"),
        ("..", "id_dots", "resourceRunId cannot be '.' or '..'"),
        ("r" * (MAX_ID_CHARS + 1), "id_too_long", f"resourceRunId is longer than {MAX_ID_CHARS} characters"),
        ("run/1", "id_reserved_characters", "resourceRunId cannot contain '/', '\\', '?', '#' or '%'"),
        ("run%2F1", "id_reserved_characters", "resourceRunId cannot contain '/', '\\', '?', '#' or '%'"),
        ("run\n1", "id_control_characters", "resourceRunId cannot contain control characters"),
        ("run\u200b1", "id_control_characters", "resourceRunId cannot contain control characters"),
    ],
)
def test_an_id_that_cannot_be_one_path_segment_is_refused_with_what_to_do(
    value: str, problem: str, sentence: str
) -> None:
    with pytest.raises(InvalidIdError) as caught:
        arguments.path_id("resourceRunId", value)

    assert (caught.value.field_name, caught.value.problem) == ("resourceRunId", problem)
    assert refusal(caught.value) == (
        f"Invalid arguments, nothing was sent: {sentence}; pass the id exactly as the API returned it."
    )


@pytest.mark.parametrize("value", ["run_1", "r" * MAX_ID_CHARS, "ünï-cödé", "a.b", "..."])
def test_an_id_that_can_be_one_path_segment_is_kept_as_it_is(value: str) -> None:
    assert arguments.path_id("serverId", value) == value


def test_server_id_falls_back_to_the_default_and_is_required_without_one() -> None:
    assert arguments.server_id("srv_given", "srv_default") == "srv_given"
    assert arguments.server_id(None, "srv_default") == "srv_default"
    assert arguments.server_id("", "srv_default") == "srv_default"
    with pytest.raises(InvalidArgumentError) as caught:
        arguments.server_id(None, None)
    assert refusal(caught.value) == (
        "Invalid arguments, nothing was sent: serverId is required: pass serverId (the resource id of the agent "
        "runtime's server), or ask the user to set ACP_SERVER_ID in this MCP server's environment."
    )


@pytest.mark.parametrize(
    ("given", "expected"), [(None, 45.0), (0, 0.0), (2.5, 2.5), (MAX_WAIT_SECONDS + 1, MAX_WAIT_SECONDS), (-1, 0.0)]
)
def test_the_wait_defaults_and_stays_within_its_bounds(given: float | None, expected: float) -> None:
    assert arguments.wait_seconds(given, 45.0) == expected


def test_a_body_keeps_the_given_fields_and_defaults_mode_to_async() -> None:
    assert arguments.run_body(content="hi", prompt=None, title=None, mode=None, metadata=None) == {
        "content": "hi",
        "mode": "async",
    }
    assert arguments.run_body(prompt="p", mode="sync", metadata={"k": [1]}) == {
        "prompt": "p",
        "mode": "sync",
        "metadata": {"k": [1]},
    }


@pytest.mark.parametrize(
    ("fields", "field_name", "sentence"),
    [
        ({"content": None, "prompt": None}, "content", "give content (the text for the agent) or prompt"),
        (
            {"content": "x", "metadata": {"n": math.nan}},
            "metadata",
            "metadata must be plain JSON: NaN and Infinity are not allowed",
        ),
        (
            {"content": "x", "metadata": {"k": "v" * MAX_METADATA_CHARS}},
            "metadata",
            f"metadata is {MAX_METADATA_CHARS + 8:,} characters of JSON; the limit is {MAX_METADATA_CHARS:,}",
        ),
        (  # a start: its marker's characters are kept free
            {"content": "x", "metadata": {"k": "v" * (MAX_METADATA_CHARS - 8)}, "reserved": START_MARKER_CHARS},
            "metadata",
            f"metadata is {MAX_METADATA_CHARS:,} characters of JSON; the limit is "
            f"{MAX_METADATA_CHARS - START_MARKER_CHARS:,}",
        ),
    ],
)
def test_a_body_the_api_cannot_take_is_refused_before_anything_is_sent(
    fields: dict[str, Any], field_name: str, sentence: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        arguments.run_body(**fields)

    assert caught.value.field_name == field_name
    assert refusal(caught.value) == f"Invalid arguments, nothing was sent: {sentence}."


def _status(
    cls: type[RateLimitError] | type[ServerError] | type[ConflictError], status: int, after: float | None = None
) -> ACPError:
    return cls(f"HTTP {status}", status=status, envelope=Envelope(), retry_after=after)


@pytest.mark.parametrize(
    ("method", "exc", "expected"),
    [
        ("GET", _status(RateLimitError, 429, after=3.0), 3.0),
        ("POST", _status(RateLimitError, 429, after=3.0), 3.0),
        ("POST", ConnectError("no connection"), "backoff"),
        ("GET", RequestTimeout("slow"), "backoff"),
        ("GET", ProtocolError("broke"), "backoff"),
        ("GET", _status(ServerError, 503), "backoff"),
        ("GET", _status(ServerError, 503, after=1.5), 1.5),
        ("GET", _status(ServerError, 500), None),
        ("POST", _status(ServerError, 503), None),
        ("POST", RequestTimeout("slow"), None),
        ("GET", _status(ConflictError, 409), None),
    ],
)
def test_what_is_retried_and_after_how_long(method: str, exc: ACPError, expected: float | str | None) -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=8.0)

    delay = policy.delay(method, exc, attempt=0)

    if expected == "backoff":
        assert delay is not None and 0.1 <= delay <= 0.2
    else:
        assert delay == expected


def test_retries_stop_after_the_last_attempt_and_back_off_exponentially_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=1.0)
    exc = ConnectError("no connection")

    assert policy.delay("GET", exc, attempt=RETRY_ATTEMPTS - 1) is None
    assert all(0.125 <= policy.backoff(2) <= 1.0 for _ in range(50))
    assert all(0.125 <= policy.backoff(10) <= 1.0 for _ in range(50))


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_retry_after_is_read_as_seconds(header: str, expected: float | None) -> None:
    assert retry_after({"retry-after": header} if header else {}, now=0.0) == expected


def test_retry_after_as_an_http_date_is_read_against_the_clock() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)

    assert retry_after({"retry-after": header}, now=now) == 30.0
    assert retry_after({"retry-after": header}, now=now + 60) == 0.0
