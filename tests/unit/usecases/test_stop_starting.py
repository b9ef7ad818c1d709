"""The sweep of starting tasks: a canceled job's task is stopped before it runs, a stuck
one after ProvisioningTimeoutSeconds, and a task that started running meanwhile never."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fargate_stack.errors import TransientError
from fargate_stack.usecases.stop_starting import StopConfig, StopStartingTasks
from tests.support.fakes import T0, FakeClock, FakeLaunchedTasks, FakeStacksApi

STACK = "fargate-prod"


def sweeper(
    states: dict[str, str], tasks: FakeLaunchedTasks, *, timeout: int = 900
) -> StopStartingTasks:
    return StopStartingTasks(
        api=FakeStacksApi(states=states),
        tasks=tasks,
        clock=FakeClock(),
        config=StopConfig(stack_key=STACK, cluster="bk", provisioning_timeout_seconds=timeout),
    )


def new_job() -> str:
    return str(uuid.uuid4())


def test_given_a_canceled_job_when_its_task_is_pending_then_the_stack_stops_it() -> None:
    # Given
    canceled, waiting = new_job(), new_job()
    tasks = FakeLaunchedTasks()
    stopped_task = tasks.add(canceled, "PENDING")
    tasks.add(waiting, "PROVISIONING")
    # When
    summary = sweeper({canceled: "canceled", waiting: "reserved"}, tasks).sweep()
    # Then
    assert list(tasks.stopped) == [stopped_task.arn]
    assert "canceled" in tasks.stopped[stopped_task.arn]
    assert summary.stopped == {"job_ended": 1}
    assert summary.starting == 2


def test_given_a_running_task_when_its_job_is_canceled_then_it_is_left_to_its_agent() -> None:
    job = new_job()
    tasks = FakeLaunchedTasks()
    tasks.add(job, "RUNNING", created_at=T0 - timedelta(hours=2))
    summary = sweeper({job: "canceling"}, tasks).sweep()
    assert tasks.stopped == {}
    assert summary.starting == 0


def test_given_a_task_that_starts_running_during_the_sweep_then_it_is_spared() -> None:
    # Given: the task runs by the time the states were read (its agent may have the job)
    job = new_job()
    tasks = FakeLaunchedTasks()
    starting = tasks.add(job, "PENDING", created_at=T0 - timedelta(seconds=5000))
    tasks.after_launched = lambda: tasks.move(starting.arn, "RUNNING")
    # When
    summary = sweeper({job: "canceled"}, tasks).sweep()
    # Then
    assert tasks.stopped == {}
    assert summary.spared == 1


def test_given_a_task_starting_past_the_timeout_then_it_is_stopped_with_the_reason() -> None:
    stuck, young = new_job(), new_job()
    tasks = FakeLaunchedTasks()
    old = tasks.add(stuck, "PENDING", created_at=T0 - timedelta(seconds=61))
    tasks.add(young, "PENDING", created_at=T0 - timedelta(seconds=59))
    summary = sweeper({stuck: "reserved", young: "reserved"}, tasks, timeout=60).sweep()
    assert list(tasks.stopped) == [old.arn]
    assert "ProvisioningTimeoutSeconds (60 s)" in tasks.stopped[old.arn]
    assert summary.stopped == {"provisioning_timeout": 1}


def test_given_no_starting_task_then_buildkite_is_not_asked() -> None:
    tasks = FakeLaunchedTasks()
    tasks.add(new_job(), "RUNNING")
    api = FakeStacksApi()
    use_case = StopStartingTasks(
        api=api,
        tasks=tasks,
        clock=FakeClock(),
        config=StopConfig(stack_key=STACK, cluster="bk", provisioning_timeout_seconds=900),
    )
    use_case.sweep()
    assert api.states_requests == 0


def test_given_a_stop_that_fails_then_the_others_are_still_stopped() -> None:
    first, second = new_job(), new_job()
    tasks = FakeLaunchedTasks(stop_errors=[TransientError("throttled")])
    tasks.add(first, "PENDING")
    later = tasks.add(second, "PENDING")
    summary = sweeper({first: "canceled", second: "canceled"}, tasks).sweep()
    assert list(tasks.stopped) == [later.arn]
    assert summary.stop_failed == 1
