"""Prompt, quiet shutdown: SIGTERM and SIGINT end the server and cancel the calls in flight."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable

import anyio

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signalled(
    serve: Callable[[], Awaitable[None]], *, on_signal: Callable[[], None] | None = None
) -> None:
    """Run `serve` until it returns or a signal arrives; then cancel it (after `on_signal`, if given)."""
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            with anyio.open_signal_receiver(*SIGNALS) as received:
                async for signum in received:
                    logger.info("received %s; shutting down", signal.Signals(signum).name)
                    if on_signal is None:
                        group.cancel_scope.cancel()
                    else:
                        on_signal()
                    return

        group.start_soon(watch)
        await serve()
        group.cancel_scope.cancel()
