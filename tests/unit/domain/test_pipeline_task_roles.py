"""PipelineTaskRoles: the operator's pipeline -> task role mapping, parsed strictly, and the
override each job's RunTask gets from it."""

from __future__ import annotations

import uuid

import pytest

from fargate_stack.domain.launch import (
    PIPELINE_TASK_ROLES_MAX,
    Capacity,
    PipelineTaskRolesError,
    build_launch_spec,
    parse_pipeline_task_roles,
    task_role_for,
)
from tests.support.launch_config import launch_config

WEB = "0c8f1ab4-4a53-4a9f-bb6c-5d0e0d4a1c11"
DEPLOY = "6a3c6f0e-2b1a-4c0e-9d7e-1f2a3b4c5d6e"
WEB_ROLE = "arn:aws:iam::123456789012:role/buildkite-pipeline/web-tests"
DEPLOY_ROLE = "arn:aws-us-gov:iam::123456789012:role/deployer"
JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"


def test_pairs_parse_into_a_mapping_keyed_by_lower_case_uuid() -> None:
    text = f"{WEB.upper()}={WEB_ROLE}, {DEPLOY}={DEPLOY_ROLE}"
    assert parse_pipeline_task_roles(text) == {WEB: WEB_ROLE, DEPLOY: DEPLOY_ROLE}


@pytest.mark.parametrize("text", ["", "  "])
def test_empty_means_no_mapping(text: str) -> None:
    assert parse_pipeline_task_roles(text) == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # a slug, not a uuid: slugs can be renamed and reused
        (f"web-tests={WEB_ROLE}", "'web-tests' is not a pipeline UUID"),
        (f"{WEB}", "is not <pipeline uuid>=<role arn>"),
        (f"{WEB}=", "'' is not an IAM role ARN"),
        # the wildcards would make the template's PassRole wider than the mapping
        (f"{WEB}=arn:aws:iam::123456789012:role/*", "is not an IAM role ARN"),
        (f"{WEB}=arn:aws:iam::123456789012:role/ci-?", "is not an IAM role ARN"),
        # = would cut the pair (and the template's list) in the wrong place
        (f"{WEB}=arn:aws:iam::123456789012:role/a=b", "is not an IAM role ARN"),
        (f"{WEB}=arn:aws:iam::123456789012:user/ci", "is not an IAM role ARN"),
        (f"{WEB}=arn:aws:iam::123456789012:policy/ci", "is not an IAM role ARN"),
        (f"{WEB}=arn:aws:iam::12345:role/ci", "is not an IAM role ARN"),
        (f"{WEB}=arn:aws:iam::123456789012:role/path/", "is not an IAM role ARN"),
        (f"{WEB}=arn:aws:sts::123456789012:assumed-role/ci/x", "is not an IAM role ARN"),
        (f"{WEB}={WEB_ROLE},", "pair 2 is empty"),
        (
            f"{WEB}={WEB_ROLE},{WEB.upper()}={DEPLOY_ROLE}",
            f"pipeline {WEB} is mapped more than once",
        ),
        (f"{WEB}={WEB_ROLE},{WEB}={WEB_ROLE}", "mapped more than once"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_parameter(text: str, says: str) -> None:
    with pytest.raises(PipelineTaskRolesError, match="PipelineTaskRoles") as caught:
        parse_pipeline_task_roles(text)
    assert says in str(caught.value)


def test_no_more_pipelines_than_the_template_can_pass_roles_for() -> None:
    pairs = [f"{uuid.uuid4()}={WEB_ROLE}" for _ in range(PIPELINE_TASK_ROLES_MAX)]
    assert len(parse_pipeline_task_roles(",".join(pairs))) == PIPELINE_TASK_ROLES_MAX
    with pytest.raises(PipelineTaskRolesError, match=f"at most {PIPELINE_TASK_ROLES_MAX}"):
        parse_pipeline_task_roles(",".join([*pairs, f"{uuid.uuid4()}={WEB_ROLE}"]))


CONFIG = launch_config(pipeline_task_roles={WEB: WEB_ROLE, DEPLOY: DEPLOY_ROLE})


def overrides_for(pipeline_uuid: str | None, config=CONFIG) -> dict[str, object]:
    spec = build_launch_spec(
        config,
        job_uuid=JOB,
        agent_query_rules=["queue=fargate"],
        job_env={"BUILDKITE_PIPELINE_ID": WEB},  # never read: the listing's uuid decides
        capacity=Capacity.SPOT,
        pipeline_uuid=pipeline_uuid,
    )
    return spec.overrides()


def test_a_mapped_pipeline_runs_as_its_role() -> None:
    assert overrides_for(DEPLOY)["taskRoleArn"] == DEPLOY_ROLE
    assert overrides_for(WEB.upper())["taskRoleArn"] == WEB_ROLE


@pytest.mark.parametrize("pipeline", [None, "9d7e1f2a-3b4c-4d6e-8a1b-2c3d4e5f6a7b"])
def test_any_other_job_gets_no_override_so_the_definitions_role(pipeline: str | None) -> None:
    # No pipeline uuid at all: the job env's BUILDKITE_PIPELINE_ID (a mapped one) is ignored.
    assert "taskRoleArn" not in overrides_for(pipeline)


def test_without_a_mapping_nothing_changes() -> None:
    assert "taskRoleArn" not in overrides_for(WEB, launch_config())
    assert task_role_for(launch_config(), WEB) is None
