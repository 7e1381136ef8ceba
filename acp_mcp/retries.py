"""What is retried, and after how long: jittered exponential backoff, and Retry-After when the API sends it."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ACPError, APIStatusError, ConnectError, RateLimitError, ServerError, TransportError
from .limits import RETRY_ATTEMPTS, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS

RETRYABLE_GET_STATUSES = frozenset({502, 503, 504})
"""5xx statuses a GET is retried on (429 is retried for every method)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff; ``Retry-After`` wins when the API sends it.

    Retries only happen while they fit in the request's deadline, which the service sets from the
    tool call's budget.
    """

    attempts: int = RETRY_ATTEMPTS
    base_delay: float = RETRY_BASE_SECONDS
    max_delay: float = RETRY_MAX_SECONDS

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based): full jitter up to an exponential cap."""
        return random.uniform(self.base_delay / 2, min(self.max_delay, self.base_delay * 2**attempt))

    def delay(self, method: str, exc: ACPError, attempt: int) -> float | None:
        """Seconds to wait before retry number `attempt` (0-based) of `method` after `exc`, or None: no retry.

        Rate limits and connections never made are retried for every method; a GET also after a
        transport failure or a 502/503/504; a POST otherwise never (it may have been taken).
        """
        if attempt + 1 >= self.attempts:
            return None
        if isinstance(exc, (RateLimitError, ConnectError)):
            retryable = True
        elif method == "GET":
            retryable = isinstance(exc, TransportError) or (
                isinstance(exc, ServerError) and exc.status in RETRYABLE_GET_STATUSES
            )
        else:
            retryable = False
        if not retryable:
            return None
        given = exc.retry_after if isinstance(exc, APIStatusError) else None
        return given if given is not None else self.backoff(attempt)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Retry-After in seconds (a number or an HTTP date, read against the epoch time `now`), if usable."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # neither seconds nor an HTTP date: ignored, the usual backoff applies
    return max(0.0, when.timestamp() - now)
