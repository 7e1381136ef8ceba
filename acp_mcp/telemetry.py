"""What acp-mcp records for OpenTelemetry: a span per ACP request, the wait and its polls, and the metrics.

Written against the OTel API alone, which `mcp` already brings; without an SDK (the ``otel`` extra, set up
by `otel_setup`) every span and instrument here is a no-op. Recorded:

- one CLIENT span per ACP request (its retries included), named ``{method} {url.template}``, with the OTel
  HTTP attributes (``http.request.method``, ``url.template`` with the ids templated, ``server.address``,
  ``server.port``, ``http.response.status_code``, ``error.type``), each retry a ``retry`` event, and its W3C
  ``traceparent`` sent to the API;
- an ``acp.wait`` span for a tool call's wait and an ``acp.poll`` span for each of its polls;
- the server and run ids as span attributes (``acp.server.id``, ``acp.run.id``), never as metric labels;
- the metrics `HTTP_DURATION`, `OPERATION_DURATION` and the gauges of `Telemetry.gauge`.

Never the API key, prompts, content or output: only ``ACP_MCP_TRACE_CONTENT=true`` (`Telemetry.content`)
adds a tool call's arguments and result, redacted, to its span (`instrumentation`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider

from . import __version__
from .clock import Clock, SystemClock

SCOPE = "acp_mcp"
HTTP_DURATION = "http.client.request.duration"
OPERATION_DURATION = "mcp.server.operation.duration"
ACTIVE_WAITS = "acp_mcp.waits.active"
DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
"""Seconds: the MCP semantic conventions' buckets, from a fast API answer to a five-minute wait."""

_IDS = (
    (re.compile(r"^servers/[^/]+"), "servers/{serverId}"),
    (re.compile(r"/runs/[^/]+"), "/runs/{resourceRunId}"),
)


def url_template(base_path: str, path: str) -> str:
    """The absolute path of an API request with its ids templated: ``/v1/servers/{serverId}/runtime/...``."""
    for pattern, template in _IDS:
        path = pattern.sub(template, path, count=1)
    return f"{base_path}/{path}"


class ApiCall:
    """One ACP request's span, while it is sent: what it was answered, and each retry."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.status: int | None = None
        self.retries = 0

    def answered(self, status: int) -> None:
        """The API answered `status` (the last attempt's)."""
        self.status = status
        self.span.set_attribute("http.response.status_code", status)

    def retrying(self, failure: Exception, delay: float) -> None:
        """An attempt failed with `failure`; the next is sent in `delay` seconds."""
        self.retries += 1
        attributes: dict[str, Any] = {"http.request.resend_count": self.retries, "error.type": _error_type(failure)}
        status = getattr(failure, "status", None)
        if isinstance(status, int):
            attributes["http.response.status_code"] = status
        self.span.add_event("retry", {**attributes, "acp.retry.delay_seconds": delay})


class Telemetry:
    """The tracer and instruments of one acp-mcp process (by default from the global providers, which the
    ``otel`` extra sets up); `clock` measures the durations, `content` lets tool content onto spans."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        clock: Clock | None = None,
        content: bool = False,
    ) -> None:
        self.content = content
        self.clock = clock or SystemClock()
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(SCOPE, __version__)
        self._meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE, __version__)
        self._http_duration = self._meter.create_histogram(
            HTTP_DURATION,
            unit="s",
            description="Duration of ACP API requests, retries included.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.operation_duration = self._meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="Duration of the MCP requests and notifications this server handled.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def gauge(self, name: str, unit: str, description: str, read: Callable[[], float]) -> None:
        """A gauge read by `read` whenever the metrics are collected."""

        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(read())]

        self._meter.create_observable_gauge(name, [observe], unit=unit, description=description)

    @contextmanager
    def api_request(
        self, method: str, path: str, base_url: str, ids: dict[str, Any], redact: Callable[[str], str]
    ) -> Iterator[ApiCall]:
        """The CLIENT span of one ACP request to `path` below `base_url` (current while it runs, so the
        headers `inject` fills carry it), and its duration recorded when it ends. The `ids` a caller sent
        go on the span through `redact` (a caller may send anything as an id, their key too)."""
        parts = urlsplit(base_url)
        template = url_template(parts.path, path)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.template": template,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        began = self.clock.now()
        with self.tracer.start_as_current_span(
            f"{method} {template}",
            kind=SpanKind.CLIENT,
            attributes={**attributes, **{name: redact(value) for name, value in _id_attributes(ids).items()}},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = ApiCall(span)
            try:
                yield call
            except Exception as exc:
                status = getattr(exc, "status", None)
                if isinstance(status, int):
                    call.answered(status)
                attributes["error.type"] = _error_type(exc)
                span.set_attribute("error.type", attributes["error.type"])
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                raise
            finally:
                if call.status is not None:
                    attributes["http.response.status_code"] = call.status
                self._http_duration.record(self.clock.now() - began, attributes)

    @staticmethod
    def inject(headers: dict[str, str]) -> None:
        """Add the current span's W3C trace context (``traceparent``, ``tracestate``) to `headers`."""
        propagate.inject(headers)

    @contextmanager
    def waiting(self, server_id: str, run_id: str) -> Iterator[Span]:
        """The ``acp.wait`` span of a tool call waiting for a run."""
        ids = _id_attributes({"server_id": server_id, "run_id": run_id})
        with self.tracer.start_as_current_span("acp.wait", attributes=ids) as span:
            yield span

    def poll(self, server_id: str, run_id: str) -> AbstractContextManager[Span]:
        """The ``acp.poll`` span of one poll of a wait."""
        return self.tracer.start_as_current_span(
            "acp.poll", attributes=_id_attributes({"server_id": server_id, "run_id": run_id})
        )


def _id_attributes(ids: dict[str, Any]) -> dict[str, str]:
    names = {"server_id": "acp.server.id", "run_id": "acp.run.id", "operation": "acp.operation"}
    return {names[key]: value for key, value in ids.items() if key in names and value is not None}


def _error_type(failure: Exception) -> str:
    """The OTel ``error.type`` of a failed request: the HTTP status when there was one, else the failure's class."""
    status = getattr(failure, "status", None)
    return str(status) if isinstance(status, int) and status >= 400 else type(failure).__name__


@functools.cache
def default_telemetry() -> Telemetry:
    """The process's telemetry from the global providers, for parts made outside the composition root."""
    return Telemetry()
