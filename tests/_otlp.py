"""A tiny OTLP/HTTP receiver on loopback, as a collector is to a server process: it keeps the spans and metrics sent.

It answers ``POST /v1/traces`` and ``POST /v1/metrics`` (protobuf, uncompressed: the SDK exporter's defaults) and
decodes them with the OTLP messages the exporter itself uses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from ._tooling import loopback_http


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived: ids in hex, as ``traceparent`` writes them."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    service: str


@dataclass
class Received:
    """What the receiver got so far."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Metric name -> the attributes of each data point received."""
    url: str = ""


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind is not None else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _take_traces(received: Received, body: bytes) -> None:
    request = ExportTraceServiceRequest.FromString(body)
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                received.spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        events=[(event.name, _attributes(event.attributes)) for event in span.events],
                        service=service,
                    )
                )


def _take_metrics(received: Received, body: bytes) -> None:
    request = ExportMetricsServiceRequest.FromString(body)
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = getattr(metric, metric.WhichOneof("data") or "gauge")
                points = received.metrics.setdefault(metric.name, [])
                points.extend(_attributes(point.attributes) for point in data.data_points)


@contextmanager
def otlp_receiver() -> Iterator[Received]:
    """A receiver on a free loopback port for the length of the block; its `Received.url` is the OTLP endpoint."""
    received = Received()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                if self.path == "/v1/traces":
                    _take_traces(received, body)
                elif self.path == "/v1/metrics":
                    _take_metrics(received, body)
            self.send_response(200 if self.path in ("/v1/traces", "/v1/metrics") else 404)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_http(Handler) as port:
        received.url = f"http://127.0.0.1:{port}"
        yield received
