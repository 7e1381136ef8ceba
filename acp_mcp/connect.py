"""The connect page: where a signed-in user pastes their ACP key once, out of reach of the model and the client.

A caller without a key gets a link (by URL-mode elicitation, or in the tool error) to ``/connect?link=…``.
The link is signed with a key derived from the key-encryption key (so every replica reads it), names
the caller's principal, lasts `CONNECT_LINK_SECONDS` and works once. Holding the link is not enough:
the browser signs in at the issuer first (`signin`), and only the link's own user gets the form, which
says whose key it connects. The page checks the key with one cheap ACP request (``GET /servers?limit=1``)
before it seals and stores it; it can also disconnect.
It loads nothing from anywhere (no script, font or image; a strict Content-Security-Policy), cannot be
framed, and is never cached. The key never appears in a page, a log or an error.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import parse_qs

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from .callers import oauth_user
from .client import ACPClient
from .clock import Clock
from .config import Settings
from .errors import ACPError, AuthenticationError, PermissionDeniedError
from .keystore import KeyStore, StoreUnavailableError
from .limits import CONNECT_FORM_BYTES
from .links import CONNECT_PATH, ConnectLinks, Link
from .redaction import Redactor
from .signin import CALLBACK_PATH, SignIn

logger = logging.getLogger(__name__)

_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make a form POST send "Origin: null"
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


class ConnectPage:
    """The ASGI page at `CONNECT_PATH`: GET shows the form for a valid link, POST connects or disconnects."""

    def __init__(
        self,
        settings: Settings,
        links: ConnectLinks,
        store: KeyStore,
        *,
        clock: Clock,
        redact: Redactor,
        changed: Callable[[str], None],
        signin: SignIn,
    ) -> None:
        self._changed = changed
        self._signin = signin
        self._settings = settings
        self._links = links
        self._store = store
        self._clock = clock
        self._redact = redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        except StoreUnavailableError:
            await _page(send, 503, "<h1>Try again in a moment</h1><p>This server cannot reach its key store.</p>")

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        query = parse_qs(scope.get("query_string", b"").decode())
        if scope["path"] == CALLBACK_PATH:
            if await self._signin.finish(send, headers, query) is None:
                await _page(send, 400, SIGNIN_FAILED)
            return
        if scope["method"] == "GET" and "link" not in query:
            await self._own(send, headers)
            return
        if scope["method"] == "GET":
            token = query.get("link", [""])[0]
            link = self._links.read(token)
            if link is None:
                await _page(send, 400, EXPIRED)
            elif (signed_in := self._signin.principal(headers)) is None:
                await self._signin.start(send, token)
            elif signed_in != link.principal:
                await _page(send, 403, OTHER_ACCOUNT)
            else:
                await _page(send, 200, _form(token, link.principal))
            return
        if scope["method"] != "POST":
            await _page(send, 405, "<p>Use the form.</p>")
            return
        form = await _form_fields(receive)
        token = form.get("link", "")
        link = self._links.read(token)
        if link is None:
            await _page(send, 400, EXPIRED)
        elif self._signin.principal(headers) != link.principal:
            await _page(send, 403, OTHER_ACCOUNT)
        elif form.get("action") == "disconnect":
            await self._disconnect(send, link)
        else:
            await self._connect(send, link, token, form.get("key", "").strip())

    async def _own(self, send: Send, headers: Headers) -> None:
        """``/connect`` without a link: a user signed in at the issuer manages their own key (replace or
        disconnect it) at any time, with a fresh link made for them."""
        principal = self._signin.principal(headers)
        if principal is None:
            await self._signin.start(send, "")
            return
        token = self._links.url(principal).split("link=", 1)[1]
        await _page(send, 200, _form(token, principal))

    async def _connect(self, send: Send, link: Link, token: str, key: str) -> None:
        if await self._store.link_used(link.nonce):  # before the key is sent anywhere
            await _page(send, 400, USED)
            return
        problem = await self._check(key) if key else "Paste your Computer Agents API key first."
        if problem is not None:
            await _page(send, 400, f"<p class=problem>{html.escape(problem)}</p>{_form(token, link.principal)}")
            return
        if not await self._store.use_link(link.nonce, link.expires_at, self._clock.wall()):
            await _page(send, 400, USED)
            return
        await self._store.put(link.principal, key)
        self._changed(link.principal)
        logger.warning("a user connected their ACP key")
        again = self._links.url(link.principal).split("link=", 1)[1]
        await _page(
            send,
            200,
            "<h1>Connected</h1><p>Your key is saved. Go back to your MCP client and call again.</p>"
            f"<p>Changed your mind? For the next few minutes you can still take it back here.</p>{_disconnect(again)}",
        )

    async def _disconnect(self, send: Send, link: Link) -> None:
        if not await self._store.use_link(link.nonce, link.expires_at, self._clock.wall()):
            await _page(send, 400, USED)
            return
        await self._store.delete(link.principal)
        self._changed(link.principal)
        logger.warning("a user disconnected their ACP key")
        await _page(send, 200, "<h1>Disconnected</h1><p>Your key is no longer kept by this server.</p>")

    async def _check(self, key: str) -> str | None:
        """Why `key` cannot be used (in words for the page), or None when one cheap ACP request accepts it."""
        settings = replace(self._settings, api_key=SecretStr(key))
        client = ACPClient(settings, redact=self._redact.with_secret(key), clock=self._clock)
        try:
            await client.list_servers(1, deadline=self._clock.now() + self._settings.request_timeout)
        except (AuthenticationError, PermissionDeniedError):
            return "The Computer Agents API refused this key. Check it and paste it again."
        except ACPError as exc:
            logger.warning("checking a key to connect failed: %s", type(exc).__name__)
            return "The key could not be checked right now (the API did not answer). Try again in a moment."
        finally:
            await client.aclose()
        return None


EXPIRED = (
    "<h1>This link has expired</h1><p>Connect links work once, for a few minutes. Call a tool again in your MCP "
    "client to get a new one.</p>"
)
USED = "<h1>This link was already used</h1><p>Call a tool again in your MCP client to get a new one.</p>"
OTHER_ACCOUNT = (
    "<h1>This link is for another account</h1><p>You are signed in as someone else than the user this link was "
    "made for. Connect links work only for their own user: ask your MCP client for a link of your own.</p>"
)
SIGNIN_FAILED = "<h1>Signing in did not work</h1><p>Open the link from your MCP client again to sign in once more.</p>"


def _form(token: str, principal: str) -> str:
    link = html.escape(token, quote=True)
    issuer, subject = oauth_user(principal)
    return f"""<h1>Connect your Computer Agents API key</h1>
<p class=account>For <strong>{html.escape(subject)}</strong>, signed in at {html.escape(issuer)}.</p>
<p>acp-mcp acts on your runs with your own key. It is checked with the API, then kept encrypted by this
server; your MCP client and its model never see it.</p>
<form method="post" action="{CONNECT_PATH}">
<input type="hidden" name="link" value="{link}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus placeholder="tb_...">
<button type="submit" name="action" value="connect">Connect</button>
</form>
{_disconnect(token)}"""


def _disconnect(token: str) -> str:
    return f"""<form method="post" action="{CONNECT_PATH}">
<input type="hidden" name="link" value="{html.escape(token, quote=True)}">
<button type="submit" name="action" value="disconnect">Disconnect my key</button>
</form>"""


async def _page(send: Send, status: int, body: str) -> None:
    document = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>acp-mcp: connect your key</title>
<style>body{{font:16px system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}}
input,button{{font:inherit;padding:.4rem;margin:.3rem 0}}input[type=password]{{width:100%}}
.problem{{color:#a00}}@media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}}}</style></head>
<body>{body}</body></html>""".encode()
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": document})


async def _form_fields(receive: Receive) -> dict[str, str]:
    """The fields of a urlencoded form body (at most `CONNECT_FORM_BYTES`; the rest is ignored)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > CONNECT_FORM_BYTES or not message.get("more_body", False):
            break
    fields = parse_qs(body[:CONNECT_FORM_BYTES].decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}
