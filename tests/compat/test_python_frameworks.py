"""Python agent frameworks, each in its own pinned venv, connected to acp-mcp by the README's block and run
through the whole flow by their own agent loop against the stub model (OpenAI Chat Completions).

A driver per framework (``drivers/NAME.py``, run by the python of ``compat/python/NAME.txt``) executes the
README's Python block as written, placeholders filled in, then runs the framework's agent and prints its
final answer; fast-agent reads the README's YAML block as its config file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acp_mcp.sandbox import RunningSandbox

from .._tooling import readme_blocks
from ..conftest import API_KEY, SERVER_ID
from .flow import FINAL_TEXT, TOOLS, assert_flow_reached_model, client_name
from .harness import Done, acp_mcp_command, python_client, run_client, sealed_env
from .stub_model import RunningStub

DRIVERS = Path(__file__).parent / "drivers"
TIMEOUT = 300
"""An upper bound only: a loaded 2-core machine takes tens of seconds to import some of these frameworks."""
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Framework:
    """A README block, the venv and driver that run it, and the settings the framework reads."""

    block: str
    venv: str
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.block


PYDANTIC_AI = Framework("pydantic-ai", "pydantic-ai")
OPENAI_AGENTS = Framework("openai-agents", "openai-agents", {"OPENAI_AGENTS_DISABLE_TRACING": "1"})
LANGCHAIN = Framework("langchain", "langchain-mcp-adapters", {"LANGSMITH_TRACING": "false"})
FAST_AGENT = Framework("fast-agent", "fast-agent", {"OTEL__ENABLED": "false"})


def filled(placeholder: str, value: str, block: str) -> str:
    """`block` with its one `placeholder` replaced by `value`."""
    assert block.count(placeholder) == 1, f"the block should hold {placeholder!r} once:\n{block}"
    return block.replace(placeholder, value)


def python_block(name: str, sandbox: RunningSandbox) -> str:
    """The README's Python block: key, server id and command filled in, the base URL added beside the server id."""
    block = readme_blocks()[name]
    block = filled('"tb_..."', json.dumps(API_KEY), block)
    base_url = f'"COMPUTER_AGENTS_BASE_URL": {json.dumps(sandbox.base_url)}'
    block = filled('"srv_..."', f"{json.dumps(SERVER_ID)}, {base_url}", block)
    return filled('"acp-mcp"', json.dumps(acp_mcp_command()), block)


def yaml_block(name: str, sandbox: RunningSandbox) -> str:
    """The README's YAML block: key, server id and command filled in, the base URL added beside the server id."""
    block = readme_blocks()[name]
    block = filled("tb_...", API_KEY, block)
    server_id = re.search(r"^( *)ACP_SERVER_ID: srv_\.\.\.$", block, flags=re.M)
    assert server_id, block
    indent = server_id.group(1)
    block = filled(
        server_id.group(0),
        f"{indent}ACP_SERVER_ID: {SERVER_ID}\n{indent}COMPUTER_AGENTS_BASE_URL: {sandbox.base_url}",
        block,
    )
    return filled("command: acp-mcp\n", f"command: {acp_mcp_command()}\n", block)


def drive(framework: Framework, config: Path, home: Path, *args: str, **env: str) -> Done:
    """Run the framework's driver on `config` to its end; it must succeed and print the final answer."""
    python = python_client(framework.venv)
    command = [str(python), str(DRIVERS / f"{framework.venv}.py"), str(config), *args]
    done = run_client(command, env=sealed_env(home) | framework.env | env, cwd=config.parent, timeout=TIMEOUT)
    assert done.returncode == 0, done
    assert done.stdout.strip().splitlines()[-1:] == [FINAL_TEXT], done
    return done


def openai_env(stub: RunningStub) -> dict[str, str]:
    """The OpenAI SDK's own settings, pointed at the stub model (the drivers pass them to the model too)."""
    return {"OPENAI_BASE_URL": f"{stub.url}/v1", "OPENAI_API_KEY": "sk-stub"}


def assert_chat_completions_with_our_tools(stub: RunningStub) -> None:
    """Every model request was a Chat Completions request that offered all of our tools."""
    assert {request.path for request in stub.model.requests} == {CHAT_PATH}
    for request in stub.model.requests:
        offered = [tool["function"]["name"] for tool in request.body["tools"]]
        assert all(client_name(tool, offered) for tool in TOOLS), offered


@pytest.mark.parametrize("framework", [PYDANTIC_AI, OPENAI_AGENTS, LANGCHAIN], ids=str)
def test_framework_runs_the_whole_flow_through_the_readme_block(
    framework: Framework, sandbox: RunningSandbox, stub: RunningStub, home: Path, tmp_path: Path
) -> None:
    block = tmp_path / "block.py"
    block.write_text(python_block(framework.block, sandbox))

    drive(framework, block, home, **openai_env(stub))

    assert_flow_reached_model(stub.model.seen)
    assert_chat_completions_with_our_tools(stub)


def accepts_null(schema: dict[str, Any]) -> bool:
    """Whether a JSON schema admits null (as a type, in a type list, or in one of its anyOf)."""
    return (
        schema.get("type") == "null"
        or "null" in (schema.get("type") or [])
        or any(map(accepts_null, schema.get("anyOf", [])))
    )


def test_openai_agents_with_strict_schemas_gets_strict_nullable_tools_and_runs_the_whole_flow(
    sandbox: RunningSandbox, stub: RunningStub, home: Path, tmp_path: Path
) -> None:
    block = tmp_path / "block.py"
    block.write_text(python_block(OPENAI_AGENTS.block, sandbox))

    drive(OPENAI_AGENTS, block, home, "--strict", **openai_env(stub))

    assert_flow_reached_model(stub.model.seen)
    assert_chat_completions_with_our_tools(stub)
    functions = {tool["function"]["name"]: tool["function"] for tool in stub.model.requests[0].body["tools"]}
    for name in ("get_agent_run", "list_agent_runs", "cancel_agent_run"):
        assert functions[name].get("strict") is True, f"{name} fell back to a non-strict schema"
    for name, function in functions.items():
        if function.get("strict"):
            properties, required = function["parameters"]["properties"], function["parameters"]["required"]
            assert set(required) == set(properties), name
            optional = {key: schema for key, schema in properties.items() if key != "resourceRunId"}
            assert all(map(accepts_null, optional.values())), f"{name}: optional parameters must accept null"


def test_fast_agent_runs_the_whole_flow_with_the_readme_config(
    sandbox: RunningSandbox, stub: RunningStub, home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "fastagent.config.yaml"
    config.write_text(yaml_block(FAST_AGENT.block, sandbox))

    drive(FAST_AGENT, config, home, GENERIC__BASE_URL=f"{stub.url}/v1", GENERIC__API_KEY="sk-stub")

    assert_flow_reached_model(stub.model.seen)
    assert_chat_completions_with_our_tools(stub)
