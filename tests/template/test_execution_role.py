"""Given the task execution role, when a deploy creates it, then it holds no managed policy
and may write only the agent's log group and pull only from the repositories the operator
names (PrivateImageRepositoryArns) and the image cache's: AmazonECSTaskExecutionRolePolicy
allowed log writes and ECR pulls on "*" (docs/reference/aws.md §H.9)."""

from __future__ import annotations

from typing import Any

from tests.support.iam import managed_policy_names
from tests.support.template import parameter_values, render
from tests.template.test_stack import SAMPLE_PARAMETERS, as_list, statements

AGENT = "arn:aws:ecr:us-east-1:123456789012:repository/ci/agent"
TOOLS = "arn:aws:ecr:us-east-1:123456789012:repository/ci/tools"


def pulls(cfn: dict[str, Any], **given: str) -> dict[str, list[str]]:
    values = parameter_values(cfn, **SAMPLE_PARAMETERS, **given)
    granted: dict[str, list[str]] = {}
    for s in statements(cfn, "AgentExecutionRole", values):
        if "ecr:BatchGetImage" in as_list(s["Action"]):
            granted[s["Sid"]] = [str(r) for r in as_list(render(s["Resource"], cfn, values))]
    return granted


def test_no_managed_policy_in_any_mode(cfn_template: dict[str, Any]) -> None:
    for given in ({}, {"AgentImageCache": "off", "PrivateImageRepositoryArns": AGENT}):
        values = parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given)
        assert managed_policy_names(cfn_template, "AgentExecutionRole", values) == []


def test_the_named_repositories_and_nothing_else(cfn_template: dict[str, Any]) -> None:
    named = pulls(
        cfn_template, AgentImageCache="off", PrivateImageRepositoryArns=f"{AGENT},{TOOLS}"
    )
    assert named == {"PullFromTheNamedRepositories": [AGENT, TOOLS]}
    # with no repository named and no cache, no ECR pull at all
    assert pulls(cfn_template, AgentImageCache="off") == {}
    # the default deploy pulls through its own cache only
    assert set(pulls(cfn_template)) == {"PullAndPopulateTheImageCache"}


def test_logs_only_to_the_agent_log_group(cfn_template: dict[str, Any]) -> None:
    values = parameter_values(cfn_template, **SAMPLE_PARAMETERS)
    (write,) = [
        s
        for s in statements(cfn_template, "AgentExecutionRole", values)
        if "logs:PutLogEvents" in as_list(s["Action"])
    ]
    assert sorted(write["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    resource = str(render(write["Resource"], cfn_template, values, AgentLogGroup="agent-logs"))
    assert resource == "arn:aws:logs:us-east-1:123456789012:log-group:agent-logs:*"
