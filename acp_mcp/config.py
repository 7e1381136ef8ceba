"""Settings: one frozen object, read once from the environment, then overridden by CLI flags.

The platform key and base URL follow the official SDKs' variables (``COMPUTER_AGENTS_*``);
this server's own settings live under ``ACP_MCP_*``. The key is never a CLI flag: command
lines end up in shell history, process lists and client config files shown on screen.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import SecretStr

from .limits import (
    DEFAULT_CALLER_BURST,
    DEFAULT_CALLER_RATE,
    DEFAULT_DRAIN_DELAY_SECONDS,
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_HOST,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_MAX_WAITS,
    DEFAULT_PORT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SESSION_IDLE_SECONDS,
    DEFAULT_WAIT_SECONDS,
    DEFAULT_WRITE_TIMEOUT,
    MAX_WAIT_SECONDS,
)

DEFAULT_BASE_URL = "https://api.computer-agents.com"

KEY_VARIABLES = ("COMPUTER_AGENTS_API_KEY", "TESTBASE_API_KEY")
BASE_URL_VARIABLES = ("COMPUTER_AGENTS_BASE_URL", "COMPUTER_AGENTS_API_URL")
HTTP_TOKEN_VARIABLE = "ACP_MCP_HTTP_TOKEN"
KEK_VARIABLE = "ACP_MCP_KEY_ENCRYPTION_KEY"
CONNECT_SECRET_VARIABLE = "ACP_MCP_CONNECT_CLIENT_SECRET"
DEFAULT_KEY_STORE = "acp-mcp-keys.sqlite"
CALLER_KEY_HEADER = "X-Computer-Agents-Key"
ORGANIZATION_HEADER = "X-Computer-Agents-Organization"
"""The official SDK's header for organization-scoped keys, sent with every request when ``organization_id`` is set."""


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    """How one field of `Settings` is read: its environment variable, flag help and parser."""

    env: str
    flag: str
    help: str
    parse: Any = str


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {text!r}")


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _level(text: str) -> LogLevel:
    level = text.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {text!r}")
    return cast(LogLevel, level)


LogFormat = Literal["text", "json"]


def _log_format(text: str) -> LogFormat:
    value = text.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError(f"expected text or json, got {text!r}")
    return cast(LogFormat, value)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= MAX_WAIT_SECONDS:
        raise ValueError(f"expected a number of seconds from 0 to {MAX_WAIT_SECONDS:g}, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {text!r}")
    return value


def _optional(text: str) -> str | None:
    return text.strip() or None


def _organization(text: str) -> str | None:
    value = text.strip()
    if value and not all(char.isprintable() and not char.isspace() for char in value):
        raise ValueError(f"expected an organization id without spaces or control characters, got {text!r}")
    return value or None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a port from 0 to 65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def _transport(text: str) -> Transport:
    value = text.strip().lower()
    if value not in {"stdio", "streamable-http"}:
        raise ValueError(f"expected stdio or streamable-http, got {text!r}")
    return cast(Transport, value)


def _url(text: str) -> str | None:
    url = text.strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"expected an http(s) URL without a query or fragment, got {text!r}")
    return url


def _rate(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"expected 0 (no limit) or a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a whole number from 1, got {text!r}")
    return value


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _setting(default: Any, env: str, flag: str, help: str, parse: Any) -> Any:
    """A `Settings` field read from `env` and the CLI `flag`."""
    return field(default=default, metadata={"setting": Setting(env, flag, help, parse)})


Transport = Literal["stdio", "streamable-http"]


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, resolved once at start-up."""

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL + "/v1"
    http_token: SecretStr | None = None
    key_encryption_key: SecretStr | None = None
    """Seals the keys users connect (`keystore`); with OAuth, it turns the connect page on. Environment only."""
    connect_client_secret: SecretStr | None = None
    """The connect page's client secret at the issuer (for signing users in). Environment only."""
    request_timeout: float = _setting(
        DEFAULT_REQUEST_TIMEOUT,
        "ACP_MCP_REQUEST_TIMEOUT",
        "--request-timeout",
        "seconds per HTTP request to the API",
        _positive_seconds,
    )
    wait_seconds: float = _setting(
        DEFAULT_WAIT_SECONDS,
        "ACP_MCP_WAIT_SECONDS",
        "--wait-seconds",
        "default wait for a run to finish (0 = don't wait)",
        _seconds,
    )
    default_server_id: str | None = _setting(
        None, "ACP_SERVER_ID", "--server-id", "server (resource) id used when a tool call omits serverId", _optional
    )
    organization_id: str | None = _setting(
        None,
        "COMPUTER_AGENTS_ORGANIZATION_ID",
        "--organization-id",
        "organization sent as X-Computer-Agents-Organization, for organization-scoped keys",
        _organization,
    )
    read_only: bool = _setting(
        False, "ACP_MCP_READ_ONLY", "--read-only", "offer only the read-only tools (get, list)", parse_bool
    )
    resource_links: bool = _setting(
        False,
        "ACP_MCP_RESOURCE_LINKS",
        "--resource-links",
        "add a resource_link to the full run in every run result (for clients that attach resources)",
        parse_bool,
    )
    log_level: LogLevel = _setting(
        "WARNING", "ACP_MCP_LOG_LEVEL", "--log-level", "log level on stderr (DEBUG, INFO, WARNING, ERROR)", _level
    )
    log_format: LogFormat = _setting(
        "text",
        "ACP_MCP_LOG_FORMAT",
        "--log-format",
        "log lines on stderr as text, or json: one object per line, with the trace and span ids inside a span",
        _log_format,
    )
    trace_content: bool = _setting(
        False,
        "ACP_MCP_TRACE_CONTENT",
        "--trace-content",
        "with OpenTelemetry: put each tool call's arguments and result (redacted) on its span",
        parse_bool,
    )
    metrics: bool = _setting(
        False,
        "ACP_MCP_METRICS",
        "--metrics",
        "streamable HTTP, with the otel extra: serve the metrics as Prometheus text at GET /metrics (no caller token)",
        parse_bool,
    )
    transport: Transport = _setting("stdio", "ACP_MCP_TRANSPORT", "--transport", "stdio or streamable-http", _transport)
    host: str = _setting(DEFAULT_HOST, "ACP_MCP_HOST", "--host", "streamable HTTP: address to listen on", str)
    port: int = _setting(DEFAULT_PORT, "ACP_MCP_PORT", "--port", "streamable HTTP: port to listen on", _port)
    stateless: bool = _setting(
        False, "ACP_MCP_STATELESS", "--stateless", "streamable HTTP: no MCP sessions (for replicas)", parse_bool
    )
    drain_seconds: float = _setting(
        DEFAULT_DRAIN_SECONDS,
        "ACP_MCP_DRAIN_SECONDS",
        "--drain-seconds",
        "streamable HTTP: on SIGTERM, how long calls in flight may take to end before the process exits",
        _seconds,
    )
    read_timeout: float = _setting(
        DEFAULT_READ_TIMEOUT,
        "ACP_MCP_READ_TIMEOUT",
        "--read-timeout",
        "streamable HTTP: seconds a request's headers and body may take to arrive before its connection is closed",
        _positive_seconds,
    )
    write_timeout: float = _setting(
        DEFAULT_WRITE_TIMEOUT,
        "ACP_MCP_WRITE_TIMEOUT",
        "--write-timeout",
        "streamable HTTP: seconds a client may leave its response unread before its connection is dropped",
        _positive_seconds,
    )
    max_connections: int | None = _setting(
        None,
        "ACP_MCP_MAX_CONNECTIONS",
        "--max-connections",
        "streamable HTTP: connections accepted at once (default: the file limit less 256, at most 10,000)",
        _count,
    )
    drain_delay_seconds: float = _setting(
        DEFAULT_DRAIN_DELAY_SECONDS,
        "ACP_MCP_DRAIN_DELAY_SECONDS",
        "--drain-delay-seconds",
        "streamable HTTP: on SIGTERM, how long to go on serving (not ready) before draining, for balancers to notice",
        _seconds,
    )
    max_waits: int = _setting(
        DEFAULT_MAX_WAITS,
        "ACP_MCP_MAX_WAITS",
        "--max-waits",
        "calls that may wait on runs at once; more are answered 'busy, retry' at once",
        _count,
    )
    max_sessions: int = _setting(
        DEFAULT_MAX_SESSIONS,
        "ACP_MCP_MAX_SESSIONS",
        "--max-sessions",
        "streamable HTTP: MCP sessions open at once; a new one past it is answered 503",
        _count,
    )
    session_idle_seconds: float = _setting(
        DEFAULT_SESSION_IDLE_SECONDS,
        "ACP_MCP_SESSION_IDLE_SECONDS",
        "--session-idle-seconds",
        "streamable HTTP: an MCP session with no request for this long is closed (the client opens a new one)",
        _positive_seconds,
    )
    allowed_hosts: tuple[str, ...] = _setting(
        (),
        "ACP_MCP_ALLOWED_HOSTS",
        "--allowed-hosts",
        "streamable HTTP: extra Host values allowed, comma-separated",
        _names,
    )
    allowed_origins: tuple[str, ...] = _setting(
        (),
        "ACP_MCP_ALLOWED_ORIGINS",
        "--allowed-origins",
        "streamable HTTP: Origin values allowed, comma-separated",
        _names,
    )

    oauth_issuer: str | None = _setting(
        None,
        "ACP_MCP_OAUTH_ISSUER",
        "--oauth-issuer",
        "streamable HTTP: the OAuth authorization server (issuer URL) whose access tokens callers present",
        _url,
    )
    public_url: str | None = _setting(
        None,
        "ACP_MCP_PUBLIC_URL",
        "--public-url",
        "streamable HTTP: this server's canonical MCP URL, the tokens' audience (e.g. https://acp.example.com/mcp)",
        _url,
    )
    keys_file: str | None = _setting(
        None,
        "ACP_MCP_KEYS_FILE",
        "--keys-file",
        "JSON or TOML file giving each token subject (or claim value) its ACP key; reread when it changes",
        _optional,
    )
    key_store: str = _setting(
        DEFAULT_KEY_STORE,
        "ACP_MCP_KEY_STORE",
        "--key-store",
        f"where connected keys are kept (with {KEK_VARIABLE}): a SQLite file, or a postgresql:// URL for replicas",
        str,
    )
    connect_client_id: str | None = _setting(
        None,
        "ACP_MCP_CONNECT_CLIENT_ID",
        "--connect-client-id",
        "the connect page's client at the issuer (redirect URI <public origin>/connect/callback), to sign users in",
        _optional,
    )
    caller_keys: bool = _setting(
        False,
        "ACP_MCP_CALLER_KEYS",
        "--caller-keys",
        f"streamable HTTP: callers may send their own ACP key in the {CALLER_KEY_HEADER} header",
        parse_bool,
    )
    shared_key_fallback: bool = _setting(
        False,
        "ACP_MCP_SHARED_KEY_FALLBACK",
        "--shared-key-fallback",
        "streamable HTTP with OAuth or caller keys: callers without a key of their own use COMPUTER_AGENTS_API_KEY",
        parse_bool,
    )
    caller_rate: float = _setting(
        DEFAULT_CALLER_RATE,
        "ACP_MCP_CALLER_RATE",
        "--caller-rate",
        "streamable HTTP: requests per second each caller may make on average (0 = no limit)",
        _rate,
    )
    caller_burst: int = _setting(
        DEFAULT_CALLER_BURST,
        "ACP_MCP_CALLER_BURST",
        "--caller-burst",
        "streamable HTTP: requests a caller may make at once above its rate",
        _count,
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        if (self.oauth_issuer is None) != (self.public_url is None):
            raise ConfigError(
                "ACP_MCP_OAUTH_ISSUER and ACP_MCP_PUBLIC_URL go together: set both to accept OAuth access tokens"
            )
        if self.key_encryption_key is not None and self.oauth_issuer is None:
            raise ConfigError(f"{KEK_VARIABLE} needs ACP_MCP_OAUTH_ISSUER: connected keys belong to signed-in users")
        if self.key_encryption_key is not None and (
            self.connect_client_id is None or self.connect_client_secret is None
        ):
            raise ConfigError(
                f"the connect page signs users in at the issuer: with {KEK_VARIABLE}, set ACP_MCP_CONNECT_CLIENT_ID "
                f"and {CONNECT_SECRET_VARIABLE} (a client registered there, redirect URI <origin>/connect/callback)"
            )
        if self.metrics and self.transport != "streamable-http":
            raise ConfigError(
                "ACP_MCP_METRICS serves GET /metrics over streamable HTTP: set ACP_MCP_TRANSPORT=streamable-http "
                "(over stdio, send the metrics to a collector with OTEL_EXPORTER_OTLP_ENDPOINT)"
            )
        if self.oauth_issuer is not None and self.http_token is not None:
            raise ConfigError(f"set either {HTTP_TOKEN_VARIABLE} (one static token) or ACP_MCP_OAUTH_ISSUER, not both")

    @property
    def oauth(self) -> bool:
        """True when callers authenticate with OAuth access tokens."""
        return self.oauth_issuer is not None

    @property
    def connect(self) -> bool:
        """True when signed-in users may connect their own key on the connect page."""
        return self.oauth and self.key_encryption_key is not None and self.connect_client_id is not None

    @property
    def per_caller_keys(self) -> bool:
        """True when each caller may act with an ACP key of their own (OAuth, a keys file or the key header)."""
        return self.oauth or self.caller_keys or self.keys_file is not None

    @property
    def shared_key_allowed(self) -> bool:
        """Whether a caller may act with the server's own key: always, unless callers have keys of their own."""
        return not self.per_caller_keys or self.shared_key_fallback

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from `environ` (default `os.environ`); non-None `overrides` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        key = next((env[name] for name in KEY_VARIABLES if env.get(name, "").strip()), None)
        if key is not None:
            values["api_key"] = SecretStr(key.strip())
        if env.get(HTTP_TOKEN_VARIABLE, "").strip():
            values["http_token"] = SecretStr(env[HTTP_TOKEN_VARIABLE].strip())
        for attr, name in (("key_encryption_key", KEK_VARIABLE), ("connect_client_secret", CONNECT_SECRET_VARIABLE)):
            if env.get(name, "").strip():
                values[attr] = SecretStr(env[name].strip())
        base_url = next((env[name] for name in BASE_URL_VARIABLES if env.get(name, "").strip()), None)
        if base_url is not None:
            values["base_url"] = base_url.strip()
        for attr, setting in settings_fields():
            raw = env.get(setting.env)
            if raw is None:
                continue
            try:
                values[attr] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def secrets(self) -> list[str]:
        """The secret values to mask in every message and log line."""
        kept = (self.api_key, self.http_token, self.key_encryption_key, self.connect_client_secret)
        store_password = urlsplit(self.key_store).password if "://" in self.key_store else None
        return [secret.get_secret_value() for secret in kept if secret is not None] + [
            password for password in (store_password, self.key_store if store_password else None) if password
        ]

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None `overrides` applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def settings_fields() -> list[tuple[str, Setting]]:
    """The (attribute, Setting) pairs that are read from ``ACP_*`` variables and CLI flags."""
    return [(f.name, f.metadata["setting"]) for f in fields(Settings) if "setting" in f.metadata]


def normalize_base_url(url: str) -> str:
    """Strip trailing slashes and append ``/v1`` unless the URL already ends with it; refuse what the official
    SDK refuses: a scheme other than http(s), credentials, a query or a fragment."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"COMPUTER_AGENTS_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL}, got {url!r}")
    if "@" in parts.netloc:  # the URL itself is not shown: it holds a secret
        raise ConfigError("COMPUTER_AGENTS_BASE_URL must not carry credentials (user:password@); send only the key")
    if "?" in url or "#" in url:
        raise ConfigError(
            f"COMPUTER_AGENTS_BASE_URL must not have a query or a fragment, such as {DEFAULT_BASE_URL}, got {url!r}"
        )
    url = parts.scheme + url[len(parts.scheme) :]  # urlsplit lowercases the scheme: keep one spelling
    return url if url.endswith("/v1") else url + "/v1"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where plain http cannot leak the key."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
