"""Which starting tasks the stack stops: a job that ended, or a start past the timeout;
never a running task."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fargate_stack.domain.starting_tasks import (
    STOP_REASON_MAX,
    LaunchedTask,
    StopCause,
    is_timeout_stop,
    stop_order,
)
from tests.support.fakes import T0

JOB = "0190f7a4-1111-7000-8000-000000000001"


def task(status: str, *, age: float = 10.0) -> LaunchedTask:
    return LaunchedTask(
        arn="arn:aws:ecs:us-east-1:123456789012:task/bk/abc",
        job_uuid=JOB,
        last_status=status,
        created_at=T0 - timedelta(seconds=age),
    )


@pytest.mark.parametrize("status", ["PROVISIONING", "PENDING", "ACTIVATING"])
@pytest.mark.parametrize("state", ["canceled", "canceling", "expired", "finished"])
def test_a_starting_task_of_an_ended_job_is_stopped(status: str, state: str) -> None:
    order = stop_order(task(status), state, now=T0, timeout_seconds=900)
    assert order is not None
    assert order.cause is StopCause.JOB_ENDED
    assert state in order.reason and status in order.reason
    assert len(order.reason) <= STOP_REASON_MAX


@pytest.mark.parametrize("state", ["canceled", "reserved", None])
@pytest.mark.parametrize("status", ["RUNNING", "DEACTIVATING", "STOPPED"])
def test_a_task_past_starting_is_never_stopped(status: str, state: str | None) -> None:
    assert stop_order(task(status, age=10_000), state, now=T0, timeout_seconds=900) is None


@pytest.mark.parametrize("state", ["scheduled", "reserved", None])
def test_a_starting_task_of_a_waiting_job_waits_until_the_timeout(state: str | None) -> None:
    assert stop_order(task("PENDING", age=899), state, now=T0, timeout_seconds=900) is None
    order = stop_order(task("PENDING", age=900), state, now=T0, timeout_seconds=900)
    assert order is not None
    assert order.cause is StopCause.PROVISIONING_TIMEOUT
    assert "ProvisioningTimeoutSeconds (900 s)" in order.reason
    assert is_timeout_stop("UserInitiated", order.reason)


def test_a_task_without_a_creation_time_is_not_timed_out() -> None:
    undated = LaunchedTask(arn="a", job_uuid=JOB, last_status="PENDING", created_at=None)
    assert stop_order(undated, "reserved", now=T0, timeout_seconds=60) is None


def test_only_the_stacks_own_timeout_stop_reads_as_one() -> None:
    order = stop_order(task("PENDING", age=1000), "reserved", now=T0, timeout_seconds=900)
    assert order is not None
    assert not is_timeout_stop("EssentialContainerExited", order.reason)
    assert not is_timeout_stop("UserInitiated", "Task stopped by user")
    ended = stop_order(task("PENDING"), "canceled", now=T0, timeout_seconds=900)
    assert ended is not None
    assert not is_timeout_stop("UserInitiated", ended.reason)
