"""Build the MCP Bundle (``.mcpb``) for Claude Desktop and other bundle hosts.

    npm ci                                   # once: installs the pinned mcpb CLI into node_modules
    python scripts/build_bundle.py           # -> dist/acp-mcp-<version>-<platform>-cp<XY>.mcpb

The bundle is ``manifest.json``, ``server/main.py`` (from ``scripts/mcpb/``) and ``server/lib``: acp-mcp
and every dependency, installed with ``pip install --target`` by the Python running this script.
Some dependencies are compiled (``pydantic_core``, ``rpds``, ...), so **a bundle works only on the
platform and Python minor version it was built with**; the host starts it with its own ``python3``
(``python`` on Windows). The packed manifest says so in ``compatibility`` (platform and Python range
stamped here). Build one bundle per platform/Python you ship, each on that platform. pip needs PyPI
(or your index) for the dependencies; nothing else is downloaded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MCPB = ROOT / "node_modules" / ".bin" / ("mcpb.cmd" if sys.platform == "win32" else "mcpb")
HOST_PLATFORMS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}


def stamped_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with ``compatibility`` narrowed to this platform and Python minor version."""
    major, minor = sys.version_info[:2]
    compatibility = dict(manifest.get("compatibility", {}))
    platform = HOST_PLATFORMS.get(sys.platform)
    if platform:
        compatibility["platforms"] = [platform]
    python = f">={major}.{minor} <{major}.{minor + 1}"
    compatibility["runtimes"] = {**compatibility.get("runtimes", {}), "python": python}
    return {**manifest, "compatibility": compatibility}


def bundle_name(version: str) -> str:
    tag = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"acp-mcp-{version}-{tag}-cp{sys.version_info[0]}{sys.version_info[1]}.mcpb"


def stage(staging: Path) -> dict[str, Any]:
    """Lay out the bundle directory: manifest, ignore file, entry point, and the libraries."""
    manifest = stamped_manifest(json.loads((ROOT / "manifest.json").read_text(encoding="utf-8")))
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.copy(ROOT / ".mcpbignore", staging / ".mcpbignore")
    template = ROOT / "scripts" / "mcpb"
    shutil.copytree(template, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    entry = staging / manifest["server"]["entry_point"]
    if not entry.is_file():
        raise SystemExit(f"entry_point {manifest['server']['entry_point']} missing from the staged bundle")
    with tempfile.TemporaryDirectory() as build_dir:
        # Build the wheel from a copy so the checkout gets no build/ or egg-info litter.
        source = Path(build_dir) / "src"
        shutil.copytree(
            ROOT,
            source,
            ignore=shutil.ignore_patterns(
                ".git",
                "node_modules",
                ".venv",
                "dist",
                "build",
                "*.egg-info",
                "__pycache__",
                ".*_cache",
                ".hypothesis",
                "test-artifacts",
            ),
        )
        pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "--quiet"]
        subprocess.run([*pip, "--target", str(staging / "server" / "lib"), str(source)], check=True)
    return manifest


def pack(staging: Path, out: Path) -> None:
    if not MCPB.exists():
        raise SystemExit(f"{MCPB} not found: run `npm ci` in {ROOT} first")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(MCPB), "pack", str(staging), str(out)], check=True, stdout=subprocess.DEVNULL)


def build(out_dir: Path, staging: Path | None = None) -> Path:
    """Build the bundle into `out_dir` and return its path."""
    with tempfile.TemporaryDirectory() as tmp:
        where = staging or Path(tmp) / "bundle"
        manifest = stage(where)
        out = out_dir / bundle_name(manifest["version"])
        pack(where, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist", help="where the .mcpb goes (default dist/)")
    parser.add_argument("--staging", type=Path, help="keep the unpacked bundle directory here (default: a temp dir)")
    args = parser.parse_args(argv)
    sys.stdout.write(f"{build(args.out_dir.resolve(), args.staging.resolve() if args.staging else None)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
