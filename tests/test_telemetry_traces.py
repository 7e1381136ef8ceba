"""Traces: one trace from an MCP client's ``_meta`` through acp-mcp to the API, and what its spans say and never say.

The end-to-end test runs the real command (``--transport streamable-http``) with the ``otel`` extra set up by the
standard ``OTEL_*`` variables, exporting OTLP/HTTP to a receiver on loopback (`_otlp`); the sandbox records the
``traceparent`` each API request carried. The in-process tests give `compose` SDK providers with in-memory readers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from acp_mcp.clock import VirtualClock
from acp_mcp.composition import compose
from acp_mcp.config import Settings
from acp_mcp.sandbox import Fault, RunningSandbox
from acp_mcp.telemetry import Telemetry

from ._otlp import otlp_receiver
from ._tooling import http_server
from .conftest import API_KEY, FAST_POLLS, SERVER_ID, api_requests, sandbox_env, text_of

pytestmark = pytest.mark.anyio

RUNS = "/v1/servers/{serverId}/runtime/agent/runs"
EVENTS = RUNS + "/{resourceRunId}/events"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
PROMPT = "confidential-prompt-words"


def _traceparent(headers: dict[str, str]) -> tuple[str, str]:
    """(trace id, parent span id) of a request's ``traceparent``."""
    match = TRACEPARENT.match(headers.get("traceparent", ""))
    assert match is not None, headers
    return match.group(1), match.group(2)


async def test_one_trace_runs_from_the_client_through_acp_mcp_to_the_api(sandbox: RunningSandbox) -> None:
    sandbox.state.pace = 0.3  # the turn ends after two paces: the call waits, polling at 0.5 s and 1.25 s
    client_tracer = TracerProvider().get_tracer("the MCP client's application")
    with otlp_receiver() as receiver:
        env = sandbox_env(sandbox, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SERVICE_NAME="acp-mcp-under-test")
        with http_server(**env) as server:
            async with server.client() as client:
                with client_tracer.start_as_current_span("agent turn") as root:
                    result = await client.call_tool(
                        "start_agent_run", {"serverId": SERVER_ID, "content": PROMPT, "waitSeconds": 10}
                    )
            code, stderr = server.stop()  # the spans still buffered are sent on the way out
    assert code == 0, stderr
    assert result.structured_content["run"]["status"] == "completed", text_of(result)
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = [span for span in receiver.spans if span.trace_id == trace_id]
    by_id = {span.span_id: span for span in spans}
    assert {span.service for span in spans} == {"acp-mcp-under-test"}

    # The SDK's SERVER span is the child of the client's span, carried in _meta; acp-mcp's spans hang below it.
    (tool_call,) = [span for span in spans if span.name == "tools/call start_agent_run"]
    assert tool_call.kind == SpanKind.SERVER.value + 1  # OTLP counts kinds from UNSPECIFIED = 0
    assert tool_call.parent_id == format(root.get_span_context().span_id, "016x")
    (start,) = [span for span in spans if span.name == f"POST {RUNS}"]
    (wait,) = [span for span in spans if span.name == "acp.wait"]
    polls = [span for span in spans if span.name == "acp.poll"]
    gets = [span for span in spans if span.name == f"GET {EVENTS}"]
    assert start.parent_id == wait.parent_id == tool_call.span_id
    assert polls and {poll.parent_id for poll in polls} == {wait.span_id}
    assert {by_id[get.parent_id].name for get in gets} == {"acp.poll"}
    run_id = result.structured_content["run"]["id"]
    assert start.kind == SpanKind.CLIENT.value + 1
    assert start.attributes == {
        "http.request.method": "POST",
        "url.template": RUNS,
        "server.address": "127.0.0.1",
        "server.port": int(sandbox.base_url.rsplit(":", 1)[1].split("/")[0]),
        "http.response.status_code": 202,
        "acp.server.id": SERVER_ID,
        "acp.operation": "start",
    }
    assert {get.attributes["acp.run.id"] for get in gets} == {run_id}
    assert wait.attributes == {"acp.server.id": SERVER_ID, "acp.run.id": run_id}

    # Every API request carried the trace, each with its own CLIENT span as the parent.
    requests = api_requests(sandbox)
    assert [r.method for r in requests] == ["POST"] + ["GET"] * (len(requests) - 1)
    parents = [_traceparent(r.headers) for r in requests]
    assert {trace for trace, _ in parents} == {trace_id}
    assert [by_id[parent].name for _, parent in parents] == [start.name] + [f"GET {EVENTS}"] * (len(requests) - 1)

    # The metrics went the same way (sent at exit at the latest).
    assert {"mcp.method.name": "tools/call", "gen_ai.tool.name": "start_agent_run"} in receiver.metrics[
        "mcp.server.operation.duration"
    ]
    assert {labels["url.template"] for labels in receiver.metrics["http.client.request.duration"]} == {RUNS, EVENTS}

    # Never the key, the prompt or the output.
    exported = json.dumps([span.attributes for span in receiver.spans] + [span.events for span in receiver.spans])
    assert API_KEY not in exported and "confidential-prompt-words" not in exported
    assert result.structured_content["run"]["output"] not in exported


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _in_process(
    settings: Settings, spans: tuple[TracerProvider, InMemorySpanExporter], *, content: bool = False, **more: Any
) -> Client:
    telemetry = Telemetry(
        tracer_provider=spans[0], meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]), content=content
    )
    return Client(compose(settings, policy=FAST_POLLS, telemetry=telemetry, **more).server)


def _retry(number: int) -> dict[str, Any]:
    return {"http.request.resend_count": number, "error.type": "503", "http.response.status_code": 503}


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_a_retried_request_is_one_client_span_with_each_retry_as_an_event(
    settings: Settings, sandbox: RunningSandbox, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    clock = VirtualClock()
    sandbox.state.clock = clock
    sandbox.state.inject(Fault("status", method="GET", path_contains="/events", times=2, status=503))
    async with _in_process(settings, spans, clock=clock) as client:
        started = await client.call_tool("start_agent_run", {"serverId": SERVER_ID, "content": "hi", "waitSeconds": 0})
        run_id = started.structured_content["run"]["id"]
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 0}
        )

    assert not result.is_error, text_of(result)
    (get,) = _named(spans[1], f"GET {EVENTS}")
    assert get.kind == SpanKind.CLIENT
    assert get.attributes is not None and get.attributes["http.response.status_code"] == 200
    assert [(event.name, dict(event.attributes or {})) for event in get.events] == [
        ("retry", {**_retry(n), "acp.retry.delay_seconds": pytest.approx(delay)})
        for n, delay in ((1, clock.slept[0]), (2, clock.slept[1]))
    ]
    assert [r.method for r in api_requests(sandbox, method="GET")] == ["GET"] * 3
    assert len({_traceparent(r.headers) for r in api_requests(sandbox, method="GET")}) == 1  # one span, resent


async def test_a_failed_request_says_its_error_type_and_status(
    settings: Settings, sandbox: RunningSandbox, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    async with _in_process(settings, spans) as client:
        result = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": "run_missing", "waitSeconds": 0}
        )

    assert result.is_error
    (get,) = _named(spans[1], f"GET {EVENTS}")
    assert get.attributes is not None
    assert (get.attributes["error.type"], get.attributes["http.response.status_code"]) == ("404", 404)
    assert get.status.status_code.name == "ERROR"


async def test_tool_content_goes_on_the_tool_call_span_only_with_trace_content_and_never_the_key(
    sandbox: RunningSandbox,
) -> None:
    with otlp_receiver() as receiver:
        env = sandbox_env(sandbox, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, ACP_MCP_TRACE_CONTENT="true")
        with http_server(**env) as server:
            async with server.client() as client:
                result = await client.call_tool(
                    "start_agent_run", {"serverId": SERVER_ID, "content": f"{PROMPT} {API_KEY}", "mode": "sync"}
                )
            code, stderr = server.stop()
    assert code == 0, stderr
    assert not result.is_error, text_of(result)
    (tool_call,) = [span for span in receiver.spans if span.name == "tools/call start_agent_run"]
    arguments = json.loads(tool_call.attributes["gen_ai.tool.call.arguments"])
    assert arguments == {"serverId": SERVER_ID, "content": f"{PROMPT} [REDACTED]", "mode": "sync"}
    answer = json.loads(tool_call.attributes["gen_ai.tool.call.result"])
    assert answer["structuredContent"]["run"]["output"] == result.structured_content["run"]["output"]
    assert API_KEY not in json.dumps([span.attributes for span in receiver.spans])
