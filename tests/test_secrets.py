"""The API key and upstream text: a key the API echoes is masked everywhere, and upstream text is kept short."""

from __future__ import annotations

import json

import pytest
from mcp.types import TextResourceContents

from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox

from ._errors import START_ARGS, START_CHECK
from .conftest import API_KEY, SERVER_ID, api_requests, connect, error_text, text_of

pytestmark = pytest.mark.anyio

ECHOING = {
    "error": f"Bad key {API_KEY}",
    "message": f"key {API_KEY} is not valid",
    "code": "KEY_" + API_KEY,
    "details": [{"field": API_KEY, "message": f"{API_KEY} was rejected"}],
}
ECHOED = 'KEY_[REDACTED] — the API said: "key [REDACTED] is not valid"'
"""What remains of `ECHOING` in a message: its code and message, the key masked in both."""


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            400,
            f"The ACP API rejected the request (HTTP 400 {ECHOED}). Rejected fields: [REDACTED]: [REDACTED] was "
            "rejected. Fix the arguments and call again.",
        ),
        (
            401,
            f"The ACP API rejected the API key (HTTP 401 {ECHOED}). Ask the user to set COMPUTER_AGENTS_API_KEY in "
            "this MCP server's environment to a valid Computer Agents API key, then restart the server.",
        ),
        (
            403,
            f"The API key may not access server '{SERVER_ID}' (HTTP 403 {ECHOED}). Ask the user for a key "
            "(COMPUTER_AGENTS_API_KEY) with access to this server, or use a server id the key owns.",
        ),
        (
            404,
            f"No server (resource) '{SERVER_ID}' was found (HTTP 404 {ECHOED}). Check the server id: it is the id "
            "of a resource with a connected agent runtime.",
        ),
        (
            409,
            f"Server '{SERVER_ID}' does not allow this now (HTTP 409 {ECHOED}). See its runs with list_agent_runs "
            f'{{"serverId": "{SERVER_ID}"}}; wait for a running one to finish, then retry.',
        ),
        (429, f"The ACP API is rate limiting requests (HTTP 429 {ECHOED}). Retry in 60 seconds."),
        (500, f"{{base}} failed (HTTP 500 {ECHOED}). Retry in 60 seconds." + START_CHECK),
    ],
)
async def test_an_api_key_echoed_by_the_api_is_redacted_from_the_error(
    settings: Settings, sandbox: RunningSandbox, status: int, expected: str
) -> None:
    sandbox.state.inject(Fault(kind="status", status=status, body=ECHOING, headers={"Retry-After": "60"}))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")  # checks the key is nowhere in the result
    assert message == expected.replace("{base}", f"The ACP API at {settings.base_url}")
    assert len(api_requests(sandbox)) == 1


async def test_a_key_cut_by_the_length_cap_is_not_shown_in_part(settings: Settings, sandbox: RunningSandbox) -> None:
    # The upstream message is capped at 300 characters, and the raw one is longer: the cap would fall inside
    # the key, but the key is masked first, so the masked message fits whole.
    body = {"error": "Unauthorized", "message": "x" * 276 + API_KEY + " is not valid"}
    sandbox.state.inject(Fault(kind="status", status=401, body=body))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    assert API_KEY[:12] not in message, message  # not even most of it
    assert message.startswith('The ACP API rejected the API key (HTTP 401 — the API said: "' + "x" * 276 + "[REDACTED]")


@pytest.mark.parametrize(
    ("size", "upstream"),
    [
        # 30,000 of each: a 60 kB body, under the 64 KiB read cap: read, each field cut to its length
        (30_000, " " + "C" * 100 + '… — the API said: "' + "m" * 300 + '…"'),
        (100_000, ""),  # a 200 kB body: over the read cap, so none of it is read
    ],
    ids=["read-and-capped", "over-the-read-cap"],
)
async def test_a_huge_upstream_error_message_gives_a_short_tool_error(
    settings: Settings, sandbox: RunningSandbox, size: int, upstream: str
) -> None:
    body = {"error": "Bad Request", "message": "m" * size, "code": "C" * size}
    sandbox.state.inject(Fault(kind="status", status=400, body=body))
    async with connect(settings) as client:
        result = await client.call_tool("start_agent_run", START_ARGS)

    message = error_text(result, "start_agent_run")
    assert message == f"The ACP API rejected the request (HTTP 400{upstream}). Fix the arguments and call again."
    assert len(text_of(result)) < 1_500
    assert len(api_requests(sandbox)) == 1


async def test_the_key_echoed_in_a_successful_answer_is_masked_in_results_and_the_resource(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "start_agent_run", {"serverId": SERVER_ID, "content": f"my key is {API_KEY}", "mode": "sync"}
        )
        resource = await client.read_resource(str(result.structured_content["resourceUri"]))

    dumped = json.dumps(result.model_dump(mode="json")) + json.dumps(resource.model_dump(mode="json"))
    assert API_KEY not in dumped
    assert result.structured_content["run"]["output"] == "Echo: my key is [REDACTED]"
    (contents,) = resource.contents
    assert isinstance(contents, TextResourceContents)
    assert json.loads(contents.text)["run"]["output"] == "Echo: my key is [REDACTED]"
