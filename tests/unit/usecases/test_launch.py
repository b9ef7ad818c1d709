"""The launch use case: one task per job, fallbacks, and failing back what cannot run."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fargate_stack.domain.launch import Capacity, CapacityStrategy, LaunchConfig
from fargate_stack.errors import (
    AlreadyLaunchedError,
    CapacityUnavailableError,
    PermanentError,
    TransientError,
)
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.usecases.launch import LaunchJob, LaunchOptions
from tests.support.fakes import (
    T0,
    FakeClock,
    FakeFallbacks,
    FakeStacksApi,
    FakeTasks,
    JobData,
)
from tests.support.launch_config import launch_config

CONFIG = launch_config()


def message(rules: list[str] | None = None, pipeline: str | None = None) -> LaunchMessage:
    return LaunchMessage(
        pipeline_uuid=uuid.UUID(pipeline) if pipeline else None,
        job_uuid=uuid.uuid4(),
        stack_key="fargate-prod",
        scheduled_at=T0 - timedelta(seconds=3),
        reserved_at=T0 - timedelta(seconds=1),
        reservation_expires_at=T0 + timedelta(seconds=899),
        agent_query_rules=rules or ["queue=fargate"],
    )


def world(
    msg: LaunchMessage,
    strategy: CapacityStrategy = CapacityStrategy.SPOT,
    clock: FakeClock | None = None,
    fallbacks: FakeFallbacks | None = None,
    config: LaunchConfig = CONFIG,
) -> tuple[LaunchJob, FakeStacksApi, FakeTasks]:
    api = FakeStacksApi()
    job_uuid = str(msg.job_uuid)
    api.jobs_data[job_uuid] = JobData(job_uuid, {"BUILDKITE_PIPELINE_SLUG": "app"}, "make")
    clock = clock or FakeClock()
    tasks = FakeTasks(clock=clock)
    launcher = LaunchJob(
        api=api,
        tasks=tasks,
        fallbacks=fallbacks or FakeFallbacks(),
        clock=clock,
        options=LaunchOptions(config, strategy),
    )
    return launcher, api, tasks


def test_launches_one_task_and_notifies_the_job() -> None:
    msg = message()
    launcher, api, tasks = world(msg)
    result = launcher.launch(msg)
    assert result["outcome"] == "launched"
    (spec,) = tasks.launched
    assert spec.job_uuid == str(msg.job_uuid)
    assert spec.capacity is Capacity.SPOT
    assert api.notifications == []  # sent at the end of the invocation
    launcher.flush_notifications()
    assert api.notifications == [
        (
            str(msg.job_uuid),
            "Fargate task t1 starting, 1024 CPU units / 2048 MiB, spot; log stream job/agent/t1",
        )
    ]


def test_spot_without_capacity_falls_back_to_on_demand() -> None:
    msg = message()
    launcher, _, tasks = world(msg, CapacityStrategy.SPOT_WITH_FALLBACK)
    tasks.errors = [CapacityUnavailableError("Capacity is unavailable")]
    result = launcher.launch(msg)
    assert result["outcome"] == "launched"
    (spec,) = tasks.launched
    assert spec.capacity is Capacity.ON_DEMAND
    assert spec.client_token.endswith("-od")


def test_spot_only_waits_for_capacity() -> None:
    msg = message()
    launcher, api, tasks = world(msg, CapacityStrategy.SPOT)
    tasks.errors = [CapacityUnavailableError("Capacity is unavailable")]
    with pytest.raises(CapacityUnavailableError):
        launcher.launch(msg)
    assert tasks.launched == []
    assert api.failed == {}


def test_transient_errors_propagate_for_redelivery() -> None:
    msg = message()
    launcher, api, tasks = world(msg)
    tasks.errors = [TransientError("Rate exceeded")]
    with pytest.raises(TransientError):
        launcher.launch(msg)
    assert api.failed == {}


def test_an_impossible_size_is_failed_back_with_the_reason() -> None:
    msg = message(["queue=fargate", "cpu=4096"])
    launcher, api, tasks = world(msg)
    result = launcher.launch(msg)
    assert result == {"outcome": "failed_back", "reason": "size_not_allowed"}
    detail, exit_status = api.failed[str(msg.job_uuid)]
    assert "does not allow jobs to choose their size" in detail
    assert exit_status == -1
    assert tasks.launched == []


def test_ecs_refusal_is_failed_back() -> None:
    msg = message()
    launcher, api, tasks = world(msg)
    tasks.errors = [PermanentError("ECS refused (ClientException)", reason="ecs_rejected")]
    assert launcher.launch(msg)["outcome"] == "failed_back"
    assert "ClientException" in api.failed[str(msg.job_uuid)][0]


def test_a_gone_job_is_neither_launched_nor_failed() -> None:
    msg = message()
    launcher, api, tasks = world(msg)
    api.jobs_data.clear()
    assert launcher.launch(msg) == {"outcome": "job_gone"}
    assert tasks.launched == []
    assert api.failed == {}


def test_given_a_crash_after_run_task_when_redelivered_then_ecs_answers_the_first_task() -> None:
    msg = message()
    clock = FakeClock()
    launcher, api, tasks = world(msg, clock=clock)
    first = launcher.launch(msg)  # the crash: the ledger never saw this result
    clock.current += timedelta(seconds=90)  # the record's visibility timeout
    again = launcher.launch(msg, redelivered=True)
    assert again == {"outcome": "already_launched", "task_arn": first["task_arn"]}
    assert len(tasks.launched) == 1
    launcher.flush_notifications()
    assert len(api.notifications) == 1  # the replay is not announced as a second start


def test_given_a_crash_after_the_fallback_when_redelivered_then_the_fallback_is_repeated() -> None:
    msg = message()
    clock, fallbacks = FakeClock(), FakeFallbacks()
    launcher, _, tasks = world(msg, CapacityStrategy.SPOT_WITH_FALLBACK, clock, fallbacks)
    tasks.errors = [CapacityUnavailableError("Capacity is unavailable")]
    first = launcher.launch(msg)  # Spot refused, on-demand started; then the crash
    assert fallbacks.marked == {str(msg.job_uuid)}
    clock.current += timedelta(seconds=90)
    again = launcher.launch(msg, redelivered=True)
    assert again == {"outcome": "already_launched", "task_arn": first["task_arn"]}
    assert [spec.capacity for spec in tasks.launched] == [Capacity.ON_DEMAND]


def test_without_the_fallback_mark_a_redelivery_would_start_a_second_task() -> None:
    """The control for the test above: Spot's token never started a task, so only the
    mark keeps a redelivery (Spot has room now) from launching again."""
    msg = message()
    clock, fallbacks = FakeClock(), FakeFallbacks()
    launcher, _, tasks = world(msg, CapacityStrategy.SPOT_WITH_FALLBACK, clock, fallbacks)
    tasks.errors = [CapacityUnavailableError("Capacity is unavailable")]
    launcher.launch(msg)
    fallbacks.marked.clear()  # the mark lost
    clock.current += timedelta(seconds=90)
    assert launcher.launch(msg, redelivered=True)["outcome"] == "launched"
    assert len(tasks.launched) == 2


def test_a_first_delivery_of_a_fresh_job_does_not_read_the_fallback_ledger() -> None:
    msg = message()
    fallbacks = FakeFallbacks()
    launcher, _, _ = world(msg, CapacityStrategy.SPOT_WITH_FALLBACK, fallbacks=fallbacks)
    assert launcher.launch(msg)["outcome"] == "launched"
    assert fallbacks.reads == 0


def test_a_first_delivery_that_waited_in_a_burst_does_not_read_the_fallback_ledger() -> None:
    # Given a job reserved at once that waited 90 s in the queue behind a burst
    msg = message()
    clock, fallbacks = FakeClock(), FakeFallbacks()
    launcher, _, _ = world(msg, CapacityStrategy.SPOT_WITH_FALLBACK, clock, fallbacks)
    clock.current += timedelta(seconds=90)
    # When it is first delivered, then Then no earlier attempt can exist: no read
    assert launcher.launch(msg)["outcome"] == "launched"
    assert fallbacks.reads == 0


def test_a_job_relisted_after_its_reservation_expired_reads_the_fallback_ledger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = message()
    # A new message for the job, first delivery: reserved again after the first expired.
    relisted = first.model_copy(
        update={
            "reserved_at": first.scheduled_at + timedelta(minutes=15),
            "reservation_expires_at": first.scheduled_at + timedelta(minutes=30),
        }
    )
    clock, fallbacks = FakeClock(), FakeFallbacks()
    fallbacks.marked.add(str(first.job_uuid))
    launcher, _, tasks = world(relisted, CapacityStrategy.SPOT_WITH_FALLBACK, clock, fallbacks)
    clock.current = relisted.reserved_at + timedelta(seconds=1)
    msg = relisted
    assert launcher.launch(msg)["outcome"] == "launched"
    assert fallbacks.reads == 1
    assert [spec.capacity for spec in tasks.launched] == [Capacity.ON_DEMAND]
    assert "an earlier attempt fell back; repeating its launch" in caplog.text


def test_ecs_conflict_on_the_client_token_is_a_duplicate_not_a_failure() -> None:
    msg = message()
    launcher, api, tasks = world(msg)
    tasks.errors = [AlreadyLaunchedError("arn:aws:ecs:us-east-1:123456789012:task/bk/x")]
    assert launcher.launch(msg)["outcome"] == "already_launched"
    assert api.failed == {}


def test_a_failed_notification_does_not_undo_the_launch() -> None:
    msg = message()
    launcher, api, tasks = world(msg)
    api.notify_error = TransientError("503")
    assert launcher.launch(msg)["outcome"] == "launched"
    launcher.flush_notifications()
    assert len(tasks.launched) == 1


def test_notifications_of_a_batch_go_out_in_one_request() -> None:
    first, second = message(), message()
    launcher, api, _ = world(first)
    api.jobs_data[str(second.job_uuid)] = api.jobs_data[str(first.job_uuid)]
    launcher.launch(first)
    launcher.launch(second)
    launcher.flush_notifications()
    launcher.flush_notifications()  # nothing left: no second request
    assert api.notification_requests == 1
    assert [job for job, _ in api.notifications] == [str(first.job_uuid), str(second.job_uuid)]


def test_a_late_launch_still_launches_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    msg = message()
    late = FakeClock(current=msg.reservation_expires_at + timedelta(seconds=30))
    launcher, _, tasks = world(msg, clock=late)
    assert launcher.launch(msg)["outcome"] == "launched"
    assert len(tasks.launched) == 1
    assert any("reservation expired" in r.getMessage() for r in caplog.records)


def test_given_too_little_of_the_invocation_left_then_no_task_is_started() -> None:
    """The ledger's lock ends with the invocation: a RunTask that could outlive it might
    race a redelivery (the soak found 13 double launches in 5,000 before this guard)."""
    msg = message()
    launcher, _, tasks = world(msg)
    launcher.set_deadline(lambda: 9.9)
    with pytest.raises(TransientError, match="of the invocation left"):
        launcher.launch(msg)
    assert tasks.launched == []
    launcher.set_deadline(lambda: 10.1)
    assert launcher.launch(msg)["outcome"] == "launched"


def test_the_ledger_read_follows_the_configured_timeout() -> None:
    """A shorter Timeout (the soak's 16 s) shortens the lock, so jobs reserved again sooner
    after they were scheduled are checked."""
    msg = message()
    msg = msg.model_copy(update={"reserved_at": msg.scheduled_at + timedelta(seconds=20)})
    clock, fallbacks = FakeClock(), FakeFallbacks()
    api = FakeStacksApi()
    api.jobs_data[str(msg.job_uuid)] = JobData(str(msg.job_uuid), {}, "make")
    options = LaunchOptions(
        CONFIG, CapacityStrategy.SPOT_WITH_FALLBACK, launcher_timeout_seconds=16
    )
    launcher = LaunchJob(
        api=api, tasks=FakeTasks(clock=clock), fallbacks=fallbacks, clock=clock, options=options
    )
    clock.current += timedelta(seconds=20)
    launcher.launch(msg)
    assert fallbacks.reads == 1


PIPELINE = "0c8f1ab4-4a53-4a9f-bb6c-5d0e0d4a1c11"
PIPELINE_ROLE = "arn:aws:iam::123456789012:role/buildkite-pipeline/web"
MAPPED = launch_config(pipeline_task_roles={PIPELINE: PIPELINE_ROLE})


def test_a_mapped_pipelines_job_runs_as_its_role_from_the_listing() -> None:
    msg = message(pipeline=PIPELINE)
    launcher, api, tasks = world(msg, config=MAPPED)
    # GetJob's env names another pipeline: the message (Buildkite's listing) decides.
    api.jobs_data[str(msg.job_uuid)] = JobData(
        str(msg.job_uuid), {"BUILDKITE_PIPELINE_ID": str(uuid.uuid4())}, "make"
    )
    assert launcher.launch(msg)["outcome"] == "launched"
    (spec,) = tasks.launched
    assert spec.task_role_arn == PIPELINE_ROLE


def test_an_unmapped_pipelines_job_gets_the_default_role() -> None:
    msg = message(pipeline=str(uuid.uuid4()))
    launcher, api, tasks = world(msg, config=MAPPED)
    api.jobs_data[str(msg.job_uuid)] = JobData(
        str(msg.job_uuid), {"BUILDKITE_PIPELINE_ID": PIPELINE}, "make"
    )
    launcher.launch(msg)
    (spec,) = tasks.launched
    assert spec.task_role_arn is None


def test_a_refused_task_role_fails_the_job_back_at_once() -> None:
    msg = message(pipeline=PIPELINE)
    launcher, api, tasks = world(msg, config=MAPPED)
    tasks.errors = [
        PermanentError(
            f"the task role PipelineTaskRoles maps this pipeline to, {PIPELINE_ROLE}, ...",
            reason="task_role_rejected",
        )
    ]
    result = launcher.launch(msg)
    assert result == {"outcome": "failed_back", "reason": "task_role_rejected"}
    detail, exit_status = api.failed[str(msg.job_uuid)]
    assert "PipelineTaskRoles" in detail and PIPELINE_ROLE in detail
    assert exit_status == -1
