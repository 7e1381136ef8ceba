"""Prompt, quiet shutdown: SIGTERM and SIGINT end the server and cancel the calls in flight; a deadline for the exit."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable

import anyio

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signalled(
    serve: Callable[[], Awaitable[None]],
    *,
    on_signal: Callable[[signal.Signals], None] | None = None,
    on_second: Callable[[], None] | None = None,
) -> None:
    """Run `serve` until it returns or a signal arrives; then cancel it (after `on_signal`, if given).

    With `on_second`, `serve` goes on after the first signal (`on_signal(signal)` starts its shutdown) and a
    second signal calls `on_second` to end it at once.
    """
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            with anyio.open_signal_receiver(*SIGNALS) as received:
                first = True
                async for signum in received:
                    name = signal.Signals(signum)
                    logger.info("received %s; shutting down", name.name)
                    if first and on_signal is not None:
                        on_signal(name)
                    elif not first and on_second is not None:
                        on_second()
                    else:
                        group.cancel_scope.cancel()
                    if not first or on_second is None:
                        return
                    first = False

        group.start_soon(watch)
        await serve()
        group.cancel_scope.cancel()


def exit_by(seconds: float) -> threading.Timer:
    """Make sure the process ends within `seconds`: past them, whatever is still closing is abandoned (exit code 0).

    The orderly exit normally takes well under a second; this bounds it whatever is open (thousands of
    sessions, a client that stopped reading). A daemon timer, so an orderly exit is never held up by it.
    """

    def abandon() -> None:
        logger.warning("still closing %gs after the drain ended; exiting now", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    timer = threading.Timer(seconds, abandon)
    timer.daemon = True
    timer.start()
    return timer
