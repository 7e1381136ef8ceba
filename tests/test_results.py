"""The event window and the size rules of `acp_mcp.results`, without a server: which events are listed, how
they share the character budget, and the marker every cut ends with."""

from __future__ import annotations

import pytest

from acp_mcp.limits import DEFAULT_MAX_EVENTS, EVENTS_CHARS, MIN_EVENT_CHARS, OUTPUT_CHARS, TEXT_OUTPUT_CHARS
from acp_mcp.models import Event, Run, RunEnvelope
from acp_mcp.results import RunResult, event_chars, event_window, shape_run


def _events(count: int, size: int = 10) -> list[Event]:
    """`count` events, each `size` characters long, their ids numbered from 0."""
    return [Event(id=f"evt_{n}", role="assistant", content=(f"{n}:" + "x" * size)[:size]) for n in range(count)]


def _shape(
    events: list[Event] | None,
    *,
    output: str | None = "done",
    max_events: int = DEFAULT_MAX_EVENTS,
    event_offset: int | None = None,
) -> RunResult:
    """A finished run with `events`, shaped with the window a call's maxEvents and eventOffset ask for."""
    envelope = RunEnvelope(run=Run(id="run_1", status="completed", output=output), events=events)
    return shape_run(
        envelope,
        server_id="srv_1",
        outcome="fetched",
        http_status=None,
        max_events=max_events,
        event_offset=event_offset,
    )


def _marker(cut: int) -> str:
    return f"… [truncated: {cut:,} more characters]"


@pytest.mark.parametrize(
    ("total", "max_events", "offset", "window"),
    [
        (30, 20, None, (10, 30)),  # the latest maxEvents by default
        (5, 20, None, (0, 5)),  # all of them when they fit
        (0, 20, None, (0, 0)),
        (30, 20, 0, (0, 20)),  # from the offset when one is given
        (30, 20, 25, (25, 30)),  # ...up to the last event
        (30, 20, 30, (30, 30)),  # an offset at the end lists nothing
        (30, 20, 45, (30, 30)),  # ...and one past it is clamped to the end
        (30, 0, None, (30, 30)),  # maxEvents 0 lists nothing
        (30, 0, 4, (4, 4)),
    ],
)
def test_the_window_is_the_latest_max_events_or_max_events_from_the_offset(
    total: int, max_events: int, offset: int | None, window: tuple[int, int]
) -> None:
    assert event_window(total, max_events, offset) == window


@pytest.mark.parametrize(
    ("count", "each"),
    [(0, EVENTS_CHARS), (1, 8_000), (2, 4_000), (20, 400), (40, MIN_EVENT_CHARS), (100, 200)],
)
def test_listed_events_share_the_budget_and_none_gets_less_than_the_floor(count: int, each: int) -> None:
    assert event_chars(count) == each


@pytest.mark.parametrize(
    ("max_events", "event_offset", "listed", "offset", "notes"),
    [
        (20, None, range(10, 30), 10, ["events 10-29 of 30 listed; page with eventOffset"]),
        (20, 0, range(20), 0, ["events 0-19 of 30 listed; page with eventOffset"]),
        (5, 20, range(20, 25), 20, ["events 20-24 of 30 listed; page with eventOffset"]),
        (20, 25, range(25, 30), 25, ["events 25-29 of 30 listed; page with eventOffset"]),
        (20, 45, range(0), 30, ["no events of 30 listed; page with eventOffset"]),
        (0, None, range(0), 30, ["no events of 30 listed; page with eventOffset"]),
        (40, None, range(30), 0, []),
    ],
    ids=["latest-by-default", "first-page", "a-middle-page", "last-page", "past-the-end", "none-asked", "all-fit"],
)
def test_the_result_lists_the_window_says_where_it_is_and_how_to_page(
    max_events: int, event_offset: int | None, listed: range, offset: int, notes: list[str]
) -> None:
    result = _shape(_events(30), max_events=max_events, event_offset=event_offset)

    assert [e.id for e in result.events] == [f"evt_{n}" for n in listed]
    assert (result.eventOffset, result.eventsTotal, result.notes) == (offset, 30, notes)


def test_a_run_fetched_without_its_events_has_no_total_and_no_window_note() -> None:
    result = _shape(None)

    assert (result.events, result.eventOffset, result.eventsTotal, result.notes) == ([], 0, None, [])


@pytest.mark.parametrize(
    ("count", "size", "limit"),
    [(20, 1_000, 400), (1, 9_000, 8_000), (40, 300, 200), (3, 2_700, 2_666)],
    ids=["twenty-share-8000", "one-gets-all-8000", "forty-get-the-200-floor", "three-share-8000"],
)
def test_event_contents_over_their_share_are_cut_with_a_marker_and_a_note(count: int, size: int, limit: int) -> None:
    events = _events(count, size)

    result = _shape(events, max_events=40)

    assert [e.content for e in result.events] == [(e.content or "")[:limit] + _marker(size - limit) for e in events]
    assert result.notes == [f"event contents cut to {limit:,} characters"]


def test_event_contents_that_fit_their_share_are_listed_whole_without_a_note() -> None:
    events = _events(2, 4_000)

    result = _shape(events)

    assert [e.content for e in result.events] == [e.content for e in events]
    assert result.notes == []


def test_an_output_over_its_limit_is_cut_with_a_marker_in_the_result_and_shorter_in_the_text() -> None:
    output = "o" * (OUTPUT_CHARS + 1_000)

    result = _shape([], output=output)

    assert result.run is not None and result.run.output == "o" * OUTPUT_CHARS + _marker(1_000)
    assert result.notes == ["run.output cut to 4,000 of 5,000 characters"]
    assert result.text.splitlines()[1] == "Output: " + "o" * TEXT_OUTPUT_CHARS + _marker(5_000 - TEXT_OUTPUT_CHARS)


def test_the_text_lists_the_last_five_events_of_the_window_numbered_within_all_events() -> None:
    result = _shape(_events(30), event_offset=5, max_events=10)

    assert result.text.splitlines()[2:8] == [
        "Events 11-15 of 30:",
        *(f"- [assistant] {n}:xxxxxxx" for n in range(10, 15)),
    ]
