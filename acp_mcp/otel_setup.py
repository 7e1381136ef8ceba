"""The ``otel`` extra: the OpenTelemetry SDK, set up from the standard ``OTEL_*`` variables, and ``/metrics``.

Only `cli` imports this module, and only when the extra is installed; without it nothing of
the SDK is imported and every span and instrument of `telemetry` stays a no-op. With it:

- traces and metrics go to the exporters ``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` name
  (``otlp`` over OTLP/HTTP; ``console``, on stderr, since stdout belongs to the protocol; ``none``), by default
  ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the signal's own endpoint) is set and nowhere otherwise,
  so installing the extra alone changes nothing; ``OTEL_SDK_DISABLED=true`` turns both off. The exporters read
  their own variables (endpoint, headers, timeouts, ``OTEL_METRIC_EXPORT_INTERVAL``, ...);
- the resource is ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``, ``service.name`` ``acp-mcp`` by default;
- with ``ACP_MCP_METRICS=true`` the metrics are also kept for ``GET /metrics`` in Prometheus text
  (`Exporting.metrics_text`), whatever the variables say.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from prometheus_client import CollectorRegistry, generate_latest

from . import __version__
from .config import ConfigError, parse_bool


@dataclass(frozen=True)
class Exporting:
    """The SDK's providers as set up for this process, and the registry ``/metrics`` reads."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    registry: CollectorRegistry | None

    def metrics_text(self) -> bytes:
        """The metrics now, in Prometheus text (format 0.0.4)."""
        return generate_latest(self.registry) if self.registry is not None else b""

    def shutdown(self) -> None:
        """Send what is still buffered and stop the exporters."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def set_up(*, prometheus: bool, environ: Mapping[str, str] | None = None) -> Exporting:
    """Set the global tracer and meter providers from `environ` (default `os.environ`); `prometheus` keeps the
    metrics for ``/metrics`` too."""
    env = os.environ if environ is None else environ
    disabled = _flag(env, "OTEL_SDK_DISABLED")
    resource = _resource()
    span_exporters = [] if disabled else [_span_exporter(name) for name in _exporters(env, "TRACES")]
    readers: list[MetricReader] = []
    if not disabled:
        readers = [PeriodicExportingMetricReader(_metric_exporter(n)) for n in _exporters(env, "METRICS")]
    registry = CollectorRegistry() if prometheus else None
    if registry is not None:
        readers.append(PrometheusMetricReader(disable_target_info=True, scope_info_enabled=False, registry=registry))
    tracer_provider = None
    if span_exporters:
        tracer_provider = TracerProvider(resource=resource)
        for exporter in span_exporters:
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
    meter_provider = None
    if readers:
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
    return Exporting(tracer_provider, meter_provider, registry)


def _resource() -> Resource:
    """The process as ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` describe it, ``acp-mcp`` by default."""
    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "acp-mcp"}))
    return resource


def _flag(env: Mapping[str, str], name: str) -> bool:
    try:
        return parse_bool(env.get(name, ""))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _exporters(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporters of `signal` (``TRACES``, ``METRICS``): those ``OTEL_{signal}_EXPORTER`` names, else ``otlp`` when
    an OTLP endpoint is set for it, else none."""
    name = f"OTEL_{signal}_EXPORTER"
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    names = [part.strip().lower() for part in env.get(name, "otlp" if endpoint else "").split(",") if part.strip()]
    unknown = sorted(set(names) - {"otlp", "console", "none"})
    if unknown:
        hint = " (for Prometheus, set ACP_MCP_METRICS=true and scrape GET /metrics)" if "prometheus" in unknown else ""
        raise ConfigError(f"{name}: acp-mcp exports to otlp, console or none, not {', '.join(unknown)}{hint}")
    if "otlp" in names and env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") != "http/protobuf":
        raise ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL: the otel extra sends OTLP over http/protobuf only")
    return [name for name in names if name != "none"]


def _span_exporter(name: str) -> SpanExporter:
    return OTLPSpanExporter() if name == "otlp" else ConsoleSpanExporter(out=sys.stderr)


def _metric_exporter(name: str) -> OTLPMetricExporter | ConsoleMetricExporter:
    return OTLPMetricExporter() if name == "otlp" else ConsoleMetricExporter(out=sys.stderr)
