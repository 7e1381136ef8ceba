"""The tool contracts are deliberate: every tool's listing is snapshotted, and registry-wide rules hold.

A change to a name, schema, annotation or description fails here until the snapshot is
regenerated on purpose: ``UPDATE_SNAPSHOTS=1 pytest tests/test_contract.py`` (then note the
change in CHANGELOG.md).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs: types-jsonschema is no test dependency

from acp_mcp.config import Settings

from .conftest import connect

pytestmark = pytest.mark.anyio

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
EXPECTED_TOOLS = ["start_agent_run", "continue_agent_run", "get_agent_run", "list_agent_runs", "cancel_agent_run"]


async def _listed_tools(settings: Settings) -> list[dict[str, Any]]:
    async with connect(settings) as client:
        tools = (await client.list_tools()).tools
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


async def test_the_server_lists_exactly_the_five_run_tools(settings: Settings) -> None:
    assert [tool["name"] for tool in await _listed_tools(settings)] == EXPECTED_TOOLS


@pytest.mark.parametrize("name", EXPECTED_TOOLS)
async def test_tool_listing_matches_its_snapshot(settings: Settings, name: str) -> None:
    (tool,) = [t for t in await _listed_tools(settings) if t["name"] == name]
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(tool, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot for {name}: run UPDATE_SNAPSHOTS=1 pytest {__file__}"
    assert rendered == path.read_text(encoding="utf-8")


async def test_no_snapshot_is_left_for_a_tool_that_no_longer_exists() -> None:
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == sorted(EXPECTED_TOOLS)


async def test_every_tool_sets_every_behaviour_hint_and_is_open_world(settings: Settings) -> None:
    for tool in await _listed_tools(settings):
        hints = tool["annotations"]
        assert set(hints) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}, tool["name"]
        assert hints["openWorldHint"] is True
        assert tool["title"], tool["name"]


async def test_hints_match_what_each_tool_does(settings: Settings) -> None:
    hints = {t["name"]: t["annotations"] for t in await _listed_tools(settings)}
    read_only = {name for name, h in hints.items() if h["readOnlyHint"]}
    assert read_only == {"get_agent_run", "list_agent_runs"}
    assert {name for name, h in hints.items() if h["destructiveHint"]} == {"cancel_agent_run"}
    assert not hints["start_agent_run"]["idempotentHint"]
    assert not hints["continue_agent_run"]["idempotentHint"]
    assert hints["get_agent_run"]["idempotentHint"] and hints["list_agent_runs"]["idempotentHint"]


async def test_names_are_verb_noun_and_descriptions_are_bounded(settings: Settings) -> None:
    for tool in await _listed_tools(settings):
        assert re.fullmatch(r"(start|continue|get|list|cancel)_agent_runs?", tool["name"])
        assert 200 <= len(tool["description"]) <= 1200, tool["name"]
        assert "    " not in tool["description"], "descriptions are dedented"


async def test_input_schemas_are_flat_and_spell_fields_as_the_api_does(settings: Settings) -> None:
    schemas = {t["name"]: t["inputSchema"] for t in await _listed_tools(settings)}
    continue_schema = schemas["continue_agent_run"]
    assert "$defs" not in continue_schema and "$ref" not in json.dumps(continue_schema)
    assert list(continue_schema["properties"])[:6] == [
        "resourceRunId",
        "serverId",
        "content",
        "prompt",
        "mode",
        "metadata",
    ]
    assert continue_schema["required"] == ["resourceRunId"]
    mode = continue_schema["properties"]["mode"]
    assert {"enum": ["sync", "async"], "type": "string"} in mode["anyOf"]
    assert continue_schema["properties"]["metadata"]["anyOf"][0]["type"] == "object"
    assert "title" in schemas["start_agent_run"]["properties"]
    assert "title" not in continue_schema["properties"]


async def test_output_schemas_describe_the_run_result(settings: Settings) -> None:
    schemas = {t["name"]: t["outputSchema"] for t in await _listed_tools(settings)}
    for name in ("start_agent_run", "continue_agent_run", "get_agent_run", "cancel_agent_run"):
        required = set(schemas[name]["required"])
        assert required == {"serverId", "outcome", "terminal", "waitedSeconds", "waitExpired"}, name
        assert {"run", "events", "eventsTotal", "next", "resourceUri"} <= set(schemas[name]["properties"])
    assert set(schemas["list_agent_runs"]["required"]) == {"serverId", "runs", "count"}


async def test_optional_parameters_accept_null_as_clients_that_validate_arguments_check_it(settings: Settings) -> None:
    for tool in await _listed_tools(settings):
        schema = tool["inputSchema"]
        required = {name: "run_000001" for name in schema.get("required", [])}
        for name in set(schema["properties"]) - set(required):
            Draft202012Validator(schema).validate({**required, name: None})


async def test_every_limit_of_a_parameter_is_stated_in_its_description(settings: Settings) -> None:
    for tool in await _listed_tools(settings):
        for name, prop in tool["inputSchema"]["properties"].items():
            bounds = [prop, *prop.get("anyOf", [])]
            limits = {b[key] for b in bounds for key in ("maximum", "minimum", "maxLength") if key in b}
            for limit in limits:
                assert f"{limit:,g}" in prop["description"], (tool["name"], name, limit)


async def test_output_schemas_are_self_contained_with_nullable_types_and_no_anyof(settings: Settings) -> None:
    for tool in await _listed_tools(settings):
        text = json.dumps(tool["outputSchema"])
        assert "$ref" not in text and "$defs" not in text and "anyOf" not in text, tool["name"]
    run = {t["name"]: t for t in await _listed_tools(settings)}["get_agent_run"]["outputSchema"]["properties"]["run"]
    assert run["type"] == ["object", "null"]
    assert run["properties"]["status"] == {"type": ["string", "null"]}


async def test_the_tool_list_fits_its_budgets(settings: Settings) -> None:
    """The whole list on the wire, and what a model reads of it (names, descriptions, input schemas)."""
    tools = await _listed_tools(settings)
    model_facing = [{k: t[k] for k in ("name", "description", "inputSchema")} for t in tools]
    assert len(json.dumps(tools, separators=(",", ":"))) <= 15_000
    assert len(json.dumps(model_facing, separators=(",", ":"))) <= 8_000
