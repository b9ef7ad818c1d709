"""Stop triage against published ECS Task State Change events (events/published/).

Given a real STOPPED event and the name of the container that plays the agent, when it is
triaged, then the reason is the one a developer needs and the detail names the task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fargate_stack.domain.triage import (
    TRIAGE_TABLE,
    StoppedTask,
    StopReason,
    triage,
)

PUBLISHED = Path(__file__).resolve().parents[3] / "events" / "published"


def stopped_task(filename: str, agent_container: str) -> StoppedTask:
    event: dict[str, Any] = json.loads((PUBLISHED / filename).read_text())
    detail: dict[str, Any] = event["detail"]
    (agent,) = [c for c in detail["containers"] if c["name"] == agent_container]
    return StoppedTask(
        # The derived secret sample has no detail.taskArn; the envelope always names it.
        task_arn=detail.get("taskArn") or event["resources"][0],
        stop_code=detail.get("stopCode"),
        stopped_reason=detail.get("stoppedReason"),
        agent_exit_code=agent.get("exitCode"),
        agent_reason=agent.get("reason"),
    )


@pytest.mark.parametrize(
    ("filename", "container", "reason", "phrase"),
    [
        ("ecs-stopped-oom.json", "forms-perf-test", StopReason.OUT_OF_MEMORY, "out of memory"),
        (
            "ecs-stopped-resource-init-secret.json",
            "forms-perf-test",
            StopReason.SECRETS,
            "did not contain json key MY_SECRET",
        ),
        ("ecs-stopped-essential-exit-nonzero.json", "kaniko", StopReason.AGENT_EXITED, "code 1"),
        ("ecs-stopped-essential-exit-0.json", "kaniko", StopReason.AGENT_EXITED, "code 0"),
        ("ecs-stopped-user-initiated.json", "Nginx", StopReason.USER_INITIATED, "stopped by"),
        # The sidecars exited 143; the agent container (exit 0) is the one that counts.
        (
            "ecs-stopped-essential-exit-0-sidecars-143.json",
            "forms-perf-test",
            StopReason.AGENT_EXITED,
            "code 0",
        ),
    ],
)
def test_published_stops(filename: str, container: str, reason: StopReason, phrase: str) -> None:
    task = stopped_task(filename, container)
    result = triage(task)
    assert result.reason is reason
    assert phrase in result.detail
    assert task.task_arn.rsplit("/", 1)[-1] in result.detail
    assert result.may_fail_job


def _task(**overrides: Any) -> StoppedTask:
    base: dict[str, Any] = {
        "task_arn": "arn:aws:ecs:us-east-1:123456789012:task/c/abc123",
        "stop_code": "TaskFailedToStart",
        "stopped_reason": None,
        "agent_exit_code": None,
        "agent_reason": None,
    }
    return StoppedTask(**{**base, **overrides})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"stopped_reason": "CannotPullContainerError: pull image manifest has been retried"},
            StopReason.IMAGE_PULL,
        ),
        ({"agent_reason": "CannotPullContainerError: ref not found"}, StopReason.IMAGE_PULL),
        (
            {"stopped_reason": "Timeout waiting for network interface provisioning to complete."},
            StopReason.NETWORK_PROVISIONING,
        ),
        (
            {"stopped_reason": "ResourceInitializationError: failed to validate logger args"},
            StopReason.RESOURCE_INITIALIZATION,
        ),
        ({"stopped_reason": "Capacity is unavailable at this time."}, StopReason.CAPACITY),
        ({"stop_code": "SpotInterruption", "stopped_reason": "x"}, StopReason.SPOT_INTERRUPTION),
        ({"stop_code": "TerminationNotice"}, StopReason.SPOT_INTERRUPTION),
        ({"stopped_reason": "something new"}, StopReason.TASK_FAILED_TO_START),
        ({"stop_code": None, "stopped_reason": "mystery"}, StopReason.UNKNOWN),
        ({"stop_code": "EssentialContainerExited", "agent_exit_code": 3}, StopReason.AGENT_EXITED),
    ],
)
def test_reason_table(overrides: dict[str, Any], reason: StopReason) -> None:
    result = triage(_task(**overrides))
    assert result.reason is reason
    assert "abc123" in result.detail


def test_exit_27_never_fails_the_job_even_with_other_symptoms() -> None:
    result = triage(
        _task(stop_code="EssentialContainerExited", agent_exit_code=27, agent_reason="OutOfMemory")
    )
    assert result.reason is StopReason.JOB_NOT_ACQUIRABLE
    assert not result.may_fail_job


def test_exit_1_names_a_refused_token_as_a_likely_cause_other_codes_do_not() -> None:
    # a token refused or expired at registration exits 1 (buildkite/agent#4355)
    refused = triage(_task(stop_code="EssentialContainerExited", agent_exit_code=1))
    assert refused.reason is StopReason.AGENT_EXITED
    assert refused.may_fail_job
    assert "job acquisition token that expired" in refused.detail
    other = triage(_task(stop_code="EssentialContainerExited", agent_exit_code=3))
    assert "token" not in other.detail


def test_exit_78_names_the_git_credentials_the_entrypoint_could_not_store() -> None:
    stopped = triage(_task(stop_code="EssentialContainerExited", agent_exit_code=78))
    assert stopped.may_fail_job
    assert "GitCredentialsSecretArn" in stopped.detail
    assert "token" not in stopped.detail


def test_long_aws_text_is_quoted_briefly() -> None:
    result = triage(_task(stopped_reason="ResourceInitializationError: " + "x" * 5000))
    assert len(result.detail.encode()) < 1024


def test_every_row_cites_a_source_and_reasons_are_unique() -> None:
    assert all(row.source.strip() for row in TRIAGE_TABLE)
    reasons = [row.reason for row in TRIAGE_TABLE]
    assert len(reasons) == len(set(reasons))
