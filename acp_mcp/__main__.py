"""``python -m acp_mcp``: the same as the ``acp-mcp`` command."""

from acp_mcp.cli import main

raise SystemExit(main())
