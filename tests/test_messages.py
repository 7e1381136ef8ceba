"""`describe` and `safe_message` without a server: each error class reads as its exact sentence and next step,
and the API key never appears, wherever it hides (an upstream message, a redirect, an id pasted by mistake)."""

from __future__ import annotations

import inspect

import pytest

from acp_mcp import errors
from acp_mcp.errors import (
    ACPError,
    APIStatusError,
    AuthenticationError,
    BusyError,
    CallerKeyMissingError,
    ConflictError,
    ConnectError,
    Envelope,
    FieldProblem,
    InsecureBaseURLError,
    InvalidArgumentError,
    InvalidIdError,
    InvalidRequestError,
    InvalidResponseError,
    MissingAPIKeyError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RedirectError,
    RequestTimeout,
    ResponseError,
    ServerError,
    TransportError,
    UnconfirmedStartError,
)
from acp_mcp.messages import UNEXPECTED, describe, safe_message
from acp_mcp.redaction import MASK, Redactor

KEY = "tb_secret_key_0123456789"
BASE = "https://api.example/v1"
SERVER = "srv_1"
RUN = "run_1"
GET_HINT = f'get_agent_run {{"serverId": "{SERVER}", "resourceRunId": "{RUN}"}}'
LIST_HINT = f'list_agent_runs {{"serverId": "{SERVER}"}}'
START_CHECK = f" The run may have been started anyway: check with {LIST_HINT} before starting it again."
INPUT_CHECK = f" The input may have been taken anyway: check with {GET_HINT} before sending it again."


def status(
    cls: type[APIStatusError],
    code: int,
    envelope: Envelope | None = None,
    *,
    retry_after: float | None = None,
    server_id: str = SERVER,
    run_id: str | None = None,
    operation: str = "get",
) -> APIStatusError:
    """An HTTP error status as the client raises it (its envelope already parsed)."""
    return cls(
        f"HTTP {code}",
        status=code,
        envelope=envelope or Envelope(),
        retry_after=retry_after,
        server_id=server_id,
        run_id=run_id,
        operation=operation,
    )


CASES: list[tuple[str, ACPError, str, str]] = [  # id, error, what describe says (key masked), what safe_message adds
    (
        "no-key",
        MissingAPIKeyError("no key"),
        "No Computer Agents API key is configured. Ask the user to set COMPUTER_AGENTS_API_KEY in this MCP server's "
        "environment (their client's MCP server config), then restart the server. To try the tools without an "
        "account, start the server with `acp-mcp --sandbox`.",
        "",
    ),
    (
        "no-caller-key",
        CallerKeyMissingError(header="X-Computer-Agents-Key"),
        "This MCP server has no Computer Agents API key for you. Ask its operator to map your account to a key "
        "(ACP_MCP_KEYS_FILE), or send your own key in the X-Computer-Agents-Key header of your MCP client's config; "
        "then call again.",
        "",
    ),
    (
        "plain-http",
        InsecureBaseURLError("plain http"),
        f"Refusing to send the API key over plain http to {BASE}: set COMPUTER_AGENTS_BASE_URL to an https:// URL "
        "(plain http is allowed only to localhost).",
        "",
    ),
    (
        "unconfirmed-start",
        UnconfirmedStartError(server_id=SERVER, cause="got no answer within 2.5s"),
        "The start got no answer within 2.5s, and no run carrying its marker (metadata.acpMcpStart) is listed yet. "
        f"The run may still have been created: look for it with {LIST_HINT} before starting it again.",
        "",
    ),
    (
        "busy",
        BusyError("3 things are open, its limit", retry_seconds=5.0, server_id=SERVER, operation="start"),
        "This MCP server is busy (3 things are open, its limit); nothing was sent to the ACP API. "
        "Retry the same call in 5s.",
        "",
    ),
    (
        "invalid-argument",
        InvalidArgumentError("content", "text_missing"),
        "Invalid arguments, nothing was sent: give content (the text for the agent) or prompt.",
        "",
    ),
    (
        "invalid-id",
        InvalidIdError("resourceRunId", "id_too_long", limit=256),
        "Invalid arguments, nothing was sent: resourceRunId is longer than 256 characters; pass the id exactly as "
        "the API returned it.",
        "",
    ),
    (
        "401-echoing-the-key",
        status(AuthenticationError, 401, Envelope(error="Unauthorized", message=f"key {KEY} is invalid")),
        f'The ACP API rejected the API key (HTTP 401 — the API said: "key {MASK} is invalid"). Ask the user to set '
        "COMPUTER_AGENTS_API_KEY in this MCP server's environment to a valid Computer Agents API key, then restart "
        "the server.",
        "",
    ),
    (
        "402",
        status(PaymentRequiredError, 402, Envelope(message="Budget used up", code="INSUFFICIENT_BUDGET")),
        "The account's budget or usage allowance is exhausted (HTTP 402 INSUFFICIENT_BUDGET — the API said: \"Budget "
        'used up"). Nothing was run; tell the user to raise the limit or add credit, then retry.',
        "",
    ),
    (
        "403-server",
        status(PermissionDeniedError, 403, Envelope(error="Forbidden")),
        f"The API key may not access server '{SERVER}' (HTTP 403 — the API said: \"Forbidden\"). Ask the user for a "
        "key (COMPUTER_AGENTS_API_KEY) with access to this server, or use a server id the key owns.",
        "",
    ),
    (
        "403-run",
        status(PermissionDeniedError, 403, run_id=RUN),
        f"The API key may not access run '{RUN}' on server '{SERVER}' (HTTP 403). Ask the user for a key "
        "(COMPUTER_AGENTS_API_KEY) with access to this server, or use a server id the key owns.",
        "",
    ),
    (
        "404-key-pasted-as-server-id",
        status(NotFoundError, 404, server_id=KEY),
        f"No server (resource) '{MASK}' was found (HTTP 404). Check the server id: it is the id of a resource with a "
        "connected agent runtime.",
        "",
    ),
    (
        "404-run",
        status(NotFoundError, 404, run_id=RUN),
        f"No run '{RUN}' was found on server '{SERVER}' (HTTP 404). Check the run id with {LIST_HINT}.",
        "",
    ),
    (
        "409-cancel",
        status(ConflictError, 409, Envelope(code="RUN_FINISHED"), run_id=RUN, operation="cancel"),
        f"Run '{RUN}' on server '{SERVER}' could not be cancelled (HTTP 409 RUN_FINISHED); it has most likely "
        f"finished already. Read its result with {GET_HINT}.",
        "",
    ),
    (
        "409-busy-run",
        status(ConflictError, 409, Envelope(code="RUN_BUSY"), run_id=RUN, operation="input"),
        f"Run '{RUN}' on server '{SERVER}' is busy or in a state that does not allow this (HTTP 409 RUN_BUSY). Wait "
        f"for it to finish with {GET_HINT}, then retry; or stop it with cancel_agent_run.",
        "",
    ),
    (
        "409-server",
        status(ConflictError, 409, operation="start"),
        f"Server '{SERVER}' does not allow this now (HTTP 409). See its runs with {LIST_HINT}; wait for a running "
        "one to finish, then retry.",
        "",
    ),
    (
        "400-rejected-fields",
        status(
            InvalidRequestError,
            400,
            Envelope(message="invalid body", details=(FieldProblem("mode", "must be sync"), FieldProblem(KEY, "no"))),
        ),
        'The ACP API rejected the request (HTTP 400 — the API said: "invalid body"). Rejected fields: mode: must be '
        f"sync; {MASK}: no. Fix the arguments and call again.",
        "",
    ),
    (
        "413",
        status(InvalidRequestError, 413),
        "The ACP API rejected the request (HTTP 413). Fix the arguments and call again.",
        "",
    ),
    (
        "429-retry-after",
        status(RateLimitError, 429, retry_after=2.5),
        "The ACP API is rate limiting requests (HTTP 429). Retry in 2.5 seconds.",
        "",
    ),
    (
        "429",
        status(RateLimitError, 429),
        "The ACP API is rate limiting requests (HTTP 429). Retry in a few seconds.",
        "",
    ),
    (
        "503-on-start",
        status(ServerError, 503, retry_after=30, operation="start"),
        f"The ACP API at {BASE} failed (HTTP 503). Retry in 30 seconds.",
        START_CHECK,
    ),
    (
        "500-on-input",
        status(ServerError, 500, run_id=RUN, operation="input"),
        f"The ACP API at {BASE} failed (HTTP 500). Retry in a few seconds.",
        INPUT_CHECK,
    ),
    (
        "502-on-get",
        status(ServerError, 502, run_id=RUN),
        f"The ACP API at {BASE} failed (HTTP 502). Retry in a few seconds.",
        "",
    ),
    (
        "other-status",
        status(APIStatusError, 418),
        "The ACP API answered with an error (HTTP 418). Check the arguments, then retry.",
        "",
    ),
    (
        "redirect-carrying-the-key",
        RedirectError("HTTP 307", status=307, location=f"https://evil.example/?key={KEY}", server_id=SERVER),
        f"The ACP API at {BASE} answered HTTP 307 redirecting to 'https://evil.example/?key={MASK}'; redirects are not "
        "followed so the API key cannot travel elsewhere. Ask the user to check COMPUTER_AGENTS_BASE_URL.",
        "",
    ),
    (
        "unusable-answer-to-start",
        InvalidResponseError("HTTP 200 answer is not a JSON object", status=200, server_id=SERVER, operation="start"),
        f"The ACP API at {BASE} sent an unusable answer (HTTP 200 answer is not a JSON object). Retry later; if it "
        "persists, tell the user.",
        START_CHECK,
    ),
    (
        "no-connection-on-start",
        ConnectError("refused", server_id=SERVER, operation="start"),
        f"Could not connect to the ACP API at {BASE}. Check the network and COMPUTER_AGENTS_BASE_URL, then retry.",
        "",  # the start provably never reached the API
    ),
    (
        "timeout-on-input",
        RequestTimeout("slow", server_id=SERVER, run_id=RUN, operation="input"),
        f"The ACP API at {BASE} did not answer in time. Retry later.",
        INPUT_CHECK,
    ),
    (
        "broken-connection-on-get",
        ProtocolError("broke", server_id=SERVER, run_id=RUN, operation="get"),
        f"The connection to the ACP API at {BASE} broke mid-answer. Retry.",
        "",
    ),
    ("other-transport-failure", TransportError("?"), UNEXPECTED, ""),
    ("other-answer", ResponseError("?", status=200), UNEXPECTED, ""),
    ("other-error", ACPError("?"), UNEXPECTED, ""),
]


@pytest.mark.parametrize(("exc", "sentence", "check"), [pytest.param(*case, id=ident) for ident, *case in CASES])
def test_each_error_is_its_exact_sentence_and_next_step_and_never_shows_the_key(
    exc: ACPError, sentence: str, check: str
) -> None:
    message = safe_message(exc, base_url=BASE, redact=Redactor([KEY]))

    assert message == sentence + check
    assert KEY not in message
    assert describe(exc, base_url=BASE) == sentence.replace(MASK, KEY)


def test_the_table_has_every_error_class() -> None:
    classes = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, ACPError)}

    assert {type(exc) for _, exc, _, _ in CASES} == classes
