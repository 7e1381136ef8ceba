"""Who is calling, which ACP key they act with, and the parts that are theirs alone.

A `Caller` is a principal (an OAuth token's issuer and subject, a key sent in the caller-key header,
or, on stdio and single-user HTTP, the process itself) and the ACP key it acts with. The transport
decides the caller of each request (`http_server`) and sets `current_caller`; everything below asks
`Callers.current()` for that caller's `CallerRuns`: its own API client (and connection pool), run
service (and repeated-start window) and task ids. Nothing is shared between callers: a run id or a
task id of one caller is useless to another. At most `MAX_CALLERS` are kept; the least recent is
closed first.

Keys come, in this order, from the keys file (a subject's entry, then a claim's), the key the user
connected on the connect page (`keystore`), the caller-key header (when allowed), then the server's
own key (single-user, or when the operator allows it).
No key and no header value is ever logged or shown: callers are named by a short hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pydantic import SecretStr

from .client import ACPClient
from .clock import Clock
from .config import ConfigError, Settings
from .keystore import KeyStore
from .limits import CONNECTED_KEY_SECONDS, KEYS_FILE_CHECK_SECONDS, MAX_CALLERS
from .redaction import Redactor
from .service import RunService
from .task_ids import TaskIds
from .telemetry import Telemetry
from .waiting import PollPolicy

logger = logging.getLogger(__name__)

KEYS_FILE_SHAPE = 'expected {"subjects": {sub: key}, "claims": {claim: {value: key}}}, every key and value text'
PROCESS = "process"
"""The principal of stdio and single-user HTTP: whoever started the server."""


def oauth_principal(issuer: str, subject: str | None) -> str:
    """The principal of a user signed in at `issuer`: one spelling, whether it comes from an access token (the
    gate) or an ID token (the connect page's sign-in), so a key connected by one is found by the other."""
    return f"oauth {issuer.rstrip('/')} {subject}"


def oauth_user(principal: str) -> tuple[str, str]:
    """The (issuer, subject) an `oauth_principal` names."""
    _, issuer, subject = principal.split(" ", 2)
    return issuer, subject


def fingerprint(text: str) -> str:
    """A short, stable, one-way name for a principal or key, fit for logs and maps."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Caller:
    """One request's principal and the ACP key it acts with (None: no key for it here)."""

    principal: str
    key: SecretStr | None
    scopes: frozenset[str] | None = None
    """The OAuth scopes granted; None when callers are not authenticated by OAuth (everything allowed)."""
    connect_url: str | None = None
    """Where a caller without a key connects one (a one-use link), when the connect page is on."""

    @property
    def identity(self) -> str:
        """The caller's short name: binds task ids, watches and the client pool; safe to log."""
        return fingerprint(self.principal)


current_caller: ContextVar[Caller | None] = ContextVar("acp_mcp_caller", default=None)
"""The caller of the request being served; unset on stdio (the process's own caller)."""


@dataclass
class CallerRuns:
    """What one caller owns: its API client, run service and task ids."""

    caller: Caller
    client: ACPClient
    service: RunService
    task_ids: TaskIds


@dataclass(frozen=True)
class KeysFile:
    """The operator's map from principals to ACP keys: ``subjects`` (``sub`` → key) and ``claims``
    (claim name → claim value → key, for a team or group key). A subject's entry wins over a claim's."""

    subjects: Mapping[str, str] = field(default_factory=dict)
    claims: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> KeysFile:
        """The file at `path` (TOML by its ``.toml`` suffix, else JSON); `ConfigError` in one line if malformed."""
        try:
            text = path.read_text(encoding="utf-8")
            data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"ACP_MCP_KEYS_FILE {path}: {exc}") from None
        subjects = data.get("subjects", {}) if isinstance(data, dict) else None
        claims = data.get("claims", {}) if isinstance(data, dict) else None
        if not isinstance(subjects, dict) or not _strings(subjects) or not isinstance(claims, dict):
            raise ConfigError(f"ACP_MCP_KEYS_FILE {path}: {KEYS_FILE_SHAPE}")
        if not all(map(_strings, claims.values())):
            raise ConfigError(f"ACP_MCP_KEYS_FILE {path}: {KEYS_FILE_SHAPE}")
        return cls(subjects, claims)

    def key_for(self, subject: str | None, claims: Mapping[str, Any]) -> str | None:
        """The key of `subject`, else of the first claim value mapped (a list claim, e.g. groups, in order)."""
        if subject is not None and subject in self.subjects:
            return self.subjects[subject]
        for name, keys in self.claims.items():
            values = claims.get(name)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and value in keys:
                    return keys[value]
        return None

    def all_keys(self) -> list[str]:
        """Every key in the file."""
        return [*self.subjects.values(), *(key for keys in self.claims.values() for key in keys.values())]


def _strings(table: Any) -> bool:
    return isinstance(table, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in table.items())


class KeysFileWatch:
    """The keys file, reread when it changes (a mounted Kubernetes Secret is replaced in place).

    A file that breaks after start-up keeps the last good map, with a warning in the log.
    """

    def __init__(self, path: Path, clock: Clock, redact: Redactor) -> None:
        self.path = path
        self._clock = clock
        self._redact = redact
        self._stamp = self._stat()
        self.current = KeysFile.read(path)
        self._checked = clock.now()
        for key in self.current.all_keys():
            redact.add(key)

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def get(self) -> KeysFile:
        """The map, reread first if the file changed (checked at most every `KEYS_FILE_CHECK_SECONDS`)."""
        now = self._clock.now()
        if now - self._checked >= KEYS_FILE_CHECK_SECONDS:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self.current = KeysFile.read(self.path)
                except ConfigError as exc:
                    logger.warning("keeping the last keys file: %s", exc)
                else:
                    logger.warning("reread the keys file %s", self.path)
                    for key in self.current.all_keys():
                        self._redact.add(key)
        return self.current


class Callers:
    """Each caller's `CallerRuns`, made on a caller's first request; the default caller's when none is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        redact: Redactor,
        policy: PollPolicy,
        stop_waits: anyio.Event,
        keys_file: KeysFileWatch | None,
        store: KeyStore | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.clock = clock
        self.redact = redact
        self.policy = policy
        self.stop_waits = stop_waits
        self.keys_file = keys_file
        self.store = store
        self._connected: dict[str, tuple[str, float]] = {}  # principal -> (key, read at), briefly
        self.default = Caller(PROCESS, settings.api_key if settings.shared_key_allowed else None)
        self._runs: OrderedDict[tuple[str, str], CallerRuns] = OrderedDict()
        self._group: TaskGroup | None = None

    def start(self, group: TaskGroup) -> None:
        """Close evicted callers' connection pools in `group` (the server's lifespan)."""
        self._group = group

    async def aclose(self) -> None:
        """Close every caller's connection pool (they reopen if the server runs again)."""
        for runs in self._runs.values():
            await runs.client.aclose()

    async def key_for(
        self, principal: str, subject: str | None, claims: Mapping[str, Any], sent: str | None
    ) -> SecretStr | None:
        """The ACP key of a caller: the keys file's, else the one it connected, else the key it sent (if allowed),
        else the shared one."""
        mapped = self.keys_file.get().key_for(subject, claims) if self.keys_file is not None else None
        if mapped is not None:
            return SecretStr(mapped)
        connected = await self._connected_key(principal)
        if connected is not None:
            return SecretStr(connected)
        if sent and self.settings.caller_keys:
            return SecretStr(sent)
        return self.settings.api_key if self.settings.shared_key_allowed else None

    async def _connected_key(self, principal: str) -> str | None:
        """The key `principal` connected, if the store is on (reused for `CONNECTED_KEY_SECONDS`)."""
        if self.store is None:
            return None
        now = self.clock.now()
        held = self._connected.get(principal)
        if held is not None and now - held[1] < CONNECTED_KEY_SECONDS:
            return held[0]
        key = await self.store.get(principal)
        if key is None:
            self._connected.pop(principal, None)
            return None
        self._connected[principal] = (key, now)
        while len(self._connected) > MAX_CALLERS:
            self._connected.pop(next(iter(self._connected)))
        return key

    def forget(self, principal: str) -> None:
        """Read `principal`'s connected key from the store again on its next request (it just changed)."""
        self._connected.pop(principal, None)

    def caller(self) -> Caller:
        """The request's caller (`current_caller`), or the process's own caller."""
        return current_caller.get() or self.default

    def current(self) -> CallerRuns:
        """The runs of the request's caller."""
        return self.of(self.caller())

    def of(self, caller: Caller) -> CallerRuns:
        """`caller`'s runs, made on first use; the least recent caller beyond `MAX_CALLERS` is closed."""
        key = caller.key.get_secret_value() if caller.key is not None else ""
        slot = (caller.identity, fingerprint(key))
        runs = self._runs.get(slot)
        if runs is not None:
            self._runs.move_to_end(slot)
            return runs
        runs = self._make(caller, key)
        self._runs[slot] = runs
        while len(self._runs) > MAX_CALLERS:
            _, evicted = self._runs.popitem(last=False)
            self._retire(evicted)
        return runs

    def _make(self, caller: Caller, key: str) -> CallerRuns:
        settings = self.settings if caller.key == self.settings.api_key else replace(self.settings, api_key=caller.key)
        # the caller's key is masked in what its own client reads and says, never in other callers' answers
        client = ACPClient(settings, redact=self.redact.with_secret(key), clock=self.clock, telemetry=self.telemetry)
        service = RunService(
            client, settings, self.policy, self.clock, stop_waits=self.stop_waits, telemetry=self.telemetry
        )
        bound = "" if caller.principal == PROCESS else caller.identity
        return CallerRuns(caller, client, service, TaskIds(key or None, bound))

    def _retire(self, runs: CallerRuns) -> None:
        logger.info(
            "closing the API client of caller %s (least recent) once its requests are done", runs.caller.identity
        )
        if self._group is not None:
            self._group.start_soon(runs.client.aclose_when_idle)
