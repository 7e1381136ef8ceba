"""ASGI app of the ACP sandbox: run routes, control routes, auth, request log and faults.

Requests under /v1 pass, in order: body read (at most ``MAX_BODY_BYTES`` kept), request log, fault
injection (see ``faults``), auth, the 413 size check, routing (its answer thrown away under a
``lost_answer`` fault). Auth finds the caller's account: the first presented key (Bearer, then
``X-API-Key``) that is an account's key decides it; none is 401. The run routes act for that account
alone (see ``store``). Control routes under /_sandbox (``GET``/``DELETE /_sandbox/requests``, ``PUT
/_sandbox/pace``) need the key of any account, skip the log and faults, and act on the sandbox as a
whole. There is no ``/health`` and no ``POST /_sandbox/faults``: nothing used them; arm faults with
``SandboxState.inject``. Any other path answers the 404 error envelope.

Routing runs on the raw, still percent-encoded path, and each path parameter is
decoded exactly once, so an id holding ``%2F`` stays one segment.

Undocumented choices (the sandbox's guesses; see also ``agent`` and ``store``):

- ``SYNC_START_STATUS`` / ``SYNC_CONTINUE_STATUS`` / ``ASYNC_STATUS``: sync start
  answers 201 and sync continue 200, after the turn has ended; async answers 202
  with the run still ``queued``.
- ``LIGHT_GET_INCLUDES_EVENTS``: ``GET .../runs/{id}`` answers the envelope
  without ``events``; start, continue, cancel and ``/events`` include them.
- The list holds bare run objects (no events), newest first; ``limit`` is
  ``DEFAULT_LIST_LIMIT`` by default and must lie in 1..``MAX_LIST_LIMIT``
  (``limit-max-50``: 1..``VARIANT_MAX_LIST_LIMIT``; see ``variants``).

Sandbox-only convention: a body over ``MAX_BODY_BYTES`` (1 MiB) is logged as
``None`` and answered 413 (after auth).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .agent import TurnInput, parse_turn
from .errors import ApiError, error_body, validation_error
from .faults import Fault, lose_answer, play_fault
from .runs import AGENT_RUNTIME_ID, StoredRun
from .store import RecordedRequest, SandboxState
from .variants import LIMIT_MAX_50

MAX_BODY_BYTES = 1024 * 1024
SYNC_START_STATUS = 201
SYNC_CONTINUE_STATUS = 200
ASYNC_STATUS = 202
LIGHT_GET_INCLUDES_EVENTS = False
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
VARIANT_MAX_LIST_LIMIT = 50
ACCOUNT_SCOPE_KEY = "acp_mcp.sandbox.account"
SERVERS_PATH = "/v1/servers"
RUNS_PATH = SERVERS_PATH + "/{server_id}/runtime/agent/runs"
RUN_PATH = RUNS_PATH + "/{run_id}"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return a JSON response."""
    return JSONResponse(body, status_code=status, headers=headers)


def _error(status: int, message: str | None = None) -> Response:
    """Return the ACP error envelope as a response."""
    return _json(error_body(status, message), status)


def _param(request: Request, name: str) -> str:
    """Return a path parameter, percent-decoded once."""
    return unquote(str(request.path_params[name]))


def _account(request: Request) -> str:
    """Return the account auth found for the request."""
    return str(request.scope[ACCOUNT_SCOPE_KEY])


async def _json_body(request: Request) -> Any:
    """Parse the request body as JSON; empty is {}; raise 400 if not JSON."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise validation_error("body", "must be a JSON object") from None


def _limit(request: Request, state: SandboxState) -> int:
    """Return the list limit query parameter; raise 400 if out of range."""
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIST_LIMIT
    value = int(raw) if raw.strip().isdigit() else 0
    most = VARIANT_MAX_LIST_LIMIT if LIMIT_MAX_50 in state.variants else MAX_LIST_LIMIT
    if not 1 <= value <= most:
        raise validation_error("limit", f"must be an integer from 1 to {most}")
    return value


class _RunRoutes:
    """Handlers of the connected agent-runtime run endpoints."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def start(self, request: Request) -> Response:
        """POST runs: start a run."""
        turn = parse_turn(await _json_body(request), allow_title=True)
        run = self.state.start_run(_param(request, "server_id"), turn, account=_account(request))
        return await self._turn_answer(run, turn, SYNC_START_STATUS)

    async def continue_(self, request: Request) -> Response:
        """POST runs/{id}/input: start a new turn on a finished run."""
        turn = parse_turn(await _json_body(request), allow_title=False)
        server_id, run_id = _param(request, "server_id"), _param(request, "run_id")
        run = self.state.continue_run(server_id, run_id, turn, account=_account(request))
        return await self._turn_answer(run, turn, SYNC_CONTINUE_STATUS)

    async def list_(self, request: Request) -> Response:
        """GET runs: list the newest runs of a server."""
        server_id = _param(request, "server_id")
        listed = self.state.list_runs(server_id, _limit(request, self.state), account=_account(request))
        runs = [run.to_dict() for run in listed]
        return _json(
            {
                "serverId": server_id,
                "agentRuntimeId": AGENT_RUNTIME_ID,
                "object": "list",
                "data": runs,
                "runs": runs,
            }
        )

    async def servers(self, request: Request) -> Response:
        """GET servers: the servers (resources) the key can see."""
        servers = self.state.list_servers(_limit(request, self.state), account=_account(request))
        return _json({"object": "list", "data": servers, "servers": servers})

    async def bindings(self, request: Request) -> Response:
        """GET servers/{id}/bindings: what is bound to a server."""
        server_id = _param(request, "server_id")
        bindings = self.state.bindings(server_id, account=_account(request))
        return _json({"serverId": server_id, "bindings": bindings})

    async def get(self, request: Request) -> Response:
        """GET runs/{id}: the light status poll."""
        return self._envelope(self._run(request), LIGHT_GET_INCLUDES_EVENTS)

    async def events(self, request: Request) -> Response:
        """GET runs/{id}/events: the run with all its events."""
        return self._envelope(self._run(request), True)

    async def cancel(self, request: Request) -> Response:
        """POST runs/{id}/cancel: cancel a queued or running run."""
        server_id, run_id = _param(request, "server_id"), _param(request, "run_id")
        run = self.state.cancel_run(server_id, run_id, account=_account(request))
        return self._envelope(run, True)

    def _run(self, request: Request) -> StoredRun:
        """Return the run named by the path."""
        server_id, run_id = _param(request, "server_id"), _param(request, "run_id")
        return self.state.get_run(server_id, run_id, account=_account(request))

    def _envelope(self, run: StoredRun, events: bool, status: int = 200) -> Response:
        """Answer with the envelope of a run."""
        return _json(self.state.envelope(run, events), status)

    async def _turn_answer(self, run: StoredRun, turn: TurnInput, sync_status: int) -> Response:
        """Answer at once (async) or when the turn has ended (sync)."""
        if turn.mode == "async":
            return self._envelope(run, True, ASYNC_STATUS)
        await self.state.wait_turn(run)
        return self._envelope(run, True, sync_status)


class _ControlRoutes:
    """Handlers of the /_sandbox control endpoints."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def requests(self, request: Request) -> Response:
        """GET /_sandbox/requests: the request log."""
        return _json({"requests": [asdict(r) for r in self.state.requests]})

    async def clear_requests(self, request: Request) -> Response:
        """DELETE /_sandbox/requests: empty the request log."""
        self.state.clear_requests()
        return _json({"requests": []})

    async def pace(self, request: Request) -> Response:
        """PUT /_sandbox/pace: set the seconds per step."""
        body = await _json_body(request)
        value = body.get("pace") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise validation_error("pace", "must be a non-negative number")
        self.state.pace = float(value)
        return _json({"pace": self.state.pace})


def _routes(state: SandboxState) -> list[Route]:
    """Build the route table."""
    runs, control = _RunRoutes(state), _ControlRoutes(state)
    return [
        Route(SERVERS_PATH, runs.servers, methods=["GET"]),
        Route(SERVERS_PATH + "/{server_id}/bindings", runs.bindings, methods=["GET"]),
        Route(RUNS_PATH, runs.start, methods=["POST"]),
        Route(RUNS_PATH, runs.list_, methods=["GET"]),
        Route(RUN_PATH, runs.get, methods=["GET"]),
        Route(RUN_PATH + "/input", runs.continue_, methods=["POST"]),
        Route(RUN_PATH + "/events", runs.events, methods=["GET"]),
        Route(RUN_PATH + "/cancel", runs.cancel, methods=["POST"]),
        Route("/_sandbox/requests", control.requests, methods=["GET"]),
        Route("/_sandbox/requests", control.clear_requests, methods=["DELETE"]),
        Route("/_sandbox/pace", control.pace, methods=["PUT"]),
    ]


async def _on_api_error(request: Request, exc: Exception) -> Response:
    """Answer an ApiError with its envelope."""
    assert isinstance(exc, ApiError)
    return _json(exc.body, exc.status)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """Answer a routing 404/405 with the error envelope."""
    assert isinstance(exc, HTTPException)
    target = f"{request.method} {request.scope['path']}"
    messages = {404: f"No route for {target}", 405: f"Method not allowed: {target}"}
    body = error_body(exc.status_code, messages.get(exc.status_code))
    return _json(body, exc.status_code, dict(exc.headers or {}))


def _raw_path(scope: Scope) -> str:
    """Return the path exactly as received (percent-encoded)."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else quote(str(scope["path"]))


def _guarded_area(path: str) -> str | None:
    """Return "api" for /v1 paths, "control" for /_sandbox paths, else None."""
    for prefix, area in (("/v1", "api"), ("/_sandbox", "control")):
        if path == prefix or path.startswith(prefix + "/"):
            return area
    return None


def _headers(scope: Scope) -> dict[str, str]:
    """Return the request headers with lower-case names, repeats joined."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _logged_body(raw: bytes) -> Any:
    """Return a body as the request log keeps it."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _presented_keys(headers: dict[str, str]) -> list[str]:
    """Return the API keys sent by Bearer and X-API-Key."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    keys = [token.strip()] if scheme.lower() == "bearer" else []
    return keys + ([headers["x-api-key"]] if "x-api-key" in headers else [])


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """Drain the request body; keep it unless it exceeds MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        more = bool(message.get("more_body", False))
    return (b"", True) if size > MAX_BODY_BYTES else (b"".join(chunks), False)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a receive that yields body once, then defers to receive."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


class SandboxApp:
    """The sandbox's ASGI app: logging, faults and auth around the routes."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.routes: ASGIApp = Starlette(
            routes=_routes(state),
            exception_handlers={ApiError: _on_api_error, HTTPException: _on_http_error},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.routes(scope, receive, send)
            return
        path = _raw_path(scope)
        scope = {**scope, "path": path}
        area = _guarded_area(path)
        if area is None:
            await self.routes(scope, receive, send)
            return
        body, too_big = await _read_body(receive)
        receive = _replay(body, receive)
        fault = self._logged_fault(scope, path, body) if area == "api" else None
        if fault is not None and await play_fault(fault, self.state.clock, scope, receive, send):
            return
        accounts = (self.state.account_of(k) for k in _presented_keys(_headers(scope)))
        account = next((a for a in accounts if a is not None), None)
        response: ASGIApp
        if account is None:
            response = _json(error_body(401, "Invalid or missing API key"), 401)
        elif too_big:
            response = _error(413, f"Request body exceeds {MAX_BODY_BYTES} bytes")
        else:
            response = self.routes
        if fault is not None and fault.kind == "lost_answer":
            await lose_answer(response, {**scope, ACCOUNT_SCOPE_KEY: account}, receive)
            return
        await response({**scope, ACCOUNT_SCOPE_KEY: account}, receive, send)

    def _logged_fault(self, scope: Scope, path: str, body: bytes) -> Fault | None:
        """Log a /v1 request; return the armed fault it meets, if any."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        method = str(scope["method"])
        self.state.record(RecordedRequest(method, path, query, _headers(scope), _logged_body(body)))
        return self.state.take_fault(method, path)


def create_app(state: SandboxState) -> SandboxApp:
    """Return the sandbox ASGI app serving state."""
    return SandboxApp(state)
