"""The readings the sandbox can play: named as the README's sandbox table names them, and parsed strictly; the
run list sorted by creation whatever order the API gives."""

from __future__ import annotations

import re

import pytest

from acp_mcp.models import RunList
from acp_mcp.sandbox import VARIANTS, parse_variants

from ._tooling import ROOT


def sandbox_table() -> list[list[str]]:
    """The rows of the README's sandbox table, each a list of its cells."""
    section = (ROOT / "README.md").read_text().split("## The sandbox\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Behaviour")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows if not row.startswith("|---")]


def test_the_readme_table_flips_each_variant_and_names_no_other() -> None:
    named = [re.findall(r"`([a-z0-9-]+)`", row[3].split(":")[0]) for row in sandbox_table()]

    assert {name for names in named for name in names} == set(VARIANTS)
    assert all(len(row) == 4 for row in sandbox_table())


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("", frozenset()),
        (" flat-bodies , no-event-ids,", frozenset({"flat-bodies", "no-event-ids"})),
        (["oldest-first", "oldest-first"], frozenset({"oldest-first"})),
    ],
)
def test_variants_are_read_from_a_comma_separated_list_or_an_iterable(
    text: str | list[str], chosen: frozenset[str]
) -> None:
    assert parse_variants(text) == chosen


def test_runs_are_sorted_newest_created_first_those_without_a_readable_time_last_in_the_apis_order() -> None:
    listing = RunList.model_validate(
        {
            "data": [
                {"id": "undated"},
                {"id": "old", "createdAt": "2026-12-06T09:00:00.000Z"},
                {"id": "garbled", "createdAt": "yesterday"},
                {"id": "new", "createdAt": "2026-12-06T10:00:00.000Z"},
                {"id": "local", "createdAt": "2026-12-06T09:30:00"},  # no zone: read as UTC
            ]
        }
    )

    assert [run.id for run in listing.newest_first()] == ["new", "local", "old", "undated", "garbled"]
