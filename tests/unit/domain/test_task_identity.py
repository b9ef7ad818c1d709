"""A task names its stack in startedBy and its job in group (never read from overrides)."""

from __future__ import annotations

import pytest

from fargate_stack.domain.task_identity import (
    job_uuid_of_task,
    started_by,
    task_group,
)

JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"


def test_round_trip_through_started_by_and_group() -> None:
    found = job_uuid_of_task(
        stack_key="fargate-prod",
        started_by_value=started_by("fargate-prod"),
        group=task_group(JOB),
    )
    assert found == JOB


def test_another_stacks_task_is_not_ours_even_with_a_job_named() -> None:
    found = job_uuid_of_task(
        stack_key="fargate",
        started_by_value="fargate-prod",
        group=task_group(JOB),
    )
    assert found is None


def test_a_task_in_the_default_family_group_names_no_job() -> None:
    # (started by hand: its acquire-job override is not delivered to the failure handler)
    found = job_uuid_of_task(stack_key="s", started_by_value="s", group="family:bk-agent")
    assert found is None


def test_the_group_uuid_is_normalised() -> None:
    found = job_uuid_of_task(stack_key="s", started_by_value="s", group=task_group(JOB.upper()))
    assert found == JOB


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "../../etc", "buildkite-job:"])
def test_garbage_is_no_job(bad: str) -> None:
    found = job_uuid_of_task(stack_key="s", started_by_value="s", group=bad)
    assert found is None


def test_started_by_limits() -> None:
    assert started_by("k" * 80) == "k" * 80
    with pytest.raises(ValueError, match="at most 128"):
        started_by("k" * 129)
    with pytest.raises(ValueError, match="letters, digits"):
        started_by("bad key")
    with pytest.raises(ValueError, match="letters, digits"):
        started_by("key\n")  # `$` in a pattern would have let this through
