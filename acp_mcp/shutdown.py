"""Prompt, quiet shutdown: SIGTERM and SIGINT end the server and cancel the calls in flight."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable

import anyio

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signalled(
    serve: Callable[[], Awaitable[None]],
    *,
    on_signal: Callable[[], None] | None = None,
    on_second: Callable[[], None] | None = None,
) -> None:
    """Run `serve` until it returns or a signal arrives; then cancel it (after `on_signal`, if given).

    With `on_second`, `serve` goes on after the first signal (`on_signal` starts its shutdown) and a
    second signal calls `on_second` to end it at once.
    """
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            with anyio.open_signal_receiver(*SIGNALS) as received:
                handlers = [on_signal, on_second] if on_second is not None else [on_signal]
                async for signum in received:
                    logger.info("received %s; shutting down", signal.Signals(signum).name)
                    handler = handlers.pop(0)
                    if handler is None:
                        group.cancel_scope.cancel()
                    else:
                        handler()
                    if not handlers:
                        return

        group.start_soon(watch)
        await serve()
        group.cancel_scope.cancel()
