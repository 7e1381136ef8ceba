"""OAuth 2.1 resource server: JWT access tokens checked against the issuer's keys, and the scopes each call needs.

`JWTVerifier` is the SDK's `TokenVerifier` for JWT access tokens (RFC 9068): the issuer's metadata
(RFC 8414, else OpenID discovery) names its ``jwks_uri``; the keys are cached, refetched at most every
`JWKS_REFRESH_SECONDS` for a token with an unknown ``kid`` and at least every `JWKS_MAX_AGE_SECONDS`,
never per call. A token is refused for a bad signature, ``alg: none`` or an algorithm off
`ALGORITHMS`, another issuer, an audience that is not this server (RFC 8707), expiry or a ``nbf``
still ahead (with `TOKEN_LEEWAY_SECONDS` of leeway). A token that passed is remembered until it
expires. The token itself never leaves this module: not upstream, not in a log.

Scopes: `READ` (get, list, the run resource and its subscriptions, completions, ``tasks/get``) and
`WRITE` (start, continue, cancel, ``tasks/cancel``); `needed_scope` says which a message needs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken

from .clock import Clock
from .limits import (
    JWKS_MAX_AGE_SECONDS,
    JWKS_REFRESH_SECONDS,
    MAX_VERIFIED_TOKENS,
    TOKEN_LEEWAY_SECONDS,
)
from .tools import TOOLS

logger = logging.getLogger(__name__)

READ = "runs:read"
WRITE = "runs:write"
SCOPES = (READ, WRITE)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric algorithms only: ``none`` and the HMAC family (whose key would be public) are refused."""

_WRITE_TOOLS = frozenset(spec.name for spec in TOOLS if not spec.read_only)
_READ_METHODS = frozenset(
    {
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "subscriptions/listen",
        "completion/complete",
        "tasks/get",
        "tasks/update",
    }
)


def needed_scope(method: str, params: Mapping[str, Any] | None) -> str | None:
    """The scope a request needs, or None when any valid token may make it (initialize, lists, ping)."""
    if method == "tools/call":
        name = (params or {}).get("name")
        return tool_scope(name) if isinstance(name, str) else READ
    if method == "tasks/cancel":
        return WRITE
    return READ if method in _READ_METHODS else None


def tool_scope(name: str) -> str:
    """The scope calling tool `name` needs."""
    return WRITE if name in _WRITE_TOOLS else READ


def well_known(url: str, suffix: str) -> str:
    """RFC 8414 / RFC 9728 well-known URL: ``/.well-known/<suffix>`` inserted before `url`'s path."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/{suffix}{path}"


class JWTVerifier:
    """Checks JWT access tokens issued by `issuer` for `audience` (this server's canonical URL)."""

    def __init__(self, issuer: str, audience: str, *, clock: Clock, timeout: float) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience.rstrip("/")
        self._clock = clock
        self._timeout = timeout
        self._http: httpx2.AsyncClient | None = None
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched: float | None = None
        self._lock = anyio.Lock()
        self._verified: OrderedDict[str, AccessToken] = OrderedDict()

    async def aclose(self) -> None:
        """Close the connection pool to the issuer (it reopens on the next fetch)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's grant, or None when it is not a valid access token for this server."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        known = self._verified.get(digest)
        if known is not None and (known.expires_at or 0) + TOKEN_LEEWAY_SECONDS > time.time():
            self._verified.move_to_end(digest)
            return known
        access = await self._verify(token)
        if access is not None:
            self._verified[digest] = access
            while len(self._verified) > MAX_VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return access

    async def _verify(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            logger.info("refused an access token signed with %r", algorithm)
            return None
        key = await self._key(header.get("kid"))
        if key is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=[self.audience, self.audience + "/"],
                issuer=[self.issuer, self.issuer + "/"],  # Auth0 writes its issuer with a slash
                leeway=TOKEN_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("refused an access token: %s", type(exc).__name__)
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims["sub"]),
            scopes=_scopes(claims),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=str(claims["sub"]),
            claims=claims,
        )

    async def _key(self, kid: str | None) -> jwt.PyJWK | None:
        """The issuer's key `kid`, from the cache, refetching the keys when due (never, old, or an unknown kid)."""
        key, fetched = self._lookup(kid), self._fetched
        age = None if fetched is None else self._clock.now() - fetched
        if age is None or age >= JWKS_MAX_AGE_SECONDS or (key is None and age >= JWKS_REFRESH_SECONDS):
            async with self._lock:
                if self._fetched == fetched:  # nobody fetched while this request waited for the lock
                    await self._fetch_keys()
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _fetch_keys(self) -> None:
        """Read the issuer's keys (and, first, where they are); on failure keep the keys held, if any."""
        self._fetched = self._clock.now()
        try:
            jwks = await self._get(str((await self.metadata())["jwks_uri"]))
            keys = {}
            for entry in jwks.get("keys", []):
                try:
                    found = jwt.PyJWK.from_dict(entry)
                except jwt.PyJWTError:
                    continue  # a key of a kind pyjwt cannot use (or an encryption key)
                keys[entry.get("kid")] = found
        except (httpx2.HTTPError, ValueError, KeyError) as exc:
            logger.warning("could not read the keys of %s: %s", self.issuer, type(exc).__name__)
            return
        self._keys = keys

    async def metadata(self) -> dict[str, Any]:
        """The issuer's metadata: RFC 8414 first, then OpenID discovery; its issuer must match and name a
        ``jwks_uri``. `KeyError` (or an HTTP error) when neither serves it."""
        if self._metadata is None:
            for url in (
                well_known(self.issuer, "oauth-authorization-server"),
                self.issuer + "/.well-known/openid-configuration",
            ):
                try:
                    found = await self._get(url)
                except (httpx2.HTTPError, ValueError):
                    continue
                if str(found.get("issuer", "")).rstrip("/") == self.issuer and found.get("jwks_uri"):
                    self._metadata = found
                    break
            else:
                raise KeyError("jwks_uri")
        return self._metadata

    async def _get(self, url: str) -> dict[str, Any]:
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False)
        response = await self._http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    """The granted scopes: ``scope`` (space-delimited, RFC 9068) or ``scp`` (a list or a string)."""
    granted = claims.get("scope", claims.get("scp", ""))
    return granted.split() if isinstance(granted, str) else [str(s) for s in granted if isinstance(s, str)]
