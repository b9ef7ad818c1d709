"""Given AllowedImages, when the template deploys, then the launcher may register, run and
retire its own step-image families and nothing more, the families it derives are the ones
its IAM statements name, and with the parameter empty (the default) nothing changes."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from fargate_stack.domain.step_image import (
    AllowedImagesError,
    derive_task_definition,
    derived_family,
    parse_allowed_images,
    parse_caches,
    parse_image_reference,
)
from tests.support.template import deployed_resources, parameter_values, render
from tests.template.test_stack import SAMPLE_PARAMETERS, statements

STEP_SIDS = {
    "RegisterStepImageTaskDefinitions",
    "TagStepImageTaskDefinitionsAtRegistration",
    "ReadAndRetireStepImageTaskDefinitions",
}
ALLOWED = "node:*,public.ecr.aws/docker/library/*"


def launcher_env(cfn: dict[str, Any], params: dict[str, str]) -> dict[str, str]:
    function = deployed_resources(cfn, params)["LauncherFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    return {
        k: render(v, cfn, params)
        for k, v in variables.items()
        if k.startswith(("ALLOWED_IMAGES", "STEP_IMAGE"))
    }


def test_by_default_the_launcher_may_do_nothing_new(cfn_template: dict[str, Any]) -> None:
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS)
    assert params["AllowedImages"] == ""
    sids = {s.get("Sid") for s in statements(cfn_template, "LauncherFunctionRole", params)}
    assert sids.isdisjoint(STEP_SIDS)
    assert launcher_env(cfn_template, params)["ALLOWED_IMAGES"] == ""


def test_with_allowed_images_registration_is_scoped_to_the_stacks_step_families(
    cfn_template: dict[str, Any],
) -> None:
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, AllowedImages=ALLOWED)
    granted = {
        s["Sid"]: s
        for s in statements(cfn_template, "LauncherFunctionRole", params)
        if s.get("Sid") in STEP_SIDS
    }
    assert set(granted) == STEP_SIDS
    register = granted["RegisterStepImageTaskDefinitions"]
    assert register["Action"] == "ecs:RegisterTaskDefinition"
    assert render(register["Resource"], cfn_template, params).endswith(
        ":task-definition/buildkite-fargate-stack-step-*:*"
    )
    tag = granted["TagStepImageTaskDefinitionsAtRegistration"]
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}
    # The actions without a resource type (docs/reference/aws.md §B.9), and no other.
    assert set(granted["ReadAndRetireStepImageTaskDefinitions"]["Action"]) == {
        "ecs:DescribeTaskDefinition",
        "ecs:ListTaskDefinitionFamilies",
        "ecs:ListTaskDefinitions",
        "ecs:DeregisterTaskDefinition",
    }


def test_the_families_the_launcher_derives_are_those_its_statements_name(
    cfn_template: dict[str, Any],
) -> None:
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, AllowedImages=ALLOWED)
    env = launcher_env(cfn_template, params)
    register = next(
        s
        for s in statements(cfn_template, "LauncherFunctionRole", params)
        if s.get("Sid") == "RegisterStepImageTaskDefinitions"
    )
    pattern = render(register["Resource"], cfn_template, params)
    base = "arn:aws:ecs:us-east-1:123456789012:task-definition/buildkite-fargate-stack-agent:12"
    family = derived_family(env["STEP_IMAGE_FAMILY_PREFIX"], base, "node:22")
    arn = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:1"
    assert fnmatch.fnmatchcase(arn, pattern)
    # ... and never the stack's own agent family, which CloudFormation manages.
    assert not fnmatch.fnmatchcase(base, pattern)
    assert env["STEP_IMAGE_REGISTRATIONS_PER_DAY"] == "50"
    assert parse_allowed_images(env["ALLOWED_IMAGES"]) == (
        "node:*",
        "public.ecr.aws/docker/library/*",
    )


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("", True),
        (ALLOWED, True),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ci/*", True),
        (f"ghcr.io/org/tool@sha256:{'a' * 64}", True),
        ("node:[0-9]*", False),
        ("node?", False),
        ("node;id", False),
    ],
)
def test_the_parameter_and_the_launcher_agree_on_the_patterns(
    cfn_template: dict[str, Any], text: str, accepted: bool
) -> None:
    pattern = re.compile(cfn_template["Parameters"]["AllowedImages"]["AllowedPattern"])
    assert bool(pattern.fullmatch(text)) is accepted
    try:
        parse_allowed_images(text)
    except AllowedImagesError:
        assert not accepted
    else:
        assert accepted


def test_the_registration_budget_has_bounds_and_a_default(cfn_template: dict[str, Any]) -> None:
    spec = cfn_template["Parameters"]["StepImageRegistrationsPerDay"]
    assert (spec["Type"], spec["Default"], spec["MinValue"], spec["MaxValue"]) == (
        "Number",
        50,
        1,
        1000,
    )


def test_the_templates_agent_definition_derives_within_ecs_limits(
    cfn_template: dict[str, Any],
) -> None:
    """The derived definition of the real agent container (as ECS would describe it) fits
    a task definition's 64 KiB and 10 containers (docs/reference/aws.md §B.9)."""
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, AllowedImages=ALLOWED)
    props = deployed_resources(cfn_template, params)["AgentTaskDefinition"]["Properties"]
    (container,) = props["ContainerDefinitions"]
    described = {
        "containerDefinitions": [
            {
                "name": container["Name"],
                "image": "public.ecr.aws/buildkite/agent:3",
                "entryPoint": container["EntryPoint"],
                "command": container["Command"],
                "environment": [
                    {"name": e["Name"], "value": json.dumps(e["Value"])}
                    for e in container["Environment"]
                ],
            }
        ],
        "cpu": "1024",
        "memory": "2048",
    }
    image = parse_image_reference("public.ecr.aws/docker/library/node:22")
    request = derive_task_definition(
        described, container_name=container["Name"], image=image, family="x-step-1-y"
    ).request
    assert len(json.dumps(request)) < 64 * 1024
    assert len(request["containerDefinitions"]) <= 10


HUB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf"


def test_by_default_step_images_from_ecr_public_use_the_agent_images_cache(
    cfn_template: dict[str, Any],
) -> None:
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, AllowedImages=ALLOWED)
    assert "StepImageDockerHubCacheRule" not in deployed_resources(cfn_template, params)
    caches = parse_caches(launcher_env(cfn_template, params)["STEP_IMAGE_CACHES"])
    assert list(caches) == ["public.ecr.aws"]
    assert caches["public.ecr.aws"].endswith("/buildkite-fargate-51af3dc0")


def test_a_docker_hub_secret_makes_the_cache_and_lets_the_tasks_pull_through_it(
    cfn_template: dict[str, Any],
) -> None:
    params = parameter_values(
        cfn_template, **SAMPLE_PARAMETERS, AllowedImages=ALLOWED, DockerHubCacheSecretArn=HUB_SECRET
    )
    deployed = deployed_resources(cfn_template, params)
    rule = deployed["StepImageDockerHubCacheRule"]["Properties"]
    assert rule["UpstreamRegistryUrl"] == "registry-1.docker.io"
    assert rule["CredentialArn"] == {"Ref": "DockerHubCacheSecretArn"}
    prefix = render(rule["EcrRepositoryPrefix"], cfn_template, params)
    assert 2 <= len(prefix) <= 30  # ECR's prefix length (docs/reference/aws.md §H.29)
    template = deployed["StepImageDockerHubCacheTemplate"]["Properties"]
    assert render(template["Prefix"], cfn_template, params) == prefix
    caches = parse_caches(launcher_env(cfn_template, params)["STEP_IMAGE_CACHES"])
    assert caches["docker.io"] == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{prefix}"
    pull = next(
        s
        for s in statements(cfn_template, "AgentExecutionRole", params)
        if s.get("Sid") == "PullAndPopulateTheDockerHubCache"
    )
    resource = render(pull["Resource"], cfn_template, params)
    assert resource == f"arn:aws:ecr:us-east-1:123456789012:repository/{prefix}/*"
    # ECR reads the upstream credentials itself: no statement of the role names the secret.
    granted = statements(cfn_template, "AgentExecutionRole", params)
    assert "DockerHubCacheSecretArn" not in json.dumps(granted)


@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("", True),
        (HUB_SECRET, True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:docker-hub-AbCdEf", False),
    ],
)
def test_the_docker_hub_secret_must_be_named_as_ecr_requires(
    cfn_template: dict[str, Any], arn: str, accepted: bool
) -> None:
    pattern = re.compile(cfn_template["Parameters"]["DockerHubCacheSecretArn"]["AllowedPattern"])
    assert bool(pattern.fullmatch(arn)) is accepted
