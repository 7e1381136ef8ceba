"""Who is at the connect page: the browser signs in at the issuer before a key is taken.

A connect link names whose key it connects, but whoever holds it is not necessarily that person (a
link can be forwarded, or read from a log). So the page signs the browser in at the same issuer
(authorization code with PKCE, as the client ``ACP_MCP_CONNECT_CLIENT_ID`` registered there with the
redirect URI ``<public origin>/connect/callback``), checks the ID token (signature, issuer, audience
= that client, nonce) and accepts a key only when the signed-in user is the link's user. The sign-in
lasts `SIGNIN_SECONDS` in an HttpOnly, SameSite=Lax cookie signed like the links; the PKCE verifier
waits in another, for one sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx2
from starlette.datastructures import Headers
from starlette.types import Send

from .callers import oauth_principal
from .clock import Clock
from .config import Settings
from .limits import CONNECT_LINK_SECONDS, SIGNIN_SECONDS
from .links import CONNECT_PATH, Signer
from .oauth import JWTVerifier

logger = logging.getLogger(__name__)

CALLBACK_PATH = CONNECT_PATH + "/callback"
SESSION_COOKIE = "acp_mcp_signin"
PKCE_COOKIE = "acp_mcp_pkce"


class SignIn:
    """The connect page's sign-in at the issuer, and the principal a browser is signed in as."""

    def __init__(self, settings: Settings, signer: Signer, base_url: str, clock: Clock) -> None:
        assert settings.oauth_issuer is not None and settings.connect_client_id is not None
        self._signer = signer
        self._client_id = settings.connect_client_id
        secret = settings.connect_client_secret
        self._secret = secret.get_secret_value() if secret is not None else ""
        self._redirect_uri = base_url + CALLBACK_PATH
        self._secure = base_url.startswith("https://")
        self._timeout = settings.request_timeout
        self.ids = JWTVerifier(settings.oauth_issuer, self._client_id, clock=clock, timeout=settings.request_timeout)

    async def aclose(self) -> None:
        await self.ids.aclose()

    def principal(self, headers: Headers) -> str | None:
        """The principal the browser is signed in as (the same spelling the gate gives callers), or None."""
        values = self._signer.read("session", _cookie(headers, SESSION_COOKIE))
        return values[0] if values is not None and isinstance(values[0], str) else None

    async def start(self, send: Send, link_token: str) -> None:
        """Send the browser to the issuer to sign in, coming back to the link afterwards."""
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = self._signer.sign("state", [link_token, nonce], CONNECT_LINK_SECONDS)
        authorize = str((await self.ids.metadata())["authorization_endpoint"])
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": self._redirect_uri,
                "scope": "openid",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        pkce = self._signer.sign("pkce", [verifier, nonce], CONNECT_LINK_SECONDS)
        await _redirect(send, f"{authorize}?{query}", [self._cookie(PKCE_COOKIE, pkce, CONNECT_LINK_SECONDS)])

    async def finish(self, send: Send, headers: Headers, query: dict[str, list[str]]) -> str | None:
        """Back from the issuer: on success the browser is signed in and sent back to its link (the link's token
        is returned); on failure nothing is set and None is returned for the page to say so."""
        state = self._signer.read("state", query.get("state", [""])[0])
        pkce = self._signer.read("pkce", _cookie(headers, PKCE_COOKIE))
        code = query.get("code", [""])[0]
        if state is None or pkce is None or not code or state[1] != pkce[1]:
            return None
        link_token, nonce, _ = state
        principal = await self._exchange(code, str(pkce[0]), str(nonce))
        if principal is None:
            return None
        session = self._signer.sign("session", [principal], SIGNIN_SECONDS)
        cookies = [self._cookie(SESSION_COOKIE, session, SIGNIN_SECONDS), self._cookie(PKCE_COOKIE, "", 0)]
        back = f"{CONNECT_PATH}?{urlencode({'link': link_token})}" if link_token else CONNECT_PATH
        await _redirect(send, back, cookies)
        return str(link_token)

    async def _exchange(self, code: str, verifier: str, nonce: str) -> str | None:
        """The principal of the user the issuer signed in, from the ID token the code is exchanged for."""
        try:
            token_endpoint = str((await self.ids.metadata())["token_endpoint"])
            async with httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                answer = await http.post(
                    token_endpoint,
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": self._redirect_uri,
                        "code_verifier": verifier,
                    },
                    auth=(self._client_id, self._secret),
                )
            id_token = answer.json().get("id_token") if answer.status_code == 200 else None
        except (httpx2.HTTPError, ValueError, KeyError) as exc:
            logger.warning("signing in at the issuer failed: %s", type(exc).__name__)
            return None
        grant = await self.ids.verify_token(id_token) if isinstance(id_token, str) else None
        if grant is None or (grant.claims or {}).get("nonce") != nonce:
            logger.warning("the issuer's ID token was refused")
            return None
        return oauth_principal(self.ids.issuer, grant.subject)

    def _cookie(self, name: str, value: str, max_age: float) -> tuple[bytes, bytes]:
        secure = "; Secure" if self._secure else ""
        text = f"{name}={value}; Path={CONNECT_PATH}; Max-Age={int(max_age)}; HttpOnly; SameSite=Lax{secure}"
        return (b"set-cookie", text.encode())


def _cookie(headers: Headers, name: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header reads as no cookie
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


async def _redirect(send: Send, location: str, cookies: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"location", location.encode()), (b"cache-control", b"no-store"), *cookies]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
