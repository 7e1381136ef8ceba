"""Connect links: one-use, short-lived links to the connect page, each naming the principal whose key it connects.

Signed with a key derived from the key-encryption key, so every replica reads every link; a link
lasts `CONNECT_LINK_SECONDS`, and the key store remembers its nonce once used (`keystore`).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from .clock import Clock
from .limits import CONNECT_LINK_SECONDS
from .text import b64url, unb64url

CONNECT_PATH = "/connect"
_MAC_BYTES = 16


@dataclass(frozen=True)
class Link:
    """What a connect link says: whose key it connects, until when, and its one-use nonce."""

    principal: str
    expires_at: float
    nonce: str


class ConnectLinks:
    """Mints and reads connect links, signed with a key derived from the key-encryption key."""

    def __init__(self, kek: bytes, base_url: str, clock: Clock) -> None:
        self._key = hashlib.sha256(b"acp-mcp connect links\x00" + kek).digest()
        self._base_url = base_url
        self._clock = clock

    def url(self, principal: str) -> str:
        """A new link for `principal`."""
        payload = json.dumps(
            [principal, self._clock.wall() + CONNECT_LINK_SECONDS, secrets.token_urlsafe(16)], separators=(",", ":")
        ).encode()
        token = f"{b64url(payload)}.{b64url(self._mac(payload))}"
        return f"{self._base_url}{CONNECT_PATH}?link={token}"

    def read(self, token: str) -> Link | None:
        """The link `token` carries, or None when it is forged, malformed or expired."""
        encoded, _, mac = token.partition(".")
        try:
            payload = unb64url(encoded)
            if not hmac.compare_digest(unb64url(mac), self._mac(payload)):
                return None
            principal, expires_at, nonce = json.loads(payload)
        except (ValueError, binascii.Error, TypeError):
            return None
        if not isinstance(principal, str) or not isinstance(nonce, str) or self._clock.wall() > float(expires_at):
            return None
        return Link(principal, float(expires_at), nonce)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def connect_base(public_url: str) -> str:
    """The origin the connect page is served on: the public URL's."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"
