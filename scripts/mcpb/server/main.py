"""Entry point of the acp-mcp MCP Bundle: run the bundled server with the bundled libraries.

``server/lib`` (next to this file) holds acp-mcp and its dependencies, installed by
``scripts/build_bundle.py`` for one platform and Python version. It goes first on ``sys.path`` so a
host Python's own site-packages cannot shadow it. Settings come from the environment the host sets
from the bundle's user_config (see manifest.json).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

from acp_mcp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
