"""The JSON Schemas clients see, shaped for the clients that read them.

Input schemas: the generated ``title`` keywords and ``default: null`` dropped (noise in the model's
tool list; an omitted optional parameter is null anyway), and optional text parameters advertised
as string-or-null, so clients that validate arguments before calling (Gemini CLI) accept an
explicit ``null``. Output schemas: every ``$ref`` inlined, ``title``, ``default``, ``description``
and ``additionalProperties: true`` dropped (the README documents the fields), and
``anyOf: [X, null]`` written as ``type: [X, "null"]``: the same constraints in a third of the size,
and several times cheaper to validate for the clients that check every result against it (the
Python SDK's ``Client`` and everything built on it).
"""

from __future__ import annotations

from typing import Any

NULL = {"type": "null"}


def nullable(schema: dict[str, Any]) -> None:
    """`json_schema_extra` hook: the parameter's string schema, or null."""
    string = {key: schema.pop(key) for key in ("type", "maxLength") if key in schema}
    schema["anyOf"] = [string, NULL]


def input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema without generated titles and null defaults."""
    shaped: dict[str, Any] = _walk(schema, {}, drop={"title": ANY, "default": None}, flatten_null=False)
    return shaped


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's output schema, self-contained and compact (see the module docstring)."""
    drop = {"title": ANY, "default": ANY, "description": ANY, "$defs": ANY, "additionalProperties": True}
    shaped: dict[str, Any] = _walk(schema, schema.get("$defs", {}), drop=drop, flatten_null=True)
    return shaped


ANY = object()
"""In a `drop` table: drop the keyword whatever its value."""


def _walk(node: Any, defs: dict[str, Any], *, drop: dict[str, Any], flatten_null: bool) -> Any:
    if isinstance(node, list):
        return [_walk(item, defs, drop=drop, flatten_null=flatten_null) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and defs:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in drop and (drop[key] is ANY or drop[key] == value):
            continue
        if key == "properties":  # property names are not keywords: a property may be called "title"
            out[key] = {name: _walk(sub, defs, drop=drop, flatten_null=flatten_null) for name, sub in value.items()}
        else:
            out[key] = _walk(value, defs, drop=drop, flatten_null=flatten_null)
    return _null_as_type(out) if flatten_null else out


def _null_as_type(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {"type": "null"}]`` as X with ``"null"`` added to its type (and enum)."""
    options = node.get("anyOf")
    if not (isinstance(options, list) and len(options) == 2 and NULL in options):
        return node
    (other,) = [option for option in options if option != NULL]
    if not isinstance(other.get("type"), str):
        return node
    merged = {**{key: value for key, value in node.items() if key != "anyOf"}, **other}
    merged["type"] = [other["type"], "null"]
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged
