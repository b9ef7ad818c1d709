"""Launch specs: sizes, task definitions and tags from untrusted agent query rules."""

from __future__ import annotations

import dataclasses
import json
from typing import cast

import pytest

from fargate_stack.domain.launch import (
    OVERRIDES_MAX_CHARS,
    SIZE_RULES,
    TASK_DEFINITION_RULE,
    Capacity,
    LaunchConfig,
    LaunchRejectedError,
    LaunchRejection,
    build_launch_spec,
    client_token,
)
from fargate_stack.domain.rules import LAUNCH_OPTION_KEYS
from tests.support.launch_config import launch_config

JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"
CONFIG = launch_config(
    subnets=["subnet-1", "subnet-2"],
    allow_size_overrides=True,
)


def spec(rules: list[str], config: LaunchConfig = CONFIG, capacity: Capacity = Capacity.SPOT):
    return build_launch_spec(
        config,
        job_uuid=JOB,
        agent_query_rules=rules,
        job_env={"BUILDKITE_PIPELINE_SLUG": "my app!", "BUILDKITE_BUILD_NUMBER": "42"},
        capacity=capacity,
    )


def test_default_spec_is_the_run_task_call() -> None:
    kwargs = spec(["queue=fargate"]).to_run_task_kwargs()
    assert kwargs["cluster"] == "bk"
    assert kwargs["taskDefinition"] == "bk-agent"
    assert kwargs["count"] == 1
    assert kwargs["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert kwargs["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-1", "subnet-2"],
            "securityGroups": ["sg-1"],
            "assignPublicIp": "DISABLED",
        }
    }
    assert kwargs["startedBy"] == "fargate-prod"
    assert kwargs["group"] == f"buildkite-job:{JOB}"
    assert kwargs["clientToken"] == JOB
    overrides = kwargs["overrides"]
    assert isinstance(overrides, dict)
    assert overrides["cpu"] == "1024"
    assert overrides["memory"] == "2048"
    (container,) = overrides["containerOverrides"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["BUILDKITE_AGENT_ACQUIRE_JOB"] == JOB
    assert env["BUILDKITE_AGENT_TAGS"] == (
        "queue=fargate,fargate-stack=fargate-prod,fargate-capacity=spot"
    )
    tags = {t["key"]: t["value"] for t in cast("list[dict[str, str]]", kwargs["tags"])}
    assert tags == {
        "buildkite:stack": "fargate-prod",
        "buildkite:job": JOB,
        "buildkite:pipeline": "my app_",
        "buildkite:build": "42",
    }


def test_nothing_secret_or_job_controlled_reaches_the_environment() -> None:
    result = spec(["queue=fargate", "BUILDKITE_AGENT_TOKEN=stolen"])
    names = {name for name, _ in result.environment}
    assert names == {"BUILDKITE_AGENT_ACQUIRE_JOB", "BUILDKITE_AGENT_TAGS"}


def test_job_rules_become_agent_tags_but_cannot_inject_more() -> None:
    rules = ["queue=fargate", "os=linux", "evil=x,queue=other", "any=*", "bad\nkey=v", "nl=v\n"]
    result = spec(rules)
    tags = dict(result.environment)["BUILDKITE_AGENT_TAGS"]
    assert tags == "queue=fargate,os=linux,fargate-stack=fargate-prod,fargate-capacity=spot"


def test_size_from_rules() -> None:
    result = spec(["queue=fargate", "cpu=2048", "memory=8192"])
    assert (result.cpu, result.memory) == (2048, 8192)
    assert result.describe() == "2048 CPU units / 8192 MiB, spot"


def test_disk_from_a_rule_is_the_run_task_ephemeral_storage_override() -> None:
    result = spec(["queue=fargate", "disk=50"])
    assert result.overrides()["ephemeralStorage"] == {"sizeInGiB": 50}
    assert result.describe() == "1024 CPU units / 2048 MiB, 50 GiB disk, spot"
    # without the rule the task definition's own storage applies: nothing is sent
    assert "ephemeralStorage" not in spec(["queue=fargate"]).overrides()
    assert "ephemeralStorage" not in spec(["queue=fargate", "disk=*"]).overrides()


@pytest.mark.parametrize("disk", ["20", "201", "0", "-5"])
def test_a_disk_outside_fargates_range_is_failed_back_naming_it(disk: str) -> None:
    # Fargate takes 21-200 GiB (docs/reference/aws.md §B.5); 20 is its default, never sent.
    with pytest.raises(LaunchRejectedError, match="21-200 GiB") as caught:
        spec(["queue=fargate", f"disk={disk}"])
    assert caught.value.reason is LaunchRejection.INVALID_SIZE


def test_a_disk_needs_the_operators_permission_and_the_reason_names_the_default() -> None:
    locked = dataclasses.replace(CONFIG, allow_size_overrides=False, default_disk_gib=40)
    with pytest.raises(LaunchRejectedError) as caught:
        spec(["queue=fargate", "disk=100"], config=locked)
    assert caught.value.reason is LaunchRejection.SIZE_NOT_ALLOWED
    assert "40 GiB of disk" in caught.value.detail
    assert "AllowSizeOverrides" in caught.value.detail


@pytest.mark.parametrize(
    ("rules", "reason", "message"),
    [
        (["cpu=2048", "memory=1024"], LaunchRejection.INVALID_SIZE, "needs memory between"),
        (["cpu=lots"], LaunchRejection.INVALID_SIZE, "not a number"),
        (["disk=big"], LaunchRejection.INVALID_SIZE, "in whole GiB"),
        (["disk=+60"], LaunchRejection.INVALID_SIZE, "in whole GiB"),
        (["task-definition=big"], LaunchRejection.TASK_DEFINITION_NOT_ALLOWED, "its image"),
    ],
)
def test_rejections_explain_themselves(
    rules: list[str], reason: LaunchRejection, message: str
) -> None:
    with pytest.raises(LaunchRejectedError, match=message) as caught:
        spec(["queue=fargate", *rules])
    assert caught.value.reason is reason


def test_sizes_need_the_operators_permission() -> None:
    locked = dataclasses.replace(CONFIG, allow_size_overrides=False)
    with pytest.raises(LaunchRejectedError) as caught:
        spec(["queue=fargate", "memory=8192"], config=locked)
    assert caught.value.reason is LaunchRejection.SIZE_NOT_ALLOWED
    assert "1024 CPU units / 2048 MiB" in caught.value.detail
    assert spec(["queue=fargate", "memory=*"], config=locked).memory == 2048


def test_every_job_runs_in_the_stacks_task_definition() -> None:
    # RunTask and iam:PassRole are granted for the stack's own family only (issue #12 item 1)
    assert spec(["queue=fargate"]).task_definition == CONFIG.task_definition
    assert spec(["queue=fargate", "task-definition=*"]).task_definition == CONFIG.task_definition


def test_on_demand_uses_its_own_client_token() -> None:
    on_demand = spec(["queue=fargate"], capacity=Capacity.ON_DEMAND)
    assert on_demand.client_token == f"{JOB}-od"
    assert client_token(JOB, Capacity.SPOT) != on_demand.client_token
    assert dict(on_demand.environment)["BUILDKITE_AGENT_TAGS"].endswith("on-demand")


def test_oversized_overrides_are_rejected_not_sent() -> None:
    many = [f"label{i}={'v' * 200}" for i in range(60)]
    with pytest.raises(LaunchRejectedError, match=str(OVERRIDES_MAX_CHARS)) as caught:
        spec(["queue=fargate", *many])
    assert caught.value.reason is LaunchRejection.OVERRIDES_TOO_LARGE


def test_overrides_size_is_measured_as_ecs_counts_it() -> None:
    result = spec(["queue=fargate"])
    assert len(json.dumps(result.overrides(), separators=(",", ":"))) < OVERRIDES_MAX_CHARS


def test_the_launch_options_the_matcher_ignores_are_the_ones_the_launcher_reads() -> None:
    assert {*SIZE_RULES, TASK_DEFINITION_RULE} == LAUNCH_OPTION_KEYS
