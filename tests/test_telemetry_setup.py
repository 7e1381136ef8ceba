"""The ``otel`` extra is optional: without it the server runs as before and imports none of it; with it, the
standard ``OTEL_*`` variables choose the exporters, and a bad choice is one clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from acp_mcp.cli import main
from acp_mcp.config import ConfigError, Settings
from acp_mcp.otel_setup import set_up
from acp_mcp.sandbox import RunningSandbox

from ._tooling import ROOT, python_env
from .conftest import SERVER_ID, api_requests, sandbox_env, text_of

pytestmark = pytest.mark.anyio

EXTRA_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.proto", "prometheus_client")
WITHOUT_OTEL = f"""
import atexit, json, os, sys
EXTRA = {EXTRA_MODULES!r}
for name in EXTRA:
    sys.modules[name] = None  # as if not installed: importing it fails, importlib.util.find_spec finds nothing
def report():
    loaded = sorted(name for name, module in sys.modules.items() if module is not None and name.startswith(EXTRA))
    with open(os.environ["LOADED_REPORT"], "w") as out:
        json.dump(loaded, out)
atexit.register(report)
from acp_mcp.cli import main
from acp_mcp.config import ConfigError, Settings
sys.exit(main())
"""


def _without_otel(report: Path, env: dict[str, str]) -> StdioServerParameters:
    """``acp-mcp`` over stdio as if the otel extra were not installed, reporting at exit which of it it imported."""
    return StdioServerParameters(
        command=sys.executable, args=["-c", WITHOUT_OTEL], env=python_env(**env, LOADED_REPORT=str(report)), cwd=ROOT
    )


async def test_without_the_extra_the_server_serves_and_imports_none_of_it(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    report = tmp_path / "loaded.json"
    env = sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    async with Client(_without_otel(report, env)) as client:
        result = await client.call_tool("start_agent_run", {"content": "no telemetry", "mode": "sync"})

    assert not result.is_error, text_of(result)
    assert [r.method for r in api_requests(sandbox)] == ["POST"]
    assert "traceparent" not in api_requests(sandbox)[0].headers
    assert json.loads(report.read_text()) == []


def test_without_the_extra_metrics_are_refused_naming_the_extra(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = python_env(**sandbox_env(sandbox, ACP_MCP_METRICS="true", LOADED_REPORT=str(tmp_path / "loaded.json")))
    command = [sys.executable, "-c", WITHOUT_OTEL, "--transport", "streamable-http"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)

    assert done.returncode == 2
    assert done.stderr == ("acp-mcp: ACP_MCP_METRICS needs the OpenTelemetry SDK: pip install 'acp-mcp[otel]'\n"), (
        done.stderr
    )


async def test_console_exporters_write_to_stderr_and_stdout_stays_the_protocol(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="console")
    params = StdioServerParameters(command=sys.executable, args=["-m", "acp_mcp"], env=python_env(**env), cwd=ROOT)
    with (tmp_path / "stderr").open("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:  # a line on stdout that is not JSON-RPC fails
            result = await client.call_tool("start_agent_run", {"content": "to the console", "mode": "sync"})
        errlog.seek(0)
        stderr = errlog.read()

    assert not result.is_error, text_of(result)
    assert '"name": "tools/call start_agent_run"' in stderr and '"kind": "SpanKind.SERVER"' in stderr
    assert f'"name": "POST {"/v1/servers/{serverId}/runtime/agent/runs"}"' in stderr
    assert '"name": "mcp.server.operation.duration"' in stderr  # the metrics, sent as the process exits


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"OTEL_METRICS_EXPORTER": "prometheus"},
            "OTEL_METRICS_EXPORTER: acp-mcp exports to otlp, console or none, not prometheus "
            "(for Prometheus, set ACP_MCP_METRICS=true and scrape GET /metrics)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "zipkin,otlp"},
            "OTEL_TRACES_EXPORTER: acp-mcp exports to otlp, console or none, not zipkin",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: the otel extra sends OTLP over http/protobuf only",
        ),
        ({"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED: expected 1/0, true/false, yes/no or on/off, got 'maybe'"),
    ],
)
def test_an_exporter_the_extra_cannot_serve_is_one_clear_error(
    variables: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    assert main([]) == 2
    assert capsys.readouterr().err == f"acp-mcp: {message}\n"


def test_metrics_over_stdio_are_refused_naming_the_way_they_can_go() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ACP_MCP_METRICS": "true"})

    assert str(caught.value) == (
        "ACP_MCP_METRICS serves GET /metrics over streamable HTTP: set ACP_MCP_TRANSPORT=streamable-http "
        "(over stdio, send the metrics to a collector with OTEL_EXPORTER_OTLP_ENDPOINT)"
    )


def test_the_sdk_disabled_sets_up_nothing_whatever_the_endpoints_say() -> None:
    exporting = set_up(
        prometheus=False, environ={"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    )

    assert (exporting.tracer_provider, exporting.meter_provider, exporting.registry) == (None, None, None)
    assert exporting.metrics_text() == b""
    exporting.shutdown()
