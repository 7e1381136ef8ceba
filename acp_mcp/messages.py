"""Every error message the model reads is written here, and each one says what to do next.

Trust rule: upstream text enters a message only as the short, capped fields of the error
envelope (`errors.Envelope`), never as a raw body, and every message passes the redactor, so
the API key cannot reach the model even when the API echoes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .config import KEY_VARIABLES
from .errors import (
    ACPError,
    APIStatusError,
    AuthenticationError,
    BusyError,
    CallerKeyMissingError,
    ConflictError,
    ConnectError,
    Envelope,
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
    ServerError,
    UnconfirmedStartError,
)
from .redaction import Redactor
from .text import call_hint

KEY_VARIABLE = KEY_VARIABLES[0]
_TYPES = {
    "string_type": "text (a JSON string)",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
}

DRAINING_NOTE = (
    "the wait ended early because this MCP server is shutting down for a restart; the run goes on: make the "
    "call in next, which the server answers again in a moment"
)

UNEXPECTED = (
    "acp-mcp hit an unexpected internal error; the details are in the server's log (stderr). "
    "Retry the call once; if it fails again, tell the user."
)


def _upstream(exc: APIStatusError) -> str:
    env = exc.envelope
    said = env.message or env.error
    parts = [f"HTTP {exc.status}" + (f" {env.code}" if env.code else "")]
    if said:
        parts.append(f'the API said: "{said}"')
    return " — ".join(parts)


def _target(exc: ACPError, *, capital: bool = False) -> str:
    kind = "run" if exc.run_id else "server"
    text = f"run {exc.run_id!r} on server {exc.server_id!r}" if exc.run_id else f"server {exc.server_id!r}"
    return (kind.capitalize() + text[len(kind) :]) if capital else text


def _retry_hint(exc: APIStatusError) -> str:
    if exc.retry_after is not None:
        return f"Retry in {exc.retry_after:g} seconds."
    return "Retry in a few seconds."


def _conflict_message(exc: ConflictError, upstream: str) -> str:
    """409: a cancel that came too late, a busy run, or a server that does not allow this now."""
    if exc.operation == "cancel":
        hint = call_hint("get_agent_run", serverId=exc.server_id, resourceRunId=exc.run_id)
        return (
            f"{_target(exc, capital=True)} could not be cancelled ({upstream}); it has most likely finished "
            f"already. Read its result with {hint}."
        )
    if exc.run_id:
        hint = call_hint("get_agent_run", serverId=exc.server_id, resourceRunId=exc.run_id)
        return (
            f"{_target(exc, capital=True)} is busy or in a state that does not allow this ({upstream}). "
            f"Wait for it to finish with {hint}, then retry; or stop it with cancel_agent_run."
        )
    hint = call_hint("list_agent_runs", serverId=exc.server_id)
    return (
        f"{_target(exc, capital=True)} does not allow this now ({upstream}). "
        f"See its runs with {hint}; wait for a running one to finish, then retry."
    )


def _spending(envelope: Envelope) -> str:
    """A 402's documented budget and usage figures in words: what is spent, the limit, when it resets."""
    budget, usage = envelope.budget, envelope.usage
    said = [
        f"{budget[spent]} spent of the {period} limit of {budget[limit]}"
        for period, spent, limit in (("daily", "dailySpent", "dailyLimit"), ("monthly", "monthlySpent", "monthlyLimit"))
        if spent in budget and limit in budget
    ]
    if "balance" in budget:
        said.append(f"balance {budget['balance']}")
    if "used" in usage and "allowance" in usage:
        tier = f" on the {usage['tier']} tier" if "tier" in usage else ""
        said.append(f"{usage['used']} used of an allowance of {usage['allowance']}{tier}")
    if "periodEnd" in usage:
        said.append(f"the allowance resets at {usage['periodEnd']}")
    return f" The account: {'; '.join(said)}." if said else ""


def _status_message(exc: APIStatusError, base_url: str) -> str:
    upstream = _upstream(exc)
    if isinstance(exc, AuthenticationError):
        return (
            f"The ACP API rejected the API key ({upstream}). Ask the user to set {KEY_VARIABLE} "
            "in this MCP server's environment to a valid Computer Agents API key, then restart the server."
        )
    if isinstance(exc, PermissionDeniedError):
        return (
            f"The API key may not access {_target(exc)} ({upstream}). Ask the user for a key "
            f"({KEY_VARIABLE}) with access to this server, or use a server id the key owns."
        )
    if isinstance(exc, PaymentRequiredError):
        return (
            f"The account's budget or usage allowance is exhausted ({upstream}).{_spending(exc.envelope)} "
            "Nothing was run; tell the user to raise the limit or add credit, then retry."
        )
    if isinstance(exc, NotFoundError):
        what = (
            f"No run {exc.run_id!r} was found on server {exc.server_id!r}"
            if exc.run_id
            else f"No server (resource) {exc.server_id!r} was found"
        )
        fix = (
            f"Check the run id with {call_hint('list_agent_runs', serverId=exc.server_id)}."
            if exc.run_id
            else "Check the server id: it is the id of a resource with a connected agent runtime."
        )
        return f"{what} ({upstream}). {fix}"
    if isinstance(exc, ConflictError):
        return _conflict_message(exc, upstream)
    if isinstance(exc, InvalidRequestError):
        fields = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in exc.envelope.details)
        rejected = f" Rejected fields: {fields}." if fields else ""
        return f"The ACP API rejected the request ({upstream}).{rejected} Fix the arguments and call again."
    if isinstance(exc, RateLimitError):
        return f"The ACP API is rate limiting requests ({upstream}). {_retry_hint(exc)}"
    if isinstance(exc, ServerError):
        return f"The ACP API at {base_url} failed ({upstream}). {_retry_hint(exc)}"
    return f"The ACP API answered with an error ({upstream}). Check the arguments, then retry."


def describe(exc: ACPError, *, base_url: str) -> str:
    """The message the model reads for `exc`."""
    if isinstance(exc, CallerKeyMissingError):
        sent = f", or send your own key in the {exc.header} header of your MCP client's config" if exc.header else ""
        return (
            "This MCP server has no Computer Agents API key for you. Ask its operator to map your account to a key "
            f"(ACP_MCP_KEYS_FILE){sent}; then call again."
        )
    if isinstance(exc, MissingAPIKeyError):
        return (
            f"No Computer Agents API key is configured. Ask the user to set {KEY_VARIABLE} in this MCP server's "
            "environment (their client's MCP server config), then restart the server. "
            "To try the tools without an account, start the server with `acp-mcp --sandbox`."
        )
    if isinstance(exc, InsecureBaseURLError):
        return (
            f"Refusing to send the API key over plain http to {base_url}: set COMPUTER_AGENTS_BASE_URL "
            "to an https:// URL (plain http is allowed only to localhost)."
        )
    if isinstance(exc, UnconfirmedStartError):
        return (
            f"The start {exc.cause}, and no run carrying its marker (metadata.acpMcpStart) is listed yet. "
            f"The run may still have been created: look for it with "
            f"{call_hint('list_agent_runs', serverId=exc.server_id)} before starting it again."
        )
    if isinstance(exc, BusyError):
        return (
            f"This MCP server is busy ({exc.what}); nothing was sent to the ACP API. "
            f"Retry the same call in {exc.retry_seconds:g}s."
        )
    if isinstance(exc, InvalidArgumentError):
        return f"Invalid arguments, nothing was sent: {argument_problem(exc)}."
    if isinstance(exc, APIStatusError):
        return _status_message(exc, base_url)
    if isinstance(exc, RedirectError):
        return (
            f"The ACP API at {base_url} answered HTTP {exc.status} redirecting to {exc.location!r}; redirects are "
            "not followed so the API key cannot travel elsewhere. Ask the user to check COMPUTER_AGENTS_BASE_URL."
        )
    if isinstance(exc, InvalidResponseError):
        return (
            f"The ACP API at {base_url} sent an unusable answer ({exc.message}). "
            "Retry later; if it persists, tell the user."
        )
    if isinstance(exc, ConnectError):
        return (
            f"Could not connect to the ACP API at {base_url}. Check the network and COMPUTER_AGENTS_BASE_URL, "
            "then retry."
        )
    if isinstance(exc, RequestTimeout):
        return f"The ACP API at {base_url} did not answer in time. Retry later."
    if isinstance(exc, ProtocolError):
        return f"The connection to the ACP API at {base_url} broke mid-answer. Retry."
    return UNEXPECTED


_ARGUMENT_PROBLEMS = {
    "server_id_missing": "serverId is required: pass serverId (the resource id of the agent runtime's server), "
    "or ask the user to set ACP_SERVER_ID in this MCP server's environment",
    "text_missing": "give content (the text for the agent) or prompt",
    "metadata_not_json": "metadata must be plain JSON: NaN and Infinity are not allowed",
    "metadata_too_large": "metadata is {size:,} characters of JSON; the limit is {limit:,}",
    "id_empty": "{field} is empty",
    "id_dots": "{field} cannot be '.' or '..'",
    "id_too_long": "{field} is longer than {limit} characters",
    "id_reserved_characters": "{field} cannot contain '/', '\\', '?', '#' or '%'",
    "id_control_characters": "{field} cannot contain control characters",
}
"""Each problem `arguments` can find, in words; the numbers come from the error."""


def argument_problem(exc: InvalidArgumentError) -> str:
    """What is wrong with the argument, and for an id, how to get it right."""
    text = _ARGUMENT_PROBLEMS[exc.problem].format(field=exc.field_name, **exc.data)
    if isinstance(exc, InvalidIdError):
        text += "; pass the id exactly as the API returned it"
    return text


def _check_before_retrying(exc: ACPError) -> str:
    """For a start or input whose fate is unknown: how to check whether it happened."""
    unknown = isinstance(exc, (ServerError, RequestTimeout, ProtocolError, InvalidResponseError))
    if not unknown or exc.operation not in {"start", "input"}:
        return ""
    if exc.operation == "start":
        hint = call_hint("list_agent_runs", serverId=exc.server_id)
        return f" The run may have been started anyway: check with {hint} before starting it again."
    hint = call_hint("get_agent_run", serverId=exc.server_id, resourceRunId=exc.run_id)
    return f" The input may have been taken anyway: check with {hint} before sending it again."


def safe_message(exc: ACPError, *, base_url: str, redact: Redactor) -> str:
    """`describe`, plus how to check a start or input of unknown fate, with every secret masked."""
    return redact(describe(exc, base_url=base_url) + _check_before_retrying(exc))


def _argument_problem(error: Mapping[str, Any]) -> str:
    """One rejected argument, in words: its name, the rule, and the number given where it was one."""
    name = ".".join(str(part) for part in error["loc"]) or "the arguments"
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    shown = f" (got {given!r})" if isinstance(given, int | float) and not isinstance(given, bool) else ""
    if kind == "missing":
        return f"{name} is required"
    if kind in {"less_than_equal", "less_than"}:
        return f"{name} must be at most {ctx.get('le', ctx.get('lt')):g}{shown}"
    if kind in {"greater_than_equal", "greater_than"}:
        return f"{name} must be at least {ctx.get('ge', ctx.get('gt')):g}{shown}"
    if kind == "string_too_long":
        return f"{name} must be at most {ctx['max_length']:,} characters"
    if kind == "literal_error":
        return f"{name} must be one of {ctx['expected']}"
    if kind in _TYPES:
        return f"{name} must be {_TYPES[kind]}"
    return f"{name}: {error['msg']}"


def invalid_arguments(tool: str, errors: Sequence[Mapping[str, Any]]) -> str:
    """The arguments of a call did not fit the tool's parameters: which, why, and what to do."""
    problems = "; ".join(_argument_problem(error) for error in errors)
    return f"Invalid arguments for {tool}: {problems}. Fix them and call {tool} again (nothing was sent)."


def read_only_refusal(tool: str) -> str:
    """A write tool called on a read-only server."""
    return (
        f"{tool} is disabled: this MCP server runs in read-only mode (ACP_MCP_READ_ONLY). "
        "Only get_agent_run and list_agent_runs are available; ask the user if a run must be changed."
    )


CONNECT_PROMPT = "Connect your Computer Agents API key to use these tools (it goes to this server, not to the chat)."


def connect_refusal(url: str) -> str:
    """A caller without a key, whose client cannot open a URL elicitation: the link, and what to do."""
    return (
        f"No Computer Agents API key is connected for you yet. Ask the user to open {url} and paste their key "
        "there (the link works once, for 10 minutes; the key never passes through this chat), then call again."
    )


def scope_refusal(tool: str, scope: str) -> str:
    """A tool the caller's access token has no scope for."""
    return (
        f"{tool} needs the {scope} scope, which your access token does not grant. Ask the user to sign in again "
        f"and grant {scope} (or to have it granted by the authorization server)."
    )


def late_sync_note(operation: str, cutoff: float) -> str:
    """A sync start or input outlived its cutoff; the run it concerns is returned as it is."""
    if operation == "start":
        return f"the sync start did not answer within {cutoff:g}s; this is the run it started"
    return f"the sync request did not answer within {cutoff:g}s; the run goes on on the platform"


def lost_start_note(exc: Exception) -> str:
    """A start's answer was lost; the run it started was found by its marker and is returned."""
    return (
        f"the start's answer was lost ({type(exc).__name__}); this is the run it started, found by the marker in "
        "its metadata: do not start it again"
    )


def polling_failed_note(exc: Exception) -> str:
    """Waiting stopped because a poll failed; the run itself is unaffected."""
    return f"checking the run's status failed ({type(exc).__name__}); call get_agent_run later"


def events_failed_note(exc: Exception) -> str:
    """The run is known but its events are not."""
    return f"the run's events could not be fetched ({type(exc).__name__})"


def repeated_start_note(run_id: str) -> str:
    """Why a start returned an existing run instead of starting another."""
    return (
        f"an identical start_agent_run was cancelled (the client stopped waiting) after it started run {run_id}; "
        "that run is returned instead of starting a second one. To start another run anyway, change the content "
        "or add a title"
    )


TASK_NOT_FOUND = (
    "Failed to retrieve task: Task not found. The taskId is not one this server issued, or its run no longer "
    "exists: send the taskId exactly as the tools/call result gave it, or look for the run with list_agent_runs."
)


def task_status(status: str | None, run_id: str, server_id: str, error: str | None = None) -> str:
    """A task's statusMessage: the state of the run behind it, and what to do next."""
    hint = call_hint("get_agent_run", serverId=server_id, resourceRunId=run_id)
    if status == "completed":
        return f"Run {run_id} completed; the result holds its output. {hint} reads it again later."
    if status == "failed":
        return f"Run {run_id} failed{': ' + error if error else ''}. The result holds the run; {hint} reads it later."
    if status == "cancelled":
        return f"Run {run_id} was cancelled. {hint} shows what it did before it stopped."
    return f"Run {run_id} is {status or 'in an unknown state'} on server {server_id}; poll tasks/get again."
