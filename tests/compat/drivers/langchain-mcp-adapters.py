# mypy: disable-error-code="import-not-found"
# (the framework is installed only in this driver's own venv, see tests/compat/harness.py, not where the
# repository is type-checked)
"""A LangGraph agent (LangChain's ``create_agent``) with ChatOpenAI over acp-mcp, as the README's ``langchain``
block connects it.

Usage: ``python langchain.py BLOCK`` with the block (placeholders filled in) in the file BLOCK, and
``OPENAI_BASE_URL``/``OPENAI_API_KEY`` naming the Chat Completions endpoint. Prints the final answer.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

PROMPT = "Drive the compatibility flow with the computer-agents tools."


async def main(block: str) -> None:
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # the README block defines `client`
    tools = await namespace["client"].get_tools()
    model = ChatOpenAI(model="stub-model", base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
    agent = create_agent(model, tools)
    state = await agent.ainvoke({"messages": [{"role": "user", "content": PROMPT}]})
    print(state["messages"][-1].content)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]).read_text()))
