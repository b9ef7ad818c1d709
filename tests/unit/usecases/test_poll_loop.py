"""The poll loop: many polls per invocation, stopping before the deadline, slowing down
on rate limits, re-registering a forgotten stack, and surviving transient errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fargate_stack.domain.rules import StackTags
from fargate_stack.errors import (
    ConfigurationError,
    RateLimitedError,
    StackNotRegisteredError,
    TransientError,
)
from fargate_stack.observability import Metric, metrics
from fargate_stack.usecases.poll import LoopTiming, PollConfig, PollJobs, run_polls
from fargate_stack.usecases.poller_lease import LeaseTiming, PollerLease
from tests.support.fakes import (
    FakeClock,
    FakeLaunchQueue,
    FakeLease,
    FakeStacksApi,
    FakeTasks,
    Page,
)

CONFIG = PollConfig(
    stack_key="s",
    queue_key="fargate",
    tags=StackTags.from_config("fargate", {}),
    page_size=100,
    max_pages=1,
    reservation_expiry_seconds=900,
    max_in_flight=0,
    cluster="bk",
)


class FlakyApi(FakeStacksApi):
    """Raises the queued errors from the listing, one per poll, then behaves."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__(pages=[[]])
        self.errors = errors
        self.list_calls = 0

    def iter_scheduled_jobs(
        self, *, stack_key: str, queue_key: str, page_size: int | None, max_pages: int | None
    ) -> Iterator[Page]:
        self.list_calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().iter_scheduled_jobs(
            stack_key=stack_key, queue_key=queue_key, page_size=page_size, max_pages=max_pages
        )


def run(
    api: FakeStacksApi,
    budget: float = 60,
    registered: bool = True,
    lease: FakeLease | None = None,
):
    clock = FakeClock()
    poller = PollJobs(
        api=api, queue=FakeLaunchQueue(), tasks=FakeTasks(), clock=clock, config=CONFIG
    )
    if registered:  # a container that registered in an earlier invocation
        poller.register()
        api.registered.clear()
    summaries = run_polls(
        poller,
        clock,
        LoopTiming(interval_seconds=2, safety_margin_seconds=10),
        lambda: budget - clock.mono,
        PollerLease(lease or FakeLease(), clock, "invocation-1", LeaseTiming()),
    )
    return summaries, clock


def test_polls_every_interval_until_the_safety_margin() -> None:
    summaries, clock = run(FakeStacksApi(pages=[[]]), budget=60)
    # 60 s budget, 10 s margin, 2 s interval: polls at t=0,2,...,48 then stops.
    assert len(summaries) == 25
    assert clock.mono <= 50
    assert set(clock.slept) == {2}


def test_registers_first_when_the_container_is_new() -> None:
    api = FakeStacksApi(pages=[[]])
    run(api, budget=15, registered=False)
    assert api.registered == [{"key": "s", "type": "custom", "queue_key": "fargate"}]


def test_rate_limit_waits_the_servers_retry_after() -> None:
    api = FlakyApi([RateLimitedError("429", retry_after=7.0)])
    summaries, clock = run(api, budget=30)
    assert clock.slept[0] == 7.0
    assert api.list_calls == len(summaries) + 1


def test_transient_errors_do_not_end_the_loop() -> None:
    api = FlakyApi([TransientError("503"), TransientError("connection reset")])
    summaries, _ = run(api, budget=30)
    assert api.list_calls == len(summaries) + 2
    assert len(summaries) > 0


def test_a_forgotten_stack_is_registered_again() -> None:
    api = FlakyApi([StackNotRegisteredError("404 no stack")])
    run(api, budget=30)
    assert len(api.registered) == 1


def test_errors_a_retry_cannot_fix_fail_the_invocation() -> None:
    api = FlakyApi([ConfigurationError("token rejected")])
    with pytest.raises(ConfigurationError):
        run(api)


def test_a_container_registers_once_across_invocations() -> None:
    # Given a poller that lives as long as its container
    api = FakeStacksApi(pages=[[]])
    clock = FakeClock()
    poller = PollJobs(
        api=api, queue=FakeLaunchQueue(), tasks=FakeTasks(), clock=clock, config=CONFIG
    )
    timing = LoopTiming(interval_seconds=2, safety_margin_seconds=10)
    # When two invocations run their poll loops
    for _ in range(2):
        deadline = clock.mono + 15

        def remaining(deadline: float = deadline) -> float:
            return deadline - clock.mono

        run_polls(
            poller, clock, timing, remaining, PollerLease(FakeLease(), clock, "i", LeaseTiming())
        )
    # Then the stack was registered by the first one only
    assert len(api.registered) == 1


def test_the_lease_is_claimed_then_renewed_every_20_seconds_not_every_poll() -> None:
    # Given a free lease, when one invocation polls for 50 s (25 polls)
    lease = FakeLease()
    summaries, _ = run(FakeStacksApi(pages=[[]]), budget=60, lease=lease)
    # Then it wrote the lease at t=0, 20 and 40 only, and released it at the end
    assert len(summaries) == 25
    assert lease.claims == [("invocation-1", True)] * 3
    assert lease.released == ["invocation-1"]


def test_an_invocation_that_finds_the_lease_held_polls_nothing() -> None:
    # Given another invocation's lease that lasts past this invocation's deadline
    lease = FakeLease(holder="invocation-0", until=10_000_000_000)
    api = FakeStacksApi(pages=[[]])
    summaries, _ = run(api, budget=30, lease=lease)
    # Then it never listed, tried again each interval, and released nothing of the other's
    assert summaries == []
    assert {won for _, won in lease.claims} == {False}
    assert len(lease.claims) > 1
    assert lease.released == []
    assert lease.holder == "invocation-0"


def test_a_released_or_expired_lease_is_taken_over_within_one_interval() -> None:
    # Given a lease that expires 5 s into this invocation
    clock_start = FakeClock().current.timestamp()
    lease = FakeLease(holder="invocation-0", until=clock_start + 5)
    summaries, _ = run(FakeStacksApi(pages=[[]]), budget=30, lease=lease)
    # Then this invocation polls from the first interval after the expiry (t=6 s on)
    assert lease.holder == "invocation-1"
    assert len(summaries) == 7  # t = 6, 8, ..., 18


def test_a_lease_that_cannot_be_confirmed_is_not_polled_under() -> None:
    class Unreachable(FakeLease):
        def claim(self, holder: str, *, now: float, seconds: float) -> bool:
            raise TransientError("DynamoDB throttled")

    metrics.clear_metrics()
    summaries, _ = run(FakeStacksApi(pages=[[]]), budget=20, lease=Unreachable())
    assert summaries == []
    # every refused claim is counted, one per interval it tried
    assert len(metrics.metric_set[Metric.POLLER_LEASE_ERRORS]["Value"]) == 5
    metrics.clear_metrics()


def test_lease_timing_must_renew_before_it_expires() -> None:
    with pytest.raises(ValueError, match="renew_every"):
        LeaseTiming(seconds=20, renew_every=30)


class CountingStopper:
    """A sweep of starting tasks (StopStartingTasks' one method), counting its calls."""

    def __init__(self, errors: list[Exception] | None = None) -> None:
        self.at: list[float] = []
        self.errors = errors or []
        self.clock: FakeClock | None = None

    def sweep(self) -> None:
        self.at.append(self.clock.mono if self.clock else -1)
        if self.errors:
            raise self.errors.pop(0)


def run_with_stopper(stopper: CountingStopper, lease: FakeLease | None = None) -> FakeClock:
    clock = FakeClock()
    stopper.clock = clock
    api = FakeStacksApi(pages=[[]])
    poller = PollJobs(
        api=api, queue=FakeLaunchQueue(), tasks=FakeTasks(), clock=clock, config=CONFIG
    )
    run_polls(
        poller,
        clock,
        LoopTiming(interval_seconds=2, safety_margin_seconds=10, sweep_interval_seconds=5),
        lambda: 60 - clock.mono,
        PollerLease(lease or FakeLease(), clock, "invocation-1", LeaseTiming()),
        stopper=stopper,  # type: ignore[arg-type]
    )
    return clock


def test_the_lease_holder_sweeps_starting_tasks_every_sweep_interval() -> None:
    stopper = CountingStopper()
    run_with_stopper(stopper)
    # Polls at 0, 2, 4, ... 48 s; a sweep at the first poll at least 5 s after the last.
    assert stopper.at == [0, 6, 12, 18, 24, 30, 36, 42, 48]


def test_a_failed_sweep_does_not_end_the_loop() -> None:
    stopper = CountingStopper(
        errors=[
            TransientError("ECS throttled"),
            RateLimitedError("429", retry_after=1.0),
            ConfigurationError("Buildkite rejected the request: HTTP 400"),
        ]
    )
    run_with_stopper(stopper)
    assert len(stopper.at) == 9
    assert metrics.metric_set[Metric.STOP_SWEEP_ERRORS]["Value"] == [1.0, 1.0, 1.0]


def test_an_invocation_without_the_lease_does_not_sweep() -> None:
    stopper = CountingStopper()
    run_with_stopper(stopper, FakeLease(holder="another-invocation", until=10**12))
    assert stopper.at == []
