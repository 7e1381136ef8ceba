"""The one boundary: what each MCP surface answers for each kind of failure, in safe words, as a table."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import BaseModel, ValidationError

from acp_mcp.boundary import Boundary
from acp_mcp.errors import ACPError, Envelope, InvalidArgumentError, NotFoundError, ServerError
from acp_mcp.messages import UNEXPECTED
from acp_mcp.redaction import Redactor
from acp_mcp.watching import TooManySubscriptions

KEY = "tb_secret_key_0123456789"
BASE_URL = "https://api.example.test/v1"
BOUNDARY = Boundary(base_url=BASE_URL, redact=Redactor([KEY]))
NOT_FOUND = NotFoundError("gone", status=404, envelope=Envelope(), server_id="srv_1", run_id="run_1", operation="get")
BAD_ID = InvalidArgumentError("resourceRunId", "id_reserved_characters")
UPSTREAM = ServerError(
    "boom", status=503, envelope=Envelope(message=f"echoed {KEY}"), server_id="srv_1", operation="get"
)


def raised(
    surface: Callable[[], AbstractContextManager[None]], exc: BaseException, cause: BaseException | None = None
) -> BaseException:
    """What leaves `surface` when `exc` (raised from `cause`) is raised inside it."""
    with pytest.raises(BaseException) as caught, surface():
        raise exc from cause
    return caught.value


def validation_error() -> ValidationError:
    class Arguments(BaseModel):
        waitSeconds: float

    try:
        Arguments.model_validate({"waitSeconds": "soon"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def test_a_tool_failing_at_the_api_gets_the_message_that_says_what_to_do_with_the_key_masked() -> None:
    exc = raised(lambda: BOUNDARY.tool_call("get_agent_run"), UnexpectedToolError("x"), UPSTREAM)

    assert type(exc) is ToolError and exc.__cause__ is None
    assert str(exc) == f"Error executing tool get_agent_run: {BOUNDARY.explain(UPSTREAM)}"
    assert KEY not in str(exc)


def test_arguments_that_do_not_fit_the_schema_are_named_field_by_field() -> None:
    exc = raised(lambda: BOUNDARY.tool_call("get_agent_run"), ToolError("x"), validation_error())

    assert str(exc) == (
        "Error executing tool get_agent_run: Invalid arguments for get_agent_run: waitSeconds must be a number. "
        "Fix them and call get_agent_run again (nothing was sent)."
    )


def test_a_tool_crash_is_a_generic_tool_error_and_its_traceback_goes_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="acp_mcp.boundary"):
        exc = raised(lambda: BOUNDARY.tool_call("list_agent_runs"), UnexpectedToolError("x"), KeyError(KEY))

    assert str(exc) == f"Error executing tool list_agent_runs: {UNEXPECTED}"
    (record,) = caplog.records
    assert record.getMessage() == "list_agent_runs failed unexpectedly" and record.exc_info is not None


def test_a_deliberate_tool_error_passes_unchanged() -> None:
    refusal = ToolError("cancel_agent_run is disabled")

    assert raised(lambda: BOUNDARY.tool_call("cancel_agent_run"), refusal) is refusal


@pytest.mark.parametrize(
    ("exc", "answer", "message"),
    [
        (NOT_FOUND, ResourceNotFoundError, BOUNDARY.explain(NOT_FOUND)),
        (BAD_ID, ResourceNotFoundError, BOUNDARY.explain(BAD_ID)),
        (UPSTREAM, ResourceError, BOUNDARY.explain(UPSTREAM)),
        (RuntimeError(KEY), ResourceError, UNEXPECTED),
    ],
    ids=["not-found", "bad-id", "upstream", "crash"],
)
def test_a_resource_read_answers_the_callers_mistake_as_not_found_and_the_rest_as_resource_errors(
    exc: Exception, answer: type[Exception], message: str
) -> None:
    got = raised(lambda: BOUNDARY.resource_read("run run_1"), exc)

    assert (type(got), str(got)) == (answer, message)
    assert KEY not in str(got)


@pytest.mark.parametrize(
    ("exc", "not_found", "code", "message"),
    [
        (NOT_FOUND, "Task not found.", INVALID_PARAMS, "Task not found."),
        (NOT_FOUND, None, INVALID_PARAMS, BOUNDARY.explain(NOT_FOUND)),
        (BAD_ID, None, INVALID_PARAMS, BOUNDARY.explain(BAD_ID)),
        (TooManySubscriptions("at most 16 runs"), None, INVALID_PARAMS, "at most 16 runs"),
        (UPSTREAM, "Task not found.", INTERNAL_ERROR, BOUNDARY.explain(UPSTREAM)),
        (ACPError("?"), None, INTERNAL_ERROR, UNEXPECTED),
        (RuntimeError(KEY), None, INTERNAL_ERROR, UNEXPECTED),
    ],
    ids=["not-found-worded", "not-found", "bad-id", "too-many", "upstream", "other-acp-error", "crash"],
)
def test_a_request_answers_a_json_rpc_error_invalid_params_for_the_callers_mistake(
    exc: Exception, not_found: str | None, code: int, message: str
) -> None:
    got = raised(lambda: BOUNDARY.request("tasks/get", not_found=not_found), exc)

    assert isinstance(got, MCPError)
    assert (got.error.code, got.error.message) == (code, message)
    assert KEY not in got.error.message


def test_a_protocol_error_raised_on_purpose_passes_unchanged() -> None:
    error = MCPError(INVALID_PARAMS, "read-only")

    assert raised(lambda: BOUNDARY.request("tasks/cancel"), error) is error


def test_a_lookup_that_must_not_fail_drops_its_failure_and_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="acp_mcp.boundary"), BOUNDARY.quietly("completing serverId"):
        raise UPSTREAM

    assert [record.getMessage() for record in caplog.records] == ["completing serverId failed: ServerError"]
