"""The wait loop without a server: `PollPolicy.intervals`, `wait_for_run` on a `VirtualClock`, progress messages."""

from __future__ import annotations

from itertools import islice

import anyio
import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.limits import FIRST_POLL_SECONDS, MAX_POLL_SECONDS, POLL_GROWTH
from acp_mcp.models import Event, Run, RunEnvelope
from acp_mcp.waiting import PollPolicy, ProgressTicker, wait_for_run


def test_the_default_intervals_grow_by_half_from_half_a_second_to_eight_seconds() -> None:
    assert (FIRST_POLL_SECONDS, POLL_GROWTH, MAX_POLL_SECONDS) == (0.5, 1.5, 8.0)
    assert list(islice(PollPolicy().intervals(), 10)) == [
        0.5,
        0.75,
        1.125,
        1.6875,
        2.53125,
        3.796875,
        5.6953125,
        8.0,
        8.0,
        8.0,
    ]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (PollPolicy(first_interval=1.0, factor=1.0, max_interval=8.0), [1.0, 1.0, 1.0, 1.0]),
        (PollPolicy(first_interval=1.0, factor=2.0, max_interval=5.0), [1.0, 2.0, 4.0, 5.0]),
        (PollPolicy(first_interval=0.02, factor=1.5, max_interval=0.04), [0.02, 0.03, 0.04, 0.04]),
    ],
    ids=["constant", "doubling-to-a-cap", "capped-after-two"],
)
def test_intervals_grow_geometrically_then_stay_at_the_cap(policy: PollPolicy, expected: list[float]) -> None:
    assert list(islice(policy.intervals(), 4)) == pytest.approx(expected)


class Polls:
    """A run polled through `wait_for_run`: running until the poll numbered `ends_at` (never, when None)."""

    def __init__(self, ends_at: int | None = None) -> None:
        self.ends_at = ends_at
        self.count = 0
        self.seen: list[RunEnvelope] = []

    async def poll(self) -> RunEnvelope:
        self.count += 1
        status = "completed" if self.count == self.ends_at else "running"
        return RunEnvelope(run=Run(id="run_1", status=status), events=[])

    async def wait(self, clock: VirtualClock, until: float, stop: anyio.Event | None = None) -> RunEnvelope:
        """`wait_for_run` with the default policy, from a running run."""
        running = RunEnvelope(run=Run(id="run_1", status="running"), events=[])
        return await wait_for_run(
            running, self.poll, until=until, policy=PollPolicy(), clock=clock, seen=self.seen.append, stop=stop
        )


@pytest.mark.anyio
async def test_a_minute_of_waiting_costs_thirteen_polls_the_last_one_as_the_wait_ends() -> None:
    clock, polls = VirtualClock(), Polls()
    until = clock.now() + 60

    latest = await polls.wait(clock, until)

    assert clock.slept == [0.5, 0.75, 1.125, 1.6875, 2.53125, 3.796875, 5.6953125, 8.0, 8.0, 8.0, 8.0, 8.0, 3.9140625]
    assert (polls.count, clock.now()) == (13, until)
    assert latest.run is not None and latest.run.status == "running"
    assert polls.seen[-1] is latest and len(polls.seen) == 13


@pytest.mark.anyio
async def test_the_wait_ends_at_the_poll_that_sees_the_run_finished() -> None:
    clock, polls = VirtualClock(), Polls(ends_at=3)

    latest = await polls.wait(clock, clock.now() + 60)

    assert clock.slept == [0.5, 0.75, 1.125]
    assert latest.run is not None and latest.run.status == "completed"
    assert [envelope.run.status for envelope in polls.seen if envelope.run] == ["running", "running", "completed"]


@pytest.mark.anyio
async def test_a_wait_that_has_already_ended_still_polls_once() -> None:
    clock, polls = VirtualClock(), Polls()

    await polls.wait(clock, clock.now())

    assert (clock.slept, polls.count) == ([0.0], 1)


@pytest.mark.anyio
async def test_a_draining_server_ends_the_wait_at_once_with_one_last_poll() -> None:
    clock, polls = VirtualClock(), Polls()
    stop = anyio.Event()
    stop.set()

    await polls.wait(clock, clock.now() + 60, stop)

    assert (clock.slept, polls.count) == ([], 1)


async def _no_report(elapsed: float, total: float, message: str) -> None:
    """A progress report nobody reads."""


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (RunEnvelope(run=Run(id="run_1", status="queued"), events=[]), "run run_1: queued"),
        (
            RunEnvelope(run=Run(id="run_1", status="running"), events=[Event(role="assistant", content="step  1\n")]),
            "run run_1: running — latest: [assistant] step 1",
        ),
        (
            RunEnvelope(run=Run(id="run_1", status="running"), events=[Event(content="x" * 121)]),
            "run run_1: running — latest: [?] " + "x" * 120 + "…",
        ),
        (RunEnvelope(run=Run(id="r" * 301, status="running")), "run " + "r" * 300 + "…: running"),
        (RunEnvelope(), "run ?: "),
    ],
    ids=["no-event", "latest-event-on-one-line", "latest-event-cut", "long-id-cut", "no-run"],
)
def test_a_progress_message_gives_the_run_its_status_and_its_latest_event_on_one_line(
    envelope: RunEnvelope, message: str
) -> None:
    ticker = ProgressTicker(_no_report, clock=VirtualClock(), began=0.0, total=10.0, interval=5.0, message="starting")

    ticker.update(envelope)

    assert ticker.message == message
