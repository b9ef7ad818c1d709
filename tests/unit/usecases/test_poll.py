"""The poll use case with in-memory ports: what gets reserved and enqueued, and why not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fargate_stack.domain.rules import StackTags
from fargate_stack.errors import TransientError
from fargate_stack.usecases.poll import PollConfig, PollJobs
from tests.support.fakes import (
    T0,
    FakeClock,
    FakeLaunchQueue,
    FakeStacksApi,
    FakeTasks,
    job,
)


def config(**overrides: object) -> PollConfig:
    fields: dict[str, object] = {
        "stack_key": "fargate-prod",
        "queue_key": "fargate",
        "tags": StackTags.from_config("fargate", {"os": "linux"}),
        "page_size": 100,
        "max_pages": 2,
        "reservation_expiry_seconds": 900,
        "max_in_flight": 0,
        "cluster": "bk",
    }
    fields.update(overrides)
    return PollConfig(**fields)  # type: ignore[arg-type]


def poller(
    api: FakeStacksApi, queue: FakeLaunchQueue, tasks: FakeTasks | None = None, **cfg: object
):
    return PollJobs(
        api=api, queue=queue, tasks=tasks or FakeTasks(), clock=FakeClock(), config=config(**cfg)
    )


def test_matching_jobs_are_reserved_in_priority_order_and_enqueued() -> None:
    # Given three matching jobs and one for another OS
    low, high, old = job(priority=0), job(priority=5), job(priority=0, age=60)
    windows = job(rules=["queue=fargate", "os=windows"])
    api, queue = FakeStacksApi(pages=[[low, high], [old, windows]]), FakeLaunchQueue()
    # When one poll runs
    summary = poller(api, queue).poll_once()
    # Then only the matching jobs are reserved, highest priority then oldest first
    assert api.reserve_calls == [[high.id, old.id, low.id]]
    assert [str(m.job_uuid) for m in queue.sent] == [high.id, old.id, low.id]
    assert summary.skipped == {"tag_mismatch": 1}
    assert (summary.listed, summary.matched, summary.reserved, summary.enqueued) == (4, 3, 3, 3)


def test_message_carries_the_reservation_window() -> None:
    api, queue = (
        FakeStacksApi(pages=[[job(rules=["queue=fargate", "os=linux"])]]),
        FakeLaunchQueue(),
    )
    poller(api, queue).poll_once()
    (message,) = queue.sent
    assert message.reserved_at == T0
    assert message.reservation_expires_at == T0 + timedelta(seconds=900)
    assert message.agent_query_rules == ["queue=fargate", "os=linux"]
    assert message.stack_key == "fargate-prod"


def test_message_carries_the_listings_pipeline_uuid() -> None:
    # The listing's pipeline.uuid (Buildkite's) is what picks a job's task role; a job
    # listed without one, or with a malformed one, gets none (so the default role).
    pipeline = "0C8F1AB4-4A53-4A9F-BB6C-5D0E0D4A1C11"
    mapped, bare, garbled = job(pipeline=pipeline), job(), job(pipeline="not-a-uuid")
    api, queue = FakeStacksApi(pages=[[mapped, bare, garbled]]), FakeLaunchQueue()
    poller(api, queue).poll_once()
    by_job = {str(m.job_uuid): m.pipeline_uuid for m in queue.sent}
    assert str(by_job[mapped.id]) == pipeline.lower()
    assert by_job[bare.id] is None
    assert by_job[garbled.id] is None


def test_jobs_not_reserved_are_never_enqueued() -> None:
    mine, taken = job(), job()
    api, queue = FakeStacksApi(pages=[[mine, taken]], refuse={taken.id}), FakeLaunchQueue()
    summary = poller(api, queue).poll_once()
    assert [str(m.job_uuid) for m in queue.sent] == [mine.id]
    assert (summary.reserved, summary.not_reserved) == (1, 1)


def test_paused_queue_reserves_nothing() -> None:
    api, queue = FakeStacksApi(pages=[[job(), job()]], paused=True), FakeLaunchQueue()
    summary = poller(api, queue).poll_once()
    assert summary.paused
    assert api.reserve_calls == []
    assert queue.sent == []
    assert summary.listed == 2


def test_in_flight_limit_counts_tasks_and_queued_messages() -> None:
    jobs = [job(priority=p) for p in (1, 2, 3, 4)]
    api, queue = FakeStacksApi(pages=[jobs]), FakeLaunchQueue(waiting=1)
    summary = poller(api, queue, FakeTasks(running=1), max_in_flight=4).poll_once()
    assert api.reserve_calls == [[jobs[3].id, jobs[2].id]]
    assert (summary.in_flight, summary.deferred) == (2, 2)


def test_full_capacity_makes_no_reserve_call() -> None:
    api, queue = FakeStacksApi(pages=[[job()]]), FakeLaunchQueue()
    summary = poller(api, queue, FakeTasks(running=3), max_in_flight=3).poll_once()
    assert api.reserve_calls == []
    assert summary.deferred == 1


def test_duplicates_across_pages_are_reserved_once() -> None:
    repeated = job()
    api, queue = FakeStacksApi(pages=[[repeated], [repeated]]), FakeLaunchQueue()
    poller(api, queue).poll_once()
    assert api.reserve_calls == [[repeated.id]]


def test_a_job_that_cannot_be_enqueued_is_logged_and_left_to_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok, stuck = job(priority=1), job()
    api, queue = FakeStacksApi(pages=[[ok, stuck]]), FakeLaunchQueue(fail={stuck.id})
    summary = poller(api, queue).poll_once()
    assert (summary.enqueued, summary.enqueue_failed) == (1, 1)
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "reservation will expire" in record.getMessage()
    assert getattr(record, "job_uuid", None) == stuck.id


def test_max_pages_bounds_the_listing() -> None:
    pages = [[job()] for _ in range(5)]
    api, queue = FakeStacksApi(pages=pages), FakeLaunchQueue()
    summary = poller(api, queue, max_pages=2).poll_once()
    assert summary.listed == 2


def test_given_a_reserve_answer_was_lost_then_the_next_poll_asks_for_those_jobs_again() -> None:
    first, second = job(priority=1), job()
    api = FakeStacksApi(pages=[[first, second]], lose_reserve_answers=1)
    queue = FakeLaunchQueue()
    clock = FakeClock()
    polls = PollJobs(api=api, queue=queue, tasks=FakeTasks(), clock=clock, config=config())
    with pytest.raises(TransientError):
        polls.poll_once()  # Buildkite reserved both; the answer never arrived
    api.pages = [[]]  # reserved jobs are not listed

    summary = polls.poll_once()

    assert api.reserve_calls[-1] == [first.id, second.id]
    assert [str(m.job_uuid) for m in queue.sent] == [first.id, second.id]
    assert (summary.reserve_retried, summary.reserved, summary.enqueued) == (2, 2, 2)
    assert polls.poll_once().reserve_retried == 0  # answered: forgotten


def test_unanswered_jobs_are_forgotten_once_their_reservation_would_have_expired() -> None:
    lost = job()
    api = FakeStacksApi(pages=[[lost]], lose_reserve_answers=1)
    clock = FakeClock()
    polls = PollJobs(
        api=api, queue=FakeLaunchQueue(), tasks=FakeTasks(), clock=clock, config=config()
    )
    with pytest.raises(TransientError):
        polls.poll_once()
    api.pages = [[]]
    clock.mono += 901  # past reservation_expiry_seconds: Buildkite lists it again by itself

    assert polls.poll_once().reserve_retried == 0
    assert len(api.reserve_calls) == 1


def test_an_unanswered_job_that_is_listed_again_is_reserved_once() -> None:
    lost = job()
    api = FakeStacksApi(pages=[[lost]], lose_reserve_answers=1)
    polls = PollJobs(
        api=api, queue=FakeLaunchQueue(), tasks=FakeTasks(), clock=FakeClock(), config=config()
    )
    with pytest.raises(TransientError):
        polls.poll_once()

    summary = polls.poll_once()  # the reserve never happened: the job is listed again

    assert api.reserve_calls[-1] == [lost.id]
    assert (summary.reserve_retried, summary.reserved) == (0, 1)
