"""Exceptions raised by the ACP client, one class per failure class a caller reacts to differently.

    ACPError
    ├── MissingAPIKeyError        no key configured; nothing was sent
    │   └── CallerKeyMissingError the caller has no key of their own here; nothing was sent
    ├── InsecureBaseURLError      plain http to a non-loopback host; nothing was sent
    ├── InvalidArgumentError      a tool argument refused before any request; nothing was sent
    │   └── InvalidIdError        an id that cannot be one path segment
    ├── UnconfirmedStartError     a start's answer was lost and its run was not found yet
    ├── BusyError                 this process is at one of its limits; nothing was sent
    ├── TransportError            no HTTP answer
    │   ├── ConnectError          the request provably never reached the API (safe to retry a POST)
    │   ├── RequestTimeout        no complete answer in time
    │   └── ProtocolError         the connection broke mid-exchange
    ├── ResponseError             an HTTP answer the client cannot use
    │   ├── RedirectError         3xx: never followed, the key must not travel elsewhere
    │   └── InvalidResponseError  2xx that is not a JSON object, or too large
    └── APIStatusError            the API answered 4xx/5xx (its error envelope is parsed)
        ├── AuthenticationError   401
        ├── PaymentRequiredError  402
        ├── PermissionDeniedError 403
        ├── NotFoundError         404
        ├── ConflictError         409
        ├── InvalidRequestError   400, 413, 422
        ├── RateLimitError        429
        └── ServerError           5xx

Errors carry data (status, ids, retry-after, the envelope's short fields), never a raw body.
Turning them into words for the model is `messages.py`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .limits import ERROR_CODE_CHARS, ERROR_DETAIL_CHARS, ERROR_DETAILS, ERROR_FIELD_CHARS


class ACPError(Exception):
    """Base class: any failure to get a usable answer from the ACP API."""

    def __init__(
        self, message: str, *, server_id: str | None = None, run_id: str | None = None, operation: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.server_id = server_id
        self.run_id = run_id
        self.operation = operation
        """What was asked of the API: start, list, get, input, events or cancel."""


class MissingAPIKeyError(ACPError):
    """No API key is configured."""


class CallerKeyMissingError(MissingAPIKeyError):
    """A hosted server has no ACP key for this caller: none mapped, none sent, and no shared key allowed."""

    def __init__(self, *, header: str | None) -> None:
        super().__init__("No API key for this caller")
        self.header = header
        """The header the caller may send their own key in, when the server accepts it."""


class InsecureBaseURLError(ACPError):
    """The base URL is plain http to a host that is not loopback."""


class InvalidArgumentError(ACPError):
    """A tool argument refused before any request: which field, which problem (see `arguments`), the numbers."""

    def __init__(self, field_name: str, problem: str, **data: Any) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field_name = field_name
        self.problem = problem
        self.data = data


class InvalidIdError(InvalidArgumentError):
    """An id that cannot stand as one URL path segment."""


class UnconfirmedStartError(ACPError):
    """A start's answer was lost (`cause`: what happened to it, e.g. "did not answer within 5s") and no run
    carrying its marker could be found yet."""

    def __init__(self, *, server_id: str, cause: str) -> None:
        super().__init__(f"start unconfirmed: it {cause}", server_id=server_id, operation="start")
        self.cause = cause


class BusyError(ACPError):
    """This process is at a limit (`what`, in words): the call was refused before anything was sent."""

    def __init__(self, what: str, *, retry_seconds: float, **ids: Any) -> None:
        super().__init__(f"busy: {what}", **ids)
        self.what = what
        self.retry_seconds = retry_seconds


class TransportError(ACPError):
    """The request got no HTTP answer."""


class ConnectError(TransportError):
    """The connection could not be made; the API never saw the request."""


class RequestTimeout(TransportError):
    """No complete answer arrived within the timeout."""


class ProtocolError(TransportError):
    """The connection broke or the answer was malformed at the HTTP level."""


class ResponseError(ACPError):
    """An HTTP answer the client cannot use."""

    def __init__(self, message: str, *, status: int, **ids: Any) -> None:
        super().__init__(message, **ids)
        self.status = status


class RedirectError(ResponseError):
    """A 3xx answer; redirects are never followed with the key."""

    def __init__(self, message: str, *, status: int, location: str | None, **ids: Any) -> None:
        super().__init__(message, status=status, **ids)
        self.location = location


class InvalidResponseError(ResponseError):
    """A success status whose body is not a JSON object, or exceeds the size cap."""


@dataclass(frozen=True)
class FieldProblem:
    """One rejected field from an error envelope's ``details``."""

    field: str | None
    message: str


BUDGET_FIELDS = ("balance", "dailySpent", "dailyLimit", "monthlySpent", "monthlyLimit")
"""The documented fields of a 402's ``budgetStatus`` (code ``INSUFFICIENT_BUDGET``)."""
USAGE_FIELDS = ("tier", "used", "allowance", "periodEnd")
"""The documented fields of a 402's ``usage`` (code ``USAGE_EXHAUSTED``)."""


@dataclass(frozen=True)
class Envelope:
    """The short fields of the platform's error envelope ``{error, message, code?, details?}``, plus a 402's
    documented ``budgetStatus`` and ``usage`` fields (name, short text), whichever were sent."""

    error: str | None = None
    message: str | None = None
    code: str | None = None
    details: tuple[FieldProblem, ...] = field(default_factory=tuple)
    budget: dict[str, str] = field(default_factory=dict, hash=False)
    usage: dict[str, str] = field(default_factory=dict, hash=False)


class APIStatusError(ACPError):
    """The API answered with a 4xx or 5xx status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        envelope: Envelope,
        retry_after: float | None = None,
        **ids: Any,
    ) -> None:
        super().__init__(message, **ids)
        self.status = status
        self.envelope = envelope
        self.retry_after = retry_after


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or revoked."""


class PaymentRequiredError(APIStatusError):
    """402: budget or usage allowance exhausted."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks permission for this resource."""


class NotFoundError(APIStatusError):
    """404: the server or run does not exist (for this key)."""


class ConflictError(APIStatusError):
    """409: the run is busy or in a state that forbids the call."""


class InvalidRequestError(APIStatusError):
    """400, 413 or 422: the API rejected the request's content."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class ServerError(APIStatusError):
    """5xx: the platform failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)


def parse_envelope(body: Any, redact: Callable[[str], str]) -> Envelope:
    """Read the error envelope from a decoded JSON body; anything else gives an empty envelope.

    Each field is redacted *before* it is cut to `ERROR_FIELD_CHARS`, so a cut can never leave
    part of a secret behind.
    """

    def short(value: Any, limit: int = ERROR_FIELD_CHARS) -> str | None:
        if value is None:
            return None
        text = redact(value if isinstance(value, str) else str(value))
        return text if len(text) <= limit else text[:limit] + "…"

    def known(value: Any, names: tuple[str, ...]) -> dict[str, str]:
        fields = value if isinstance(value, dict) else {}
        return {name: text for name in names if (text := short(fields.get(name), ERROR_CODE_CHARS)) is not None}

    if not isinstance(body, dict):
        return Envelope()
    details = body.get("details")
    extras = details if isinstance(details, dict) else {}
    problems = tuple(
        FieldProblem(
            field=short(name, ERROR_CODE_CHARS),
            message=short(message, ERROR_DETAIL_CHARS) or "",
        )
        for name, message in _detail_items(details)[:ERROR_DETAILS]
    )
    return Envelope(
        error=short(body.get("error")),
        message=short(body.get("message")),
        code=short(body.get("code"), ERROR_CODE_CHARS),
        details=problems,
        budget=known(body.get("budgetStatus", extras.get("budgetStatus")), BUDGET_FIELDS),
        usage=known(body.get("usage", extras.get("usage")), USAGE_FIELDS),
    )


def _detail_items(details: Any) -> list[tuple[Any, Any]]:
    """(field, message) of each rejected field in ``details``: the errors page's list of ``{field, message}``,
    one such object, or the SDK's object of ``{field: message}`` (the 402 extras left out)."""
    if isinstance(details, list):
        return [(item.get("field"), item.get("message")) for item in details if isinstance(item, dict)]
    if not isinstance(details, dict):
        return []
    if "message" in details:
        return [(details.get("field"), details.get("message"))]
    return [
        (name, value if isinstance(value, str) else json.dumps(value, default=str))
        for name, value in details.items()
        if name not in ("budgetStatus", "usage")
    ]
