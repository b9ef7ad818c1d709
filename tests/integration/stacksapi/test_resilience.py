"""Faults the emulator injects, rate limits it enforces, and how the client copes."""

from __future__ import annotations

import pytest

from fargate_stack.stacksapi import (
    RetryPolicy,
    StacksAuthError,
    StacksClient,
    StacksConnectionError,
    StacksRateLimitError,
    StacksResponseError,
    StacksServerError,
)
from local.emulator import Emulator
from tests.support.emulator import CLIENT_QUEUE, Control, VirtualSleep, policy


def _statuses(control: Control, endpoint: str) -> list[tuple[int, str | None]]:
    return [(c["status"], c["fault"]) for c in control.calls(endpoint)]


def test_injected_503s_are_retried_then_succeed(
    client: StacksClient, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    (job,) = control.jobs(1)
    control.fault(endpoint="batch-reserve", kind="status", status=503, count=2)
    answer = client.batch_reserve_jobs(stack_key=registered_key, job_uuids=[job])
    assert answer.reserved == [job]
    assert _statuses(control, "batch-reserve") == [(503, "status"), (503, "status"), (200, None)]
    assert sleeps == pytest.approx([1.5, 2.039])  # Go's backoff, jitter at its floor


def test_retry_after_is_honoured_exactly(
    client: StacksClient, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    control.fault(endpoint="show-job", kind="status", status=503, retry_after="2.5", count=1)
    control.fault(endpoint="show-job", kind="status", status=429, retry_after="7", count=1)
    (job,) = control.jobs(1)
    assert client.get_job(stack_key=registered_key, job_uuid=job).id == job
    assert sleeps == [2.5, 7.0]


def test_a_real_rate_limit_is_waited_out(
    client: StacksClient, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    control.limits(**{"batch-load-job-states": 2})
    for _ in range(3):
        client.get_job_states(stack_key=registered_key, job_uuids=["a"])
    # The third call met the limit: 429 with Retry-After 1; the client waited one
    # (virtual) second, which emptied the emulator's window, and got through.
    assert [s for s, _ in _statuses(control, "batch-load-job-states")] == [200, 200, 429, 200]
    assert sleeps == [1.0]
    assert client.last_rate_limit is not None
    assert client.last_rate_limit.scope == "batch-load-job-states"
    assert client.last_rate_limit.limit == 2


def test_a_rate_limit_without_retries_surfaces_with_its_numbers(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    control.limits(**{"list-scheduled-jobs": 1})
    client.list_scheduled_jobs(stack_key=registered_key, queue_key=CLIENT_QUEUE)
    with pytest.raises(StacksRateLimitError) as info:
        client.list_scheduled_jobs(stack_key=registered_key, queue_key=CLIENT_QUEUE, retry=False)
    error = info.value
    assert (error.status, error.retryable, error.retry_after, error.current) == (429, True, 1.0, 2)
    assert error.rate_limit is not None
    assert (error.rate_limit.scope, error.rate_limit.remaining) == ("list-scheduled-jobs", 0)


def test_4xx_is_not_retried(client: StacksClient, control: Control, registered_key: str) -> None:
    control.fault(endpoint="show-job", kind="status", status=403, count=5)
    with pytest.raises(StacksAuthError):
        client.get_job(stack_key=registered_key, job_uuid="j")
    assert _statuses(control, "show-job") == [(403, "status")]


def test_a_wrong_token_is_an_auth_error_not_retried(
    emulator: Emulator, control: Control, sleeps: VirtualSleep
) -> None:
    client = StacksClient(
        "bkct_wrong_token_value", base_url=emulator.base_url, retry=policy(sleeps)
    )
    with pytest.raises(StacksAuthError) as info:
        client.register_stack(key="k", queue_key=CLIENT_QUEUE)
    assert info.value.status == 401
    assert "bkct_wrong_token_value" not in str(info.value)
    assert len(control.calls("register")) == 1
    assert sleeps == []


def test_giving_up_after_five_attempts(
    client: StacksClient, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    control.fault(endpoint="show-job", kind="status", status=502, count=10)
    with pytest.raises(StacksServerError) as info:
        client.get_job(stack_key=registered_key, job_uuid="j")
    assert info.value.status == 502
    assert len(control.calls("show-job")) == 5
    assert len(sleeps) == 4


def test_malformed_json_is_retried_and_the_retry_sees_the_effect(
    client: StacksClient, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    jobs = control.jobs(2)
    control.fault(endpoint="batch-reserve", kind="malformed_json", count=1)
    answer = client.batch_reserve_jobs(stack_key=registered_key, job_uuids=jobs)
    # The first reserve happened but its answer was lost; reserving again by the same
    # stack extends the reservation, so the retry still reports both as reserved.
    assert sorted(answer.reserved) == sorted(jobs)
    assert _statuses(control, "batch-reserve") == [(200, "malformed_json"), (200, None)]
    assert len(sleeps) == 1


def test_malformed_json_every_time_is_a_response_error(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    control.fault(endpoint="list-scheduled-jobs", kind="malformed_json", count=5)
    with pytest.raises(StacksResponseError, match="not valid JSON") as info:
        client.list_scheduled_jobs(stack_key=registered_key, queue_key=CLIENT_QUEUE)
    assert info.value.retryable is True
    assert len(control.calls("list-scheduled-jobs")) == 5


def test_malformed_json_where_no_body_is_expected_is_fine(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    (job,) = control.jobs(1)
    control.fault(endpoint="finish-job", kind="malformed_json", count=1)
    client.fail_job(stack_key=registered_key, job_uuid=job, detail="no capacity")
    assert len(control.calls("finish-job")) == 1  # finished once, not twice
    assert control.job(job)["state"] == "finished"


def test_a_dropped_connection_is_retried(
    client: StacksClient, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    control.fault(endpoint="batch-load-job-states", kind="drop", count=1)
    (job,) = control.jobs(1)
    assert client.get_job_states(stack_key=registered_key, job_uuids=[job]).states == {
        job: "scheduled"
    }
    assert _statuses(control, "batch-load-job-states") == [(0, "drop"), (200, None)]
    assert len(sleeps) == 1


def test_connections_dropped_every_time_end_in_a_connection_error(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    control.fault(endpoint="*", kind="drop", count=2)
    with pytest.raises(StacksConnectionError) as info:
        client.deregister_stack(
            stack_key=registered_key, retry=RetryPolicy(max_attempts=2, sleep=lambda _: None)
        )
    assert info.value.status is None
    assert [c["status"] for c in control.calls()] == [0, 0]


def test_a_slow_answer_times_out_and_is_retried(
    emulator: Emulator, control: Control, registered_key: str, sleeps: VirtualSleep
) -> None:
    client = StacksClient(
        "test-token", base_url=emulator.base_url, timeout=0.2, retry=policy(sleeps)
    )
    control.fault(endpoint="show-job", kind="latency", seconds=0.6, count=1)
    (job,) = control.jobs(1)
    assert client.get_job(stack_key=registered_key, job_uuid=job).id == job
    assert len(sleeps) == 1
