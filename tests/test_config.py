"""`Settings.from_env`: every variable it reads, the defaults, and the error each bad value gives (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from acp_mcp.config import (
    BASE_URL_VARIABLES,
    CONNECT_SECRET_VARIABLE,
    DEFAULT_BASE_URL,
    HTTP_TOKEN_VARIABLE,
    KEK_VARIABLE,
    KEY_VARIABLES,
    ConfigError,
    Settings,
    is_loopback,
    normalize_base_url,
    settings_fields,
)
from acp_mcp.limits import DEFAULT_CALLER_BURST, DEFAULT_CALLER_RATE, DEFAULT_DRAIN_SECONDS, DEFAULT_WAIT_SECONDS


def test_with_no_variables_every_setting_has_its_default() -> None:
    assert Settings.from_env({}) == Settings(
        api_key=None,
        base_url="https://api.computer-agents.com/v1",
        http_token=None,
        request_timeout=30.0,
        wait_seconds=DEFAULT_WAIT_SECONDS,
        default_server_id=None,
        read_only=False,
        resource_links=False,
        log_level="WARNING",
        transport="stdio",
        host="127.0.0.1",
        port=8000,
        stateless=False,
        drain_seconds=DEFAULT_DRAIN_SECONDS,
        allowed_hosts=(),
        allowed_origins=(),
        oauth_issuer=None,
        public_url=None,
        keys_file=None,
        caller_keys=False,
        shared_key_fallback=False,
        caller_rate=DEFAULT_CALLER_RATE,
        caller_burst=DEFAULT_CALLER_BURST,
        key_encryption_key=None,
        key_store="acp-mcp-keys.sqlite",
        connect_client_id=None,
        connect_client_secret=None,
        read_timeout=10.0,
    )
    assert Settings().base_url == DEFAULT_BASE_URL + "/v1"


ISSUER = "https://id.example/realms/team"
OAUTH = {"ACP_MCP_OAUTH_ISSUER": ISSUER, "ACP_MCP_PUBLIC_URL": "https://acp.example/mcp"}
CONNECT = {
    **OAUTH,
    "ACP_MCP_KEY_ENCRYPTION_KEY": "a2V5",
    "ACP_MCP_CONNECT_CLIENT_ID": "acp-connect",
    "ACP_MCP_CONNECT_CLIENT_SECRET": " s3cret ",
}
VARIABLE_CASES: list[tuple[str, dict[str, str], str, Any]] = [  # id, environ, attribute, expected value
    ("key-stripped", {"COMPUTER_AGENTS_API_KEY": " tb_key "}, "api_key", "tb_key"),
    ("key-old-name", {"TESTBASE_API_KEY": "tb_old"}, "api_key", "tb_old"),
    ("key-new-name-wins", {"COMPUTER_AGENTS_API_KEY": "tb_new", "TESTBASE_API_KEY": "tb_old"}, "api_key", "tb_new"),
    ("blank-key-skipped", {"COMPUTER_AGENTS_API_KEY": "  ", "TESTBASE_API_KEY": "tb_old"}, "api_key", "tb_old"),
    ("http-token-stripped", {"ACP_MCP_HTTP_TOKEN": " t0ken "}, "http_token", "t0ken"),
    ("blank-http-token-is-none", {"ACP_MCP_HTTP_TOKEN": " "}, "http_token", None),
    ("base-url", {"COMPUTER_AGENTS_BASE_URL": " https://api.example/ "}, "base_url", "https://api.example/v1"),
    ("api-url", {"COMPUTER_AGENTS_API_URL": "http://localhost:8080/v1"}, "base_url", "http://localhost:8080/v1"),
    (
        "base-url-wins",
        {"COMPUTER_AGENTS_BASE_URL": "https://a.example", "COMPUTER_AGENTS_API_URL": "https://b.example"},
        "base_url",
        "https://a.example/v1",
    ),
    ("request-timeout", {"ACP_MCP_REQUEST_TIMEOUT": "2.5"}, "request_timeout", 2.5),
    ("wait-zero", {"ACP_MCP_WAIT_SECONDS": "0"}, "wait_seconds", 0.0),
    ("wait-longest", {"ACP_MCP_WAIT_SECONDS": "600"}, "wait_seconds", 600.0),
    ("server-id", {"ACP_SERVER_ID": " srv_1 "}, "default_server_id", "srv_1"),
    ("organization", {"COMPUTER_AGENTS_ORGANIZATION_ID": " org_1 "}, "organization_id", "org_1"),
    ("empty-server-id-is-none", {"ACP_SERVER_ID": ""}, "default_server_id", None),
    ("read-only-yes", {"ACP_MCP_READ_ONLY": "yes"}, "read_only", True),
    ("read-only-off", {"ACP_MCP_READ_ONLY": " OFF "}, "read_only", False),
    ("read-only-empty", {"ACP_MCP_READ_ONLY": ""}, "read_only", False),
    ("resource-links", {"ACP_MCP_RESOURCE_LINKS": "1"}, "resource_links", True),
    ("log-level", {"ACP_MCP_LOG_LEVEL": " debug "}, "log_level", "DEBUG"),
    ("log-format", {"ACP_MCP_LOG_FORMAT": " JSON "}, "log_format", "json"),
    ("trace-content", {"ACP_MCP_TRACE_CONTENT": "true"}, "trace_content", True),
    ("metrics", {"ACP_MCP_METRICS": "1", "ACP_MCP_TRANSPORT": "streamable-http"}, "metrics", True),
    ("transport", {"ACP_MCP_TRANSPORT": "Streamable-HTTP"}, "transport", "streamable-http"),
    ("host", {"ACP_MCP_HOST": "0.0.0.0"}, "host", "0.0.0.0"),
    ("port-any", {"ACP_MCP_PORT": "0"}, "port", 0),
    ("port-highest", {"ACP_MCP_PORT": "65535"}, "port", 65535),
    ("stateless", {"ACP_MCP_STATELESS": "true"}, "stateless", True),
    ("drain", {"ACP_MCP_DRAIN_SECONDS": "1.5"}, "drain_seconds", 1.5),
    ("read-timeout", {"ACP_MCP_READ_TIMEOUT": "2.5"}, "read_timeout", 2.5),
    ("drain-delay", {"ACP_MCP_DRAIN_DELAY_SECONDS": "0"}, "drain_delay_seconds", 0.0),
    ("write-timeout", {"ACP_MCP_WRITE_TIMEOUT": "7"}, "write_timeout", 7.0),
    ("max-connections", {"ACP_MCP_MAX_CONNECTIONS": "500"}, "max_connections", 500),
    ("max-waits", {"ACP_MCP_MAX_WAITS": "12"}, "max_waits", 12),
    ("max-sessions", {"ACP_MCP_MAX_SESSIONS": "34"}, "max_sessions", 34),
    ("session-idle", {"ACP_MCP_SESSION_IDLE_SECONDS": "90"}, "session_idle_seconds", 90.0),
    (
        "allowed-hosts",
        {"ACP_MCP_ALLOWED_HOSTS": " a.example, b.example,, "},
        "allowed_hosts",
        ("a.example", "b.example"),
    ),
    (
        "allowed-origins",
        {"ACP_MCP_ALLOWED_ORIGINS": "https://app.example"},
        "allowed_origins",
        ("https://app.example",),
    ),
    ("oauth-issuer", {**OAUTH, "ACP_MCP_OAUTH_ISSUER": "https://id.example/realms/team/"}, "oauth_issuer", ISSUER),
    ("public-url", OAUTH, "public_url", "https://acp.example/mcp"),
    ("keys-file", {"ACP_MCP_KEYS_FILE": " /etc/acp/keys.toml "}, "keys_file", "/etc/acp/keys.toml"),
    ("caller-keys", {"ACP_MCP_CALLER_KEYS": "on"}, "caller_keys", True),
    ("shared-key-fallback", {"ACP_MCP_SHARED_KEY_FALLBACK": "true"}, "shared_key_fallback", True),
    ("caller-rate-off", {"ACP_MCP_CALLER_RATE": "0"}, "caller_rate", 0.0),
    ("caller-burst", {"ACP_MCP_CALLER_BURST": "5"}, "caller_burst", 5),
    ("key-store", {"ACP_MCP_KEY_STORE": "postgresql://db/acp"}, "key_store", "postgresql://db/acp"),
    ("key-encryption-key", {**CONNECT, "ACP_MCP_KEY_ENCRYPTION_KEY": " a2V5 "}, "key_encryption_key", "a2V5"),
    ("connect-client-id", CONNECT, "connect_client_id", "acp-connect"),
    ("connect-client-secret", CONNECT, "connect_client_secret", "s3cret"),
]
VARIABLES = [pytest.param(*case, id=ident) for ident, *case in VARIABLE_CASES]


@pytest.mark.parametrize(("environ", "attribute", "expected"), VARIABLES)
def test_each_variable_sets_its_setting(environ: dict[str, str], attribute: str, expected: Any) -> None:
    value = getattr(Settings.from_env(environ), attribute)

    assert (value.get_secret_value() if isinstance(value, SecretStr) else value) == expected


def test_the_table_covers_every_variable_the_server_reads() -> None:
    read = {
        *KEY_VARIABLES,
        *BASE_URL_VARIABLES,
        HTTP_TOKEN_VARIABLE,
        KEK_VARIABLE,
        CONNECT_SECRET_VARIABLE,
        *(s.env for _, s in settings_fields()),
    }
    covered = {name for _, environ, _, _ in VARIABLE_CASES for name in environ}

    assert covered == read


BAD_VALUES = [
    ("ACP_MCP_REQUEST_TIMEOUT", "0", "expected a positive number of seconds, got '0'"),
    ("ACP_MCP_REQUEST_TIMEOUT", "abc", "could not convert string to float: 'abc'"),
    ("ACP_MCP_WAIT_SECONDS", "601", "expected a number of seconds from 0 to 600, got '601'"),
    ("ACP_MCP_WAIT_SECONDS", "-1", "expected a number of seconds from 0 to 600, got '-1'"),
    ("ACP_MCP_WAIT_SECONDS", "nan", "expected a number of seconds from 0 to 600, got 'nan'"),
    ("ACP_MCP_DRAIN_SECONDS", "inf", "expected a number of seconds from 0 to 600, got 'inf'"),
    ("ACP_MCP_READ_ONLY", "maybe", "expected 1/0, true/false, yes/no or on/off, got 'maybe'"),
    ("ACP_MCP_RESOURCE_LINKS", "2", "expected 1/0, true/false, yes/no or on/off, got '2'"),
    ("ACP_MCP_STATELESS", "y", "expected 1/0, true/false, yes/no or on/off, got 'y'"),
    ("ACP_MCP_LOG_LEVEL", "loud", "expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'loud'"),
    ("ACP_MCP_LOG_FORMAT", "yaml", "expected text or json, got 'yaml'"),
    ("ACP_MCP_TRANSPORT", "sse", "expected stdio or streamable-http, got 'sse'"),
    ("ACP_MCP_PORT", "http", "expected a port from 0 to 65535, got 'http'"),
    ("ACP_MCP_PORT", "70000", "expected a port from 0 to 65535, got '70000'"),
    ("ACP_MCP_PORT", "-1", "expected a port from 0 to 65535, got '-1'"),
    (
        "ACP_MCP_PUBLIC_URL",
        "acp.example/mcp",
        "expected an http(s) URL without a query or fragment, got 'acp.example/mcp'",
    ),
    (
        "ACP_MCP_OAUTH_ISSUER",
        "https://id.example/?x=1",
        "expected an http(s) URL without a query or fragment, got 'https://id.example/?x=1'",
    ),
    ("ACP_MCP_CALLER_RATE", "-1", "expected 0 (no limit) or a positive number, got '-1'"),
    (
        "COMPUTER_AGENTS_ORGANIZATION_ID",
        "org 1",
        "expected an organization id without spaces or control characters, got 'org 1'",
    ),
    ("ACP_MCP_CALLER_BURST", "0", "expected a whole number from 1, got '0'"),
]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"ACP_MCP_OAUTH_ISSUER": ISSUER}, "ACP_MCP_OAUTH_ISSUER and ACP_MCP_PUBLIC_URL go together"),
        ({"ACP_MCP_PUBLIC_URL": "https://acp.example/mcp"}, "ACP_MCP_OAUTH_ISSUER and ACP_MCP_PUBLIC_URL go together"),
        ({**OAUTH, "ACP_MCP_HTTP_TOKEN": "t" * 32}, "set either ACP_MCP_HTTP_TOKEN (one static token) or"),
        ({"ACP_MCP_KEY_ENCRYPTION_KEY": "a2V5"}, "ACP_MCP_KEY_ENCRYPTION_KEY needs ACP_MCP_OAUTH_ISSUER"),
        ({**OAUTH, "ACP_MCP_KEY_ENCRYPTION_KEY": "a2V5"}, "the connect page signs users in at the issuer: with"),
    ],
    ids=[
        "issuer-alone",
        "public-url-alone",
        "oauth-and-static-token",
        "encryption-key-without-oauth",
        "encryption-key-without-a-sign-in-client",
    ],
)
def test_oauth_settings_that_cannot_work_together_are_one_config_error(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)

    assert str(caught.value).startswith(problem)


@pytest.mark.parametrize(("variable", "raw", "problem"), BAD_VALUES)
def test_a_bad_value_is_a_config_error_naming_the_variable(variable: str, raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: raw})

    assert str(caught.value) == f"{variable}: {problem}"


@pytest.mark.parametrize("variable", BASE_URL_VARIABLES)
@pytest.mark.parametrize(
    ("url", "shown"),
    [("ftp://api.example", "ftp://api.example"), ("api.example", "api.example"), ("https://", "https:")],
)
def test_a_base_url_that_is_not_http_is_a_config_error(variable: str, url: str, shown: str) -> None:
    """The message shows the URL with its trailing slashes stripped, and names COMPUTER_AGENTS_BASE_URL."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: url})

    assert str(caught.value) == (
        f"COMPUTER_AGENTS_BASE_URL must be an http(s) URL such as https://api.computer-agents.com, got {shown!r}"
    )


@pytest.mark.parametrize("variable", BASE_URL_VARIABLES)
@pytest.mark.parametrize(
    "url", ["https://api.example/v1?tenant=x", "https://api.example/#top", "https://api.example/v1?"]
)
def test_a_base_url_with_a_query_or_a_fragment_is_a_config_error(variable: str, url: str) -> None:
    """As the official SDK refuses it: a query would end up before the paths (``.../v1?tenant=x/v1``)."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: url})

    assert str(caught.value) == (
        "COMPUTER_AGENTS_BASE_URL must not have a query or a fragment, such as https://api.computer-agents.com, "
        f"got {url.rstrip('/')!r}"
    )


@pytest.mark.parametrize("url", ["https://me:s3cret-pass@api.example", "https://token@api.example/v1"])
def test_a_base_url_with_credentials_is_a_config_error_that_does_not_show_them(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"COMPUTER_AGENTS_BASE_URL": url})

    assert str(caught.value) == (
        "COMPUTER_AGENTS_BASE_URL must not carry credentials (user:password@); send only the key"
    )


def test_overrides_that_are_given_win_and_none_keeps_the_variable() -> None:
    environ = {"ACP_MCP_PORT": "9000", "ACP_MCP_HOST": "0.0.0.0"}

    settings = Settings.from_env(environ, port=1234, host=None)

    assert (settings.port, settings.host) == (1234, "0.0.0.0")
    assert settings.with_overrides(port=None, read_only=True) == Settings.from_env(environ, port=1234, read_only=True)


def test_without_a_mapping_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACP_MCP_PORT", "9001")

    assert Settings.from_env().port == 9001


def test_the_secrets_to_mask_are_the_key_and_the_caller_token() -> None:
    settings = Settings.from_env({"COMPUTER_AGENTS_API_KEY": "tb_key", "ACP_MCP_HTTP_TOKEN": "t0ken"})

    assert settings.secrets() == ["tb_key", "t0ken"]
    assert Settings().secrets() == []


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://api.example", "https://api.example/v1"),
        ("https://api.example/v1/", "https://api.example/v1"),
        ("https://api.example/base//", "https://api.example/base/v1"),
        ("HTTPS://API.example/v1", "https://API.example/v1"),
    ],
)
def test_the_base_url_ends_with_one_v1_and_a_lowercase_scheme(given: str, normalized: str) -> None:
    assert normalize_base_url(given) == normalized


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.9.9.9", True), ("[::1]", True)],
        *[("0.0.0.0", False), ("10.0.0.1", False), ("api.example", False), ("localhost.example", False)],
    ],
)
def test_only_localhost_and_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_key_store_url_with_a_password_is_masked_like_every_other_secret() -> None:
    settings = Settings(key_store="postgresql://acp:pg-s3cret-pw@db:5432/acp")

    assert "pg-s3cret-pw" in settings.secrets()
    assert Settings(key_store="acp-mcp-keys.sqlite").secrets() == []
