"""JSON logs: one object per line on stderr, with the trace and span ids inside a span, and the secrets masked."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider

from acp_mcp.sandbox import Fault, RunningSandbox

from ._otlp import otlp_receiver
from ._tooling import http_server, readme_block
from .conftest import API_KEY, SERVER_ID, sandbox_env, text_of

pytestmark = pytest.mark.anyio

EVENTS = "GET /v1/servers/{serverId}/runtime/agent/runs/{resourceRunId}/events"


async def test_json_log_lines_carry_the_trace_of_the_call_that_wrote_them_and_no_secret(
    sandbox: RunningSandbox,
) -> None:
    # A run id that is the key (ids are not secret, keys are): its retry is logged, inside its request's span.
    sandbox.state.inject(Fault("status", method="GET", path_contains=API_KEY, status=503))
    client_tracer = TracerProvider().get_tracer("the MCP client's application")
    with otlp_receiver() as receiver:
        env = sandbox_env(
            sandbox, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, ACP_MCP_LOG_FORMAT="json", ACP_MCP_LOG_LEVEL="INFO"
        )
        with http_server(**env) as server:
            async with server.client() as client:
                with client_tracer.start_as_current_span("agent turn") as root:
                    result = await client.call_tool(
                        "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": API_KEY, "waitSeconds": 0}
                    )
            code, stderr = server.stop()

    assert code == 0, stderr
    assert result.is_error, text_of(result)  # the retry gets the sandbox's 404
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines), lines
    assert lines[0]["message"].startswith("serving MCP over streamable HTTP at http://127.0.0.1:")
    assert (lines[0]["level"], lines[0]["logger"]) == ("WARNING", "acp_mcp.http_server")
    assert "trace_id" not in lines[0]  # written outside any span
    (retry,) = [line for line in lines if "retry 1 in" in line["message"]]
    assert retry["message"].startswith("GET servers/srv_test/runtime/agent/runs/[REDACTED]/events failed (ServerError)")
    (span,) = [span for span in receiver.spans if span.name == EVENTS]
    assert retry["trace_id"] == format(root.get_span_context().trace_id, "032x") == span.trace_id
    assert retry["span_id"] == span.span_id
    assert (retry["level"], retry["logger"]) == ("INFO", "acp_mcp.client")
    assert retry["time"].endswith("+00:00") and len(retry["time"]) == len("2026-01-01T00:00:00.000+00:00")
    assert API_KEY not in stderr
    assert span.attributes["acp.run.id"] == "[REDACTED]" and API_KEY not in json.dumps(
        [s.attributes for s in receiver.spans]
    )
    assert json.loads(readme_block("Operating", "json")).keys() == retry.keys()  # the README shows such a line
