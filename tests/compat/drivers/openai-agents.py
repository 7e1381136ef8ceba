# mypy: disable-error-code="import-not-found"
# (the framework is installed only in this driver's own venv, see tests/compat/harness.py, not where the
# repository is type-checked)
"""The OpenAI Agents SDK's own agent loop over acp-mcp, as the README's ``openai-agents`` block connects it.

Usage: ``python openai-agents.py BLOCK [--strict]`` with the block (placeholders filled in) in the file BLOCK,
and ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` naming the Chat Completions endpoint; ``--strict`` turns on
``convert_schemas_to_strict``. Prints the final answer.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from agents import Agent, OpenAIChatCompletionsModel, Runner
from openai import AsyncOpenAI

PROMPT = "Drive the compatibility flow with the computer-agents tools."


async def main(block: str, strict: bool) -> None:
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # the README block defines `computer_agents`
    client = AsyncOpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
    async with namespace["computer_agents"] as server:
        agent = Agent(
            name="compat",
            model=OpenAIChatCompletionsModel(model="stub-model", openai_client=client),
            mcp_servers=[server],
            mcp_config={"convert_schemas_to_strict": strict},
        )
        result = await Runner.run(agent, PROMPT)
    print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]).read_text(), strict="--strict" in sys.argv[2:]))
