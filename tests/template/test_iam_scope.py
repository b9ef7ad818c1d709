"""Parameters that IAM and ECS read as ARNs or names must be given in the form they expect,
and only this stack's rule and this account's schedules reach what they invoke (issue #12,
items 2, 3, 5)."""

from __future__ import annotations

import re

import pytest

from tests.template.test_stack import Template, props, resources

FULL = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:buildkite/fargate/cluster-token-AbC12f"


def allowed(cfn: Template, parameter: str, value: str) -> bool:
    # CloudFormation matches AllowedPattern against the whole value.
    return re.fullmatch(cfn["Parameters"][parameter]["AllowedPattern"], value) is not None


@pytest.mark.parametrize("parameter", ["ClusterTokenSecretArn", "AgentTokenSecretArn"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (FULL, True),
        # Without the random suffix IAM would deny every reader (docs/reference/aws.md §H.5)
        (
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:buildkite/fargate/cluster-token",
            False,
        ),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:bk", False),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:bk-AbC12f-x", False),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a+b=c.d@e-Zz9Zz9", True),
    ],
)
def test_token_secrets_are_given_by_their_full_arn(
    cfn_template: Template, parameter: str, value: str, ok: bool
) -> None:
    assert allowed(cfn_template, parameter, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("ci-fargate_1", True),
        ("arn:aws:ecs:eu-west-1:123456789012:cluster/ci", False),
        ("x" * 256, False),
    ],
)
def test_an_existing_cluster_is_given_by_name(cfn_template: Template, value: str, ok: bool) -> None:
    # The template builds cluster/<name> ARNs from it for ecs:cluster and the stopped rule.
    assert allowed(cfn_template, "ExistingClusterName", value) is ok


def test_only_this_stacks_rule_may_dead_letter_its_events(cfn_template: Template) -> None:
    (statement,) = props(cfn_template, "EventsDeadLetterQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["FailureHandlerFunctionTaskStopped", "Arn"]
    }
    rule = cfn_template["Resources"]["FailureHandlerFunctionTaskStopped"]
    assert rule["Type"] == "AWS::Events::Rule"


def test_only_this_accounts_schedules_may_assume_the_schedule_role(cfn_template: Template) -> None:
    # EventBridge Scheduler's guide, execution role: aws:SourceAccount in the trust policy
    (schedule,) = resources(cfn_template, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["RoleArn"] == {
        "Fn::GetAtt": ["PollerScheduleRole", "Arn"]
    }
    role = props(cfn_template, "PollerScheduleRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    (grant,) = policy["PolicyDocument"]["Statement"]
    assert grant["Action"] == "lambda:InvokeFunction"
    assert grant["Resource"] == {"Fn::GetAtt": ["PollerFunction", "Arn"]}
