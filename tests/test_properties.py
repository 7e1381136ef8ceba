"""Property-based tests over the tool arguments, through a real MCP client against the sandbox.

Properties, each checked on every generated call:

1. Whatever the ids, every request that reaches the API has the path
   ``/v1/servers/<segment>/runtime/agent/runs[/<segment>[/input|/events|/cancel]]`` where each segment is
   percent-encoded, non-empty, holds no ``/``, ``?`` or ``#`` and decodes back to exactly the id given;
   the only query parameter ever sent is ``limit``.
2. Every call is answered with a `CallToolResult` within 10 s; an error has a non-empty text with no
   traceback, no internal-error fallback and no API key.
3. Arguments of any JSON type go through validation: an invalid one is refused before any request, naming
   the argument; valid ones (with a serverId) always reach the API. JSON has no NaN or infinity: the
   in-process client sends them as null, so they count as omitted where null is allowed.
4. ``content``, ``prompt``, ``title`` and ``metadata`` reach the API body unchanged, ``mode`` is
   ``async`` when omitted.

One MCP client per test is shared by all its examples: it lives on an event loop in a blocking
portal, and each example calls it through the portal. The sandbox is the session's, its request log
cleared before every call. Generation is derandomized so every run checks the same examples.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult

from acp_mcp.config import Settings
from acp_mcp.messages import UNEXPECTED
from acp_mcp.sandbox import RecordedRequest, RunningSandbox

from .conftest import API_KEY, SERVER_ID, api_requests, connect, text_of

CALL_TIMEOUT = 10.0
MAX_ID = 256
MAX_TEXT = 100_000
MAX_TITLE = 1_000
MAX_METADATA_JSON = 16_384
MAX_EVENTS = 40
MAX_WAIT = 600.0
MAX_LIMIT = 40

PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-F]{2})+"
RUN_PATH = re.compile(
    rf"/v1/servers/(?P<server>{PCHAR})/runtime/agent/runs(?:/(?P<run>{PCHAR})(?P<tail>/input|/events|/cancel)?)?"
)
TOOLS_WITH_RUN_ID = ("continue_agent_run", "get_agent_run", "cancel_agent_run")
TOOLS = ("start_agent_run", "list_agent_runs", *TOOLS_WITH_RUN_ID)
ROUTES: dict[
    str, set[tuple[str, str | None]]
] = {  # (method, tail) the sandbox may see for each tool; None: the runs collection, "": one run
    # start: a sync start cut off by its wait finds its run in the runs collection
    "start_agent_run": {("POST", None), ("GET", None), ("GET", ""), ("GET", "/events")},
    "continue_agent_run": {("POST", "/input"), ("GET", ""), ("GET", "/events")},
    "get_agent_run": {("GET", ""), ("GET", "/events")},
    "list_agent_runs": {("GET", None)},
    "cancel_agent_run": {("POST", "/cancel")},
}


# -- one client per test, called from the examples ------------------------------------------------


@dataclass
class Tools:
    """An MCP client on a portal's event loop, and the sandbox it reaches."""

    portal: BlockingPortal
    client: Client
    sandbox: RunningSandbox

    def call(self, tool: str, args: dict[str, Any]) -> CallToolResult:
        """Call `tool` with the request log cleared first; check the answer (property 2)."""
        self.sandbox.state.clear_requests()

        async def call() -> CallToolResult:
            with anyio.fail_after(CALL_TIMEOUT):
                return await self.client.call_tool(tool, args)

        result = self.portal.call(call)
        assert_answered(result)
        return result

    def requests(self) -> list[RecordedRequest]:
        return api_requests(self.sandbox)


@pytest.fixture
def tools(settings: Settings, sandbox: RunningSandbox) -> Iterator[Tools]:
    """A connected client whose calls never wait for a run unless told to (ACP_MCP_WAIT_SECONDS=0)."""
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(connect(settings.with_overrides(wait_seconds=0))) as client,
    ):
        yield Tools(portal, client, sandbox)


# -- the checks -----------------------------------------------------------------------------------


def assert_answered(result: Any) -> None:
    """Property 2: a tool result; an error says something, with no traceback and no key."""
    assert isinstance(result, CallToolResult), type(result)
    dumped = json.dumps(result.model_dump(mode="json"))
    assert API_KEY not in dumped
    if result.is_error:
        text = text_of(result)
        assert text.strip(), result
        assert "Traceback" not in text, text
        assert UNEXPECTED not in text, text  # no input may reach the internal-error fallback


def assert_paths(requests: list[RecordedRequest], tool: str, server_id: str, run_ids: set[str]) -> None:
    """Property 1 for every request: one segment per id, each decoding back to exactly that id."""
    for request in requests:
        match = RUN_PATH.fullmatch(request.path)
        assert match, f"{request.method} {request.path!r} is not a run endpoint path"
        for segment in filter(None, (match["server"], match["run"])):
            assert segment not in {".", ".."} and unquote(segment) not in {".", ".."}, request.path
        assert unquote(match["server"], errors="strict") == server_id, (request.path, server_id)
        if match["run"] is not None:
            assert unquote(match["run"], errors="strict") in run_ids, (request.path, run_ids)
        route = (request.method, None if match["run"] is None else match["tail"] or "")
        assert route in ROUTES[tool], (tool, request.method, request.path)
        assert set(request.query) <= {"limit"}, request.query
        if request.query:
            assert route == ("GET", None), (request.method, request.path, request.query)


def run_id_of(result: CallToolResult) -> str | None:
    run = (result.structured_content or {}).get("run") or {}
    return run.get("id")


def run_ids_for(tool: str, run_id: str | None, result: CallToolResult) -> set[str]:
    """The run ids a tool's requests may name: the one given, or (start) the one the API made."""
    named = run_id if tool in TOOLS_WITH_RUN_ID else run_id_of(result)
    return set() if named is None else {named}


# -- strategies -----------------------------------------------------------------------------------

ID_PIECES = [
    "/", "?", "#", "%", "%2F", "%2f", "%2E", "%25", "%%", ".", "..", "\\", " ", "\t", "\n", "\r", "\x00", "\x1f",
    "\x7f", "\x85", "\u00a0", "\u200b", "\u200e", "\u2028", "\u2029", "\u3000", "\ufeff", "\ud800", "\udfff",
    "\U000e0001", "+", "&", "=", ";", ":", "@", "~", "'", '"', "<", ">", "[", "]", "{", "}", "|", "^", "`", "*",
    "é", "e\u0301", "ß", "東京", "😀", "\U0010fffd", "\ufffd", "run_000001", SERVER_ID, "null", "true", "123",
    "[1]", "{}", '"x"', "http://evil.example/", "../../v1/servers", "?limit=1", "#frag",
]  # fmt: skip
ID_PUNCTUATION = " _-.~+@:=,;!$&'()*[]{}<>|^`\""
SPECIAL_IDS = [
    "", " ", "  \t ", ".", "..", "...", "./x", "../x", "x/..", "%", "%2F", "%00", "a" * MAX_ID, "a" * (MAX_ID + 1),
    "é" * MAX_ID, "😀" * MAX_ID, "😀" * (MAX_ID + 1), "x" * 100_000, "null", "NULL", "None", "[]", "{}", "0", "-1",
]  # fmt: skip

ID_CHARACTERS = st.characters(categories=["L", "M", "N", "S", "Zs"], include_characters=ID_PUNCTUATION)
ids = st.one_of(
    st.text(),
    st.text(ID_CHARACTERS, min_size=1, max_size=40),
    st.lists(st.one_of(st.sampled_from(ID_PIECES), st.text(max_size=4)), max_size=8).map("".join),
    st.sampled_from(SPECIAL_IDS),
    st.integers(1, 400).map(lambda n: "r" * n),
)


def plainly_valid_id(value: str) -> bool:
    """An id any client may pass: 1-256 letters, digits, marks and harmless punctuation, not blank or a dot path.

    The contract leaves out only what cannot be one path segment or is invisible: '/', '\\', '?', '#', '%' and
    control or format characters.
    """
    return (
        0 < len(value) <= MAX_ID
        and bool(value.strip())
        and value not in {".", ".."}
        and all(
            ch in ID_PUNCTUATION or unicodedata.category(ch)[0] in "LNMS" or unicodedata.category(ch) == "Zs"
            for ch in value
        )
    )


def _command_free(text: str) -> bool:
    """The sandbox's echo agent reads a first word starting with '/' as a command (/hang, /events ...)."""
    return not text.lstrip().startswith("/")


JSON_LOOKING_TEXTS = ["null", "true", "false", "0", "1.5", "[]", "[1, 2]", "{}", '{"task": "x"}', '"quoted"', " null "]
LONG_TEXTS = ["y" * MAX_TEXT, "é" * 5_000, "z" * MAX_TITLE, "a\x00b\r\n\t"]


def texts(max_length: int) -> st.SearchStrategy[str]:
    """Text the agent may be given: any unicode, JSON-looking text, long text; never an echo-agent command."""
    return st.one_of(
        st.text(max_size=300).filter(_command_free),
        st.sampled_from(JSON_LOOKING_TEXTS),
        st.sampled_from([t for t in LONG_TEXTS if len(t) <= max_length]),
    )


finite = st.floats(allow_nan=False, allow_infinity=False)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), finite, st.text(max_size=30))
json_values = st.recursive(
    json_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
metadata_objects = st.dictionaries(st.text(max_size=20), json_values, max_size=6).filter(
    lambda m: len(json.dumps(m, separators=(",", ":"))) <= MAX_METADATA_JSON
)

# Values of any JSON type, including what JSON-RPC over stdio also parses (NaN, infinities, huge ints).
any_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["x" * (MAX_TEXT + 1), "1e400", "-0", "NaN", "Infinity"]),
)
any_values = st.recursive(
    any_leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)


def _not_json(value: str) -> bool:
    """A string the SDK passes on as a string (it first tries to parse strings for non-string parameters)."""
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


def _not_a_number(value: str) -> bool:
    """A string no lax number parsing can read: no digit of any script, and not a NaN or infinity spelling."""
    if any(ch.isdigit() or unicodedata.numeric(ch, None) is not None for ch in value):
        return False
    return value.strip().lower().lstrip("+-") not in {"nan", "inf", "infinity"}


non_json_strings = st.text(max_size=40).filter(_not_json)
non_numeric_strings = non_json_strings.filter(_not_a_number)
containers = st.one_of(st.lists(any_values, max_size=3), st.dictionaries(st.text(max_size=8), any_values, max_size=3))
fractions = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
NULLABLE = {
    "serverId", "content", "prompt", "title", "mode", "metadata", "waitSeconds", "maxEvents", "eventOffset", "limit"
}  # fmt: skip


def arrives_as_null(value: Any) -> bool:
    """JSON has no NaN or infinity: the client sends such a number as null."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _text_param(max_length: int, *, required: bool = False) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, invalid) values of a string parameter."""
    invalid = st.one_of(
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        containers,
        st.sampled_from(["x" * (max_length + 1), "é" * (max_length + 1), "\ud800 lone surrogate", "a\udfff"]),
        *([st.none()] if required else []),
    )
    return texts(max_length), invalid


def _number_param(
    low: float, high: float | None, *, integer: bool, optional: bool
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, invalid) values of a number parameter from low to high (None: unbounded)."""
    if integer:
        low_i, high_i = int(low), None if high is None else int(high)
        valid = st.one_of(st.integers(low_i, high_i or 10**6), st.integers(low_i, high_i or 10**6).map(float))
        out_of_range = st.one_of(
            st.integers(max_value=low_i - 1),
            *([] if high_i is None else [st.integers(min_value=high_i + 1)]),
            fractions,
        )
    else:
        valid = st.one_of(st.just(0), st.just(0.0), st.floats(0, 0.05))
        out_of_range = st.one_of(
            st.floats(max_value=low, exclude_max=True, allow_infinity=True, allow_nan=False),
            st.floats(min_value=high or 0, exclude_min=True, allow_infinity=True, allow_nan=False),
            st.integers(min_value=int(high or 0) + 1),
            st.integers(max_value=int(low) - 1),
        )
    invalid = st.one_of(out_of_range, non_finite, containers, non_numeric_strings, *([] if optional else [st.none()]))
    return valid, invalid


PARAMS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "serverId": (st.sampled_from([SERVER_ID, "srv_props", "équipe 東京"]), _text_param(MAX_ID)[1]),
    "resourceRunId": (
        st.sampled_from(["run_000001", "run_000002", "run_missing"]),
        _text_param(MAX_ID, required=True)[1],
    ),
    "content": _text_param(MAX_TEXT),
    "prompt": _text_param(MAX_TEXT),
    "title": _text_param(MAX_TITLE),
    "mode": (
        st.sampled_from(["sync", "async", None]),
        st.one_of(
            st.sampled_from(["SYNC", "Async", "", "fast"]),
            st.integers(),
            st.floats(),
            containers,
            non_json_strings.filter(lambda s: s not in {"sync", "async"}),
        ),
    ),
    "metadata": (
        st.one_of(st.none(), metadata_objects),
        st.one_of(
            st.integers(),
            st.floats(),
            st.booleans(),
            st.lists(any_values, max_size=3),
            non_json_strings,
            st.just({"blob": "b" * MAX_METADATA_JSON}),
        ),
    ),
    "waitSeconds": _number_param(0, MAX_WAIT, integer=False, optional=True),
    "maxEvents": _number_param(0, MAX_EVENTS, integer=True, optional=True),
    "eventOffset": _number_param(0, None, integer=True, optional=True),
    "limit": _number_param(1, MAX_LIMIT, integer=True, optional=True),
}  # fmt: skip
TOOL_PARAMS = {
    "start_agent_run": ("serverId", "content", "prompt", "title", "mode", "metadata", "waitSeconds", "maxEvents"),
    "continue_agent_run": (
        "resourceRunId", "serverId", "content", "prompt", "mode", "metadata", "waitSeconds", "maxEvents",
    ),
    "get_agent_run": ("resourceRunId", "serverId", "waitSeconds", "maxEvents", "eventOffset"),
    "list_agent_runs": ("serverId", "limit"),
    "cancel_agent_run": ("resourceRunId", "serverId"),
}  # fmt: skip


@st.composite
def tool_calls(draw: Callable[..., Any]) -> tuple[str, dict[str, Any], set[str]]:
    """A tool, its arguments and the names of the invalid ones; half the calls have one to three broken."""
    tool = draw(st.sampled_from(TOOLS))
    params = TOOL_PARAMS[tool]
    broken = draw(st.just(set()) | st.sets(st.sampled_from(params), min_size=1, max_size=3))
    args: dict[str, Any] = {}
    invalid: set[str] = set()
    for name in params:
        if name in broken:
            if name == "resourceRunId" and draw(st.booleans()):
                invalid.add(name)  # a required parameter, omitted
                continue
            args[name] = draw(PARAMS[name][1])
            if not (name in NULLABLE and arrives_as_null(args[name])):  # null: as if omitted
                invalid.add(name)
        elif name == "resourceRunId" or draw(st.integers(0, 5) if name in {"serverId", "content"} else st.booleans()):
            args[name] = draw(PARAMS[name][0])  # serverId and content: given 5 times in 6, the others half the time
    if tool in {"start_agent_run", "continue_agent_run"} and all(
        arrives_as_null(args.get(name)) for name in ("content", "prompt")
    ):
        invalid.add("content")  # one of the two is required
    if tool == "get_agent_run" and "waitSeconds" not in args:
        args["waitSeconds"] = 0  # nothing waits for a run (mode sync still waits for its turn: a few ms)
    args.update(draw(st.dictionaries(st.sampled_from(["extra", "serverid", "Content", "_meta2"]), any_values)))
    return tool, args, invalid


# -- property 1 (and 2): ids become exactly one path segment each --------------------------------


@settings(PROPERTY, max_examples=200)
@given(
    tool=st.sampled_from(TOOLS),
    server_id=ids | st.none(),
    run_id=ids | st.none(),
    limit=st.none() | st.integers(1, MAX_LIMIT),
)
@example(tool="start_agent_run", server_id="null", run_id=None, limit=None)
@example(tool="list_agent_runs", server_id="[1]", run_id=None, limit=None)
@example(tool="get_agent_run", server_id="team a+b@ü", run_id="run 1+2=3", limit=None)
@example(tool="cancel_agent_run", server_id=SERVER_ID, run_id="..", limit=None)
@example(tool="continue_agent_run", server_id="a%2Fb", run_id=None, limit=None)
@example(tool="get_agent_run", server_id="x", run_id="a\ud800", limit=None)
def test_every_request_path_has_each_id_as_exactly_one_segment(
    tools: Tools, tool: str, server_id: str | None, run_id: str | None, limit: int | None
) -> None:
    """run_id None: a real run started under server_id first (when the server id is usable)."""
    base: dict[str, Any] = {} if server_id is None else {"serverId": server_id}
    given_run_id = run_id
    if tool in TOOLS_WITH_RUN_ID and run_id is None:
        seed = tools.call("start_agent_run", {**base, "content": "seed", "mode": "sync", "waitSeconds": 0})
        seeded = run_id_of(seed)
        if server_id is not None:
            assert_paths(tools.requests(), "start_agent_run", server_id, {seeded} if seeded else set())
        run_id = seeded or "run_000001"

    args = dict(base)
    if tool in TOOLS_WITH_RUN_ID:
        args["resourceRunId"] = run_id
    if tool in {"start_agent_run", "continue_agent_run"}:
        args.update(content="hi", waitSeconds=0)
    if tool == "get_agent_run":
        args["waitSeconds"] = 0
    if tool == "list_agent_runs" and limit is not None:
        args["limit"] = limit
    result = tools.call(tool, args)
    requests = tools.requests()

    event(f"{tool}: {'sent' if requests else 'refused'}")
    if server_id is not None:
        assert_paths(requests, tool, server_id, run_ids_for(tool, run_id, result))
    if tool == "list_agent_runs" and requests:
        expected_query = {} if limit is None else {"limit": str(limit)}
        assert [r.query for r in requests] == [expected_query]
    if not requests:  # refused: by the ids, the only arguments that vary here
        assert result.is_error
        assert "serverId" in text_of(result) or "resourceRunId" in text_of(result), text_of(result)
    ids_given = [i for i in (server_id, given_run_id if tool in TOOLS_WITH_RUN_ID else None) if i is not None]
    if server_id is not None and all(plainly_valid_id(i) for i in ids_given):
        assert requests, f"{tool} with ids {ids_given!r} was refused: {text_of(result)}"


# -- property 3 (and 1, 2): arguments of any JSON type -------------------------------------------


@settings(PROPERTY, max_examples=200)
@given(call=tool_calls())
@example(call=("start_agent_run", {"serverId": SERVER_ID, "content": "x", "waitSeconds": math.nan}, set()))
@example(call=("get_agent_run", {"resourceRunId": "run_000001", "maxEvents": 41}, {"maxEvents"}))
@example(call=("list_agent_runs", {"serverId": SERVER_ID, "limit": 2.5}, {"limit"}))
@example(call=("continue_agent_run", {"resourceRunId": None, "content": "x"}, {"resourceRunId"}))
def test_arguments_of_any_json_type_are_answered_and_invalid_ones_send_nothing(
    tools: Tools, call: tuple[str, dict[str, Any], set[str]]
) -> None:
    tool, args, invalid = call
    result = tools.call(tool, args)
    requests = tools.requests()
    event(f"{tool}: {'invalid' if invalid else 'valid'}, {'sent' if requests else 'refused'}")

    if invalid:
        assert result.is_error, f"{tool} accepted invalid {sorted(invalid)}: {args!r}"
        assert requests == [], f"{tool} sent requests despite invalid {sorted(invalid)}"
        assert any(name in text_of(result) for name in invalid), text_of(result)
        return
    if arrives_as_null(args.get("serverId")):  # no ACP_SERVER_ID default here
        assert result.is_error and "serverId is required" in text_of(result), text_of(result)
        assert requests == []
        return
    assert requests, f"{tool} refused valid arguments {args!r}: {text_of(result)}"
    assert_paths(requests, tool, args["serverId"], run_ids_for(tool, args.get("resourceRunId"), result))


# -- property 4 (and 2): what the agent is given reaches the API unchanged -----------------------

turn_texts = texts(MAX_TEXT)


@st.composite
def turns(draw: Callable[..., Any]) -> tuple[bool, dict[str, Any]]:
    """(continuing, fields): content and/or prompt, maybe a title (start only) and metadata; never mode."""
    continuing = draw(st.booleans())
    fields: dict[str, Any] = {}
    content = draw(st.none() | turn_texts)
    prompt = draw(st.none() | turn_texts) if content is None or draw(st.booleans()) else None
    if content is None and prompt is None:
        content = draw(turn_texts)
    for name, value in (("content", content), ("prompt", prompt)):
        if value is not None:
            fields[name] = value
    if not continuing and draw(st.booleans()):
        fields["title"] = draw(texts(MAX_TITLE))
    if draw(st.booleans()):
        fields["metadata"] = draw(metadata_objects)
    return continuing, fields


@pytest.fixture
def finished_run(tools: Tools) -> str:
    result = tools.call("start_agent_run", {"serverId": "srv_turns", "content": "first", "mode": "sync"})
    assert not result.is_error, text_of(result)
    return str(run_id_of(result))


@settings(PROPERTY, max_examples=100)
@given(turn=turns())
@example(turn=(False, {"content": '{"task": "x"}', "metadata": {"n": [1, 2.5, None]}}))
@example(turn=(True, {"prompt": "[1, 2]"}))
@example(turn=(False, {"content": "null", "title": "{}"}))
def test_content_prompt_title_and_metadata_reach_the_api_unchanged(
    tools: Tools, finished_run: str, turn: tuple[bool, dict[str, Any]]
) -> None:
    """The run may be busy (409) or the text refused by the sandbox: the body sent is what counts."""
    continuing, sent = turn
    if continuing:
        tool, args = "continue_agent_run", {"serverId": "srv_turns", "resourceRunId": finished_run}
    else:
        tool, args = "start_agent_run", {"serverId": "srv_turns"}
    result = tools.call(tool, {**args, **sent, "waitSeconds": 0})

    requests = tools.requests()
    assert requests, f"{tool} sent nothing for {sent!r}: {text_of(result)}"
    post = requests[0]
    assert post.method == "POST"
    assert post.body == {**sent, "mode": "async"}, text_of(result)
