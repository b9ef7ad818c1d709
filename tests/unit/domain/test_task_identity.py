"""A task names its job in startedBy (primary) or the acquire-job env (fallback)."""

from __future__ import annotations

import pytest

from fargate_stack.domain.task_identity import (
    ACQUIRE_JOB_ENV,
    job_uuid_of_task,
    started_by,
)

JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"


def test_round_trip_through_started_by() -> None:
    value = started_by("fargate-prod", JOB)
    assert value == f"fargate-prod/{JOB}"
    assert job_uuid_of_task(stack_key="fargate-prod", started_by_value=value, environment={}) == JOB


def test_another_stacks_task_is_not_ours_even_with_a_job_in_env() -> None:
    value = started_by("other-stack", JOB)
    env = {ACQUIRE_JOB_ENV: JOB}
    assert job_uuid_of_task(stack_key="fargate", started_by_value=value, environment=env) is None


def test_prefix_must_match_whole_key() -> None:
    value = started_by("fargate-prod", JOB)
    assert job_uuid_of_task(stack_key="fargate", started_by_value=value, environment={}) is None


def test_env_fallback_when_started_by_is_missing() -> None:
    env = {ACQUIRE_JOB_ENV: JOB.upper()}
    assert job_uuid_of_task(stack_key="s", started_by_value=None, environment=env) == JOB


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "s/../../etc"])
def test_garbage_is_no_job(bad: str) -> None:
    env = {ACQUIRE_JOB_ENV: bad}
    assert job_uuid_of_task(stack_key="s", started_by_value=bad or None, environment=env) is None


def test_started_by_limits() -> None:
    assert len(started_by("k" * 80, JOB)) <= 128
    with pytest.raises(ValueError, match="at most 128"):
        started_by("k" * 100, JOB)
    with pytest.raises(ValueError, match="letters, digits"):
        started_by("bad key", JOB)
