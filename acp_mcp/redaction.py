"""Keep secrets out of text: tool messages, log lines and anything echoed from upstream."""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "[REDACTED]"


class Redactor:
    """Replaces every occurrence of the registered secrets with `MASK`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret; blanks and very short strings are ignored (they would mask everything)."""
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def with_secret(self, secret: str | None) -> Redactor:
        """A new redactor masking these secrets and `secret` (one caller's key, kept out of everyone else's)."""
        return Redactor([*self._secrets, secret])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def bytes(self, data: bytes) -> bytes:
        """The same for a raw body, before it is decoded (secrets are ASCII, as JSON keeps them)."""
        for secret in self._secrets:
            encoded = secret.encode()
            if encoded in data:
                data = data.replace(encoded, MASK.encode())
        return data


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message once and redacts it."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self._redact(message)
        record.args = None
        return True
