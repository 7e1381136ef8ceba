"""Signed tokens for the connect page: one-use links naming whose key they connect, sign-in state, sessions.

Every token is a short JSON list and its expiry, signed (HMAC-SHA256, 16 bytes) for one purpose with a
key derived from the key-encryption key (HKDF), so every replica reads what any replica signed and a
token made for one purpose (a link) is nothing for another (a session). A link lasts
`CONNECT_LINK_SECONDS`; the key store remembers its nonce once used (`keystore`).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .clock import Clock
from .limits import CONNECT_LINK_SECONDS
from .text import b64url, unb64url

CONNECT_PATH = "/connect"
_MAC_BYTES = 16


class Signer:
    """Signs and reads short-lived tokens, each for one purpose."""

    def __init__(self, kek: bytes, clock: Clock) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"acp-mcp connect page").derive(kek)
        self._clock = clock

    def sign(self, purpose: str, values: list[Any], ttl: float) -> str:
        """A token carrying `values` for `purpose`, good for `ttl` seconds."""
        payload = json.dumps([*values, self._clock.wall() + ttl], separators=(",", ":")).encode()
        return f"{b64url(payload)}.{b64url(self._mac(purpose, payload))}"

    def read(self, purpose: str, token: str) -> list[Any] | None:
        """The values a token signed for `purpose` carries (its expiry last), or None: forged, altered, expired."""
        encoded, _, mac = token.partition(".")
        try:
            payload = unb64url(encoded)
            if not hmac.compare_digest(unb64url(mac), self._mac(purpose, payload)):
                return None
            values = json.loads(payload)
        except (ValueError, binascii.Error):
            return None
        if not isinstance(values, list) or not values or not isinstance(values[-1], int | float):
            return None
        return values if self._clock.wall() <= values[-1] else None

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


@dataclass(frozen=True)
class Link:
    """What a connect link says: whose key it connects, until when, and its one-use nonce."""

    principal: str
    expires_at: float
    nonce: str


class ConnectLinks:
    """Mints and reads connect links: `base_url` + `CONNECT_PATH` + ``?link=<token>``."""

    def __init__(self, signer: Signer, base_url: str) -> None:
        self._signer = signer
        self.base_url = base_url

    def url(self, principal: str) -> str:
        """A new link for `principal`."""
        token = self._signer.sign("link", [principal, secrets.token_urlsafe(16)], CONNECT_LINK_SECONDS)
        return f"{self.base_url}{CONNECT_PATH}?link={token}"

    def read(self, token: str) -> Link | None:
        """The link `token` carries, or None when it is forged, malformed or expired."""
        values = self._signer.read("link", token)
        if values is None or len(values) != 3 or not all(isinstance(value, str) for value in values[:2]):
            return None
        principal, nonce, expires_at = values
        return Link(principal, float(expires_at), nonce)


def connect_base(public_url: str) -> str:
    """The origin the connect page is served on: the public URL's."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"
