"""The soak's judge: every job lands in one outcome, and the must-be-zero figures catch
each way of breaking the invariants of docs/design.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from local.chaos import ChaosPlan
from local.fargate import Failure
from local.outcome import JobOutcome, WorldReport
from local.soak import figures


def job(label: str, state: str, finished_by: str | None = None, detail: str | None = None) -> Any:
    return JobOutcome(
        id=label,
        label=label,
        priority=0,
        state=state,
        finished_by=finished_by,
        exit_status=None,
        detail=detail,
        task=None,
        dispatch_ms=None,
        history=[{"state": "scheduled", "by": "api"}, {"state": state, "by": "x"}],
    )


def test_given_every_job_ended_well_then_the_soak_passes() -> None:
    report = WorldReport(
        jobs=[
            job("a", "finished", "agent"),
            job("b", "finished", "stack", "its image could not be pulled"),
            job("c", "canceled"),
            job("d", "running"),  # agent lost with its Spot task: Buildkite's to end
            job("gpu (not for this stack)", "scheduled"),
        ],
        violations=[],
        metrics={},
    )
    result = figures(report)
    assert (result.run, result.failed_back, result.canceled, result.not_for_this_stack) == (
        2,
        1,
        1,
        1,
    )
    assert result.ok


def test_given_a_job_left_reserved_then_it_is_lost_and_the_soak_fails() -> None:
    report = WorldReport(jobs=[job("a", "reserved")], violations=[], metrics={})
    result = figures(report)
    assert result.lost == 1
    assert "reserved(x)" in result.lost_jobs[0]
    assert not result.ok


def test_given_a_double_launch_or_a_failjob_on_a_taken_job_then_the_soak_fails() -> None:
    report = WorldReport(
        jobs=[job("a", "finished", "agent")],
        violations=["double launch: a (a) had 2 tasks", "FailJob on a job the agent took: a"],
        metrics={},
    )
    result = figures(report)
    assert (result.double_launches, result.failjob_on_acquired) == (1, 1)
    assert not result.ok


@pytest.mark.parametrize("left", ["dlq_left", "events_left", "parked"])
def test_given_a_dead_letter_nobody_handled_then_the_soak_fails(left: str) -> None:
    report = WorldReport(jobs=[], violations=[], metrics={}, counts={left: 1})
    assert figures(report).dlq_unaccounted == 1
    assert not figures(report).ok


def test_stop_events_retried_from_their_queue_are_not_unaccounted() -> None:
    counts = {"events_dead_lettered": 3, "event_retry_records": 3}
    report = WorldReport(jobs=[], violations=[], metrics={}, counts=counts)
    assert figures(report).ok


def test_task_failures_follow_the_plan_and_its_seed() -> None:
    plan = ChaosPlan(seed=3)
    first, second = plan.rng("task-failures"), plan.rng("task-failures")
    assert [plan.failure_for(first) for _ in range(200)] == [
        plan.failure_for(second) for _ in range(200)
    ]
    rng = plan.rng("task-failures")
    drawn = Counter(plan.failure_for(rng) for _ in range(20_000))
    assert abs(drawn[Failure.IMAGE_PULL] / 20_000 - 0.02) < 0.005
    assert abs(drawn[Failure.STUCK] / 20_000 - 0.005) < 0.002
    assert abs(drawn[Failure.NONE] / 20_000 - (1 - sum(plan.task_failures.values()))) < 0.01


def test_given_a_task_stopped_after_its_agent_took_the_job_then_the_soak_fails() -> None:
    counts = {"tasks_stopped_after_acquire": 1, "tasks_stopped_by_the_stack": 4}
    result = figures(WorldReport(jobs=[], violations=[], metrics={}, counts=counts))
    assert (result.stopped_after_acquire, result.stopped_by_the_stack) == (1, 4)
    assert not result.ok


def test_given_a_call_iam_denied_then_the_soak_fails() -> None:
    report = WorldReport(jobs=[], violations=[], metrics={}, counts={"iam_denied": 2})
    assert figures(report).access_denied == 2
    assert not figures(report).ok


def test_given_a_task_whose_token_was_refused_then_the_soak_fails() -> None:
    counts = {"tasks_without_a_valid_token": 1}
    report = WorldReport(jobs=[], violations=[], metrics={}, counts=counts)
    assert figures(report).tasks_without_a_valid_token == 1
    assert not figures(report).ok


def test_given_a_token_expired_job_failed_back_for_another_reason_then_the_soak_fails() -> None:
    named = job("a", "finished", "stack", "Buildkite Fargate Stack: ... a job acquisition token")
    unclear = job("b", "finished", "stack", "The agent container ran out of memory")
    canceled = job("c", "canceled")
    report = WorldReport(jobs=[named, unclear, canceled], violations=[], metrics={})
    assert figures(report).ok  # no token fault met them
    report.token_expired_jobs = ["a", "b", "c"]
    result = figures(report)
    assert result.token_expired_unclear == 1
    assert not result.ok


def test_given_a_failjob_on_a_job_canceled_as_its_task_started_then_the_soak_fails() -> None:
    report = WorldReport(
        jobs=[job("a", "canceled")],
        violations=[],
        metrics={},
        counts={"failjob_on_canceled_before_registration": 1},
    )
    result = figures(report)
    assert result.failjob_on_canceled == 1
    assert not result.ok
