"""acp-mcp: an MCP server that drives agent runs on the Computer Agents platform (the ACP API)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
