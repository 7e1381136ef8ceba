"""Section ``token_check``: what checking an OAuth access token adds to a request, in process and end to end.

In process, the issuer's keys already cached: `JWTVerifier.verify_token` on a token it has not seen (the
signature checked) and on one it has (the verified-token cache), beside the static token's check
(`BearerTokenMiddleware`'s constant-time comparison), each timed call by call. End to end: tools/list by
bare JSON-RPC POSTs, one at a time, alternating between two ``--stateless`` servers, one behind a static
token (``ACP_MCP_HTTP_TOKEN``) and one taking OAuth access tokens (the same token every time).
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from starlette.types import Receive, Scope, Send

from acp_mcp.clock import SystemClock
from acp_mcp.http_server import BearerTokenMiddleware
from acp_mcp.oauth import JWTVerifier
from bench.clients import post_message, request
from bench.harness import ACP, Sandbox, base_env, serve_http
from bench.issuer import Issuer, oauth_env, serve_issuer, write_keys
from bench.stats import interleaved, summary

STATIC = "static"
OAUTH = "oauth"
MODES = (STATIC, OAUTH)
WARM_TOKENS = 20
"""New tokens checked before the timed ones (the first fetches the issuer's keys)."""
SUBJECT = "bench-user"
MICROSECONDS = 1e6
UNLIMITED = "1000000"
"""``ACP_MCP_CALLER_RATE`` and ``_BURST`` of the one-token server: its bucket is kept, but never runs dry."""


async def _never(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the static-token middleware: never reached, only its check is timed."""


async def _in_process(issuer: Issuer, new_tokens: int, repeats: int) -> dict[str, Any]:
    """Microseconds per check: a new token, a repeated one, and the static token."""
    audience = "http://127.0.0.1:9/mcp"  # only a name: the verifier never contacts its audience
    verifier = JWTVerifier(issuer.url, audience, clock=SystemClock(), timeout=10)
    tokens = [issuer.mint(f"{SUBJECT}-{n}", audience) for n in range(WARM_TOKENS + new_tokens)]
    new: list[float] = []
    repeated: list[float] = []
    try:
        for n, token in enumerate(tokens):
            began = time.perf_counter()
            access = await verifier.verify_token(token)
            elapsed = time.perf_counter() - began
            if access is None:
                raise RuntimeError("the verifier refused a good token")
            if n >= WARM_TOKENS:
                new.append(elapsed)
        for _ in range(repeats):
            began = time.perf_counter()
            access = await verifier.verify_token(tokens[-1])
            repeated.append(time.perf_counter() - began)
            if access is None:
                raise RuntimeError("the verifier refused a good token")
    finally:
        await verifier.aclose()
    secret = secrets.token_urlsafe(32)
    static = BearerTokenMiddleware(_never, secret)
    header = f"Bearer {secret}"
    compared: list[float] = []
    for _ in range(repeats):
        began = time.perf_counter()
        allowed = static._authorized(header)
        compared.append(time.perf_counter() - began)
        if not allowed:
            raise RuntimeError("the static token check refused its own token")
    return {
        "new_token": summary(new, MICROSECONDS),
        "repeated_token": summary(repeated, MICROSECONDS),
        "static_token": summary(compared, MICROSECONDS),
    }


async def _over_http(servers: dict[str, tuple[str, str]], samples: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per tools/list on each server ((URL, token) by mode), one request at a time, modes alternating."""
    times: dict[str, list[float]] = {mode: [] for mode in servers}
    async with httpx2.AsyncClient(timeout=60) as http:
        for n in range(warmup + samples):
            for mode in interleaved(list(servers), n):
                url, token = servers[mode]
                began = time.perf_counter()
                answer = await post_message(http, url, request(n, "tools/list"), token)
                elapsed = time.perf_counter() - began
                if "result" not in answer:
                    raise RuntimeError(f"tools/list failed ({mode}): {answer.get('error')}")
                if n >= warmup:
                    times[mode].append(elapsed)
    return times


def bench_token_check(sandbox: Sandbox, new_tokens: int, repeats: int, samples: int, warmup: int) -> dict[str, Any]:
    """The token checks in process (`new_tokens` new, `repeats` repeated and static), and tools/list over
    HTTP with a static token and with OAuth (`samples` each, after `warmup`)."""
    static_token = secrets.token_urlsafe(32)
    base = base_env(sandbox.base_url)
    with serve_issuer() as issuer, tempfile.TemporaryDirectory() as folder:
        keys = write_keys(Path(folder) / "keys.json", [SUBJECT])
        in_process = anyio.run(_in_process, issuer, new_tokens, repeats)
        limits = {"ACP_MCP_CALLER_RATE": UNLIMITED, "ACP_MCP_CALLER_BURST": UNLIMITED}
        servers = [
            (ACP, lambda _url: base | {"ACP_MCP_HTTP_TOKEN": static_token}, ["--stateless"]),
            (ACP, lambda url: oauth_env(base, issuer, url, keys) | limits, ["--stateless"]),
        ]
        with serve_http(servers) as ((static_url, _), (oauth_url, _)):
            by_mode = {STATIC: (static_url, static_token), OAUTH: (oauth_url, issuer.mint(SUBJECT, oauth_url))}
            times = anyio.run(_over_http, by_mode, samples, warmup)
    http = {mode: summary(times[mode]) for mode in MODES}
    added = {stat: round(http[OAUTH][stat] - http[STATIC][stat], 3) for stat in ("median", "p99")}
    return {
        "in_process_us": in_process,
        "tools_list_ms": http | {"oauth_added": added},
        "new_tokens": new_tokens,
        "repeats": repeats,
        "http_samples": samples,
    }
