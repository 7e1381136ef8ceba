# mypy: disable-error-code="import-not-found"
# (the framework is installed only in this driver's own venv, see tests/compat/harness.py, not where the
# repository is type-checked)
"""pydantic-ai's own agent loop over acp-mcp, as the README's ``pydantic-ai`` block connects it.

Usage: ``python pydantic-ai.py BLOCK`` with the block (placeholders filled in) in the file BLOCK, and
``OPENAI_BASE_URL``/``OPENAI_API_KEY`` naming the Chat Completions endpoint. Prints the final answer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

PROMPT = "Drive the compatibility flow with the computer-agents tools."


def main(block: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(block.read_text(), namespace)  # the README block defines `computer_agents`
    provider = OpenAIProvider(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
    agent = Agent(OpenAIChatModel("stub-model", provider=provider), toolsets=[namespace["computer_agents"]])
    print(agent.run_sync(PROMPT).output)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
