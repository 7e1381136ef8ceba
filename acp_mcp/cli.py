"""The ``acp-mcp`` command: serve MCP (stdio or streamable HTTP), run the demo, or run the sandbox alone."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import SecretStr

from . import __version__
from .config import DEFAULT_BASE_URL, ConfigError, LogFormat, Settings, parse_bool, settings_fields
from .limits import DEFAULT_HOST, DEFAULT_SANDBOX_PACE, DEFAULT_SANDBOX_PORT, DEMO_PACE, EXIT_SECONDS
from .log_storms import LogStormFilter
from .logs import formatter
from .redaction import RedactingFilter, Redactor
from .shutdown import exit_by, run_until_signalled

if TYPE_CHECKING:
    from .otel_setup import Exporting

logger = logging.getLogger("acp_mcp")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every ``ACP_*`` setting is also a flag, the secrets never are."""
    parser = argparse.ArgumentParser(
        prog="acp-mcp",
        allow_abbrev=False,  # the sandbox's --key must never be read as a prefix of --keys-file or --key-store
        description="MCP server for agent runs on the Computer Agents platform (ACP API). Serves MCP over "
        "stdio by default. The API key is read from COMPUTER_AGENTS_API_KEY only, the HTTP caller token "
        "from ACP_MCP_HTTP_TOKEN only.",
    )
    parser.add_argument("--version", action="version", version=f"acp-mcp {__version__}")
    parser.add_argument(
        "--base-url",
        help=f"ACP API base URL, /v1 appended if missing [env COMPUTER_AGENTS_BASE_URL, default {DEFAULT_BASE_URL}]",
    )
    for attr, setting in settings_fields():
        help_text = f"{setting.help} [env {setting.env}]"
        if setting.parse is parse_bool:
            parser.add_argument(setting.flag, dest=attr, action="store_const", const=True, help=help_text)
        else:
            parser.add_argument(setting.flag, dest=attr, type=setting.parse, help=help_text)
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="serve against a local ACP sandbox started in-process (no account or key needed)",
    )
    parser.add_argument("--sandbox-pace", type=float, default=DEFAULT_SANDBOX_PACE, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="{serve,demo,sandbox}")
    commands.add_parser("serve", help="serve MCP (the default)")
    demo = commands.add_parser("demo", help="start the server over stdio against the sandbox and call it")
    demo.add_argument("--pace", dest="demo_pace", type=float, default=DEMO_PACE, help="sandbox seconds per agent step")
    sandbox = commands.add_parser("sandbox", help="run the local ACP sandbox standalone")
    sandbox.add_argument("--host", dest="sandbox_host", default=DEFAULT_HOST, help="address to listen on")
    sandbox.add_argument(
        "--port", dest="sandbox_port", type=int, default=DEFAULT_SANDBOX_PORT, help="port to listen on"
    )
    sandbox.add_argument(
        "--pace", dest="standalone_pace", type=float, default=DEFAULT_SANDBOX_PACE, help="seconds per step"
    )
    sandbox.add_argument(
        "--key",
        dest="sandbox_keys",
        action="append",
        default=[],
        metavar="KEY",
        help="an API key the sandbox accepts, one account per key (repeat for several accounts; each sees only "
        "its own runs) [default: one key, $ACP_SANDBOX_KEY or generated]",
    )
    sandbox.add_argument(
        "--variant",
        dest="sandbox_variants",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help="play another reading of the API where its docs are silent: flat-bodies, oldest-first, no-event-ids, "
        "limit-max-50, busy-input-queues (README, The sandbox) [default: $ACP_SANDBOX_VARIANTS, else none]",
    )
    return parser


def configure_logging(level: str, redact: Redactor, log_format: LogFormat) -> None:
    """Log to stderr only (stdout belongs to the protocol), as text or JSON lines, with repeated warnings held back
    and secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(LogStormFilter())
    handler.addFilter(RedactingFilter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Environment first, then the flags given."""
    overrides: dict[str, Any] = {attr: getattr(args, attr) for attr, _ in settings_fields()}
    overrides["base_url"] = args.base_url
    return Settings.from_env(**overrides)


def serve(settings: Settings, *, sandbox: bool, pace: float) -> int:
    """Serve MCP over the configured transport until the client leaves or a signal arrives."""
    from .composition import compose

    running = None
    if sandbox:
        from .sandbox import SANDBOX_SERVER_ID, SandboxState, serve_in_thread

        key = "sandbox-" + secrets.token_urlsafe(16)
        running = serve_in_thread(SandboxState(api_key=key, pace=pace))
        settings = settings.with_overrides(
            api_key=SecretStr(key),
            base_url=running.base_url,
            default_server_id=settings.default_server_id or SANDBOX_SERVER_ID,
        )
        logger.warning("serving against the local ACP sandbox at %s", running.base_url)
    exporting = None
    try:
        exporting = set_up_telemetry(settings)
        application = compose(settings)
        configure_logging(settings.log_level, application.state.redact, settings.log_format)  # masks callers' keys
        if settings.transport == "streamable-http":
            from .http_server import serve_http

            metrics = exporting.metrics_text if exporting is not None and settings.metrics else None
            anyio.run(functools.partial(serve_http, application, metrics=metrics))
        else:
            from .stdio import serve_stdio

            anyio.run(run_until_signalled, lambda: serve_stdio(application.server))
    finally:
        if exporting is not None:
            if settings.transport == "streamable-http":
                exit_by(EXIT_SECONDS)  # an unreachable collector cannot hold a drained replica
            exporting.shutdown()
        if running is not None:
            running.close()
    return 0


def set_up_telemetry(settings: Settings) -> Exporting | None:
    """The OpenTelemetry SDK set up from the ``OTEL_*`` variables when the ``otel`` extra is installed; else None,
    and nothing of it imported (``ACP_MCP_METRICS`` needs the extra)."""
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        if settings.metrics:
            raise ConfigError("ACP_MCP_METRICS needs the OpenTelemetry SDK: pip install 'acp-mcp[otel]'")
        return None
    from .otel_setup import set_up

    return set_up(prometheus=settings.metrics)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``acp-mcp`` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level, Redactor(settings.secrets()), settings.log_format)
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(pace=args.demo_pace)
        if args.command == "sandbox":
            from .sandbox import VARIANTS_ENV, parse_variants, run_standalone

            keys: list[str] = args.sandbox_keys
            if "" in keys or len(set(keys)) != len(keys):
                sys.stderr.write("acp-mcp: each sandbox --key must be non-empty and given once\n")
                return 2
            try:
                variants = parse_variants(",".join(args.sandbox_variants) or os.environ.get(VARIANTS_ENV, ""))
            except ValueError as exc:
                sys.stderr.write(f"acp-mcp: {exc}\n")
                return 2
            run_standalone(args.sandbox_host, args.sandbox_port, args.standalone_pace, keys, variants)
            return 0
        return serve(settings, sandbox=args.sandbox, pace=args.sandbox_pace)
    except ConfigError as exc:
        sys.stderr.write(f"acp-mcp: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
