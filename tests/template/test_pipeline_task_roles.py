"""PipelineTaskRoles in the template: the launcher may pass exactly the mapped roles and the
stack's own two (nothing wider, for any number of pairs the parameter accepts), the
parameter accepts what the launcher's settings accept, and the role's inline policies stay
within IAM's size limit (docs/reference/aws.md §H.46)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from fargate_stack.domain.launch import (
    PIPELINE_TASK_ROLES_MAX,
    PipelineTaskRolesError,
    parse_pipeline_task_roles,
)
from local.iam import Call, evaluate
from tests.support.iam import as_list
from tests.template.test_iam_evaluated import ACCOUNT, Template, role_policies

ECS_TASKS = {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)}
WEB = "0c8f1ab4-4a53-4a9f-bb6c-5d0e0d4a1c11"
DEPLOY = "6a3c6f0e-2b1a-4c0e-9d7e-1f2a3b4c5d6e"
WEB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/buildkite-pipeline/web"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"
DEFAULTS = {f"arn:aws:iam::{ACCOUNT}:role/{r}" for r in ("AgentTaskRole", "AgentExecutionRole")}
# The role's aggregate inline policy size, whitespace not counted (IAM quotas,
# docs/reference/aws.md §H.46).
ROLE_INLINE_POLICIES_MAX = 10_240


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def passable(cfn: Template, mapping: str) -> set[str]:
    """Every resource a launcher statement allowing iam:PassRole names."""
    policies = role_policies(
        cfn, "LauncherFunctionRole", PipelineTaskRoles=mapping, Tracing="Active"
    )
    return {
        str(resource)
        for document in policies.values()
        for statement in as_list(document["Statement"])
        if "iam:PassRole" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def pairs(count: int) -> dict[str, str]:
    return {str(uuid.uuid4()): role(f"pipeline-{n}") for n in range(count)}


def text(mapping: dict[str, str]) -> str:
    return ",".join(f"{p}={r}" for p, r in mapping.items())


@pytest.mark.parametrize("count", [0, 1, 2, PIPELINE_TASK_ROLES_MAX - 1, PIPELINE_TASK_ROLES_MAX])
def test_pass_role_covers_exactly_the_mapped_roles_and_the_stacks_own(
    cfn_template: Template, count: int
) -> None:
    mapping = pairs(count)
    assert passable(cfn_template, text(mapping)) == DEFAULTS | set(mapping.values())


@pytest.mark.parametrize(
    ("call", "allowed"),
    [
        (Call("iam:PassRole", WEB_ROLE, ECS_TASKS), True),
        (Call("iam:PassRole", DEPLOY_ROLE, ECS_TASKS), True),
        (Call("iam:PassRole", role("AgentTaskRole"), ECS_TASKS), True),
        # to ECS tasks only
        (Call("iam:PassRole", WEB_ROLE, {"iam:PassedToService": ("lambda.amazonaws.com",)}), False),
        (Call("iam:PassRole", WEB_ROLE), False),
        # no other role: not a neighbour on the same path, not one named by the uuid
        (Call("iam:PassRole", role("buildkite-pipeline/other"), ECS_TASKS), False),
        (Call("iam:PassRole", role(WEB), ECS_TASKS), False),
        (Call("iam:PassRole", role("Admin"), ECS_TASKS), False),
    ],
)
def test_the_mapped_roles_pass_to_ecs_tasks_only(
    cfn_template: Template, call: Call, allowed: bool
) -> None:
    policies = role_policies(
        cfn_template,
        "LauncherFunctionRole",
        PipelineTaskRoles=f"{WEB}={WEB_ROLE},{DEPLOY}={DEPLOY_ROLE}",
    )
    assert evaluate(policies, call).allowed is allowed


def test_without_a_mapping_the_launcher_role_is_as_before(cfn_template: Template) -> None:
    policies = role_policies(cfn_template, "LauncherFunctionRole")
    sids = [s.get("Sid") for d in policies.values() for s in as_list(d["Statement"])]
    assert "PassOnlyThePipelineTaskRoles" not in sids
    assert passable(cfn_template, "") == DEFAULTS


def allowed_by_template(cfn: Template, value: str) -> bool:
    spec = cfn["Parameters"]["PipelineTaskRoles"]
    return (
        len(value) <= spec["MaxLength"] and re.fullmatch(spec["AllowedPattern"], value) is not None
    )


def allowed_by_launcher(value: str) -> bool:
    try:
        parse_pipeline_task_roles(value)
    except PipelineTaskRolesError:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"{WEB}={WEB_ROLE}",
        f"{WEB}={WEB_ROLE},{DEPLOY}={DEPLOY_ROLE}",
        f"{WEB.upper()}=arn:aws-cn:iam::{ACCOUNT}:role/a/b/c+d.e@f_g-h",
        text(pairs(PIPELINE_TASK_ROLES_MAX)),
        text(pairs(PIPELINE_TASK_ROLES_MAX + 1)),
        f"web={WEB_ROLE}",
        f"{WEB}={role('*')}",
        f"{WEB}={role('a?')}",
        f"{WEB}={role('a=b')}",
        f"{WEB}={role('path/')}",
        f"{WEB}=arn:aws:iam::{ACCOUNT}:user/ci",
        f"{WEB}={WEB_ROLE},",
        f",{WEB}={WEB_ROLE}",
        f"{WEB}={WEB_ROLE}/../x",
    ],
)
def test_the_template_accepts_what_the_launcher_accepts(cfn_template: Template, value: str) -> None:
    # Spaces and a pipeline named twice pass the template's pattern but not the launcher
    # (which fails its cold start naming PipelineTaskRoles); the rest must agree, or a
    # deploy would grant PassRole on a list the launcher reads differently.
    assert allowed_by_template(cfn_template, value) is allowed_by_launcher(value)


def test_the_launchers_inline_policies_fit_iams_limit_at_the_largest_mapping(
    cfn_template: Template,
) -> None:
    limit = cfn_template["Parameters"]["PipelineTaskRoles"]["MaxLength"]
    pair = len(f"{WEB}=") + 1  # the comma
    name = (limit - PIPELINE_TASK_ROLES_MAX * (pair + len(role("")))) // PIPELINE_TASK_ROLES_MAX
    mapping = {str(uuid.uuid4()): role(f"{n:02d}" + "x" * (name - 2)) for n in range(20)}
    value = text(mapping)
    assert len(value) <= limit and allowed_by_template(cfn_template, value)
    policies = role_policies(
        cfn_template,
        "LauncherFunctionRole",
        PipelineTaskRoles=value,
        Tracing="Active",
        SecretsKmsKeyArn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    size = sum(len(json.dumps(d, separators=(",", ":"))) for d in policies.values())
    assert size <= ROLE_INLINE_POLICIES_MAX, size
