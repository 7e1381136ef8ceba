# mypy: disable-error-code="import-not-found,untyped-decorator"
# (the framework is installed only in this driver's own venv, see tests/compat/harness.py, not where the
# repository is type-checked, so its decorators are untyped to mypy)
"""fast-agent's own agent loop over acp-mcp, configured by the README's ``fast-agent`` block.

Usage: ``python fast-agent.py CONFIG`` with the block (placeholders filled in) as the fastagent.config.yaml
CONFIG, and ``GENERIC__BASE_URL``/``GENERIC__API_KEY`` naming the Chat Completions endpoint (fast-agent's
``generic`` provider). Prints the final answer.
"""

from __future__ import annotations

import asyncio
import sys

from fast_agent import FastAgent

PROMPT = "Drive the compatibility flow with the computer-agents tools."


async def main(config: str) -> None:
    fast = FastAgent("compat", config_path=config, parse_cli_args=False, quiet=True)

    @fast.agent(name="compat", servers=["computer-agents"], model="generic.stub-model")
    async def compat() -> None:
        pass

    async with fast.run() as app:
        answer = await app.compat.send(PROMPT)
    print(answer)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
