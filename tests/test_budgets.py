"""Results never flood the model's context: every cut is bounded and marked, every event stays reachable.

The sandbox's echo agent makes the large runs: ``/events N SIZE`` appends N events of SIZE
characters (after the usual user and "Agent started" events), ``/output SIZE`` answers SIZE
characters of output.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextResourceContents

from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox

from .conftest import SERVER_ID, api_requests, connect, start_run, text_of, unmarked

pytestmark = pytest.mark.anyio

BUDGET_CHARS = 25_000
"""The most any result may cost, text and structured together, whatever its window."""
PAGE = 40
"""The largest page (maxEvents' maximum): its events share 8,000 characters, 200 each."""


def _size(result: CallToolResult) -> int:
    """What a result costs the model: every text block plus the structured content as JSON."""
    return len(text_of(result)) + len(json.dumps(result.structured_content))


def _cut(text: str, limit: int) -> str:
    """`text` as the documented cut leaves it: the first `limit` characters and a marker."""
    return text[:limit] + f"… [truncated: {len(text) - limit:,} more characters]"


async def _page(client: Client, run_id: str, offset: int) -> dict[str, Any]:
    result = await client.call_tool(
        "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "eventOffset": offset, "maxEvents": PAGE}
    )
    assert not result.is_error, text_of(result)
    assert _size(result) < BUDGET_CHARS
    structured: dict[str, Any] = result.structured_content
    return structured


async def test_a_10000_event_10_mb_run_shapes_to_a_small_result_with_the_latest_events_cut_and_marked(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/events 10000 1000", "mode": "async", "waitSeconds": 20})

    structured = result.structured_content
    run_id = structured["run"]["id"]
    events = sandbox.state.get_run(SERVER_ID, run_id).events
    total = len(events)
    assert total == 10_002  # the user's input, "Agent started", then the 10,000 generated events
    assert sum(len(e["content"]) for e in events) >= 10_000_000
    assert structured["run"]["status"] == "completed", text_of(result)

    assert _size(result) < BUDGET_CHARS
    assert (structured["eventsTotal"], structured["eventOffset"]) == (total, total - 20)
    listed = structured["events"]
    assert [e["id"] for e in listed] == [e["id"] for e in events[-20:]]
    for shown, original in zip(listed, events[-20:], strict=True):
        assert len(original["content"]) == 1000
        assert shown["content"] == original["content"][:400] + "… [truncated: 600 more characters]"
    assert structured["notes"] == [
        f"events {total - 20}-{total - 1} of {total} listed; page with eventOffset",
        "event contents cut to 400 characters",
    ]
    text = text_of(result)
    assert f"Note: events {total - 20}-{total - 1} of {total} listed; page with eventOffset" in text
    assert "Note: event contents cut to 400 characters" in text
    # While the run had few events it was polled on /events; the poll that saw it finished is the result.
    run_path = f"/v1/servers/{SERVER_ID}/runtime/agent/runs/{run_id}"
    gets = [r.path for r in api_requests(sandbox, method="GET")]
    assert gets and set(gets) == {f"{run_path}/events"}


async def test_every_event_is_reachable_by_paging_with_event_offset_none_missing_or_repeated(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    """All pages of a 1,002-event run; the 10 MB run's pages are checked by sampling below."""
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "/events 1000 40", "mode": "sync"})).structured_content["run"][
            "id"
        ]
        expected = [e["id"] for e in sandbox.state.get_run(SERVER_ID, run_id).events]
        seen: list[str] = []
        for offset in range(0, len(expected), PAGE):
            page = await _page(client, run_id, offset)
            assert (page["eventOffset"], page["eventsTotal"]) == (offset, len(expected))
            seen.extend(e["id"] for e in page["events"])

    assert len(expected) == 1002
    assert seen == expected
    assert len(set(seen)) == len(seen)


async def test_pages_of_a_10000_event_10_mb_run_hold_exactly_the_events_at_their_offsets(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    """Every 17th page plus the first two and last two.

    All 201 pages would take about 85 s: each call re-fetches and parses the whole 10 MB run.
    """
    async with connect(settings) as client:
        started = await start_run(client, {"content": "/events 10000 1000", "mode": "async", "waitSeconds": 20})
        run_id = started.structured_content["run"]["id"]
        events = sandbox.state.get_run(SERVER_ID, run_id).events
        total = len(events)
        offsets = list(range(0, total, PAGE))
        sampled = sorted({*offsets[:2], *offsets[::17], *offsets[-2:]})
        pages = {offset: await _page(client, run_id, offset) for offset in sampled}

    # The offsets 0, 40, ... tile [0, total) exactly, so pages that hold min(40, rest) events from
    # their offset, in order, reach every event once.
    assert offsets[-1] < total <= offsets[-1] + PAGE
    assert sum(min(PAGE, total - offset) for offset in offsets) == total
    for offset, page in pages.items():
        assert (page["eventOffset"], page["eventsTotal"]) == (offset, total)
        assert [e["id"] for e in page["events"]] == [e["id"] for e in events[offset : offset + PAGE]]
        assert len(page["events"]) == min(PAGE, total - offset)
    assert [e["content"] for e in pages[0]["events"][:2]] == ["/events 10000 1000", "Agent started"]
    assert pages[0]["notes"] == [
        f"events 0-39 of {total} listed; page with eventOffset",
        "event contents cut to 200 characters",
    ]
    last = pages[offsets[-1]]
    assert [e["id"] for e in last["events"]] == [e["id"] for e in events[-2:]]
    assert last["events"][-1]["content"] == events[-1]["content"]  # two events share 8,000: shown whole


async def test_a_huge_output_is_cut_at_4000_characters_in_the_result_and_1500_in_the_text(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/output 50000", "mode": "sync"})

    run_id = result.structured_content["run"]["id"]
    output = sandbox.state.get_run(SERVER_ID, run_id).output
    assert output is not None and len(output) == 50_000
    structured = result.structured_content
    assert structured["run"]["output"] == output[:4000] + "… [truncated: 46,000 more characters]"
    assert "run.output cut to 4,000 of 50,000 characters" in structured["notes"]
    assert _size(result) < BUDGET_CHARS
    text = text_of(result)
    assert "Note: run.output cut to 4,000 of 50,000 characters" in text
    (output_line,) = [line for line in text.splitlines() if line.startswith("Output: ")]
    assert output_line.startswith("Output: " + output[:1500] + "… [truncated: ")
    # The marker counts what the model does not see of the output: 50,000 - 1,500 characters.
    assert output_line == "Output: " + _cut(output, 1500)


async def test_large_metadata_is_left_out_of_the_result_with_a_note_and_kept_whole_in_the_resource(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    metadata = {"blob": "m" * 15_980, "ticket": "T-1"}
    async with connect(settings) as client:
        result = await start_run(client, {"content": "with metadata", "mode": "sync", "metadata": metadata})
        read = await client.read_resource(result.structured_content["resourceUri"])

    assert unmarked(api_requests(sandbox)[0].body) == {"content": "with metadata", "mode": "sync", "metadata": metadata}
    structured = result.structured_content
    assert structured["run"]["metadata"] is None
    (note,) = structured["notes"]
    assert note.startswith("run.metadata omitted (") and note.endswith("characters of JSON); read the resource for it")
    assert f"Note: {note}" in text_of(result)
    assert _size(result) < 3_000
    (contents,) = read.contents
    assert isinstance(contents, TextResourceContents)
    assert json.loads(contents.text)["run"]["metadata"] == api_requests(sandbox)[0].body["metadata"]


@pytest.mark.parametrize(
    ("window", "expected_offset"),
    [({"maxEvents": 0}, 3), ({"eventOffset": 10}, 3), ({"eventOffset": 3, "maxEvents": 40}, 3)],
    ids=["max-events-0", "offset-past-the-end", "offset-at-the-end"],
)
async def test_an_empty_event_window_still_gives_the_total_and_clamps_the_offset(
    settings: Settings, sandbox: RunningSandbox, window: dict[str, int], expected_offset: int
) -> None:
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "short", "mode": "sync"})).structured_content["run"]["id"]
        sandbox.state.clear_requests()
        result = await client.call_tool("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, **window})

    assert not result.is_error, text_of(result)
    structured = result.structured_content
    assert (structured["events"], structured["eventsTotal"], structured["eventOffset"]) == ([], 3, expected_offset)
    assert structured["run"]["output"] == "Echo: short"
    assert "Events " not in text_of(result)
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in api_requests(sandbox)] == [("GET", "events")]


@pytest.mark.parametrize("window", [{"maxEvents": 0}, {"eventOffset": 10}], ids=["max-events-0", "offset-past-the-end"])
async def test_an_empty_event_window_is_not_described_as_an_inverted_range(
    settings: Settings, window: dict[str, int]
) -> None:
    async with connect(settings) as client:
        run_id = (await start_run(client, {"content": "short", "mode": "sync"})).structured_content["run"]["id"]
        result = await client.call_tool("get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, **window})

    # not "events 3-2 of 3": no range at all, with the total and how to page
    assert result.structured_content["notes"] == ["no events of 3 listed; page with eventOffset"]
    assert "Note: no events of 3 listed; page with eventOffset" in text_of(result).splitlines()


@pytest.mark.parametrize("max_events", [20, 40])
async def test_the_text_block_lists_at_most_five_events_each_cut_at_200_characters(
    settings: Settings, sandbox: RunningSandbox, max_events: int
) -> None:
    async with connect(settings) as client:
        result = await start_run(client, {"content": "/events 60 1000", "mode": "sync", "maxEvents": max_events})

    run_id = result.structured_content["run"]["id"]
    events = sandbox.state.get_run(SERVER_ID, run_id).events
    assert len(result.structured_content["events"]) == max_events
    lines = text_of(result).splitlines()
    start = lines.index("Events 58-62 of 62:")
    event_lines = [line for line in lines if line.startswith("- [")]
    assert lines[start + 1 : start + 6] == event_lines and len(event_lines) == 5
    for line, event in zip(event_lines, events[-5:], strict=True):
        prefix = "- [assistant/message] " + event["content"][:200] + "… [truncated: "
        assert line.startswith(prefix)
        assert len(line) < len(prefix) + 40
    # The marker counts what the model does not see of the event: 1,000 - 200 characters.
    assert event_lines == ["- [assistant/message] " + _cut(event["content"], 200) for event in events[-5:]]


async def test_a_list_of_the_most_runs_with_long_texts_stays_within_the_budget(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    server_id = "srv_many_long_runs"
    async with connect(settings) as client:
        for index in range(40):
            await client.call_tool(
                "start_agent_run",
                {"serverId": server_id, "content": "/output 20000", "title": f"{index} " + "t" * 900, "mode": "sync"},
            )
        result = await client.call_tool("list_agent_runs", {"serverId": server_id, "limit": 40})

    assert not result.is_error, text_of(result)
    assert _size(result) < BUDGET_CHARS
    structured = result.structured_content
    assert structured["count"] == 40
    first = structured["runs"][0]
    assert first["title"] == "39 " + "t" * 47 + "… [truncated: 853 more characters]"
    assert first["output"] == ("output " * 8)[:50] + "… [truncated: 19,950 more characters]"
    assert structured["notes"] == [
        "titles, inputs, outputs and errors cut to 50 characters; get_agent_run shows a run in full"
    ]
