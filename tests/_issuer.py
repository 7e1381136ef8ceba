"""A local OAuth 2.1 authorization server for the tests, served on loopback in a background thread.

It publishes RFC 8414 metadata (also at the OpenID discovery path), a JWKS of RSA keys and a token
endpoint (client auth by HTTP Basic or form fields) for two grants:

- client_credentials (RFC 6749 §4.4), the RFC 8707 ``resource`` parameter as the token's ``aud``;
- authorization_code with PKCE S256 (RFC 6749 §4.1, RFC 7636) and OpenID Connect ID tokens: ``/authorize``
  signs in `RunningIssuer.signed_in` (the user of "the browser") without a form and redirects to a
  registered redirect URI with a single-use code; the exchange answers an access token and an ID token.

`RunningIssuer.mint` makes tokens directly: good ones (RS256, RFC 9068 ``at+jwt``) and the bad ones a
verifier must refuse. Times come from a `Clock`'s ``wall()``, so a test can share a `VirtualClock` with the
verifier and let tokens (and codes) expire without waiting.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm, get_default_algorithms
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acp_mcp.clock import Clock, SystemClock

SCOPES_SUPPORTED = ("runs:read", "runs:write")
DEFAULT_SCOPE = " ".join(SCOPES_SUPPORTED)
OPENID_SCOPE = "openid"
"""The scope an authorization request must include (OpenID Connect Core §3.1.2.1); in the metadata too."""
TOKEN_LIFETIME = 300
"""Seconds an access token lives, by default (its ``exp`` minus its ``iat``); ID tokens live as long."""
CODE_LIFETIME = 60
"""Seconds an authorization code can be exchanged after ``/authorize`` issued it (on the issuer's clock)."""
ACCESS_TOKEN_TYPE = "at+jwt"
"""The ``typ`` header of an access token (RFC 9068 §2.1)."""
ID_TOKEN_TYPE = "JWT"
"""The ``typ`` header of an ID token."""
START_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0
METADATA_PATH = "/.well-known/oauth-authorization-server"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks"
TOKEN_PATH = "/token"
AUTHORIZE_PATH = "/authorize"
FORM_TYPE = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
"""What a PKCE code_verifier is made of (RFC 7636 §4.1)."""
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
"""An S256 code_challenge: a SHA-256 digest, base64url without padding (RFC 7636 §4.2)."""

Alg = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "HS256", "none"]
"""What `RunningIssuer.mint` signs with: RSA algorithms with the RSA key, HS256 with its public PEM, none unsigned."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Mapping[str, Any]) -> str:
    """Compact JSON, base64url encoded: one segment of a JWT."""
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def s256(code_verifier: str) -> str:
    """The S256 code_challenge of a PKCE code_verifier: base64url(SHA-256(ASCII(verifier))) (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair and its ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        """A fresh 2048-bit key, under `kid` (random if not given); in no issuer's JWKS."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid or f"key-{secrets.token_hex(4)}", key)

    @property
    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM (what the HS256 confusion token is keyed with)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK: kty RSA, n, e, kid, alg RS256, use sig."""
        return RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True) | {
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
        }


@dataclass(frozen=True)
class RegisteredClient:
    """A client of the token endpoint: its credentials, the ``sub`` its client_credentials tokens carry, its
    scopes, extra claims for those tokens, and the redirect URIs ``/authorize`` may send a code to."""

    client_id: str
    secret: str = field(repr=False)
    sub: str
    scopes: tuple[str, ...]
    claims: Mapping[str, Any]
    redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class IssuerRequest:
    """One request the issuer received: method, path, headers (lower-case names), form fields and query."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    query: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _PendingCode:
    """An authorization code not yet exchanged: what it was issued for, and when (issuer's wall clock)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    sub: str
    nonce: str | None
    scope: str
    issued_at: float


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status

    def response(self) -> JSONResponse:
        """The JSON error body, with WWW-Authenticate on a 401 (RFC 6749 §5.2)."""
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="issuer"'
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers=headers)

    def page(self) -> HTMLResponse:
        """The error as the HTML page a browser shows, never a redirect: the error code is the title."""
        body = (
            f"<!doctype html>\n<title>{escape(self.error)}</title>\n"
            f"<h1>{escape(self.error)}</h1>\n<p>{escape(self.description)}</p>\n"
        )
        return HTMLResponse(body, status_code=self.status, headers=NO_STORE)


class _Recorder:
    """ASGI middleware: records every HTTP request (its form fields too), then passes it on unchanged."""

    def __init__(self, app: ASGIApp, issuer: RunningIssuer) -> None:
        self.app, self.issuer = app, issuer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body, record the request, replay the body to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        form = _parse_form(body) if headers.get("content-type", "").split(";")[0].strip() == FORM_TYPE else {}
        query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        self.issuer._record(IssuerRequest(scope["method"], scope["path"], headers, form, query))
        replayed = False

        async def replay() -> Message:
            """The buffered body once, then whatever the server says next (a disconnect)."""
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _parse_form(body: bytes) -> dict[str, list[str]]:
    """Form fields of an application/x-www-form-urlencoded body, each with its values in order."""
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """client_id and secret from a Basic header, as sent (RFC 6749 §2.3.1 form-urlencodes them, not every
    client does: `_authenticate` tries both readings); None if not Basic."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "the Basic credentials are not base64 of id:secret", 401) from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client", "the Basic credentials have no colon", 401)
    return client_id, secret


def _single(form: Mapping[str, list[str]], name: str) -> str | None:
    """A parameter that may appear at most once (RFC 6749 §3.1, §3.2)."""
    values = form.get(name, [])
    if len(values) > 1:
        raise OAuthError("invalid_request", f"{name} is repeated")
    return values[0] if values else None


def _required(form: Mapping[str, list[str]], name: str) -> str:
    """A parameter that must appear exactly once."""
    value = _single(form, name)
    if value is None:
        raise OAuthError("invalid_request", f"{name} is missing")
    return value


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    """`uri` with `params` appended to its query (a registered redirect URI keeps its own, RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


class RunningIssuer:
    """The issuer served by `serve_issuer`: its URLs, keys, clients, minting and the requests it received."""

    def __init__(self, port: int, clock: Clock, token_lifetime: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.metadata_url = self.issuer + METADATA_PATH
        self.jwks_uri = self.issuer + JWKS_PATH
        self.token_endpoint = self.issuer + TOKEN_PATH
        self.authorization_endpoint = self.issuer + AUTHORIZE_PATH
        self.clock = clock
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._generation = 1
        self._key = SigningKey.generate(f"issuer-key-{self._generation}")
        self._published: tuple[SigningKey, ...] = (self._key,)
        self._clients: dict[str, RegisteredClient] = {}
        self._requests: list[IssuerRequest] = []
        self._codes: dict[str, _PendingCode] = {}
        self.signed_in: str | None = None
        """The ``sub`` of the user signed in at the issuer in "the browser": ``/authorize`` signs them in to
        the client without a form; None answers a 401 page instead of a redirect."""

    # Keys

    @property
    def signing_key(self) -> SigningKey:
        """The key tokens are signed with now."""
        with self._lock:
            return self._key

    @property
    def kid(self) -> str:
        """The current signing key's ``kid``."""
        return self.signing_key.kid

    @property
    def published_keys(self) -> tuple[SigningKey, ...]:
        """The keys in the JWKS, newest first."""
        with self._lock:
            return self._published

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        """Sign with a new key (new ``kid``), published first; the old ones stay in the JWKS only if `keep_old`."""
        with self._lock:
            self._generation += 1
            self._key = SigningKey.generate(f"issuer-key-{self._generation}")
            self._published = (self._key, *self._published) if keep_old else (self._key,)
            return self._key

    def jwks(self) -> dict[str, Any]:
        """The JWKS document as served."""
        return {"keys": [key.jwk() for key in self.published_keys]}

    def metadata(self) -> dict[str, Any]:
        """The metadata document as served at both discovery paths: RFC 8414 plus the fields OpenID
        Connect Discovery 1.0 requires (``subject_types_supported``, ``id_token_signing_alg_values_supported``).
        """
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "scopes_supported": [OPENID_SCOPE, *SCOPES_SUPPORTED],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    # Clients

    def register_client(
        self,
        client_id: str,
        secret: str,
        *,
        sub: str | None = None,
        scopes: Sequence[str] = SCOPES_SUPPORTED,
        claims: Mapping[str, Any] | None = None,
        redirect_uris: Sequence[str] = (),
    ) -> RegisteredClient:
        """Let a client fetch tokens: client_credentials ones carry `sub` (default: the client_id), at most
        `scopes`, and `claims`; with `redirect_uris` (compared exactly) it can use the authorization code flow."""
        if isinstance(redirect_uris, str):
            raise TypeError("redirect_uris is a sequence of URIs, not one string")
        client = RegisteredClient(
            client_id, secret, sub or client_id, tuple(scopes), dict(claims or {}), tuple(redirect_uris)
        )
        with self._lock:
            self._clients[client_id] = client
        return client

    # Requests

    @property
    def requests(self) -> tuple[IssuerRequest, ...]:
        """Every request received since the start or the last `clear_requests`, in order."""
        with self._lock:
            return tuple(self._requests)

    def count(self, path: str, method: str = "GET") -> int:
        """How many `method` requests reached `path` (``count("/jwks")`` counts JWKS fetches)."""
        return sum(1 for request in self.requests if request.path == path and request.method == method)

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def _record(self, request: IssuerRequest) -> None:
        """Append one received request (called on the server thread)."""
        with self._lock:
            self._requests.append(request)

    # Tokens

    def mint(
        self,
        *,
        aud: str | Sequence[str] | None,
        sub: str = "user-1",
        scope: str | None = DEFAULT_SCOPE,
        iss: str | None = None,
        expires_in: int | None = None,
        not_before: int = 0,
        issued_at: int = 0,
        claims: Mapping[str, Any] | None = None,
        omit: Collection[str] = (),
        alg: Alg = "RS256",
        key: SigningKey | None = None,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """A compact JWT access token; by default a good one, signed RS256 with the current key.

        Claims: ``iss`` (this issuer unless `iss`), ``sub``, ``aud`` (absent if None), ``scope`` (absent if
        None), ``iat``/``nbf``/``exp`` at now plus `issued_at`/`not_before`/`expires_in` seconds
        (`expires_in` defaults to the token lifetime; -10 makes an expired token, `not_before` 300 a
        not-yet-valid one), a random ``jti``, then `claims` on top; names in `omit` are dropped.
        Header: ``alg``, ``typ`` at+jwt, ``kid`` (the signing key's unless `kid`), then `headers` on top;
        a header set to None is dropped. Bad tokens: `alg` "none" (empty signature), "HS256" (HMAC keyed
        with the signing key's public PEM: algorithm confusion), `key` a `SigningKey.generate()` not in
        the JWKS with `kid` one that is, or `kid` one that is in no JWKS.
        """
        now = int(self.clock.wall())
        payload: dict[str, Any] = {"iss": iss or self.issuer, "sub": sub}
        if aud is not None:
            payload["aud"] = aud if isinstance(aud, str) else list(aud)
        if scope is not None:
            payload["scope"] = scope
        lifetime = self.token_lifetime if expires_in is None else expires_in
        payload |= {
            "iat": now + issued_at,
            "nbf": now + not_before,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        payload |= dict(claims or {})
        for name in omit:
            payload.pop(name, None)
        signer = key or self.signing_key
        header: dict[str, Any] = {"alg": alg, "typ": ACCESS_TOKEN_TYPE, "kid": kid or signer.kid}
        header |= dict(headers or {})
        header = {name: value for name, value in header.items() if value is not None}
        return _compact(header, payload, alg, signer)

    def _issue(self, client: RegisteredClient, scopes: Sequence[str], resources: Sequence[str]) -> str:
        """The token the token endpoint answers for `client`."""
        aud: str | list[str] | None = None
        if resources:
            aud = resources[0] if len(resources) == 1 else list(resources)
        claims = {"client_id": client.client_id, **client.claims}
        return self.mint(aud=aud, sub=client.sub, scope=" ".join(scopes), claims=claims)

    # Endpoints

    async def _metadata_endpoint(self, request: Request) -> Response:
        """GET the RFC 8414 metadata (at both discovery paths)."""
        return JSONResponse(self.metadata())

    async def _jwks_endpoint(self, request: Request) -> Response:
        """GET the JWKS."""
        return JSONResponse(self.jwks())

    async def _authorize_endpoint(self, request: Request) -> Response:
        """GET (query) or POST (form) an authorization request; a redirect with a code, or an HTML error page."""
        try:
            if request.method == "POST":
                if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
                    raise OAuthError("invalid_request", f"the body must be {FORM_TYPE}")
                params = _parse_form(await request.body())
            else:
                params = parse_qs(request.url.query, keep_blank_values=True)
            return self._authorize(params)
        except OAuthError as error:
            return error.page()

    def _authorize(self, params: Mapping[str, list[str]]) -> Response:
        """Check the request, sign in `signed_in`, issue a code and redirect to the client (RFC 6749 §4.1.2).

        Every refusal is a 400 page, never a redirect: the client and its redirect URI are checked first, so
        a page is all an unregistered URI ever gets. Then response_type code, a scope with openid, PKCE with
        S256 only; last, with nobody signed in, a 401 page (``login_required``).
        """
        client_id = _required(params, "client_id")
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_request", f"unknown client: {client_id}")
        redirect_uri = _required(params, "redirect_uri")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", f"redirect_uri is not registered for this client: {redirect_uri}")
        response_type = _required(params, "response_type")
        if response_type != "code":
            raise OAuthError("unsupported_response_type", f"{response_type} is not supported; use code")
        scope = " ".join(dict.fromkeys(_required(params, "scope").split()))
        if OPENID_SCOPE not in scope.split():
            raise OAuthError("invalid_scope", f"scope must include {OPENID_SCOPE}")
        code_challenge = _single(params, "code_challenge")
        method = _single(params, "code_challenge_method")
        if code_challenge is None:
            raise OAuthError("invalid_request", "PKCE is required: code_challenge is missing")
        if method != "S256":
            raise OAuthError("invalid_request", f"code_challenge_method must be S256, not {method or 'plain'}")
        if not S256_CHALLENGE.fullmatch(code_challenge):
            raise OAuthError("invalid_request", "code_challenge is not a base64url SHA-256 digest")
        state, nonce = _single(params, "state"), _single(params, "nonce")
        sub = self.signed_in
        if sub is None:
            raise OAuthError("login_required", "not signed in at the issuer", 401)
        code = secrets.token_urlsafe(32)
        now = self.clock.wall()
        pending = _PendingCode(client_id, redirect_uri, code_challenge, sub, nonce, scope, now)
        with self._lock:
            self._codes = {key: value for key, value in self._codes.items() if now < value.issued_at + CODE_LIFETIME}
            self._codes[code] = pending
        answer = {"code": code} if state is None else {"code": code, "state": state}
        return Response(status_code=302, headers={"Location": _with_query(redirect_uri, answer), **NO_STORE})

    async def _token_endpoint(self, request: Request) -> Response:
        """POST a client_credentials or authorization_code grant; answer tokens or an RFC 6749 §5.2 error."""
        try:
            return self._grant(request.headers, await request.body())
        except OAuthError as error:
            return error.response()

    def _grant(self, headers: Mapping[str, str], body: bytes) -> Response:
        """Check the request and the client, then the grant (RFC 6749 §4.1.3, §4.4.2)."""
        if headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
            raise OAuthError("invalid_request", f"the body must be {FORM_TYPE}")
        form = _parse_form(body)
        client = self._authenticate(headers.get("authorization"), form)
        grant_type = _required(form, "grant_type")
        if grant_type == "client_credentials":
            return self._client_credentials(client, form)
        if grant_type == "authorization_code":
            return self._authorization_code(client, form)
        raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")

    def _client_credentials(self, client: RegisteredClient, form: Mapping[str, list[str]]) -> Response:
        """Check the scope and the resources; answer the token (RFC 6749 §4.4.3, §5.1).

        ``openid`` is granted to any client that asks, as real servers tolerate it (the SDK asks for every
        scope in the metadata when the resource names none); it brings no ID token here.
        """
        requested = _single(form, "scope")
        scopes = list(dict.fromkeys(requested.split())) if requested is not None else list(client.scopes)
        beyond = [scope for scope in scopes if scope not in client.scopes and scope != OPENID_SCOPE]
        if beyond:
            raise OAuthError("invalid_scope", f"not allowed for this client: {' '.join(beyond)}")
        resources = form.get("resource", [])
        for resource in resources:
            parts = urlsplit(resource)
            if not parts.scheme or not parts.netloc or parts.fragment:
                raise OAuthError("invalid_target", f"resource must be an absolute URI without fragment: {resource}")
        body_json = {
            "access_token": self._issue(client, scopes, resources),
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(scopes),
        }
        return JSONResponse(body_json, headers=NO_STORE)

    def _authorization_code(self, client: RegisteredClient, form: Mapping[str, list[str]]) -> Response:
        """Exchange a code: answer an access token and an ID token for its user (OpenID Connect Core §3.1.3.3).

        The code is spent by the first exchange that presents it with parameters present and an
        authenticated client, whether that exchange succeeds or not; then it must be this client's,
        unexpired, for the same redirect_uri, and S256(code_verifier) must be its code_challenge.
        """
        code = _required(form, "code")
        redirect_uri = _required(form, "redirect_uri")
        code_verifier = _required(form, "code_verifier")
        with self._lock:
            pending = self._codes.pop(code, None)
        if pending is None:
            raise OAuthError("invalid_grant", "unknown or already used code")
        if pending.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if self.clock.wall() >= pending.issued_at + CODE_LIFETIME:
            raise OAuthError("invalid_grant", "the code expired")
        if redirect_uri != pending.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        if not CODE_VERIFIER.fullmatch(code_verifier) or not hmac.compare_digest(
            s256(code_verifier), pending.code_challenge
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        access_token = self.mint(
            aud=client.client_id, sub=pending.sub, scope=pending.scope, claims={"client_id": client.client_id}
        )
        id_claims: dict[str, Any] = {"auth_time": int(pending.issued_at)}
        if pending.nonce is not None:
            id_claims["nonce"] = pending.nonce
        id_token = self.mint(
            aud=client.client_id,
            sub=pending.sub,
            scope=None,
            claims=id_claims,
            omit={"nbf", "jti"},
            headers={"typ": ID_TOKEN_TYPE},
        )
        body_json = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "id_token": id_token,
            "scope": pending.scope,
        }
        return JSONResponse(body_json, headers=NO_STORE)

    def _authenticate(self, authorization: str | None, form: Mapping[str, list[str]]) -> RegisteredClient:
        """The client named by HTTP Basic or by client_id/client_secret form fields (exactly one way)."""
        basic = _basic_credentials(authorization) if authorization else None
        form_id, form_secret = _single(form, "client_id"), _single(form, "client_secret")
        if basic is not None and form_secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        if basic is not None:
            raw_id, raw_secret = basic
            candidates = [basic, (unquote_plus(raw_id), unquote_plus(raw_secret))]
            if form_id is not None and form_id not in (raw_id, candidates[1][0]):
                raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
        elif form_id is not None and form_secret is not None:
            candidates = [(form_id, form_secret)]
        else:
            raise OAuthError("invalid_client", "no client authentication", 401)
        for client_id, secret in candidates:
            with self._lock:
                client = self._clients.get(client_id)
            if client is not None and hmac.compare_digest(client.secret.encode(), secret.encode()):
                return client
        raise OAuthError("invalid_client", "unknown client or wrong secret", 401)

    def app(self) -> ASGIApp:
        """The ASGI app: the endpoints, behind the request recorder."""
        routes = [
            Route(METADATA_PATH, self._metadata_endpoint, methods=["GET"]),
            Route(OPENID_CONFIGURATION_PATH, self._metadata_endpoint, methods=["GET"]),
            Route(JWKS_PATH, self._jwks_endpoint, methods=["GET"]),
            Route(TOKEN_PATH, self._token_endpoint, methods=["POST"]),
            Route(AUTHORIZE_PATH, self._authorize_endpoint, methods=["GET", "POST"]),
        ]
        return _Recorder(Starlette(routes=routes), self)


def _compact(header: Mapping[str, Any], payload: Mapping[str, Any], alg: Alg, key: SigningKey) -> str:
    """header.payload.signature, signed by hand so that none and HS256-with-a-PEM are possible."""
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    if alg == "none":
        signature = b""
    elif alg == "HS256":
        signature = hmac.new(key.public_pem, signing_input.encode("ascii"), hashlib.sha256).digest()
    else:
        signature = get_default_algorithms()[alg].sign(signing_input.encode("ascii"), key.private_key)
    return f"{signing_input}.{b64url(signature)}"


class _Server(uvicorn.Server):
    """A uvicorn server that says when it listens, without being polled."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then signal ready."""
        await super().startup(sockets)
        self.ready.set()


def _bind_loopback() -> socket.socket:
    """A TCP socket on 127.0.0.1 at a free port (IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_issuer(*, clock: Clock | None = None, token_lifetime: int = TOKEN_LIFETIME) -> Iterator[RunningIssuer]:
    """Serve an issuer on 127.0.0.1 in a daemon thread while the block runs; times read `clock` (default: real)."""
    sock = _bind_loopback()
    issuer = RunningIssuer(sock.getsockname()[1], clock or SystemClock(), token_lifetime)
    config = uvicorn.Config(
        issuer.app(),
        ws="none",
        lifespan="off",
        log_level="warning",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        """Serve on the bound socket until told to exit."""
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:
            failure.append(exc)
        finally:
            server.ready.set()

    thread = threading.Thread(target=run, name="oauth-issuer", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(START_TIMEOUT) or not server.started:
            raise RuntimeError(f"the issuer did not start: {failure[0]!r}" if failure else "the issuer did not start")
        yield issuer
    finally:
        server.should_exit = True
        thread.join(CLOSE_TIMEOUT)
        sock.close()


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info
