"""Task ids: a task is its run, so its id carries the run and what the starting call knew, signed.

An id is ``base64url(payload) "." base64url(mac)``: the payload a compact JSON array (the server id,
the run id, the call's outcome, HTTP status and ``maxEvents``, and the task's creation time), the mac
the first 16 bytes of HMAC-SHA256 over it, keyed by ``sha256("acp-mcp tasks" + ACP key + caller)``.
Every replica holding the same key answers every task, a restart loses nothing, and an id is
worthless to another caller or key: a forged, altered or foreign id reads as None ("not found").
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import get_args

from .limits import MAX_TASK_ID_CHARS
from .results import Outcome
from .text import b64url, unb64url

_ID_VERSION = 1
_MAC_BYTES = 16
_OUTCOMES = frozenset(get_args(Outcome))


@dataclass(frozen=True)
class TaskRef:
    """What a task id says: the run, how the call that started it labelled it, and when the task began."""

    server_id: str
    run_id: str
    outcome: Outcome
    http_status: int | None
    max_events: int
    created_ms: int


class TaskIds:
    """Mints one caller's task ids and reads them back, refusing any not signed for this key and caller."""

    def __init__(self, api_key: str | None, caller: str = "") -> None:
        # without a key no run can start, so no task is minted; a random key keeps the ids unforgeable anyway
        secret = (api_key or "").encode() or secrets.token_bytes(32)
        bound = b"\x00" + caller.encode() if caller else b""
        self._key = hashlib.sha256(b"acp-mcp tasks" + secret + bound).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def mint(self, ref: TaskRef) -> str:
        """The task id for `ref`."""
        fields = [_ID_VERSION, ref.server_id, ref.run_id, ref.outcome, ref.http_status, ref.max_events, ref.created_ms]
        payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
        return f"{b64url(payload)}.{b64url(self._mac(payload))}"

    def read(self, task_id: str) -> TaskRef | None:
        """The reference `task_id` carries, or None when it is malformed or not signed with this key."""
        if len(task_id) > MAX_TASK_ID_CHARS or task_id.count(".") != 1:
            return None
        encoded, mac = task_id.split(".")
        try:
            payload, given = unb64url(encoded), unb64url(mac)
        except (ValueError, binascii.Error):
            return None
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        try:
            version, server_id, run_id, outcome, http_status, max_events, created_ms = json.loads(payload)
        except ValueError:
            return None
        if version != _ID_VERSION or outcome not in _OUTCOMES or type(max_events) is not int:
            return None
        return TaskRef(server_id, run_id, outcome, http_status, max_events, created_ms)
