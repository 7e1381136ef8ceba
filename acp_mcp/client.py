"""The ACP API client: connected agent-runtime runs over one pooled `httpx2.AsyncClient`.

It knows HTTP and the API, nothing of MCP. Every request goes through `ACPClient._request`, the
one place that checks the key and the URL, builds the path from single segments, retries what is
safe to retry, caps what it reads, and turns every failure into an `errors.ACPError`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from . import __version__
from .arguments import path_id
from .clock import Clock, SystemClock
from .config import CALLER_KEY_HEADER, ORGANIZATION_HEADER, Settings, is_loopback
from .errors import (
    ACPError,
    BusyError,
    CallerKeyMissingError,
    ConnectError,
    InsecureBaseURLError,
    InvalidResponseError,
    MissingAPIKeyError,
    ProtocolError,
    RedirectError,
    RequestTimeout,
    parse_envelope,
    status_error_class,
)
from .limits import (
    ANSWER_SLACK_SECONDS,
    BUSY_RETRY_SECONDS,
    CONNECT_SECONDS,
    INVALID_FIELDS_SHOWN,
    MAX_API_CONNECTIONS,
    MAX_ERROR_BYTES,
    MAX_RESPONSE_BYTES,
    MAX_SYNC_REQUESTS,
    POOL_WAIT_SECONDS,
    UNBOUNDED_CALL_TIMEOUTS,
)
from .models import BindingList, RunEnvelope, RunList, ServerList
from .redaction import Redactor
from .retries import RetryPolicy, retry_after
from .telemetry import Telemetry, default_telemetry

logger = logging.getLogger(__name__)

Parsed = TypeVar("Parsed", bound=BaseModel)


@dataclass(frozen=True)
class ApiResponse:
    """A decoded 2xx answer."""

    status: int
    data: dict[str, Any]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client in the process (each caller has its own client): building one costs
    tens of milliseconds and most of a megabyte (the CA bundle). It honours SSL_CERT_FILE and SSL_CERT_DIR."""
    return httpx2.create_ssl_context()


def _segment(field_name: str, value: str) -> str:
    """`value` checked as an id (`arguments.path_id`) and percent-encoded as one path segment."""
    return quote(path_id(field_name, value), safe="")


class ACPClient:
    """Calls the connected agent-runtime run endpoints of one ACP API base URL."""

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        redact: Redactor | None = None,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry or default_telemetry()
        self._clock = clock or SystemClock()
        self._redact = redact or Redactor(settings.secrets())
        self._retry = retry or RetryPolicy()
        self._http: httpx2.AsyncClient | None = None
        self._busy = 0
        self._syncs = 0
        self._idle: anyio.Event | None = None

    def _client(self) -> httpx2.AsyncClient:
        if self._http is None:
            timeout = self._settings.request_timeout
            self._http = httpx2.AsyncClient(
                base_url=self._settings.base_url + "/",
                timeout=_timeout(timeout),
                limits=httpx2.Limits(max_connections=MAX_API_CONNECTIONS),
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": f"acp-mcp/{__version__}"},
                verify=tls_context(),
            )
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def aclose_when_idle(self) -> None:
        """Close the connection pool once no request is in flight (a retired caller's client: its calls finish)."""
        while self._busy:
            self._idle = anyio.Event()
            await self._idle.wait()
        await self.aclose()

    @contextlib.contextmanager
    def _in_flight(self, sync: bool, labels: dict[str, Any]) -> Iterator[None]:
        """Counts a request in flight; a sync one only while fewer than `MAX_SYNC_REQUESTS` hold the pool."""
        if sync and self._syncs >= MAX_SYNC_REQUESTS:
            raise BusyError(
                f"{MAX_SYNC_REQUESTS} sync calls are open, its limit; a call without mode 'sync' is not limited",
                retry_seconds=BUSY_RETRY_SECONDS,
                **labels,
            )
        self._busy += 1
        self._syncs += sync
        try:
            yield
        finally:
            self._busy -= 1
            self._syncs -= sync
            if not self._busy and self._idle is not None:
                self._idle.set()

    # -- endpoints ---------------------------------------------------------------------------
    # `deadline` (monotonic seconds) bounds each call, retries included; `sync` lets a POST's one
    # request run until the deadline instead of the usual request timeout (the API answers a sync
    # request when the agent's turn is done).

    async def start_run(
        self, server_id: str, body: dict[str, Any], *, deadline: float | None = None, sync: bool = False
    ) -> tuple[int, RunEnvelope]:
        """``POST /servers/{serverId}/runtime/agent/runs``: 201 started or 202 accepted."""
        path = self._runs_path(server_id)
        return await self._request(
            "POST", path, RunEnvelope, "start", server_id, body=body, deadline=deadline, sync=sync
        )

    async def continue_run(
        self, server_id: str, run_id: str, body: dict[str, Any], *, deadline: float | None = None, sync: bool = False
    ) -> tuple[int, RunEnvelope]:
        """``POST .../runs/{resourceRunId}/input``: 200 continued or 202 accepted."""
        path = self._runs_path(server_id, run_id, "input")
        return await self._request(
            "POST", path, RunEnvelope, "input", server_id, run_id, body=body, deadline=deadline, sync=sync
        )

    async def get_run(self, server_id: str, run_id: str, *, deadline: float | None = None) -> RunEnvelope:
        """``GET .../runs/{resourceRunId}``: the run without its events (a light status poll)."""
        path = self._runs_path(server_id, run_id)
        return (await self._request("GET", path, RunEnvelope, "get", server_id, run_id, deadline=deadline))[1]

    async def get_run_events(self, server_id: str, run_id: str, *, deadline: float | None = None) -> RunEnvelope:
        """``GET .../runs/{resourceRunId}/events``: the run with all of its events."""
        path = self._runs_path(server_id, run_id, "events")
        return (await self._request("GET", path, RunEnvelope, "events", server_id, run_id, deadline=deadline))[1]

    async def list_runs(self, server_id: str, limit: int | None = None, *, deadline: float | None = None) -> RunList:
        """``GET /servers/{serverId}/runtime/agent/runs?limit=``: newest runs first."""
        params = {"limit": str(limit)} if limit is not None else None
        path = self._runs_path(server_id)
        return (await self._request("GET", path, RunList, "list", server_id, params=params, deadline=deadline))[1]

    async def cancel_run(
        self, server_id: str, run_id: str, *, deadline: float | None = None
    ) -> tuple[int, RunEnvelope]:
        """``POST .../runs/{resourceRunId}/cancel`` with an empty JSON body."""
        path = self._runs_path(server_id, run_id, "cancel")
        return await self._request("POST", path, RunEnvelope, "cancel", server_id, run_id, body={}, deadline=deadline)

    async def list_servers(self, limit: int | None = None, *, deadline: float | None = None) -> ServerList:
        """``GET /servers?limit=``: the servers (resources) the key can see."""
        params = {"limit": str(limit)} if limit is not None else None
        return (await self._request("GET", "servers", ServerList, "servers", params=params, deadline=deadline))[1]

    async def list_bindings(self, server_id: str, *, deadline: float | None = None) -> BindingList:
        """``GET /servers/{serverId}/bindings``: what is bound to the server (an agent runtime, a database...)."""
        path = f"servers/{_segment('serverId', server_id)}/bindings"
        return (await self._request("GET", path, BindingList, "bindings", server_id, deadline=deadline))[1]

    # -- the chokepoint ------------------------------------------------------------------------

    def _check_ready(self) -> str:
        key = self._settings.api_key
        if key is None:
            if self._settings.per_caller_keys:
                raise CallerKeyMissingError(header=CALLER_KEY_HEADER if self._settings.caller_keys else None)
            raise MissingAPIKeyError("No API key is configured")
        parts = urlsplit(self._settings.base_url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            raise InsecureBaseURLError(f"Refusing to send the API key over plain http to {parts.hostname}")
        return key.get_secret_value()

    @staticmethod
    def _runs_path(server_id: str, run_id: str | None = None, tail: str | None = None) -> str:
        """The path of the runs collection, one run, or one of its actions; each id checked and encoded."""
        path = f"servers/{_segment('serverId', server_id)}/runtime/agent/runs"
        if run_id is not None:
            path += "/" + _segment("resourceRunId", run_id)
        return path if tail is None else f"{path}/{tail}"

    async def _request(
        self,
        method: str,
        path: str,
        model: type[Parsed],
        operation: str,
        server_id: str | None = None,
        run_id: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        deadline: float | None = None,
        sync: bool = False,
    ) -> tuple[int, Parsed]:
        """Send one logical request (retrying what is safe within `deadline`) and parse it as `model`.

        `operation`, `server_id` and `run_id` label the errors; `sync` lets the one request of a
        sync POST run until `deadline` instead of the usual request timeout.
        """
        key = self._check_ready()
        labels = {"server_id": server_id, "run_id": run_id, "operation": operation}
        headers = {"Authorization": f"Bearer {key}"}
        if self._settings.organization_id:
            headers[ORGANIZATION_HEADER] = self._settings.organization_id
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        if deadline is None:
            deadline = self._clock.now() + UNBOUNDED_CALL_TIMEOUTS * self._settings.request_timeout
        span = self._telemetry.api_request(method, path, self._settings.base_url, labels, self._redact)
        with self._in_flight(sync, labels), span as call:
            self._telemetry.inject(headers)
            attempt = 0
            while True:
                left = deadline - self._clock.now()
                seconds = left if sync else min(self._settings.request_timeout, left)
                try:
                    if seconds <= 0:
                        raise RequestTimeout(f"No time left to ask {self._settings.base_url}", **labels)
                    response = await self._send(method, path, headers, body, params, seconds, labels)
                    call.answered(response.status)
                    return response.status, _parsed(response, model, labels)
                except ACPError as exc:
                    delay = self._retry.delay(method, exc, attempt)
                    if delay is None or self._clock.now() + delay >= deadline:
                        raise
                    call.retrying(exc, delay)
                    logger.info(
                        "%s %s failed (%s); retry %d in %.2fs", method, path, type(exc).__name__, attempt + 1, delay
                    )
                    await self._clock.sleep(delay)
                    attempt += 1

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        seconds: float,
        labels: dict[str, Any],
    ) -> ApiResponse:
        http = self._client()
        request = http.build_request(
            method,
            path,
            headers=headers,
            json=body,
            params=params,
            timeout=_timeout(seconds),
        )
        where = self._settings.base_url
        try:
            with anyio.fail_after(seconds + ANSWER_SLACK_SECONDS):
                response = await http.send(request, stream=True)
                try:
                    cap = MAX_RESPONSE_BYTES if response.is_success else MAX_ERROR_BYTES
                    raw = await _read_capped(response, cap)
                    raw = self._redact.bytes(raw) if raw else raw  # nothing the API echoes may carry the key
                finally:
                    await response.aclose()
        except httpx2.PoolTimeout:
            raise BusyError(
                f"all {MAX_API_CONNECTIONS} connections to the ACP API are in use",
                retry_seconds=BUSY_RETRY_SECONDS,
                **labels,
            ) from None
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.UnsupportedProtocol) as exc:
            raise ConnectError(f"Could not connect to {where}: {type(exc).__name__}", **labels) from exc
        except (httpx2.TimeoutException, TimeoutError) as exc:
            raise RequestTimeout(f"No answer from {where} within {seconds:g}s", **labels) from exc
        except httpx2.TransportError as exc:
            raise ProtocolError(f"The connection to {where} broke: {type(exc).__name__}", **labels) from exc
        return _interpret(response, raw, labels, self._redact, self._clock.wall())


def _timeout(seconds: float) -> httpx2.Timeout:
    """`seconds` per request: of those, at most `CONNECT_SECONDS` to connect, `POOL_WAIT_SECONDS` for a connection."""
    return httpx2.Timeout(seconds, connect=min(seconds, CONNECT_SECONDS), pool=min(seconds, POOL_WAIT_SECONDS))


def _parsed(response: ApiResponse, model: type[Parsed], labels: dict[str, Any]) -> Parsed:
    """The answer's JSON as `model`; fields of the wrong type make it unusable."""
    try:
        return model.model_validate(response.data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:INVALID_FIELDS_SHOWN])
        raise InvalidResponseError(
            f"HTTP {response.status} answer has fields of the wrong type ({fields})", status=response.status, **labels
        ) from None


async def _read_capped(response: httpx2.Response, cap: int) -> bytes | None:
    """The body, or None when it is larger than `cap` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _interpret(
    response: httpx2.Response, raw: bytes | None, labels: dict[str, Any], redact: Redactor, now: float
) -> ApiResponse:
    """Map a complete HTTP answer to an `ApiResponse` or the matching `ACPError`."""
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location")
        location = redact(location) if location else location
        raise RedirectError(f"HTTP {status} redirect to {location!r}", status=status, location=location, **labels)
    if status == 204:
        return ApiResponse(status, {})
    if response.is_success:
        if raw is None:
            raise InvalidResponseError(
                f"HTTP {status} answer larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB", status=status, **labels
            )
        data = _decode(raw)
        if not isinstance(data, dict):
            raise InvalidResponseError(f"HTTP {status} answer is not a JSON object", status=status, **labels)
        return ApiResponse(status, data)
    envelope = parse_envelope(_decode(raw), redact)
    cls = status_error_class(status)
    detail = envelope.message or envelope.error or response.reason_phrase or ""
    raise cls(
        f"HTTP {status}: {detail}".rstrip(": "),
        status=status,
        envelope=envelope,
        retry_after=retry_after(response.headers, now),
        **labels,
    )
