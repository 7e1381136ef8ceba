"""The README's compatibility and timeout tables say what the suite runs: every row has its test and its pin."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .._tooling import README, ROOT
from .harness import COMPAT

HERE = Path(__file__).parent
NPM = json.loads((COMPAT / "package.json").read_text())["devDependencies"]
ROOT_NPM = json.loads((ROOT / "package.json").read_text())["devDependencies"]


def _python_pin(requirements: str, package: str) -> str:
    found: list[tuple[str, str]] = re.findall(
        r"^([\w.-]+)==(\S+)$", (COMPAT / "python" / requirements).read_text(), re.M
    )
    return dict(found)[package]


ROWS = {  # README name: (pinned version, the test that runs the row)
    "Claude Code": (NPM["@anthropic-ai/claude-code"], HERE / "test_claude_code.py"),
    "Gemini CLI": (NPM["@google/gemini-cli"], HERE / "test_gemini_cli.py"),
    "Codex": (NPM["@openai/codex"], HERE / "test_codex.py"),
    "GitHub Copilot CLI": (NPM["@github/copilot"], HERE / "test_copilot_cli.py"),
    "opencode": (NPM["opencode-ai"], HERE / "test_opencode.py"),
    "MCP Inspector CLI": (ROOT_NPM["@modelcontextprotocol/inspector"], ROOT / "tests" / "test_clients.py"),
    "pydantic-ai": (_python_pin("pydantic-ai.txt", "pydantic-ai-slim"), HERE / "test_python_frameworks.py"),
    "openai-agents (default and strict schemas)": (
        _python_pin("openai-agents.txt", "openai-agents"),
        HERE / "test_python_frameworks.py",
    ),
    "langchain-mcp-adapters + LangGraph": (
        _python_pin("langchain-mcp-adapters.txt", "langchain-mcp-adapters"),
        HERE / "test_python_frameworks.py",
    ),
    "fast-agent": (_python_pin("fast-agent.txt", "fast-agent-mcp"), HERE / "test_python_frameworks.py"),
}


def _table(marker: str) -> list[list[str]]:
    """The rows (cells stripped) of the table right after ``<!-- marker -->`` in the README."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index(f"<!-- {marker} -->\n") :].split("\n\n", 1)[0]
    lines = [line for line in block.splitlines()[1:] if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_the_compatibility_table_lists_each_client_the_suite_runs_at_its_pinned_version() -> None:
    table = {row[0]: row[1] for row in _table("compat-table")}
    assert table == {name: version for name, (version, _) in ROWS.items()}
    for name, (_, test) in ROWS.items():
        assert test.is_file(), f"{name}: {test} is missing"


def test_the_timeout_table_covers_every_client_that_calls_tools_for_a_model() -> None:
    clients = {row[0] for row in _table("timeouts")}
    expected = {name.split(" (")[0].split(" + ")[0] for name in ROWS} - {"MCP Inspector CLI"}
    assert clients == expected
