"""The ACP error envelope the sandbox answers with, and the exception that carries it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

JsonObject = dict[str, Any]

STABLE_PHRASES = {413: "Payload Too Large", 422: "Unprocessable Entity"}
"""Reason phrases that differ between Python versions, pinned to the older wording."""


def error_body(
    status: int,
    message: str | None = None,
    code: str | None = None,
    details: list[dict[str, str]] | None = None,
) -> JsonObject:
    """Build the ACP error envelope for an HTTP status."""
    phrase = STABLE_PHRASES.get(status) or HTTPStatus(status).phrase
    body: JsonObject = {"error": phrase, "message": message or phrase}
    if code is not None:
        body["code"] = code
    if details is not None:
        body["details"] = details
    return body


class ApiError(Exception):
    """An error answered with the ACP error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message, code, details)


def validation_error(field_name: str, message: str) -> ApiError:
    """Return a 400 VALIDATION_FAILED error about one field."""
    details = [{"field": field_name, "message": message}]
    return ApiError(400, f"{field_name} {message}", "VALIDATION_FAILED", details)
