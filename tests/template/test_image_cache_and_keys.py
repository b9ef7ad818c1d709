"""Given the translated template and a set of parameter values, the roles, the agent image
and the ECR resources a deploy creates are the ones the AWS docs call for: kms:Decrypt only
through Secrets Manager with SecretsKmsKeyArn (docs/reference/aws.md §H.33), each task role's
documented trust policy (docs/reference/aws.md §H.31), and the agent image pulled through an
ECR pull-through cache by default (docs/reference/aws.md §H.29, §H.30, §H.32)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.template import (
    deployed_resources,
    evaluate,
    parameter_values,
    render,
)
from tests.template.test_stack import SAMPLE_PARAMETERS, as_list, statements

Template = dict[str, Any]

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET_READERS = (
    "PollerFunctionRole",
    "LauncherFunctionRole",
    "FailureHandlerFunctionRole",
    "AgentExecutionRole",
)
# The rule's prefix constraints (docs/reference/aws.md §H.29).
CACHE_PREFIX = re.compile(r"(?:[a-z0-9]+(?:[._-]{1}[a-z0-9]+)*/)*[a-z0-9]+(?:[._-]{1}[a-z0-9]+)*")


def params(cfn: Template, **given: str) -> dict[str, str]:
    return parameter_values(cfn, **SAMPLE_PARAMETERS, **given)


def roles(cfn: Template) -> list[str]:
    return [k for k, v in cfn["Resources"].items() if v["Type"] == "AWS::IAM::Role"]


def kms_statements(cfn: Template, role: str, values: dict[str, str]) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(cfn, role, values)
        if any(a.startswith("kms:") for a in as_list(s["Action"]))
    ]


def agent_image(cfn: Template, values: dict[str, str], **pseudo: str) -> str:
    task = deployed_resources(cfn, values)["AgentTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    image: str = render(container["Image"], cfn, values, **pseudo)
    return image


# ------------------------------------------------------------------ item 4: KMS


def test_with_a_secrets_key_every_secret_reader_may_decrypt_through_secrets_manager_only(
    cfn_template: Template,
) -> None:
    # agent-token mode: the task execution role reads a secret too (with job acquisition
    # tokens it reads none, and gets no key: the next test)
    values = params(cfn_template, SecretsKmsKeyArn=KEY_ARN, AgentTokenMode="agent-token")
    for role in roles(cfn_template):
        found = kms_statements(cfn_template, role, values)
        if role not in SECRET_READERS:
            assert found == [], role
            continue
        (statement,) = found
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "kms:Decrypt"
        assert statement["Resource"] == {"Ref": "SecretsKmsKeyArn"}
        assert statement["Condition"] == {
            "StringEquals": {
                "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
            }
        }
        assert render(statement["Resource"], cfn_template, values) == KEY_ARN


def test_with_job_acquisition_tokens_the_task_execution_role_gets_no_key(
    cfn_template: Template,
) -> None:
    values = params(cfn_template, SecretsKmsKeyArn=KEY_ARN)
    assert values["AgentTokenMode"] == "job-acquisition-token"
    assert kms_statements(cfn_template, "AgentExecutionRole", values) == []
    assert kms_statements(cfn_template, "LauncherFunctionRole", values) != []


def test_without_a_secrets_key_no_role_may_use_kms(cfn_template: Template) -> None:
    values = params(cfn_template)
    assert values["SecretsKmsKeyArn"] == ""
    for role in roles(cfn_template):
        assert kms_statements(cfn_template, role, values) == [], role


def test_the_secrets_key_parameter_takes_a_key_arn_or_nothing(cfn_template: Template) -> None:
    parameter = cfn_template["Parameters"]["SecretsKmsKeyArn"]
    assert parameter["Default"] == ""
    pattern = parameter["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, KEY_ARN)
    assert re.fullmatch(pattern, "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/abcd-12")
    for bad in ("alias/aws/secretsmanager", "arn:aws:kms:us-east-1:123456789012:alias/mine"):
        assert not re.fullmatch(pattern, bad), bad


# ------------------------------------------------------------------ item 8: trust policies


def trust(cfn: Template, role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cfn["Resources"][role]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    return found


def test_the_execution_role_trusts_ecs_tasks_as_the_ecs_guide_documents(
    cfn_template: Template,
) -> None:
    """Its documented trust policy has no condition (docs/reference/aws.md §H.31)."""
    assert trust(cfn_template, "AgentExecutionRole") == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_the_task_role_trusts_ecs_tasks_of_this_account_only(cfn_template: Template) -> None:
    """Against the confused deputy, as documented (docs/reference/aws.md §H.31)."""
    assert trust(cfn_template, "AgentTaskRole") == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnLike": {
                    "aws:SourceArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*"
                    }
                },
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            },
        }
    ]


# ------------------------------------------------------------------ item 11: image cache


def cache_statements(cfn: Template, values: dict[str, str]) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(cfn, "AgentExecutionRole", values)
        if any(a.startswith("ecr:") for a in as_list(s["Action"]))
    ]


def test_the_default_deploy_pulls_the_agent_image_through_a_cache_of_its_own(
    cfn_template: Template,
) -> None:
    values = params(cfn_template)
    assert values["AgentImageCache"] == "stack"
    deployed = deployed_resources(cfn_template, values)

    rule = deployed["AgentImageCacheRule"]
    assert rule["Type"] == "AWS::ECR::PullThroughCacheRule"
    assert rule["Properties"]["UpstreamRegistryUrl"] == "public.ecr.aws"
    assert (
        "CredentialArn" not in rule["Properties"]
    )  # none for ECR Public: docs/reference/aws.md §H.8
    prefix = render(rule["Properties"]["EcrRepositoryPrefix"], cfn_template, values)
    assert prefix == "buildkite-fargate-51af3dc0"

    assert agent_image(cfn_template, values) == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/"
        "buildkite-fargate-51af3dc0/buildkite/agent:3.87.0"
    )

    pull, token = cache_statements(cfn_template, values)
    assert sorted(pull["Action"]) == [
        "ecr:BatchGetImage",
        "ecr:BatchImportUpstreamImage",
        "ecr:CreateRepository",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert render(pull["Resource"], cfn_template, values) == (
        "arn:aws:ecr:us-east-1:123456789012:repository/buildkite-fargate-51af3dc0/*"
    )
    assert token == {
        "Sid": "GetTheRegistryToken",
        "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken",
        "Resource": "*",
    }


def test_the_cache_repositories_keep_a_few_images(cfn_template: Template) -> None:
    values = params(cfn_template)
    deployed = deployed_resources(cfn_template, values)
    template = deployed["AgentImageCacheTemplate"]
    assert template["Type"] == "AWS::ECR::RepositoryCreationTemplate"
    properties = template["Properties"]
    assert properties["AppliedFor"] == ["PULL_THROUGH_CACHE"]
    rule_prefix = deployed["AgentImageCacheRule"]["Properties"]["EcrRepositoryPrefix"]
    assert properties["Prefix"] == rule_prefix  # the template applies to the rule's prefix
    # No tags, no KMS key, so no custom role (docs/reference/aws.md §H.30).
    assert not {"CustomRoleArn", "ResourceTags", "EncryptionConfiguration"} & set(properties)
    import json  # noqa: PLC0415 - only here

    (rule,) = json.loads(properties["LifecyclePolicy"])["rules"]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 5,
    }
    assert rule["action"] == {"type": "expire"}


@pytest.mark.parametrize("name", ["x", "Buildkite_Fargate-" * 7 + "x"])  # up to 128 characters
def test_the_stacks_own_prefix_is_valid_for_any_stack_name(
    cfn_template: Template, name: str
) -> None:
    values = params(cfn_template)
    rule = deployed_resources(cfn_template, values)["AgentImageCacheRule"]
    stack_id = (
        f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/0f1e2d3c-aaaa-bbbb-cccc-1"
    )
    prefix = render(
        rule["Properties"]["EcrRepositoryPrefix"],
        cfn_template,
        values,
        **{"AWS__StackId": stack_id},
    )
    assert prefix == "buildkite-fargate-0f1e2d3c"
    assert 2 <= len(prefix) <= 30
    assert CACHE_PREFIX.fullmatch(prefix)


def test_an_existing_rule_is_used_by_its_prefix(cfn_template: Template) -> None:
    values = params(cfn_template, AgentImageCache="existing", AgentImageCachePrefix="ecr-public")
    deployed = deployed_resources(cfn_template, values)
    assert "AgentImageCacheRule" not in deployed
    assert "AgentImageCacheTemplate" not in deployed  # its lifecycle is the operator's
    assert agent_image(cfn_template, values) == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/buildkite/agent:3.87.0"
    )
    pull, _ = cache_statements(cfn_template, values)
    assert render(pull["Resource"], cfn_template, values) == (
        "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"
    )


def test_the_cache_can_be_turned_off_for_ecr_public_or_another_registry(
    cfn_template: Template,
) -> None:
    off = params(cfn_template, AgentImageCache="off")
    deployed = deployed_resources(cfn_template, off)
    assert not {"AgentImageCacheRule", "AgentImageCacheTemplate"} & set(deployed)
    assert cache_statements(cfn_template, off) == []
    assert agent_image(cfn_template, off) == "public.ecr.aws/buildkite/agent:3.87.0"

    private = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agents/buildkite:3.87.0"
    overridden = params(cfn_template, AgentImageCache="off", AgentImageOverride=private)
    assert agent_image(cfn_template, overridden) == private


def failed_rules(cfn: Template, values: dict[str, str]) -> list[str]:
    failed = []
    for rule in cfn["Rules"].values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], cfn, values):
            continue
        failed += [
            a["AssertDescription"]
            for a in rule["Assertions"]
            if not evaluate(a["Assert"], cfn, values)
        ]
    return failed


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"AgentImageCache": "existing"}, "AgentImageCache=existing needs AgentImageCachePrefix"),
        ({"AgentImageCachePrefix": "ecr-public"}, "read only with AgentImageCache=existing"),
        ({"AgentImageOverride": "ghcr.io/buildkite/agent:3"}, "set AgentImageCache=off"),
        (
            {
                "AgentImageCache": "existing",
                "AgentImageCachePrefix": "ecr-public",
                "AgentImageOverride": "ghcr.io/b/a:3",
            },
            "set AgentImageCache=off",
        ),
    ],
)
def test_a_bad_image_combination_fails_at_deploy_with_its_reason(
    cfn_template: Template, given: dict[str, str], message: str
) -> None:
    (failure,) = failed_rules(cfn_template, params(cfn_template, **given))
    assert message in failure


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"AgentImageCache": "existing", "AgentImageCachePrefix": "ecr-public"},
        {"AgentImageCache": "off"},
        {"AgentImageCache": "off", "AgentImageOverride": "ghcr.io/buildkite/agent:3"},
    ],
)
def test_the_good_image_combinations_pass_the_rules(
    cfn_template: Template, given: dict[str, str]
) -> None:
    assert failed_rules(cfn_template, params(cfn_template, **given)) == []


def test_the_agent_image_must_be_on_ecr_public(cfn_template: Template) -> None:
    """A non-ECR-Public image in AgentImage fails its pattern, naming AgentImageOverride."""
    parameter = cfn_template["Parameters"]["AgentImage"]
    pattern = parameter["AllowedPattern"]
    for good in (
        parameter["Default"],
        "public.ecr.aws/buildkite/agent:3-ubuntu-24.04",
        "public.ecr.aws/buildkite/agent@sha256:" + "a" * 64,
        "public.ecr.aws/buildkite/agent",
    ):
        assert re.fullmatch(pattern, good), good
    for bad in ("buildkite/agent:3", "ghcr.io/buildkite/agent:3", "docker.io/buildkite/agent"):
        assert not re.fullmatch(pattern, bad), bad
    assert "AgentImageOverride" in parameter["ConstraintDescription"]
    prefix = cfn_template["Parameters"]["AgentImageCachePrefix"]
    assert prefix["MaxLength"] == 30
    assert re.fullmatch(prefix["AllowedPattern"], "")
    assert re.fullmatch(prefix["AllowedPattern"], "ecr-public")
    assert not re.fullmatch(prefix["AllowedPattern"], "ECR_Public")
