"""The clocks: the system one ends its sleeps on an event, the virtual one moves only when slept on."""

from __future__ import annotations

import anyio
import pytest

from acp_mcp.clock import SystemClock, VirtualClock

pytestmark = pytest.mark.anyio


async def test_a_virtual_sleep_jumps_the_clock_and_is_recorded() -> None:
    clock = VirtualClock(start=10.0, wall_start=1_800_000_000.0)

    await clock.sleep(0.3)
    await clock.sleep(-1.0)
    await clock.sleep(2.0)

    assert clock.now() == pytest.approx(12.3)
    assert clock.wall() == pytest.approx(1_800_000_002.3)
    assert clock.slept == [0.3, -1.0, 2.0]


async def test_a_virtual_sleep_with_its_event_already_set_does_not_move_the_clock() -> None:
    clock = VirtualClock(start=0.0)
    stop = anyio.Event()
    stop.set()

    await clock.sleep(5.0, until=stop)

    assert (clock.now(), clock.slept) == (0.0, [])


def test_a_virtual_clock_moves_forward_only() -> None:
    clock = VirtualClock(start=0.0)
    clock.advance(1.5)

    assert clock.now() == 1.5
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-0.1)


async def test_a_virtual_sleep_is_a_checkpoint_that_cancellation_reaches() -> None:
    clock = VirtualClock(start=0.0)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await clock.sleep(1.0)
    assert scope.cancelled_caught and clock.now() == 0.0


async def test_a_system_sleep_ends_when_its_event_is_set() -> None:
    clock = SystemClock()
    stop = anyio.Event()

    async def set_soon() -> None:
        await anyio.lowlevel.checkpoint()
        stop.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(set_soon)
            await clock.sleep(60.0, until=stop)

    assert stop.is_set()
