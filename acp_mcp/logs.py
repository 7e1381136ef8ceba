"""Log lines on stderr: plain text by default, or one JSON object per line (``ACP_MCP_LOG_FORMAT=json``).

A JSON line holds ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger`` and ``message``, and, when the
line is written inside a span (see `telemetry`), that span's ``trace_id`` and ``span_id`` in the W3C hex
spelling, so a log line finds its trace. The message is redacted first (`redaction.RedactingFilter`, which
also folds a traceback into it).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from opentelemetry import trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        return json.dumps(line, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``ACP_MCP_LOG_FORMAT``: ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
