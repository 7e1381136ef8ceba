"""The one place where exceptions become protocol answers, for every MCP surface.

- Tools (`tool_call`): the failure reaches the model as a tool error (``isError: true``) whose text
  says what to do next: an `ACPError` in the words `messages` writes, arguments that do not fit the
  schema field by field, anything unexpected as a generic message with the traceback in the log.
- Resources (`resource_read`): a run the caller named wrongly is ``-32602`` (resource not found),
  a failure reaching the API a resource error, anything else a generic one.
- Other requests (`request`: ``tasks/*``, subscriptions): a JSON-RPC error, ``-32602`` for the
  caller's mistake (a task or run not found, a limit reached), ``-32603`` otherwise.
- Completions (`quietly`): never an error; the failure is logged and the completion is empty.

Every message passes the redactor: no secret, no upstream body and no traceback reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import ValidationError

from .errors import ACPError, InvalidArgumentError, NotFoundError
from .messages import UNEXPECTED, invalid_arguments, safe_message
from .redaction import Redactor
from .watching import TooManySubscriptions

logger = logging.getLogger(__name__)


class Boundary:
    """Turns what a handler raised into the answer its protocol surface gives, in safe words."""

    def __init__(self, *, base_url: str, redact: Redactor) -> None:
        self.base_url = base_url
        self.redact = redact

    def explain(self, exc: ACPError) -> str:
        """The model-facing message for `exc`, secrets masked."""
        return safe_message(exc, base_url=self.base_url, redact=self.redact)

    @contextmanager
    def tool_call(self, name: str) -> Iterator[None]:
        """Around ``MCPServer.call_tool``: the SDK's tool errors, reworded where the model needs more."""
        try:
            yield
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                message = invalid_arguments(name, cause.errors(include_url=False))
            elif isinstance(cause, ACPError):
                logger.info("%s failed: %s", name, cause)
                message = self.explain(cause)
            elif isinstance(exc, UnexpectedToolError):
                logger.error("%s failed unexpectedly", name, exc_info=cause or exc)
                message = UNEXPECTED
            else:
                raise
            raise ToolError(f"Error executing tool {name}: {message}") from None

    @contextmanager
    def resource_read(self, uri: str) -> Iterator[None]:
        """Around a resource read."""
        try:
            yield
        except (NotFoundError, InvalidArgumentError) as exc:  # the caller's mistake: -32602, with the URI
            raise ResourceNotFoundError(self.explain(exc)) from None
        except ACPError as exc:
            raise ResourceError(self.explain(exc)) from None
        except Exception:
            logger.exception("reading %s failed unexpectedly", uri)
            raise ResourceError(UNEXPECTED) from None

    @contextmanager
    def request(self, method: str, *, not_found: str | None = None) -> Iterator[None]:
        """Around a request handler whose failure is a JSON-RPC error; `not_found` words a 404 as the caller's."""
        try:
            yield
        except MCPError:
            raise
        except TooManySubscriptions as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        except NotFoundError as exc:
            if not_found is None:
                raise MCPError(INVALID_PARAMS, self.explain(exc)) from None
            raise MCPError(INVALID_PARAMS, not_found) from None
        except InvalidArgumentError as exc:
            raise MCPError(INVALID_PARAMS, self.explain(exc)) from None
        except ACPError as exc:
            logger.warning("%s failed: %s", method, exc)
            raise MCPError(INTERNAL_ERROR, self.explain(exc)) from None
        except Exception:
            logger.exception("%s failed unexpectedly", method)
            raise MCPError(INTERNAL_ERROR, UNEXPECTED) from None

    @contextmanager
    def quietly(self, what: str) -> Iterator[None]:
        """Around a lookup that must never fail its caller (completions): the failure is logged and dropped."""
        try:
            yield
        except Exception as exc:
            logger.info("%s failed: %s", what, type(exc).__name__)
