"""Parameters that IAM and ECS read as ARNs or names must be given in the form they expect,
only this stack's rule and this account's schedules reach what they invoke (issue #12,
items 2, 3, 5), and each function's role reaches its own queues only (item 4)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.iam import allows, as_list
from tests.support.template import parameter_values
from tests.template.test_stack import (
    PARAMETER_SETS,
    SAMPLE_PARAMETERS,
    Template,
    granted_statements,
    props,
    resources,
)

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


# ------------------------------------------------------------------ issue #12 item 4


def _key(value: Any) -> str:
    """A resource reference as a comparable string (the same GetAtt or Sub on both sides)."""
    return json.dumps(value, sort_keys=True)


def _role_of(cfn: Template, function: str) -> str:
    role: str = props(cfn, function)["Role"]["Fn::GetAtt"][0]
    return role


def _by_function(cfn: Template, type_name: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in resources(cfn, type_name).values():
        function = resource["Properties"]["FunctionName"]["Ref"]
        found.setdefault(function, []).append(resource["Properties"])
    return found


def _resources_allowed(cfn: Template, role: str, params: dict[str, str], action: str) -> set[str]:
    return {
        _key(resource)
        for _, s in granted_statements(cfn, role, params)
        if allows(s, action)
        for resource in as_list(s["Resource"])
    }


@pytest.mark.parametrize("given", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_each_function_receives_and_deletes_only_from_its_own_event_sources(
    cfn_template: Template, given: dict[str, str]
) -> None:
    """The queues a role may take messages off are exactly its function's SQS event source
    mappings' queues (docs/reference/aws.md §H.37); no other role may take any."""
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given)
    mappings = _by_function(cfn_template, "AWS::Lambda::EventSourceMapping")
    sources = {
        _role_of(cfn_template, function): {_key(m["EventSourceArn"]) for m in found}
        for function, found in mappings.items()
    }
    assert sources, "no SQS event source mapping to check"
    for role in resources(cfn_template, "AWS::IAM::Role"):
        own = sources.get(role, set())
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
            assert _resources_allowed(cfn_template, role, params, action) == own, (role, action)
        # The mapping reads the queue's attributes too; the poller reads its depth.
        assert own <= _resources_allowed(cfn_template, role, params, "sqs:GetQueueAttributes")


def test_the_launcher_and_the_failure_handler_read_the_queues_their_mappings_name(
    cfn_template: Template,
) -> None:
    mappings = _by_function(cfn_template, "AWS::Lambda::EventSourceMapping")
    queues = {
        fn: sorted(m["EventSourceArn"]["Fn::GetAtt"][0] for m in found)
        for fn, found in mappings.items()
    }
    assert queues == {
        "LauncherFunction": ["LaunchQueue"],
        "FailureHandlerFunction": ["EventsDeadLetterQueue", "LaunchDeadLetterQueue"],
    }


@pytest.mark.parametrize("given", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_a_function_may_send_to_its_on_failure_destination(
    cfn_template: Template, given: dict[str, str]
) -> None:
    """Lambda sends an asynchronous invocation's record to a destination with the function's
    execution role, and SAM grants that only to a role it generates
    (docs/reference/aws.md §H.38): the explicit role must hold sqs:SendMessage on it."""
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given)
    configs = _by_function(cfn_template, "AWS::Lambda::EventInvokeConfig")
    checked = []
    for function, found in configs.items():
        for config in found:
            for outcome in ("OnFailure", "OnSuccess"):
                destination = (
                    config.get("DestinationConfig", {}).get(outcome, {}).get("Destination")
                )
                if destination is None:
                    continue
                queue = destination["Fn::GetAtt"][0]
                assert cfn_template["Resources"][queue]["Type"] == "AWS::SQS::Queue", destination
                role = _role_of(cfn_template, function)
                sendable = _resources_allowed(cfn_template, role, params, "sqs:SendMessage")
                assert _key(destination) in sendable, (function, outcome)
                checked.append((function, outcome, queue))
    assert checked == [("FailureHandlerFunction", "OnFailure", "EventsDeadLetterQueue")]
