"""Keep the release metadata in step with the server: ``manifest.json`` tools and versions, ``server.json`` versions.

    python scripts/sync_metadata.py          # rewrite manifest.json and server.json from the server
    python scripts/sync_metadata.py --check  # exit 1 if either is stale (what tests/test_ecosystem.py checks)

The tools (names and descriptions) come from ``tools/list`` of the real server, through ``mcp.Client``;
the version from ``acp_mcp.__version__``. Everything else in both files is edited by hand.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest.json"
SERVER_JSON = ROOT / "server.json"


async def listed_tools() -> list[dict[str, str]]:
    """Name and description of every tool the server lists (all five: read-only mode off)."""
    from mcp import Client

    from acp_mcp.composition import compose
    from acp_mcp.config import Settings

    async with Client(compose(Settings()).server) as client:
        tools = (await client.list_tools()).tools
    return [{"name": tool.name, "description": tool.description or ""} for tool in tools]


def expected_manifest(manifest: dict[str, Any], tools: list[dict[str, str]], version: str) -> dict[str, Any]:
    updated = copy.deepcopy(manifest)
    updated["version"] = version
    updated["tools"] = tools
    return updated


def expected_server_json(server: dict[str, Any], version: str) -> dict[str, Any]:
    updated = copy.deepcopy(server)
    updated["version"] = version
    for package in updated.get("packages", []):
        package["version"] = version
    return updated


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from acp_mcp import __version__

    tools = anyio.run(listed_tools)
    stale = []
    builds: list[tuple[Path, Callable[[dict[str, Any]], dict[str, Any]]]] = [
        (MANIFEST, lambda data: expected_manifest(data, tools, __version__)),
        (SERVER_JSON, lambda data: expected_server_json(data, __version__)),
    ]
    for path, build in builds:
        text = path.read_text(encoding="utf-8")
        wanted = dump(build(json.loads(text)))
        if wanted != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    if args.check and stale:
        sys.stderr.write(f"stale: {', '.join(stale)} (run: python scripts/sync_metadata.py)\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
